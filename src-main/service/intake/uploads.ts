import type { Page } from '../../../src-shared/api';
import type { CheckStatus, Finding, Upload, UploadFile, UploadStatus } from '../../../src-shared/domain/upload';
import { canTransition } from '../../../src-shared/domain/upload';
import { FondsError } from '../../../src-shared/errors';
import type { DB } from '../db/database';
import { nowIso, type Tx } from '../db/store';

export interface Source {
  /** the dropped path (absolute) */
  path: string;
  /** entries' relative paths are relative to this folder */
  base: string;
}

export interface UploadRow {
  id: string;
  name: string;
  description: string;
  type: 'ARCHIVE';
  srs: string | null;
  status: UploadStatus;
  sources: string;
  staged: number;
  is_bag: number;
  files: number;
  size: number;
  walked: number;
  archive_check: CheckStatus;
  standard_check: CheckStatus;
  archive_errors: number;
  archive_warnings: number;
  standard_errors: number;
  standard_warnings: number;
  progress: string | null;
  reason: string | null;
  creation: string;
  last_change: string;
}

export function rowToUpload(r: UploadRow): Upload {
  return {
    _id: r.id,
    name: r.name,
    description: r.description,
    type: r.type,
    ...(r.srs ? { srs: r.srs } : {}),
    status: r.status,
    sources: (JSON.parse(r.sources) as Source[]).map((s) => s.path),
    creation: r.creation,
    lastChange: r.last_change,
    files: r.files,
    size: r.size,
    isBag: r.is_bag === 1,
    checks: [
      { kind: 'archive', status: r.archive_check, errors: r.archive_errors, warnings: r.archive_warnings },
      { kind: 'standard', status: r.standard_check, errors: r.standard_errors, warnings: r.standard_warnings },
    ],
    ...(r.progress ? { progress: JSON.parse(r.progress) } : {}),
    ...(r.reason ? { reason: r.reason } : {}),
  };
}

export function getUploadRow(db: DB, id: string): UploadRow {
  const row = db.prepare('SELECT * FROM uploads WHERE id = ?').get(id) as UploadRow | undefined;
  if (!row) throw new FondsError('NOT_FOUND', `Upload ${id} does not exist.`, { id });
  return row;
}

/**
 * Files being pushed into staged uploads (HTTP PUT), by upload id. In memory: one Fonds process
 * per data directory, and a push lives no longer than its request. While a file is on its way, its
 * upload is not closed, checked again or deleted (the check would miss it).
 */
const pushing = new Map<string, number>();
/** uploads being deleted: no push starts into them */
const barred = new Set<string>();

/** Counts a push into the upload until the returned function is called; refused while it is being deleted. */
export function beginPush(row: Pick<UploadRow, 'id' | 'name'>): () => void {
  const id = row.id;
  if (barred.has(id)) throw new FondsError('CONFLICT', `Upload '${row.name}' is being deleted; files can no longer be pushed into it.`);
  pushing.set(id, (pushing.get(id) ?? 0) + 1);
  let done = false;
  return () => {
    if (done) return;
    done = true;
    const n = (pushing.get(id) ?? 1) - 1;
    if (n > 0) pushing.set(id, n);
    else pushing.delete(id);
  };
}

/** Refuses `action` (what the caller is about to do) while files are being pushed into the upload. */
export function refuseWhilePushing(row: Pick<UploadRow, 'id' | 'name'>, action: string): void {
  const n = pushing.get(row.id);
  if (n) {
    throw new FondsError('CONFLICT', `Upload '${row.name}' has ${n} file${n === 1 ? '' : 's'} still being pushed; ${action} once ${n === 1 ? 'it is' : 'they are'} in.`, { pushing: n });
  }
}

/** While the upload is being deleted: refused if a push is on its way, then no push starts until the returned function is called. */
export function barPushes(row: Pick<UploadRow, 'id' | 'name'>): () => void {
  refuseWhilePushing(row, 'delete it');
  barred.add(row.id);
  return () => barred.delete(row.id);
}

