import fs from 'node:fs';
import path from 'node:path';
import type { Progress } from '../../../src-shared/domain/upload';
import { FondsError } from '../../../src-shared/errors';
import type { Deps } from '../capability';
import type { JobContext, JobHandler } from '../db/jobs';
import { nowIso } from '../db/store';
import { HashAlgorithms, type FileState, type HashAlgorithm, type Hashes } from '../fixity/hash-pool';
import { isInside, toPosix, unsafeRelativePath } from '../paths';
import { isBag, readBagDeclaration, validateBag, type BagAlgorithm } from './bagit';
import { conflictKey, pathProblems } from './naming';
import { getUploadRow, setUploadStatus, sourcesOf, type Source } from './uploads';
import { walk, type WalkEntry } from './walk';

export const CHECK_JOB = 'intake.check';

interface BagRoot {
  source: number;
  root: string;
  /** relative path of the bag root inside the upload ('' when the bag is the upload) */
  prefix: string;
  algorithms: HashAlgorithm[];
}

interface FindingRow {
  check: 'archive' | 'standard';
  path: string;
  rule: string;
  severity: 'error' | 'warning' | 'info';
  message: string;
}

/** The tag files RFC 8493 defines, at a bag's root: its declaration, bag-info, fetch list and manifests. */
const BAG_TAG_FILE = /^(bagit\.txt|bag-info\.txt|package-info\.txt|fetch\.txt|(tag)?manifest-[^/]+\.txt)$/;
/** A file named like an MD5 list (md5sum output) rather than a sidecar. */
const MD5_LIST_NAMES = new Set(['md5sums', 'md5sums.txt', 'md5sum.txt', 'md5sum', 'checksums.md5', 'md5.txt']);
/** A signature file larger than this is not read (hostile or mistaken input). */
const MAX_SIGNATURE_BYTES = 64 * 1024 * 1024;
const BATCH = 1000;

/**
 * The check run of an upload, as a durable job: walk (once), hash every file in one pass in the
 * worker pool, then the archive check (naming conflicts, portability) and the standard check
 * (delivered MD5 signatures, BagIt bags). It resumes after a crash: the walk is kept once done, and
 * files already hashed are not read again.
 */
export function createCheckJob(deps: Deps): JobHandler<{ uploadId: string }> {
  const { store } = deps;
  const db = store.db;

  const finish = (id: string, to: 'UNSTABLE', reason: string) => {
    store.transact((tx) => {
      const row = getUploadRow(tx.db, id);
      if (row.status !== 'CHECKING') return;
      tx.db.prepare(`UPDATE uploads SET archive_check = CASE WHEN archive_check IN ('WAITING','PROGRESS') THEN 'FAILURE' ELSE archive_check END,
                     standard_check = CASE WHEN standard_check IN ('WAITING','PROGRESS') THEN 'FAILURE' ELSE standard_check END WHERE id = ?`).run(id);
      setUploadStatus(tx, id, to, {}, reason);
    });
  };

  return {
    async run(ctx) {
      const id = ctx.payload.uploadId;
      const row = getUploadRow(db, id);
      if (row.status !== 'CHECKING') return;
      const sources = sourcesOf(row);
      for (const s of sources) {
        try {
          await fs.promises.lstat(s.path);
        } catch {
          throw new FondsError('NOT_FOUND', `${s.path}: the delivered item no longer exists.`, { path: s.path });
        }
      }
      const bags = await findBags(sources);
      if (bags.length && !row.is_bag) {
        store.transact((tx) => {
          tx.db.prepare('UPDATE uploads SET is_bag = 1 WHERE id = ?').run(id);
          for (const b of bags) tx.event({ kind: 'upload', objectId: id, type: 'bag.detected', payload: { path: b.prefix || '.', algorithms: b.algorithms } });
        });
      }
      if (!row.walked) await walkSources(deps, id, sources, ctx);
      await hashFiles(deps, id, sources, bags, ctx);
      ctx.signal.throwIfAborted();
      archiveCheck(deps, id);
      await standardCheck(deps, id, sources, bags, ctx);
      ctx.signal.throwIfAborted();
      store.transact((tx) => {
        const r = getUploadRow(tx.db, id);
        if (r.status !== 'CHECKING') return;
        tx.db.prepare('UPDATE uploads SET progress = NULL WHERE id = ?').run(id);
        setUploadStatus(tx, id, 'CLOSED', {
          archive: r.archive_check,
          standard: r.standard_check,
          files: r.files,
          size: r.size,
        });
      });
    },
    failed(ctx, error) {
      finish(ctx.payload.uploadId, 'UNSTABLE', error.message);
    },
    cancelled(ctx) {
      finish(ctx.payload.uploadId, 'UNSTABLE', 'Cancelled by the user.');
    },
  };
}

