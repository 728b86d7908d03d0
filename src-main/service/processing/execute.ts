import path from 'node:path';
import type { Progress } from '../../../src-shared/domain/upload';
import type { Deps } from '../capability';
import type { JobHandler } from '../db/jobs';
import { nowIso, type Tx } from '../db/store';
import { getUploadRow, sourcesOf, type Source } from '../intake/uploads';
import type { Storage } from '../storage';
import { deleteUpload, getExecutionRow, getStoredDataRow, setExecutionStatus, setStoredDataStatus } from './records';

export const EXECUTE_JOB = 'processing.execute';

interface FileRow {
  rowid: number;
  upload_id: string;
  source: number;
  path: string;
  size: number;
  md5: string;
  sha256: string;
}

/** Files in flight at once: enough for the hash pool to batch small files; buffers stay bounded. */
const PARALLEL_FILES = 64;

/**
 * Runs an execution: copies every pending file of its uploads into the stored data's storage (read
 * once, hashed on the way, atomic), proves the copy (re-read or checksums), and records each outcome.
 * Resumable: a file is `verified` only once proven, so after a crash only the others run again.
 */
export function createExecuteJob(deps: Deps, storage: Storage): JobHandler<{ executionId: string }> {
  const { store } = deps;
  const db = store.db;

  const end = (id: string, reason?: string) =>
    store.transact((tx) => {
      const e = getExecutionRow(tx.db, id);
      if (e.status !== 'PROGRESS' && e.status !== 'WAITING') return;
      const failed = tx.db.prepare(`SELECT count(*) FROM execution_files WHERE execution_id = ? AND status = 'failed'`).pluck().get(id) as number;
      const sd = getStoredDataRow(tx.db, e.stored_data_id);
      const totals = tx.db
        .prepare('SELECT count(*) AS files, coalesce(sum(size), 0) AS size, sum(verified_at IS NULL) AS unverified FROM stored_files WHERE stored_data_id = ?')
        .get(sd.id) as { files: number; size: number; unverified: number | null };
      tx.db.prepare('UPDATE stored_data SET files = ?, size = ?, last_change = ? WHERE id = ?').run(totals.files, totals.size, nowIso(), sd.id);
      if (reason || failed > 0) {
        const why = reason ?? `${failed} file(s) could not be copied and verified; see the per-file outcome, fix the cause and retry them.`;
        tx.db.prepare('UPDATE stored_data SET verified = 0 WHERE id = ?').run(sd.id);
        setExecutionStatus(tx, id, 'FAILURE', { failed }, why);
        setStoredDataStatus(tx, sd.id, 'UNSTABLE', { execution: id, reason: why });
      } else {
        tx.db.prepare('UPDATE stored_data SET verified = ? WHERE id = ?').run((totals.unverified ?? 0) === 0 ? 1 : 0, sd.id);
        setExecutionStatus(tx, id, 'SUCCESS', { files: totals.files, size: totals.size });
        setStoredDataStatus(tx, sd.id, 'GENERATED', { execution: id, files: totals.files, size: totals.size, verified: true });
      }
    });

  return {
    async run(ctx) {
      const id = ctx.payload.executionId;
      const e = getExecutionRow(db, id);
      if (e.status !== 'WAITING' && e.status !== 'PROGRESS') return;
      const storedDataId = e.stored_data_id;
      if (e.status === 'PROGRESS') {
        // resumed after a crash: a copy that was cut short left a temporary file
        const swept = (await storage.sweep?.(storedDataId)) ?? 0;
        if (swept) store.transact((tx) => tx.event({ kind: 'execution', objectId: id, type: 'resumed', payload: { temporaryFilesRemoved: swept } }));
      }
      store.transact((tx) => {
        setExecutionStatus(tx, id, 'PROGRESS', { attempt: ctx.attempt });
        setStoredDataStatus(tx, storedDataId, 'GENERATING', { execution: id });
      });
      const sources = new Map<string, Source[]>();
      const sourceOf = (uploadId: string, index: number) => {
        if (!sources.has(uploadId)) sources.set(uploadId, sourcesOf(getUploadRow(db, uploadId)));
        return sources.get(uploadId)![index];
      };
      const totals = db
        .prepare(`SELECT count(*) AS files, coalesce(sum(size), 0) AS bytes FROM execution_files WHERE execution_id = ?`)
        .get(id) as { files: number; bytes: number };
      const done = db
        .prepare(`SELECT count(*) AS files, coalesce(sum(size), 0) AS bytes FROM execution_files WHERE execution_id = ? AND status != 'pending'`)
        .get(id) as { files: number; bytes: number };
      const next = db.prepare(
        `SELECT rowid, upload_id, source, path, size, md5, sha256 FROM execution_files WHERE execution_id = ? AND status = 'pending' AND rowid > ? ORDER BY rowid LIMIT 512`,
      );
      const previous = db.prepare('SELECT md5 FROM stored_files WHERE stored_data_id = ? AND path = ?').pluck();
      const markFailed = db.prepare(`UPDATE execution_files SET status = 'failed', error = ? WHERE rowid = ?`);
      const markVerified = db.prepare(`UPDATE execution_files SET status = 'verified', error = NULL, replaced_md5 = ? WHERE rowid = ?`);
      const upsertStored = db.prepare(
        `INSERT INTO stored_files (stored_data_id, path, size, md5, sha256, verified_at) VALUES (?, ?, ?, ?, ?, ?)
         ON CONFLICT (stored_data_id, path) DO UPDATE SET size = excluded.size, md5 = excluded.md5, sha256 = excluded.sha256, verified_at = excluded.verified_at`,
      );
      const started = Date.now();
      let copiedBytes = 0;
      let lastEvent = Date.now();
      const progress = (): Progress => {
        const elapsed = (Date.now() - started) / 1000;
        const rate = elapsed > 0 ? copiedBytes / elapsed : 0;
        return {
          files: done.files,
          bytes: done.bytes,
          totalFiles: totals.files,
          totalBytes: totals.bytes,
          rate: Math.round(rate),
          ...(rate > 0 ? { eta: Math.round((totals.bytes - done.bytes) / rate) } : {}),
        };
      };
      store.transact((tx) => tx.event({ kind: 'execution', objectId: id, type: 'copy.started', payload: { files: totals.files, bytes: totals.bytes, resumedFrom: done.files, storage: storage.label } }));

      // outcomes are committed in batches, after the storage made the batch durable
      let pendingCommits: Array<(tx: Tx) => void> = [];
      let lastFlush = Date.now();
      let flushing: Promise<void> | undefined;
      const flushCommits = async () => {
        while (flushing) await flushing;
        const batch = pendingCommits;
        pendingCommits = [];
        lastFlush = Date.now();
        if (!batch.length) return;
        flushing = (async () => {
          await storage.flush?.();
          store.transact((tx) => batch.forEach((c) => c(tx)));
        })();
        try {
          await flushing;
        } finally {
          flushing = undefined;
        }
      };

      const copyOne = async (f: FileRow) => {
        const src = sourceOf(f.upload_id, f.source);
        const abs = path.join(src.base, f.path);
        const key = `${storedDataId}/${f.path}`;
        const expected = { size: f.size, md5: f.md5, sha256: f.sha256 };
        let error: string | undefined;
        try {
          const got = await storage.put(key, abs, { signal: ctx.signal, sizeHint: f.size, expected, onBytes: (n) => (copiedBytes += n) });
          if (got.md5 !== f.md5 || got.sha256 !== f.sha256 || got.size !== f.size) {
            error = `${f.path}: the delivered file changed since it was checked (MD5 ${got.md5}, ${got.size} bytes; checked: ${f.md5}, ${f.size} bytes). The source is kept; check the upload again.`;
            await storage.delete(key).catch(() => undefined);
          } else {
            const proof = await storage.verify(key, expected, { signal: ctx.signal });
            if (!proof.ok) error = `fixity check after the copy failed: ${proof.reason}. The source is kept.`;
          }
        } catch (err) {
          if (ctx.signal.aborted) throw err;
          error = err instanceof Error ? err.message : String(err);
        }
        pendingCommits.push((tx) => {
          if (error) {
            markFailed.run(error, f.rowid);
            tx.event({ kind: 'execution', objectId: id, type: 'file.failed', payload: { path: f.path, error } });
            return;
          }
          const old = previous.get(storedDataId, f.path) as string | undefined;
          const now = nowIso();
          upsertStored.run(storedDataId, f.path, f.size, f.md5, f.sha256, now);
          markVerified.run(old && old !== f.md5 ? old : null, f.rowid);
          if (old !== undefined && old !== f.md5) {
            const payload = { path: f.path, replacedMd5: old, md5: f.md5, execution: id };
            tx.event({ kind: 'stored_data', objectId: storedDataId, type: 'file.replaced', payload });
            tx.event({ kind: 'execution', objectId: id, type: 'file.replaced', payload });
          }
        });
        if (pendingCommits.length >= 256 || Date.now() - lastFlush > 250) await flushCommits();
        done.files++;
        done.bytes += f.size;
        ctx.progress(progress());
        if (Date.now() - lastEvent > 5000) {
          lastEvent = Date.now();
          store.transact((tx) => tx.event({ kind: 'execution', objectId: id, type: 'copy.progress', payload: { ...progress() } }));
        }
      };

      let after = 0;
      for (;;) {
        ctx.signal.throwIfAborted();
        const rows = next.all(id, after) as FileRow[];
        if (!rows.length) break;
        after = rows[rows.length - 1].rowid;
        let cursor = 0;
        await Promise.all(
          Array.from({ length: Math.min(PARALLEL_FILES, rows.length) }, async () => {
            while (cursor < rows.length) await copyOne(rows[cursor++]);
          }),
        );
      }
      await flushCommits();
      ctx.signal.throwIfAborted();
      store.transact((tx) => tx.event({ kind: 'execution', objectId: id, type: 'copy.finished', payload: { ...progress() } }));
      end(id);
      const finished = getExecutionRow(db, id);
      if (finished.status === 'SUCCESS' && deps.config.deleteUploadAfterVerifiedExecution) {
        for (const uid of JSON.parse(finished.uploads) as string[]) await deleteUpload(deps, uid).catch(() => undefined);
      }
    },
    failed(ctx, error) {
      end(ctx.payload.executionId, error.message);
    },
    cancelled(ctx) {
      end(ctx.payload.executionId, 'Cancelled by the user.');
    },
  };
}
