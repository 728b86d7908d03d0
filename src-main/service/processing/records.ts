import fs from 'node:fs';
import path from 'node:path';
import type { Statement } from 'better-sqlite3';
import { checkNames } from '../../../src-shared/domain/upload';
import type { Execution, ExecutionStatus, Processing, StoredData, StoredDataStatus } from '../../../src-shared/domain/execution';
import { canExecutionBecome, canStoredDataBecome, storedDataEventTitles } from '../../../src-shared/domain/execution';
import { FondsError } from '../../../src-shared/errors';
import type { Deps } from '../capability';
import { eventsOfObject, nowIso, type Tx } from '../db/store';
import { barPushes, getUploadRow, rowToUpload, setUploadStatus, sourcesOf, type UploadRow } from '../intake/uploads';
import type { Storage } from '../storage';

/** The catalog: the seed's archive-to-archive processing ("Recopie d'une archive livrée"). */
export const processings: Processing[] = [
  {
    _id: 'archive-to-archive',
    name: "Recopie d'une archive livrée",
    description:
      "Génération ou mise à jour d'une donnée stockée ARCHIVE à partir d'une archive livrées. Si un fichier livré existait déjà dans la donnée en sortie, celui ci va écraser l'ancienne version",
    priority: 'STANDARD',
    input_types: { upload: ['ARCHIVE'], stored_data: [] },
    output_type: { stored_data: 'ARCHIVE', storage: ['S3', 'FILESYSTEM'] },
    parameters: [],
    required_checks: [
      { _id: 'archive', ...checkNames.archive },
      { _id: 'standard', ...checkNames.standard },
    ],
  },
];

export interface StoredDataRow {
  id: string;
  name: string;
  type: 'ARCHIVE';
  status: StoredDataStatus;
  storage_type: 'S3' | 'FILESYSTEM';
  storage_label: string;
  tags: string;
  size: number;
  files: number;
  srs: string | null;
  description: string | null;
  edition_from: string | null;
  edition_to: string | null;
  extent: string | null;
  verified: number;
  creation: string;
  last_change: string;
}

export interface ExecutionRow {
  id: string;
  processing: string;
  status: ExecutionStatus;
  stored_data_id: string;
  uploads: string;
  parameters: string;
  reason: string | null;
  creation: string;
  launch: string | null;
  /** the order of its last launch among all launches (processing/002_write_order) */
  launch_seq: number | null;
  start: string | null;
  finish: string | null;
}

export function getStoredDataRow(db: Deps['store']['db'], id: string): StoredDataRow {
  const row = db.prepare('SELECT * FROM stored_data WHERE id = ?').get(id) as StoredDataRow | undefined;
  if (!row) throw new FondsError('NOT_FOUND', `Stored data ${id} does not exist.`, { id });
  return row;
}

export function getExecutionRow(db: Deps['store']['db'], id: string): ExecutionRow {
  const row = db.prepare('SELECT * FROM executions WHERE id = ?').get(id) as ExecutionRow | undefined;
  if (!row) throw new FondsError('NOT_FOUND', `Execution ${id} does not exist.`, { id });
  return row;
}

/** the statement of lastEventOf, prepared once a database (a page of stored data asks once a row) */
const lastEventStatements = new WeakMap<Deps['store']['db'], Statement>();

/**
 * The last step of a stored data's life (seed 002's `last_event`): its last generation, from the
 * timeline, or else its creation, dated by the stored data itself.
 */
function lastEventOf(db: Deps['store']['db'], r: StoredDataRow): NonNullable<StoredData['last_event']> {
  let select = lastEventStatements.get(db);
  if (!select) {
    select = db.prepare(`SELECT time FROM events WHERE ${eventsOfObject(`'stored_data'`, '@id')} AND type = 'status.GENERATING' ORDER BY seq DESC LIMIT 1`).pluck();
    lastEventStatements.set(db, select);
  }
  const generated = select.get({ id: r.id }) as string | undefined;
  return generated ? { title: storedDataEventTitles['status.GENERATING'], date: generated } : { title: storedDataEventTitles.created, date: r.creation };
}