async function findBags(sources: Source[]): Promise<BagRoot[]> {
  const bags: BagRoot[] = [];
  for (const [i, s] of sources.entries()) {
    const st = await fs.promises.lstat(s.path);
    if (!st.isDirectory() || !(await isBag(s.path))) continue;
    const { declaration } = await readBagDeclaration(s.path);
    const named = new Set<HashAlgorithm>();
    for (const a of [...(declaration?.manifestAlgorithms ?? []), ...(declaration?.tagManifestAlgorithms ?? [])]) {
      if ((HashAlgorithms as readonly string[]).includes(a)) named.add(a as HashAlgorithm);
    }
    bags.push({ source: i, root: s.path, prefix: toPosix(path.relative(s.base, s.path)), algorithms: [...named] });
  }
  return bags;
}

async function walkSources(deps: Deps, id: string, sources: Source[], ctx: JobContext<{ uploadId: string }>): Promise<void> {
  const { store } = deps;
  const insert = store.db.prepare(
    'INSERT INTO upload_entries (upload_id, source, path, kind, conflict_key, size, mtime_ns) VALUES (?, ?, ?, ?, ?, ?, ?)',
  );
  const addFinding = store.db.prepare(
    'INSERT INTO upload_findings (upload_id, check_kind, path, rule, severity, message) VALUES (?, ?, ?, ?, ?, ?)',
  );
  store.transact((tx) => {
    tx.db.prepare('DELETE FROM upload_entries WHERE upload_id = ?').run(id);
    tx.db.prepare('DELETE FROM upload_findings WHERE upload_id = ?').run(id);
    tx.db.prepare(`UPDATE uploads SET archive_check = 'PROGRESS', standard_check = 'PROGRESS', files = 0, size = 0 WHERE id = ?`).run(id);
    tx.event({ kind: 'upload', objectId: id, type: 'walk.started', payload: { sources: sources.map((s) => s.path) } });
  });
  // a link is followed by whoever opens it later: it stays inside the delivery only if its target
  // is one of the dropped items (or in one), not merely beside them in the folder they came from
  const delivered = (await Promise.all(sources.map((s) => fs.promises.realpath(s.path).catch(() => undefined)))).filter((r): r is string => !!r);
  let files = 0;
  let bytes = 0;
  let batch: Array<() => void> = [];
  const flush = () => {
    if (!batch.length) return;
    const work = batch;
    batch = [];
    store.transact(() => work.forEach((w) => w()));
    ctx.progress({ files, bytes });
  };
  for (const [i, s] of sources.entries()) {
    for await (const e of walk(s.path, s.base, ctx.signal)) {
      if (e.kind === 'symlink') {
        const target = await fs.promises.realpath(e.abs).catch(() => undefined);
        const inside = !!target && delivered.some((d) => isInside(d, target));
        const message = inside
          ? `${e.rel}: symbolic link, not followed (its target is delivered separately or not at all)`
          : `${e.rel}: symbolic link pointing outside the delivery; it is not read`;
        batch.push(() => addFinding.run(id, 'archive', e.rel, inside ? 'symlink-not-followed' : 'symlink-leaves-delivery', inside ? 'warning' : 'error', message));
      } else if (e.kind === 'other') {
        batch.push(() => addFinding.run(id, 'archive', e.rel, 'special-file', 'warning', `${e.rel}: not a regular file or folder (device, socket or pipe); skipped`));
      } else if (e.kind === 'unreadable') {
        const f = unreadableFinding(e);
        batch.push(() => addFinding.run(id, 'archive', e.rel, f.rule, 'error', f.message));
      } else {
        if (e.kind === 'file') {
          files++;
          bytes += e.size;
        }
        batch.push(() => insert.run(id, i, e.rel, e.kind, conflictKey(e.rel), e.size, e.kind === 'file' ? e.mtimeNs : null));
      }
      if (batch.length >= BATCH) flush();
    }
  }
  flush();
  ctx.signal.throwIfAborted();
  store.transact((tx) => {
    tx.db.prepare('UPDATE uploads SET walked = 1, files = ?, size = ?, last_change = ? WHERE id = ?').run(files, bytes, nowIso(), id);
    tx.event({ kind: 'upload', objectId: id, type: 'walk.finished', payload: { files, bytes } });
  });
}

