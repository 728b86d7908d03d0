import { randomUUID } from 'node:crypto';
import os from 'node:os';
import { validateEdition, validateExtent } from '../../../src-shared/domain/extent';
import type { Page } from '../../../src-shared/api';
import { storedDataEditableFields, type Execution, type ExecutionFile, type StoredFile } from '../../../src-shared/domain/execution';
import { FondsError } from '../../../src-shared/errors';
import type { Capability, Deps } from '../capability';
import { nowIso, timeline } from '../db/store';
import { startChecks } from '../intake';
import { getUploadRow, refuseWhileDeleting } from '../intake/uploads';
import { storageFromConfig, type Storage } from '../storage';
import { EXECUTE_JOB, createExecuteJob } from './execute';
import {
  deleteUpload,
  filesSummary,
  getExecutionRow,
  getStoredDataRow,
  processings,
  refuseWhileRead,
  rowToExecution,
  rowToStoredData,
  setExecutionStatus,
  storageMismatch,
  storageTypeOf,
  type ExecutionRow,
  type StoredDataRow,
} from './records';

export { processingMigrations } from './migrations';
export { getStoredDataRow, rowToStoredData, setStoredDataStatus } from './records';

/** Processings, executions and stored data: checked uploads become stored data with fixity proven. */
export function createProcessing(deps: Deps): Capability & { storage: Storage } {
  const { store, jobs, config } = deps;
  const db = store.db;
  const storage = storageFromConfig(config, deps.pool);
  const storageType = storageTypeOf(storage);

  const get = (id: string) => rowToExecution(db, getExecutionRow(db, id));

  /** Refuses to start work on a stored data that another execution is writing, or that lives in another storage. */
  const assertWritable = (tx: { db: typeof db }, storedDataId: string, executionId?: string) => {
    const sd = getStoredDataRow(tx.db, storedDataId);
    const mismatch = storageMismatch(sd, storage);
    if (mismatch) throw new FondsError('CONFLICT', mismatch, { storedData: sd.id });
    const busy = tx.db
      .prepare(`SELECT id, status FROM executions WHERE stored_data_id = ? AND id != ? AND status IN ('WAITING','PROGRESS')`)
      .get(storedDataId, executionId ?? '') as { id: string; status: string } | undefined;
    if (busy) {
      throw new FondsError('CONFLICT', `Stored data '${sd.name}' is being written by execution ${busy.id} (${busy.status}); wait for it to end or cancel it.`, {
        storedData: sd.id,
        execution: busy.id,
      });
    }
  };

  /**
   * A retry copies an older delivery again: refused when a run launched after this execution's
   * last one stored a file it would copy (the seed's rule is that the later delivery wins; the
   * retry would silently reverse it). Files stored by earlier runs are overwritten, as at a launch.
   */
  const refuseOverNewer = (tdb: typeof db, e: ExecutionRow) => {
    const newer = tdb
      .prepare(
        `SELECT s.path, s.written_by FROM execution_files f JOIN stored_files s ON s.stored_data_id = @sd AND s.path = f.path
         WHERE f.execution_id = @id AND f.status != 'verified' AND s.written_seq > @seq ORDER BY s.written_seq DESC, s.path`,
      )
      .all({ sd: e.stored_data_id, id: e.id, seq: e.launch_seq ?? 0 }) as Array<{ path: string; written_by: string }>;
    if (!newer.length) return;
    const sd = getStoredDataRow(tdb, e.stored_data_id);
    const what = newer.length === 1 ? newer[0].path : `${newer[0].path} and ${newer.length - 1} other file(s) it would copy again`;
    throw new FondsError(
      'CONFLICT',
      `Execution ${e.id} cannot be retried: execution ${newer[0].written_by}, launched after it, stored ${what} in stored data '${sd.name}'; ` +
        'copying the older delivery again would overwrite the newer version. Leave this execution as it is to keep the newer version, ' +
        'or create a new execution from the same upload(s) to store the older one over it.',
      {
        execution: e.id,
        newerExecution: newer[0].written_by,
        storedData: sd.id,
        paths: newer.slice(0, 20).map((n) => n.path),
        files: newer.length,
      },
    );
  };

  const launch = (id: string, retry: boolean) =>
    store.transact((tx) => {
      const e = getExecutionRow(tx.db, id);
      const uploadIds = JSON.parse(e.uploads) as string[];
      if (!retry) {
        if (e.status !== 'CREATED') throw new FondsError('CONFLICT', `Execution ${id} is ${e.status}; only a CREATED execution can be launched.`, { status: e.status });
        const processing = processings.find((p) => p._id === e.processing)!;
        for (const uid of uploadIds) {
          const u = getUploadRow(tx.db, uid);
          for (const check of processing.required_checks) {
            const status = check._id === 'archive' ? u.archive_check : u.standard_check;
            if (status !== 'SUCCESS') {
              throw new FondsError('CHECK_FAILED', `Upload '${u.name}' has not passed the required check "${check.name}" (${check._id}: ${status}); the execution cannot be launched.`, {
                upload: uid,
                check: check._id,
                status,
              });
            }
          }
          if (u.status !== 'CLOSED') throw new FondsError('CONFLICT', `Upload '${u.name}' is ${u.status}; it must be CLOSED (checked) to be processed.`, { upload: uid, status: u.status });
          refuseWhileDeleting(u);
          const unhashed = tx.db
            .prepare(`SELECT path FROM upload_entries WHERE upload_id = ? AND kind = 'file' AND (md5 IS NULL OR sha256 IS NULL OR error IS NOT NULL) LIMIT 1`)
            .pluck()
            .get(uid) as string | undefined;
          if (unhashed !== undefined) throw new FondsError('CONFLICT', `Upload '${u.name}': ${unhashed} has no checksums from the check; check the upload again.`, { upload: uid, path: unhashed });
        }
        assertWritable(tx, e.stored_data_id, id);
        // the files to copy: a later upload overwrites an earlier one at the same path (seed: "celui ci va écraser")
        const insert = tx.db.prepare(
          `INSERT OR REPLACE INTO execution_files (execution_id, upload_id, source, path, size, md5, sha256)
           SELECT ?, upload_id, source, path, size, md5, sha256 FROM upload_entries WHERE upload_id = ? AND kind = 'file'`,
        );
        for (const uid of uploadIds) insert.run(id, uid);
      } else {
        if (e.status !== 'FAILURE') throw new FondsError('CONFLICT', `Execution ${id} is ${e.status}; only a FAILURE can be retried.`, { status: e.status });
        assertWritable(tx, e.stored_data_id, id);
        for (const uid of uploadIds) {
          const u = getUploadRow(tx.db, uid);
          if (u.status === 'DELETED') throw new FondsError('CONFLICT', `Upload '${u.name}' was deleted; its files cannot be copied again.`, { upload: uid });
          if (u.status === 'CHECKING') throw new FondsError('CONFLICT', `Upload '${u.name}' is being checked; retry execution ${id} once the check has ended.`, { upload: uid, execution: id });
          refuseWhileDeleting(u);
        }
        refuseOverNewer(tx.db, e);
        // failed files, and those a cancel left pending
        const counts = tx.db
          .prepare(`SELECT coalesce(sum(status = 'failed'), 0) AS failed, coalesce(sum(status = 'pending'), 0) AS pending FROM execution_files WHERE execution_id = ?`)
          .get(id) as { failed: number; pending: number };
        if (counts.failed + counts.pending === 0) throw new FondsError('CONFLICT', `Execution ${id} has no failed or remaining file to copy.`);
        tx.db.prepare(`UPDATE execution_files SET status = 'pending', error = NULL WHERE execution_id = ? AND status = 'failed'`).run(id);
        tx.event({ kind: 'execution', objectId: id, type: 'retry', payload: { files: counts.failed + counts.pending, failed: counts.failed, remaining: counts.pending } });
      }
      setExecutionStatus(tx, id, 'WAITING', { files: filesSummary(tx.db, id).total });
      tx.enqueue({ kind: EXECUTE_JOB, payload: { executionId: id }, objectKind: 'execution', objectId: id, maxAttempts: 5 });
      return rowToExecution(tx.db, getExecutionRow(tx.db, id));
    });

  return {
    storage,
    jobs: { [EXECUTE_JOB]: createExecuteJob(deps, storage) as never },
    async stop() {
      await storage.close?.();
    },
    handlers: {
      'processings.list': () => processings,
      'processings.get': ({ id }) => {
        const p = processings.find((x) => x._id === id);
        if (!p) throw new FondsError('NOT_FOUND', `Processing ${id} does not exist (known: ${processings.map((x) => x._id).join(', ')}).`);
        return p;
      },
      'executions.create': ({ processing, inputs, output, parameters }) =>
        store.transact((tx) => {
          if (!processings.some((p) => p._id === processing)) throw new FondsError('NOT_FOUND', `Processing ${processing} does not exist.`);
          for (const uid of inputs.upload) {
            const u = getUploadRow(tx.db, uid);
            if (u.status === 'DELETED') throw new FondsError('CONFLICT', `Upload '${u.name}' was deleted.`);
            refuseWhileDeleting(u);
          }
          const now = nowIso();
          let storedDataId: string;
          if ('_id' in output.stored_data) {
            storedDataId = getStoredDataRow(tx.db, output.stored_data._id).id;
            const mismatch = storageMismatch(getStoredDataRow(tx.db, storedDataId), storage);
            if (mismatch) throw new FondsError('CONFLICT', mismatch, { storedData: storedDataId });
            tx.event({ kind: 'stored_data', objectId: storedDataId, type: 'update.planned', payload: { uploads: inputs.upload } });
          } else {
            storedDataId = randomUUID();
            // storage_tags ask for a kind of storage (Fonds has the one configured): they are kept on the
            // timeline, not made into tags, which start empty (seed 002: `"tags": {}` after storage_tags ["ARCHIVE"])
            tx.db
              .prepare(
                `INSERT INTO stored_data (id, name, status, storage_type, storage_label, tags, creation, last_change) VALUES (?, ?, 'CREATED', ?, ?, '{}', ?, ?)`,
              )
              .run(storedDataId, output.stored_data.name, storageType, storage.label, now, now);
            tx.event({
              kind: 'stored_data',
              objectId: storedDataId,
              type: 'created',
              payload: { name: output.stored_data.name, storage: storage.label, storageTags: output.stored_data.storage_tags },
            });
          }
          const id = randomUUID();
          tx.db
            .prepare(`INSERT INTO executions (id, processing, status, stored_data_id, uploads, parameters, creation) VALUES (?, ?, 'CREATED', ?, ?, ?, ?)`)
            .run(id, processing, storedDataId, JSON.stringify(inputs.upload), JSON.stringify(parameters), now);
          tx.event({ kind: 'execution', objectId: id, type: 'created', payload: { processing, uploads: inputs.upload, storedData: storedDataId } });
          return rowToExecution(tx.db, getExecutionRow(tx.db, id));
        }),
      'executions.launch': ({ id }) => launch(id, false),
      'executions.retryFailed': ({ id }) => launch(id, true),
      'executions.get': ({ id }) => get(id),
      'executions.list': ({ status, offset, limit }) => {
        const where = status ? 'WHERE status = ?' : '';
        const args = status ? [status] : [];
        const total = db.prepare(`SELECT count(*) FROM executions ${where}`).pluck().get(...args) as number;
        const rows = db.prepare(`SELECT * FROM executions ${where} ORDER BY creation DESC, rowid DESC LIMIT ? OFFSET ?`).all(...args, limit, offset) as ExecutionRow[];
        return { items: rows.map((r) => rowToExecution(db, r)), total, offset } satisfies Page<Execution>;
      },
      'executions.cancel': ({ id }) => {
        const e = getExecutionRow(db, id);
        if (e.status !== 'WAITING' && e.status !== 'PROGRESS') throw new FondsError('CONFLICT', `Execution ${id} is ${e.status}; there is nothing to cancel.`);
        jobs.cancelFor('execution', id);
        return get(id);
      },
      'executions.files': ({ id, status, offset, limit }) => {
        getExecutionRow(db, id);
        const where = status ? 'AND status = ?' : '';
        const args = status ? [id, status] : [id];
        const total = db.prepare(`SELECT count(*) FROM execution_files WHERE execution_id = ? ${where}`).pluck().get(...args) as number;
        const rows = db
          .prepare(`SELECT upload_id, path, size, status, error, replaced_md5 FROM execution_files WHERE execution_id = ? ${where} ORDER BY status = 'failed' DESC, path LIMIT ? OFFSET ?`)
          .all(...args, limit, offset) as Array<{ upload_id: string; path: string; size: number; status: ExecutionFile['status']; error: string | null; replaced_md5: string | null }>;
        return {
          items: rows.map((r) => ({ upload: r.upload_id, path: r.path, size: r.size, status: r.status, ...(r.error ? { error: r.error } : {}), ...(r.replaced_md5 ? { replacedMd5: r.replaced_md5 } : {}) })),
          total,
          offset,
        };
      },
      'executions.timeline': ({ id, offset, limit }) => {
        getExecutionRow(db, id);
        return timeline(db, 'execution', id, offset, limit);
      },
      'storedData.list': ({ status, offset, limit }) => {
        const where = status ? 'WHERE status = ?' : `WHERE status != 'DELETED'`;
        const args = status ? [status] : [];
        const total = db.prepare(`SELECT count(*) FROM stored_data ${where}`).pluck().get(...args) as number;
        const rows = db.prepare(`SELECT * FROM stored_data ${where} ORDER BY creation DESC, rowid DESC LIMIT ? OFFSET ?`).all(...args, limit, offset) as StoredDataRow[];
        return { items: rows.map((r) => rowToStoredData(db, r)), total, offset };
      },
      'storedData.get': ({ id }) => rowToStoredData(db, getStoredDataRow(db, id)),
      'storedData.files': ({ id, offset, limit }) => {
        getStoredDataRow(db, id);
        const total = db.prepare('SELECT count(*) FROM stored_files WHERE stored_data_id = ?').pluck().get(id) as number;
        const rows = db
          .prepare('SELECT path, size, md5, sha256, verified_at FROM stored_files WHERE stored_data_id = ? ORDER BY path LIMIT ? OFFSET ?')
          .all(id, limit, offset) as Array<{ path: string; size: number; md5: string; sha256: string; verified_at: string | null }>;
        return {
          items: rows.map((r): StoredFile => ({ path: r.path, size: r.size, md5: r.md5, sha256: r.sha256, ...(r.verified_at ? { verifiedAt: r.verified_at } : {}) })),
          total,
          offset,
        };
      },
      'storedData.timeline': ({ id, offset, limit }) => {
        getStoredDataRow(db, id);
        return timeline(db, 'stored_data', id, offset, limit);
      },
      // intake's commands that depend on executions
      'uploads.recheck': ({ id }) =>
        store.transact((tx) => {
          refuseWhileRead(tx.db, getUploadRow(tx.db, id));
          return startChecks(deps, id, 'recheck');
        }),
      'uploads.delete': ({ id }) => deleteUpload(deps, id),
      'storedData.patch': (input, ctx) => patchStoredData(deps, input, ctx),
    },
  };
}