export function rowToStoredData(db: Deps['store']['db'], r: StoredDataRow): StoredData {
  return {
    _id: r.id,
    name: r.name,
    type: r.type,
    status: r.status,
    ...(r.srs ? { srs: r.srs } : {}),
    ...(r.description ? { description: r.description } : {}),
    storage: { type: r.storage_type, labels: [r.storage_label] },
    size: r.size,
    type_infos: { files_number: r.files },
    tags: JSON.parse(r.tags),
    verified: r.verified === 1,
    creation: r.creation,
    last_event: lastEventOf(db, r),
    ...(r.edition_from || r.edition_to ? { edition: { ...(r.edition_from ? { from: r.edition_from } : {}), ...(r.edition_to ? { to: r.edition_to } : {}) } } : {}),
    ...(r.extent ? { extent: JSON.parse(r.extent) } : {}),
  };
}

/** The storage type Entrepot names for a Fonds storage. */
export const storageTypeOf = (storage: Storage): 'S3' | 'FILESYSTEM' => (storage.kind === 's3' ? 'S3' : 'FILESYSTEM');

/** Why a stored data cannot be written through `storage` (it lives in another one), or undefined. */
export function storageMismatch(sd: StoredDataRow, storage: Storage): string | undefined {
  const same = sd.storage_type === storageTypeOf(storage) && (sd.storage_type === 'S3' ? sd.storage_label === storage.label : path.resolve(sd.storage_label) === storage.label);
  if (same) return undefined;
  return `Stored data '${sd.name}' is kept in ${sd.storage_label}, but Fonds now stores to ${storage.label} (setting 'storage'); it cannot be updated from this configuration.`;
}

/** Moves a stored data to a status, with an event on its timeline. */
export function setStoredDataStatus(tx: Tx, id: string, to: StoredDataStatus, payload: Record<string, unknown> = {}): void {
  const row = getStoredDataRow(tx.db, id);
  if (row.status === to) return;
  if (!canStoredDataBecome(row.status, to)) throw new FondsError('CONFLICT', `Stored data '${row.name}' is ${row.status} and cannot become ${to}.`, { status: row.status });
  tx.db.prepare('UPDATE stored_data SET status = ?, last_change = ? WHERE id = ?').run(to, nowIso(), id);
  tx.event({ kind: 'stored_data', objectId: id, type: `status.${to}`, payload: { from: row.status, to, ...payload } });
}

/** Moves an execution to a status (the state machine forbids the rest), stamping its times. */
export function setExecutionStatus(tx: Tx, id: string, to: ExecutionStatus, payload: Record<string, unknown> = {}, reason?: string): void {
  const row = getExecutionRow(tx.db, id);
  if (!canExecutionBecome(row.status, to)) {
    throw new FondsError('CONFLICT', `Execution ${id} is ${row.status} and cannot become ${to}.`, { status: row.status });
  }
  const now = nowIso();
  const stamp = to === 'WAITING' ? ', launch = @now, finish = NULL, launch_seq = (SELECT coalesce(max(launch_seq), 0) + 1 FROM executions)' : to === 'PROGRESS' ? ', start = coalesce(start, @now)' : to === 'SUCCESS' || to === 'FAILURE' ? ', finish = @now' : '';
  tx.db.prepare(`UPDATE executions SET status = @to, reason = @reason ${stamp} WHERE id = @id`).run({ to, reason: reason ?? null, now, id });
  tx.event({ kind: 'execution', objectId: id, type: `status.${to}`, payload: { from: row.status, to, ...(reason ? { reason } : {}), ...payload } });
}

export function filesSummary(db: Deps['store']['db'], id: string): Execution['files'] {
  const r = db
    .prepare(
      `SELECT count(*) AS total, sum(status = 'pending') AS pending, sum(status = 'verified') AS verified, sum(status = 'failed') AS failed,
              coalesce(sum(CASE WHEN status = 'verified' THEN size END), 0) AS bytes, coalesce(sum(size), 0) AS totalBytes
       FROM execution_files WHERE execution_id = ?`,
    )
    .get(id) as Record<string, number | null>;
  return {
    total: r.total ?? 0,
    pending: r.pending ?? 0,
    verified: r.verified ?? 0,
    failed: r.failed ?? 0,
    bytes: r.bytes ?? 0,
    totalBytes: r.totalBytes ?? 0,
  };
}