/** Refuses using an upload (an execution created or launched from it) while it is being deleted. */
export function refuseWhileDeleting(row: Pick<UploadRow, 'id' | 'name'>): void {
  if (barred.has(row.id)) throw new FondsError('CONFLICT', `Upload '${row.name}' is being deleted; it cannot be processed.`, { upload: row.id });
}

export function sourcesOf(row: UploadRow): Source[] {
  return JSON.parse(row.sources) as Source[];
}

/** Moves an upload to a new status with an event, refusing transitions the state machine forbids. */
export function setUploadStatus(tx: Tx, id: string, to: UploadStatus, payload: Record<string, unknown> = {}, reason?: string): void {
  const row = getUploadRow(tx.db, id);
  if (row.status !== to && !canTransition(row.status, to)) {
    throw new FondsError('CONFLICT', `Upload '${row.name}' is ${row.status} and cannot become ${to}.`, { status: row.status });
  }
  tx.db.prepare('UPDATE uploads SET status = ?, reason = ?, last_change = ? WHERE id = ?').run(to, reason ?? null, nowIso(), id);
  tx.event({ kind: 'upload', objectId: id, type: `status.${to}`, payload: { from: row.status, to, ...(reason ? { reason } : {}), ...payload } });
}

export function listUploads(db: DB, status: string | undefined, offset: number, limit: number): Page<Upload> {
  const where = status ? 'WHERE status = ?' : `WHERE status != 'DELETED'`;
  const args = status ? [status] : [];
  const total = db.prepare(`SELECT count(*) FROM uploads ${where}`).pluck().get(...args) as number;
  const rows = db.prepare(`SELECT * FROM uploads ${where} ORDER BY creation DESC, rowid DESC LIMIT ? OFFSET ?`).all(...args, limit, offset) as UploadRow[];
  return { items: rows.map(rowToUpload), total, offset };
}

export function listFiles(db: DB, id: string, offset: number, limit: number): Page<UploadFile> {
  getUploadRow(db, id);
  const total = db.prepare(`SELECT count(*) FROM upload_entries WHERE upload_id = ? AND kind = 'file'`).pluck().get(id) as number;
  const rows = db
    .prepare(`SELECT path, size, md5, sha256, extra FROM upload_entries WHERE upload_id = ? AND kind = 'file' ORDER BY path LIMIT ? OFFSET ?`)
    .all(id, limit, offset) as Array<{ path: string; size: number; md5: string | null; sha256: string | null; extra: string | null }>;
  return {
    items: rows.map((r) => ({ path: r.path, size: r.size, md5: r.md5 ?? '', sha256: r.sha256 ?? '', extra: r.extra ? JSON.parse(r.extra) : {} })),
    total,
    offset,
  };
}

export function listFindings(db: DB, id: string, check: 'archive' | 'standard' | undefined, offset: number, limit: number): Page<Finding> {
  getUploadRow(db, id);
  const where = check ? 'WHERE upload_id = ? AND check_kind = ?' : 'WHERE upload_id = ?';
  const args = check ? [id, check] : [id];
  const total = db.prepare(`SELECT count(*) FROM upload_findings ${where}`).pluck().get(...args) as number;
  const rows = db
    .prepare(
      `SELECT check_kind, path, rule, severity, message FROM upload_findings ${where}
       ORDER BY CASE severity WHEN 'error' THEN 0 WHEN 'warning' THEN 1 ELSE 2 END, path, id LIMIT ? OFFSET ?`,
    )
    .all(...args, limit, offset) as Array<{ check_kind: 'archive' | 'standard'; path: string; rule: string; severity: Finding['severity']; message: string }>;
  return { items: rows.map((r) => ({ check: r.check_kind, path: r.path, rule: r.rule, severity: r.severity, message: r.message })), total, offset };
}