/** What the check says of a name the walk could not examine, or a folder it could not list. */
function unreadableFinding(e: WalkEntry): { rule: string; message: string } {
  const { code, message, listing } = e.error!;
  const what = listing ? 'its content was not checked' : 'it was not checked';
  switch (code) {
    case 'ENAMETOOLONG':
      return {
        rule: 'path-too-long',
        message: `${e.rel}: the path is too long for this system to open (${Buffer.byteLength(e.abs)} bytes with the folder it was delivered in); ${what}. Shorten the names, or move the delivery to a shorter folder, and check the upload again`,
      };
    case 'ENOENT':
      return { rule: 'vanished', message: `${e.rel}: disappeared while the delivery was being read, so it is still changing; check the upload again once it is complete` };
    case 'EACCES':
    case 'EPERM':
      return { rule: 'unreadable', message: `${e.rel}: permission denied; ${what}. Give Fonds read access and check the upload again` };
    default:
      return { rule: 'unreadable', message: `${e.rel}: cannot be read (${code}: ${message}); ${what}` };
  }
}

function algorithmsFor(rel: string, source: number, bags: BagRoot[]): HashAlgorithm[] {
  const set = new Set<HashAlgorithm>(['md5', 'sha256']);
  for (const b of bags) {
    if (b.source === source && (b.prefix === '' || rel === b.prefix || rel.startsWith(b.prefix + '/'))) b.algorithms.forEach((a) => set.add(a));
  }
  return [...set];
}