/**
 * Edits a stored data's metadata (read-only fields were refused by the command's schema). Edition
 * dates: one left out is kept, null removes it; what results is checked. The extent is checked
 * (closed rings, ranges, self-intersections, polygons overlapping, antimeridian, ≤ 5000 positions) and stored as a
 * MultiPolygon, null removes it. Every change is an event with who, before and after.
 */
export function patchStoredData(
  deps: Deps,
  input: {
    id: string;
    name?: string;
    description?: string;
    tags?: Record<string, string>;
    srs?: string;
    edition?: { from?: string | null; to?: string | null } | null;
    extent?: unknown;
  },
  ctx: { transport: string; clientId?: string },
) {
  const { store } = deps;
  return store.transact((tx) => {
    const row = getStoredDataRow(tx.db, input.id);
    const before = rowToStoredData(tx.db, row);
    const set: Record<string, unknown> = {};
    if (input.name !== undefined) set.name = input.name;
    if (input.description !== undefined) set.description = input.description;
    if (input.tags !== undefined) set.tags = JSON.stringify(input.tags);
    if (input.srs !== undefined) set.srs = input.srs;
    if (input.edition !== undefined) {
      const asked = input.edition ?? { from: null, to: null };
      const date = (k: 'from' | 'to') => (asked[k] === null ? undefined : (asked[k] ?? before.edition?.[k]));
      const edition = { from: date('from'), to: date('to') };
      const problems = validateEdition(edition);
      const field = Object.keys(problems)[0] as 'from' | 'to' | undefined;
      if (field) throw new FondsError('INVALID_INPUT', `edition.${field}: ${problems[field]}`, { issues: Object.entries(problems).map(([f, m]) => ({ field: `edition.${f}`, message: m })) });
      set.edition_from = edition.from ?? null;
      set.edition_to = edition.to ?? null;
    }
    if (input.extent !== undefined) {
      if (input.extent === null) set.extent = null;
      else {
        const check = validateExtent(input.extent);
        if (!check.ok) {
          throw new FondsError('INVALID_INPUT', `extent: ${check.problems.map((p) => p.message).join(' ')}`, {
            issues: check.problems.map((p) => ({ field: `extent${p.path ? '.' + p.path : ''}`, message: p.message, rule: p.rule, ...(p.at ? { at: p.at } : {}) })),
            positions: check.positions,
          });
        }
        set.extent = JSON.stringify(check.extent);
      }
    }
    const keys = Object.keys(set);
    if (!keys.length) return before;
    tx.db.prepare(`UPDATE stored_data SET ${keys.map((k) => `${k} = @${k}`).join(', ')}, last_change = @now WHERE id = @id`).run({ ...set, now: nowIso(), id: input.id });
    const after = rowToStoredData(tx.db, getStoredDataRow(tx.db, input.id));
    const changed = storedDataEditableFields.filter((f) => JSON.stringify(before[f] ?? null) !== JSON.stringify(after[f] ?? null));
    if (changed.length) {
      tx.event({
        kind: 'stored_data',
        objectId: input.id,
        type: 'metadata.changed',
        payload: {
          who: ctx.clientId && ctx.clientId !== 'token' ? ctx.clientId : `${os.userInfo().username} (${ctx.transport})`,
          fields: changed,
          before: Object.fromEntries(changed.map((f) => [f, before[f] ?? null])),
          after: Object.fromEntries(changed.map((f) => [f, after[f] ?? null])),
        },
      });
    }
    return after;
  });
}