export function rowToExecution(db: Deps['store']['db'], r: ExecutionRow): Execution {
  const processing = processings.find((p) => p._id === r.processing)!;
  const sd = getStoredDataRow(db, r.stored_data_id);
  const uploads = (JSON.parse(r.uploads) as string[]).map((uid) => {
    const u = db.prepare('SELECT id, name, status, srs FROM uploads WHERE id = ?').get(uid) as { id: string; name: string; status: string; srs: string | null } | undefined;
    return { type: 'ARCHIVE' as const, name: u?.name ?? '(deleted)', status: u?.status ?? 'DELETED', ...(u?.srs ? { srs: u.srs } : {}), _id: uid };
  });
  return {
    _id: r.id,
    processing: { name: processing.name, _id: processing._id },
    status: r.status,
    creation: r.creation,
    ...(r.launch ? { launch: r.launch } : {}),
    ...(r.start ? { start: r.start } : {}),
    ...(r.finish ? { finish: r.finish } : {}),
    inputs: { upload: uploads, stored_data: [] },
    output: { stored_data: { name: sd.name, type: 'ARCHIVE', status: sd.status, _id: sd.id } },
    parameters: JSON.parse(r.parameters),
    files: filesSummary(db, r.id),
    ...(r.reason ? { reason: r.reason } : {}),
  };
}

/**
 * Refuses checking an upload again while an execution reads it (WAITING or PROGRESS): the check
 * would redo the upload's file list and take it out of CLOSED under a copy planned from the first
 * check. A CREATED execution reads nothing yet, and its launch wants the upload CLOSED and checked.
 */
export function refuseWhileRead(db: Deps['store']['db'], u: Pick<UploadRow, 'id' | 'name'>): void {
  const reader = db
    .prepare(`SELECT id, status FROM executions WHERE status IN ('WAITING','PROGRESS') AND EXISTS (SELECT 1 FROM json_each(executions.uploads) WHERE value = ?) ORDER BY creation LIMIT 1`)
    .get(u.id) as { id: string; status: ExecutionStatus } | undefined;
  if (reader) {
    throw new FondsError('CONFLICT', `Upload '${u.name}' is being read by execution ${reader.id} (${reader.status}); check it again once that execution has ended, or cancel it first.`, {
      upload: u.id,
      execution: reader.id,
      status: reader.status,
    });
  }
}

/**
 * Deletes an upload once what it fed is safely stored: refused while an execution that used it is
 * not a verified SUCCESS. Staged files (pushed over HTTP, owned by Fonds) are removed; files that
 * were checked in place belong to the user and are never touched.
 */
export async function deleteUpload(deps: Deps, id: string) {
  const db = deps.store.db;
  const u = getUploadRow(db, id);
  if (u.status === 'CHECKING') throw new FondsError('CONFLICT', `Upload '${u.name}' is being checked; cancel the check first.`);
  if (u.status === 'DELETED') return rowToUpload(u);
  const executions = (db.prepare('SELECT * FROM executions').all() as ExecutionRow[]).filter((e) => (JSON.parse(e.uploads) as string[]).includes(id));
  const blocking = executions.filter((e) => e.status !== 'SUCCESS' || getStoredDataRow(db, e.stored_data_id).verified !== 1);
  if (blocking.length) {
    throw new FondsError('CONFLICT', `Upload '${u.name}' fed execution ${blocking[0].id}, which is ${blocking[0].status} and not verified; it cannot be deleted yet.`, {
      execution: blocking[0].id,
    });
  }
  const release = barPushes(u); // a file pushed meanwhile would land in a deleted upload
  try {
    if (u.staged) {
      for (const s of sourcesOf(u)) {
        if (path.resolve(s.path).startsWith(path.resolve(deps.config.dataDir, 'staging') + path.sep)) await fs.promises.rm(s.path, { recursive: true, force: true });
      }
    }
    return deps.store.transact((tx) => {
      setUploadStatus(tx, id, 'DELETED', { stagedFilesRemoved: u.staged === 1, executions: executions.map((e) => e.id) });
      return rowToUpload(getUploadRow(tx.db, id));
    });
  } finally {
    release();
  }
}