async function hashFiles(deps: Deps, id: string, sources: Source[], bags: BagRoot[], ctx: JobContext<{ uploadId: string }>): Promise<void> {
  const { store, pool } = deps;
  const db = store.db;
  const totals = db
    .prepare(`SELECT count(*) AS files, coalesce(sum(size), 0) AS bytes FROM upload_entries WHERE upload_id = ? AND kind = 'file'`)
    .get(id) as { files: number; bytes: number };
  const already = db
    .prepare(`SELECT count(*) AS files, coalesce(sum(size), 0) AS bytes FROM upload_entries WHERE upload_id = ? AND kind = 'file' AND (md5 IS NOT NULL OR error IS NOT NULL)`)
    .get(id) as { files: number; bytes: number };
  const next = db.prepare(
    // the mtime as text: nanoseconds since the epoch do not fit a JavaScript number exactly
    `SELECT rowid, source, path, size, CAST(mtime_ns AS TEXT) AS mtime_ns FROM upload_entries
     WHERE upload_id = ? AND kind = 'file' AND md5 IS NULL AND error IS NULL AND rowid > ? ORDER BY rowid LIMIT 512`,
  );
  const save = db.prepare('UPDATE upload_entries SET md5 = ?, sha256 = ?, extra = ? WHERE rowid = ?');
  const saveError = db.prepare('UPDATE upload_entries SET error = ? WHERE rowid = ?');
  const addFinding = db.prepare(
    'INSERT INTO upload_findings (upload_id, check_kind, path, rule, severity, message) VALUES (?, ?, ?, ?, ?, ?)',
  );

  const started = Date.now();
  let doneFiles = already.files;
  let doneBytes = already.bytes;
  let readBytes = 0;
  let lastPersist = 0;
  let lastEvent = Date.now();
  const report = (final = false) => {
    const elapsed = (Date.now() - started) / 1000;
    const rate = elapsed > 0 ? readBytes / elapsed : 0;
    const progress: Progress = {
      files: doneFiles,
      bytes: doneBytes,
      totalFiles: totals.files,
      totalBytes: totals.bytes,
      rate: Math.round(rate),
      ...(rate > 0 ? { eta: Math.max(0, Math.round((totals.bytes - doneBytes) / rate)) } : {}),
    };
    ctx.progress(progress);
    const now = Date.now();
    if (final || now - lastPersist > 1000) {
      lastPersist = now;
      db.prepare('UPDATE uploads SET progress = ? WHERE id = ?').run(JSON.stringify(progress), id);
    }
    if (final || now - lastEvent > 5000) {
      lastEvent = now;
      store.transact((tx) => tx.event({ kind: 'upload', objectId: id, type: final ? 'hash.finished' : 'hash.progress', payload: { ...progress } }));
    }
  };

  store.transact((tx) =>
    tx.event({ kind: 'upload', objectId: id, type: 'hash.started', payload: { files: totals.files, bytes: totals.bytes, resumedFrom: already.files } }),
  );
  let after = 0;
  // enough files queued for the pool to batch small ones and keep every worker busy
  const inFlightLimit = 256;
  for (;;) {
    ctx.signal.throwIfAborted();
    const rows = next.all(id, after) as Array<{ rowid: number; source: number; path: string; size: number; mtime_ns: string | null }>;
    if (!rows.length) break;
    after = rows[rows.length - 1].rowid;
    let results: Array<() => void> = [];
    let lastFlush = Date.now();
    // commit finished files often, so a crash loses at most a quarter second of hashing
    const flush = () => {
      const work = results;
      results = [];
      lastFlush = Date.now();
      if (work.length) store.transact(() => work.forEach((w) => w()));
    };
    let cursor = 0;
    const worker = async () => {
      while (cursor < rows.length) {
        const r = rows[cursor++];
        const abs = path.join(sources[r.source].base, r.path);
        try {
          const { hashes, size, opened, afterRead, changedDuringRead } = await pool.hash({
            path: abs,
            algorithms: algorithmsFor(r.path, r.source, bags),
            sizeHint: r.size,
            signal: ctx.signal,
            onBytes: (n) => {
              readBytes += n;
            },
          });
          // The hashes are of other bytes than the file listed, or of bytes that moved while they
          // were read: recording them would store a half-written file as verified. A copy still
          // in progress often has its final size already (preallocated), so the size is not
          // enough: the modification time must be the very value the walk recorded (no window).
          const changed =
            size !== r.size
              ? `(${r.size} bytes when it was listed, ${size} bytes when it was read); it is still being written or was replaced`
              : r.mtime_ns !== null && BigInt(r.mtime_ns) !== opened.mtimeNs
                ? `(last modified ${isoOfNs(BigInt(r.mtime_ns))} when it was listed, ${isoOfNs(opened.mtimeNs)} when it was read); it is still being written or was replaced`
                : undefined;
          const moving = changedDuringRead
            ? `(${describeChange(opened, afterRead)}); the checksums are of bytes that were being written`
            : undefined;
          if (changed || moving) {
            const message = changed
              ? `${r.path}: changed while the delivery was being checked ${changed}. Check the upload again once the delivery is complete`
              : `${r.path}: changed while it was being read for the check ${moving}. Check the upload again once the delivery is complete`;
            results.push(() => {
              saveError.run(message, r.rowid);
              addFinding.run(id, 'standard', r.path, 'changed-during-check', 'error', message);
            });
          } else {
            const { md5, sha256, ...extra } = hashes;
            results.push(() => save.run(md5!, sha256!, Object.keys(extra).length ? JSON.stringify(extra) : null, r.rowid));
          }
        } catch (err) {
          if (ctx.signal.aborted) throw err;
          const message = err instanceof Error ? err.message : String(err);
          results.push(() => {
            saveError.run(message, r.rowid);
            addFinding.run(id, 'standard', r.path, 'unreadable', 'error', message);
          });
        }
        doneFiles++;
        doneBytes += r.size;
        if (results.length >= 256 || Date.now() - lastFlush > 250) flush();
        report();
      }
    };
    await Promise.all(Array.from({ length: Math.min(inFlightLimit, rows.length) }, worker));
    flush();
  }
  report(true);
}

/** What changed between the fstat at open and the one after the last read, for a message. */
function describeChange(opened: FileState, afterRead: FileState): string {
  const parts: string[] = [];
  if (opened.mtimeNs !== afterRead.mtimeNs) parts.push(`last modified ${isoOfNs(opened.mtimeNs)} when it was opened, ${isoOfNs(afterRead.mtimeNs)} after it was read`);
  if (opened.size !== afterRead.size) parts.push(`${opened.size} bytes when it was opened, ${afterRead.size} bytes after it was read`);
  return parts.join('; ');
}

/** An ISO 8601 time with the file system's precision: milliseconds, and the nanoseconds when there are. */
function isoOfNs(ns: bigint): string {
  let ms = ns / 1_000_000n;
  let rest = ns % 1_000_000n;
  if (rest < 0n) {
    ms -= 1n;
    rest += 1_000_000n;
  }
  const iso = new Date(Number(ms)).toISOString();
  return rest ? `${iso.slice(0, -1)}${String(rest).padStart(6, '0').replace(/0+$/, '')}Z` : iso;
}

function insertFindings(deps: Deps, id: string, findings: FindingRow[]): void {
  const add = deps.store.db.prepare(
    'INSERT INTO upload_findings (upload_id, check_kind, path, rule, severity, message) VALUES (?, ?, ?, ?, ?, ?)',
  );
  for (const f of findings) add.run(id, f.check, f.path, f.rule, f.severity, f.message);
}

/** Naming conflicts (same path, case or Unicode variants, file vs folder) and portability. */
function archiveCheck(deps: Deps, id: string): void {
  const { store } = deps;
  const db = store.db;
  store.transact(() => {
    const findings: FindingRow[] = [];
    const samePath = db
      .prepare(
        `SELECT path, sum(kind = 'file') AS files, sum(kind = 'dir') AS dirs FROM upload_entries WHERE upload_id = ?
         GROUP BY path HAVING count(*) > 1`,
      )
      .all(id) as Array<{ path: string; files: number; dirs: number }>;
    for (const g of samePath) {
      if (g.files > 1) findings.push({ check: 'archive', path: g.path, rule: 'duplicate-path', severity: 'error', message: `${g.path}: delivered ${g.files} times` });
      if (g.files > 0 && g.dirs > 0) findings.push({ check: 'archive', path: g.path, rule: 'file-folder-conflict', severity: 'error', message: `${g.path}: is both a file and a folder` });
    }
    const variants = db
      .prepare(
        `SELECT conflict_key, group_concat(path, char(10)) AS paths, group_concat(kind, char(10)) AS kinds FROM
           (SELECT DISTINCT conflict_key, path, kind FROM upload_entries WHERE upload_id = ?)
         GROUP BY conflict_key HAVING count(DISTINCT path) > 1`,
      )
      .all(id) as Array<{ conflict_key: string; paths: string; kinds: string }>;
    for (const g of variants) {
      const paths = [...new Set(g.paths.split('\n'))];
      const kinds = new Set(g.kinds.split('\n'));
      const nfc = new Set(paths.map((p) => p.normalize('NFC')));
      const rule = kinds.size > 1 ? 'file-folder-conflict' : nfc.size < paths.length ? 'unicode-normalization-conflict' : 'case-conflict';
      const why =
        rule === 'unicode-normalization-conflict'
          ? 'differ only by Unicode normalization (composed vs decomposed accents)'
          : rule === 'case-conflict'
            ? 'differ only by letter case'
            : 'name a file and a folder that collide on case-insensitive systems';
      for (const p of paths) findings.push({ check: 'archive', path: p, rule, severity: 'error', message: `${paths.map((x) => `'${x}'`).join(' and ')} ${why}` });
    }
    insertFindings(deps, id, findings);
    const add = db.prepare('INSERT INTO upload_findings (upload_id, check_kind, path, rule, severity, message) VALUES (?, ?, ?, ?, ?, ?)');
    // paged, not iterated: better-sqlite3 refuses writes while a statement is being iterated
    const page = db.prepare('SELECT rowid, path FROM upload_entries WHERE upload_id = ? AND rowid > ? ORDER BY rowid LIMIT 2000');
    for (let after = 0; ; ) {
      const rows = page.all(id, after) as Array<{ rowid: number; path: string }>;
      if (!rows.length) break;
      after = rows[rows.length - 1].rowid;
      for (const { path: e } of rows) {
        const name = e.slice(e.lastIndexOf('/') + 1);
        const problems = pathProblems(name);
        if ([...e].length > 260) problems.push(...pathProblems(e).filter((p) => p.rule === 'path-too-long'));
        for (const p of problems) add.run(id, 'archive', e, p.rule, p.severity, p.message);
      }
    }
    finalizeCheck(deps, id, 'archive');
  });
}

function finalizeCheck(deps: Deps, id: string, check: 'archive' | 'standard'): void {
  const db = deps.store.db;
  const counts = db
    .prepare(
      `SELECT sum(severity = 'error') AS errors, sum(severity = 'warning') AS warnings FROM upload_findings WHERE upload_id = ? AND check_kind = ?`,
    )
    .get(id, check) as { errors: number | null; warnings: number | null };
  const errors = counts.errors ?? 0;
  const warnings = counts.warnings ?? 0;
  const status = errors > 0 ? 'FAILURE' : 'SUCCESS';
  db.prepare(`UPDATE uploads SET ${check}_check = ?, ${check}_errors = ?, ${check}_warnings = ?, last_change = ? WHERE id = ?`).run(
    status,
    errors,
    warnings,
    nowIso(),
    id,
  );
  // 'check.archive' / 'check.standard' events end up on the upload timeline
  deps.store.transact((t) => t.event({ kind: 'upload', objectId: id, type: `check.${check}`, payload: { status, errors, warnings } }));
}

/** Delivered MD5 signatures (sidecars, md5sum lists) and BagIt bags. */
async function standardCheck(deps: Deps, id: string, sources: Source[], bags: BagRoot[], ctx: JobContext<{ uploadId: string }>): Promise<void> {
  const { store, pool } = deps;
  const db = store.db;
  const findings: FindingRow[] = [];
  const lookup = db.prepare(`SELECT rowid, md5, sha256, extra, error FROM upload_entries WHERE upload_id = ? AND source = ? AND path = ? AND kind = 'file'`);
  const markSigned = db.prepare('UPDATE upload_entries SET signed = 1 WHERE rowid = ?');

  // 1. bags: validated by the BagIt module, with hashes taken from the pass above
  for (const b of bags) {
    const base = sources[b.source].base;
    const report = await validateBag(b.root, {
      signal: ctx.signal,
      hashFile: async (abs, algorithms) => {
        const rel = toPosix(path.relative(base, abs));
        const row = isInside(base, abs)
          ? (lookup.get(id, b.source, rel) as { md5: string | null; sha256: string | null; extra: string | null; error: string | null } | undefined)
          : undefined;
        const known: Hashes = row && row.md5 ? { md5: row.md5, sha256: row.sha256 ?? undefined, ...(row.extra ? JSON.parse(row.extra) : {}) } : {};
        if (algorithms.every((a) => known[a as HashAlgorithm])) return known as Partial<Record<BagAlgorithm, string>>;
        const { hashes } = await pool.hash({ path: abs, algorithms: algorithms as HashAlgorithm[], signal: ctx.signal });
        return hashes as Partial<Record<BagAlgorithm, string>>;
      },
    });
    const at = (f: string) => (b.prefix ? (f ? `${b.prefix}/${f}` : b.prefix) : f || '.');
    for (const e of report.errors) findings.push({ check: 'standard', path: at(e.file), rule: `bagit:${e.rule}`, severity: 'error', message: e.message });
    for (const w of report.warnings) findings.push({ check: 'standard', path: at(w.file), rule: `bagit:${w.rule}`, severity: 'warning', message: w.message });
    // signed: what a manifest or tag manifest of the bag lists, and the bag's own tag files (its
    // declaration and its manifests, which the BagIt check reads and checks itself); any other file
    // of the bag — an extra one beside data/ or in a tag folder — came without a checksum
    const listed = new Set(report.listed.map((f) => f.normalize('NFC')));
    const page = db.prepare(
      `SELECT rowid, path FROM upload_entries WHERE upload_id = ? AND source = ? AND kind = 'file' AND rowid > ? AND (? = '' OR path LIKE ? ESCAPE '\\') ORDER BY rowid LIMIT 2000`,
    );
    store.transact((tx) => {
      for (let after = 0; ; ) {
        const rows = page.all(id, b.source, after, b.prefix, escapeLike(b.prefix) + '/%') as Array<{ rowid: number; path: string }>;
        if (!rows.length) break;
        after = rows[rows.length - 1].rowid;
        for (const r of rows) {
          const inBag = b.prefix ? r.path.slice(b.prefix.length + 1) : r.path;
          if (listed.has(inBag.normalize('NFC')) || BAG_TAG_FILE.test(inBag)) markSigned.run(r.rowid);
        }
      }
      tx.event({ kind: 'upload', objectId: id, type: 'bag.validated', payload: { path: b.prefix || '.', valid: report.valid, errors: report.errors.length, warnings: report.warnings.length } });
    });
  }

  // 2. sidecars (`file.ext.md5`) and md5sum-style lists, outside bags
  const inBag = (source: number, rel: string) => bags.some((b) => b.source === source && (b.prefix === '' || rel === b.prefix || rel.startsWith(b.prefix + '/')));
  const candidates = db
    .prepare(`SELECT rowid, source, path, size, error FROM upload_entries WHERE upload_id = ? AND kind = 'file' AND (lower(path) LIKE '%.md5' OR lower(path) LIKE '%md5%')`)
    .all(id) as Array<{ rowid: number; source: number; path: string; size: number; error: string | null }>;
  for (const c of candidates) {
    ctx.signal.throwIfAborted();
    if (inBag(c.source, c.path) || c.error) continue;
    const name = c.path.slice(c.path.lastIndexOf('/') + 1).toLowerCase();
    const isSidecar = name.endsWith('.md5') && lookup.get(id, c.source, c.path.slice(0, -4)) !== undefined;
    if (!isSidecar && !MD5_LIST_NAMES.has(name) && !name.endsWith('.md5')) continue;
    if (c.size > MAX_SIGNATURE_BYTES) {
      findings.push({ check: 'standard', path: c.path, rule: 'signature-file-too-large', severity: 'error', message: `${c.path}: ${c.size} bytes, larger than a signature file can be; not read` });
      continue;
    }
    markSigned.run(c.rowid);
    const text = signatureText(c.path, await fs.promises.readFile(path.join(sources[c.source].base, c.path)), findings);
    const dir = c.path.includes('/') ? c.path.slice(0, c.path.lastIndexOf('/') + 1) : '';
    const entries: Array<{ hash: string; target: string; line: number }> = [];
    if (isSidecar) {
      const m = /^\s*([0-9a-fA-F]{32})\b/.exec(text);
      if (!m) {
        findings.push({ check: 'standard', path: c.path, rule: 'md5-malformed', severity: 'error', message: `${c.path}: does not start with a 32-digit hexadecimal MD5` });
        continue;
      }
      entries.push({ hash: m[1].toLowerCase(), target: c.path.slice(0, -4), line: 1 });
    } else {
      text.split(/\r?\n/).forEach((line, i) => {
        if (!line.trim() || line.startsWith('#')) return;
        const gnu = /^\\?([0-9a-fA-F]{32}) [ *]?(.+)$/.exec(line);
        const bsd = /^MD5 ?\((.+)\) ?= ?([0-9a-fA-F]{32})$/.exec(line);
        const hash = gnu ? gnu[1] : bsd?.[2];
        const file = gnu ? gnu[2] : bsd?.[1];
        if (!hash || !file) {
          findings.push({ check: 'standard', path: c.path, rule: 'md5-malformed', severity: 'error', message: `${c.path} line ${i + 1}: not '<md5>  <file>'` });
          return;
        }
        const rel = file.replace(/^\.\//, '');
        const why = unsafeRelativePath(rel);
        if (why) {
          findings.push({ check: 'standard', path: c.path, rule: 'md5-path-invalid', severity: 'error', message: `${c.path} line ${i + 1}: '${rel}' refused: ${why}` });
          return;
        }
        entries.push({ hash: hash.toLowerCase(), target: dir + rel, line: i + 1 });
      });
    }
    for (const e of entries) {
      const row = lookup.get(id, c.source, e.target) as { rowid: number; md5: string | null; error: string | null } | undefined;
      if (!row) {
        findings.push({ check: 'standard', path: e.target, rule: 'md5-target-missing', severity: 'error', message: `${c.path} line ${e.line}: names '${e.target}', which was not delivered` });
        continue;
      }
      markSigned.run(row.rowid);
      if (row.error) continue;
      if (row.md5 !== e.hash) {
        findings.push({
          check: 'standard',
          path: e.target,
          rule: 'md5-mismatch',
          severity: 'error',
          message: `${e.target}: MD5 is ${row.md5}, but ${c.path} says ${e.hash}`,
        });
      }
    }
  }

  // 3. files without any delivered signature
  const unsigned = db
    .prepare(`SELECT count(*) FROM upload_entries WHERE upload_id = ? AND kind = 'file' AND signed = 0 AND error IS NULL`)
    .pluck()
    .get(id) as number;
  if (unsigned > 0) {
    if (deps.config.requireDeliveredChecksums) {
      for (const p of db
        .prepare(`SELECT path FROM upload_entries WHERE upload_id = ? AND kind = 'file' AND signed = 0 AND error IS NULL ORDER BY path`)
        .pluck()
        .all(id) as string[]) {
        findings.push({ check: 'standard', path: p, rule: 'md5-missing', severity: 'error', message: `${p}: no MD5 signature was delivered for this file` });
      }
    } else {
      findings.push({
        check: 'standard',
        path: '.',
        rule: 'md5-not-delivered',
        severity: 'info',
        message: `${unsigned} file(s) came without an MD5 signature; the checksums Fonds computed at intake are their reference from now on`,
      });
    }
  }
  store.transact(() => {
    insertFindings(deps, id, findings);
    finalizeCheck(deps, id, 'standard');
  });
}

/**
 * The text of a sidecar or an MD5 list. md5sum writes UTF-8 without a byte-order mark, but files
 * saved by Windows editors often start with one: a UTF-8 mark is dropped, a UTF-16 one (LE or BE)
 * decodes the file as UTF-16; either way a warning says so, as the BagIt check does for tag files.
 */
function signatureText(rel: string, bytes: Buffer, findings: FindingRow[]): string {
  const note = (what: string) => findings.push({ check: 'standard', path: rel, rule: 'bom-in-md5-file', severity: 'warning', message: `${rel}: ${what}` });
  if (bytes[0] === 0xef && bytes[1] === 0xbb && bytes[2] === 0xbf) {
    note('starts with a UTF-8 byte-order mark, which md5sum does not write; it is ignored, but the tool that wrote the file should be fixed');
    return bytes.subarray(3).toString('utf8');
  }
  if ((bytes[0] === 0xff && bytes[1] === 0xfe) || (bytes[0] === 0xfe && bytes[1] === 0xff)) {
    const le = bytes[0] === 0xff;
    note(`is UTF-16 text (it starts with a UTF-16${le ? 'LE' : 'BE'} byte-order mark), not the UTF-8 md5sum writes; it was read as UTF-16`);
    return new TextDecoder(le ? 'utf-16le' : 'utf-16be').decode(bytes.subarray(2));
  }
  return bytes.toString('utf8');
}

function escapeLike(s: string): string {
  return s.replace(/[\\%_]/g, (c) => '\\' + c);
}
