import path from 'node:path';
import type { Progress } from '../../../src-shared/domain/upload';
import { FondsError } from '../../../src-shared/errors';
import type { Deps } from '../capability';
import { PermanentJobError, type JobHandler } from '../db/jobs';
import { nowIso, type Tx } from '../db/store';
import { getUploadRow, sourcesOf, type Source } from '../intake/uploads';
import type { Storage } from '../storage';
import { deleteUpload, getExecutionRow, getStoredDataRow, setExecutionStatus, setStoredDataStatus, storageMismatch } from './records';

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

/**
 * Files in flight at once: `storage.parallelFiles` (local: 256 — measured, 64 left the hash workers
 * idle half the time on 4 KiB files; S3: 16), within a memory budget for the storages that buffer
 * (an S3 multipart upload holds `s3QueueSize` + 1 parts): memory stays flat whatever the files.
 */
const MEMORY_BUDGET = 256 * 1024 * 1024;
/** Outcomes waiting for a flush before the copies wait for it (the storage's sync is slower than the copies). */
const MAX_UNCOMMITTED = 8192;
/**
 * A batch is flushed (one storage sync) and committed after this many outcomes, or after
 * `storageCommitMs` (default 1 s): a sync every 250 ms cost 2x on 10,000 small files (each sync
 * waits for the file system's journal); a kill loses at most that much copying, which is redone.
 */
const FLUSH_FILES = 4096;

/**
 * Runs an execution: copies every pending file of its uploads into the stored data's storage (read
 * once, hashed on the way, atomic, proven), and records each outcome.
 * Resumable: a file is `verified` only once its proven copy was made durable and committed, so
 * after a crash or kill -9 only the other files run again; what a killed copy left is swept first.
 */
export function createExecuteJob(deps: Deps, storage: Storage): JobHandler<{ executionId: string }> {
  const { store } = deps;
  const db = store.db;

  const end = (id: string, reason?: string) =>
    store.transact((tx) => {
      const e = getExecutionRow(tx.db, id);
      if (e.status !== 'PROGRESS' && e.status !== 'WAITING') return;
      const counts = tx.db
        .prepare(`SELECT sum(status = 'failed') AS failed, sum(status = 'pending') AS pending FROM execution_files WHERE execution_id = ?`)
        .get(id) as { failed: number | null; pending: number | null };
      const failed = counts.failed ?? 0;
      const pending = counts.pending ?? 0;
      const sd = getStoredDataRow(tx.db, e.stored_data_id);
      const totals = tx.db
        .prepare('SELECT count(*) AS files, coalesce(sum(size), 0) AS size, coalesce(sum(verified_at IS NULL), 0) AS unverified FROM stored_files WHERE stored_data_id = ?')
        .get(sd.id) as { files: number; size: number; unverified: number };
      tx.db.prepare('UPDATE stored_data SET files = ?, size = ?, last_change = ? WHERE id = ?').run(totals.files, totals.size, nowIso(), sd.id);
      if (reason || failed > 0 || pending > 0) {
        const why =
          reason ??
          (failed > 0
            ? `${failed} file(s) could not be copied and verified; see the per-file outcome, fix the cause and retry them.`
            : `${pending} file(s) were not copied.`);
        setExecutionStatus(tx, id, 'FAILURE', { failed, pending }, why);
        // cancelled before it started: the stored data was not touched and keeps its state
        if (e.status === 'PROGRESS' || sd.status === 'GENERATING') {
          tx.db.prepare('UPDATE stored_data SET verified = 0 WHERE id = ?').run(sd.id);
          setStoredDataStatus(tx, sd.id, 'UNSTABLE', { execution: id, reason: why });
        }
      } else {
        const verified = totals.unverified === 0;
        tx.db.prepare('UPDATE stored_data SET verified = ? WHERE id = ?').run(verified ? 1 : 0, sd.id);
        setExecutionStatus(tx, id, 'SUCCESS', { files: totals.files, size: totals.size, verified });
        setStoredDataStatus(tx, sd.id, verified ? 'GENERATED' : 'UNSTABLE', { execution: id, files: totals.files, size: totals.size, verified });
      }
    });

  return {
    async run(ctx) {
      const id = ctx.payload.executionId;
      const e = getExecutionRow(db, id);
      if (e.status !== 'WAITING' && e.status !== 'PROGRESS') return;
      const storedDataId = e.stored_data_id;
      /** this run, in the order of launches: what it stores is marked with it (a retry of an older execution checks it) */
      const run = e.launch_seq;
      const mismatch = storageMismatch(getStoredDataRow(db, storedDataId), storage);
      if (mismatch) throw new PermanentJobError(mismatch);
      if (e.status === 'PROGRESS') {
        // resumed after a crash or kill: a copy that was cut short left a temporary file (local) or
        // an incomplete multipart upload (S3); nothing of it is under a final name
        const swept = (await storage.sweep?.(storedDataId)) ?? 0;
        const verifiedBefore = db.prepare(`SELECT count(*) FROM execution_files WHERE execution_id = ? AND status = 'verified'`).pluck().get(id) as number;
        store.transact((tx) => tx.event({ kind: 'execution', objectId: id, type: 'resumed', payload: { temporaryFilesRemoved: swept, verifiedBefore, attempt: ctx.attempt } }));
      }
      store.transact((tx) => {
        setExecutionStatus(tx, id, 'PROGRESS', { attempt: ctx.attempt });
        setStoredDataStatus(tx, storedDataId, 'GENERATING', { execution: id });
      });
      const sources = new Map<string, Source[]>();
      const sourceOf = (uploadId: string, index: number): Source => {
        if (!sources.has(uploadId)) sources.set(uploadId, sourcesOf(getUploadRow(db, uploadId)));
        const s = sources.get(uploadId)![index];
        if (!s) throw new FondsError('INTERNAL', `upload ${uploadId} has no source #${index}`);
        return s;
      };
      const totals = db
        .prepare(`SELECT count(*) AS files, coalesce(sum(size), 0) AS bytes FROM execution_files WHERE execution_id = ?`)
        .get(id) as { files: number; bytes: number };
      const done = db
        .prepare(
          `SELECT count(*) AS files, coalesce(sum(size), 0) AS bytes, coalesce(sum(status = 'verified'), 0) AS verified, coalesce(sum(status = 'failed'), 0) AS failed
           FROM execution_files WHERE execution_id = ? AND status != 'pending'`,
        )
        .get(id) as { files: number; bytes: number; verified: number; failed: number };
      const next = db.prepare(
        `SELECT rowid, upload_id, source, path, size, md5, sha256 FROM execution_files WHERE execution_id = ? AND status = 'pending' AND rowid > ? ORDER BY rowid LIMIT 512`,
      );
      const previous = db.prepare('SELECT md5, sha256 FROM stored_files WHERE stored_data_id = ? AND path = ?');
      const markFailed = db.prepare(`UPDATE execution_files SET status = 'failed', error = ? WHERE rowid = ?`);
      const markVerified = db.prepare(`UPDATE execution_files SET status = 'verified', error = NULL, replaced_md5 = ? WHERE rowid = ?`);
      // an unproven copy that replaced a version is this run's write too
      const unverifyStored = db.prepare('UPDATE stored_files SET verified_at = NULL, written_by = ?, written_seq = ? WHERE stored_data_id = ? AND path = ?');
      const upsertStored = db.prepare(
        `INSERT INTO stored_files (stored_data_id, path, size, md5, sha256, verified_at, written_by, written_seq) VALUES (?, ?, ?, ?, ?, ?, ?, ?)
         ON CONFLICT (stored_data_id, path) DO UPDATE SET size = excluded.size, md5 = excluded.md5, sha256 = excluded.sha256, verified_at = excluded.verified_at,
           written_by = excluded.written_by, written_seq = excluded.written_seq`,
      );
      const flushMs = deps.config.storageCommitMs;
      const started = Date.now();
      /** bytes read from the sources in this run, and those of the files still being copied */
      let copiedBytes = 0;
      let inFlightBytes = 0;
      let lastEvent = Date.now();
      const proofs: Record<string, number> = {};
      const progress = (): Progress & { verified: number; failed: number } => {
        const elapsed = (Date.now() - started) / 1000;
        const rate = elapsed > 0 ? copiedBytes / elapsed : 0;
        const bytes = Math.min(totals.bytes, done.bytes + inFlightBytes);
        return {
          files: done.files,
          bytes,
          totalFiles: totals.files,
          totalBytes: totals.bytes,
          rate: Math.round(rate),
          // a rate measured over less than a second says little
          ...(rate > 0 && elapsed >= 1 ? { eta: Math.round((totals.bytes - bytes) / rate) } : {}),
          verified: done.verified,
          failed: done.failed,
        };
      };
      store.transact((tx) =>
        tx.event({
          kind: 'execution',
          objectId: id,
          type: 'copy.started',
          payload: { files: totals.files, bytes: totals.bytes, resumedFrom: done.files, storage: storage.label, verification: storage.verification },
        }),
      );

      // Outcomes are committed in batches, each after the storage made its copies durable. The
      // flush runs beside the copies (a sync takes as long as the disk needs), never under them.
      let uncommitted: Array<(tx: Tx) => void> = [];
      let flushing: Promise<void> | undefined;
      let flushError: unknown;
      let lastFlush = Date.now();
      const flushLoop = async () => {
        try {
          while (uncommitted.length) {
            const batch = uncommitted;
            uncommitted = [];
            lastFlush = Date.now();
            await storage.flush?.();
            store.transact((tx) => batch.forEach((c) => c(tx)));
          }
        } catch (err) {
          flushError = err;
        } finally {
          flushing = undefined;
        }
      };
      const kick = () => {
        if (!flushing && uncommitted.length) flushing = flushLoop();
      };
      const drain = async () => {
        kick();
        while (flushing) await flushing;
        if (flushError) throw flushError;
      };

      const commitOutcome = (f: FileRow, outcome: { proof: string } | { error: string; stored: boolean }) => (tx: Tx) => {
        if ('error' in outcome) {
          markFailed.run(outcome.error, f.rowid);
          tx.event({ kind: 'execution', objectId: id, type: 'file.failed', payload: { path: f.path, error: outcome.error } });
          if (outcome.stored && unverifyStored.run(id, run, storedDataId, f.path).changes) {
            // the old version was replaced by a copy that did not prove equal: say the stored file is not verified
            tx.event({ kind: 'stored_data', objectId: storedDataId, type: 'file.unverified', payload: { path: f.path, execution: id, reason: outcome.error } });
          }
          return;
        }
        const old = previous.get(storedDataId, f.path) as { md5: string; sha256: string } | undefined;
        upsertStored.run(storedDataId, f.path, f.size, f.md5, f.sha256, nowIso(), id, run);
        markVerified.run(old ? old.md5 : null, f.rowid);
        if (old) {
          // the seed's rule: a delivered file overwrites the stored one; the log keeps what it replaced
          const payload = { path: f.path, replacedMd5: old.md5, replacedSha256: old.sha256, md5: f.md5, sha256: f.sha256, unchanged: old.sha256 === f.sha256, execution: id };
          tx.event({ kind: 'stored_data', objectId: storedDataId, type: 'file.replaced', payload });
          tx.event({ kind: 'execution', objectId: id, type: 'file.replaced', payload });
        }
      };

      const copyOne = async (f: FileRow) => {
        const key = `${storedDataId}/${f.path}`;
        const expected = { size: f.size, md5: f.md5, sha256: f.sha256 };
        let outcome: { proof: string } | { error: string; stored: boolean };
        let mine = 0;
        try {
          const src = sourceOf(f.upload_id, f.source);
          const stored = await storage.put(key, path.join(src.base, f.path), expected, {
            signal: ctx.signal,
            sizeHint: f.size,
            name: f.path,
            onBytes: (n) => {
              mine += n;
              inFlightBytes += n;
              copiedBytes += n;
            },
          });
          outcome = { proof: stored.proof };
          proofs[stored.proof] = (proofs[stored.proof] ?? 0) + 1;
        } catch (err) {
          // cancel or shutdown; and a storage that cannot be reached: the whole run waits and retries
          if (ctx.signal.aborted || (err instanceof FondsError && err.code === 'UNAVAILABLE')) throw err;
          const stored = err instanceof FondsError && err.details?.stored === true;
          outcome = { error: err instanceof Error ? err.message : String(err), stored };
          // an unproven object that replaced nothing is removed; one that replaced a version is kept and marked
          if (stored && !previous.get(storedDataId, f.path)) await storage.delete(key).catch(() => undefined);
        }
        inFlightBytes -= mine;
        uncommitted.push(commitOutcome(f, outcome));
        done.files++;
        done.bytes += f.size;
        if ('error' in outcome) done.failed++;
        else done.verified++;
        if (uncommitted.length >= FLUSH_FILES || Date.now() - lastFlush > flushMs) kick();
        if (flushError) throw flushError;
        if (uncommitted.length >= MAX_UNCOMMITTED) await drain();
        ctx.progress(progress());
        if (Date.now() - lastEvent > 5000) {
          lastEvent = Date.now();
          store.transact((tx) => tx.event({ kind: 'execution', objectId: id, type: 'copy.progress', payload: { ...progress() } }));
        }
      };

      // a large file can take minutes: what finished before it is committed meanwhile
      const ticker = setInterval(() => Date.now() - lastFlush > flushMs && kick(), flushMs);
      // and the progress of a large file shows while it is read, not only when it is done
      const reporter = setInterval(() => ctx.progress(progress()), 500);
      try {
        // one stream of pending files, read from the database a page at a time, pulled by the
        // copiers: no stall at page boundaries
        let after = 0;
        let page: FileRow[] = [];
        let exhausted = false;
        const take = (): FileRow | undefined => {
          if (!page.length && !exhausted) {
            page = next.all(id, after) as FileRow[];
            if (page.length) after = page[page.length - 1].rowid;
            else exhausted = true;
          }
          return page.shift();
        };
        let used = 0;
        const waiting: Array<() => void> = [];
        const copiers = await Promise.allSettled(
          Array.from({ length: storage.parallelFiles }, async () => {
            for (let f = take(); f; f = take()) {
              ctx.signal.throwIfAborted();
              const need = Math.min(storage.memoryFor?.(f.size) ?? 0, MEMORY_BUDGET);
              while (need > 0 && used > 0 && used + need > MEMORY_BUDGET) await new Promise<void>((r) => waiting.push(r));
              used += need;
              try {
                await copyOne(f);
              } finally {
                used -= need;
                waiting.splice(0).forEach((wake) => wake());
              }
            }
          }),
        );
        // every copier has stopped (no copy still writing) before the first failure is raised
        const failure = copiers.find((c): c is PromiseRejectedResult => c.status === 'rejected');
        if (failure) throw failure.reason;
      } finally {
        clearInterval(ticker);
        clearInterval(reporter);
        // whatever happened, what was proven is committed (durably) before leaving: never copied again
        await drain().catch((err) => {
          if (!ctx.signal.aborted) throw err;
        });
      }
      ctx.signal.throwIfAborted();
      store.transact((tx) =>
        tx.event({ kind: 'execution', objectId: id, type: 'copy.finished', payload: { ...progress(), storage: storage.label, proofs } }),
      );
      end(id);
      const finished = getExecutionRow(db, id);
      if (finished.status === 'SUCCESS' && deps.config.deleteUploadAfterVerifiedExecution) {
        for (const uid of JSON.parse(finished.uploads) as string[]) {
          try {
            await deleteUpload(deps, uid);
          } catch (err) {
            store.transact((tx) =>
              tx.event({ kind: 'execution', objectId: id, type: 'upload.kept', payload: { upload: uid, reason: err instanceof Error ? err.message : String(err) } }),
            );
          }
        }
      }
    },
    failed(ctx, error) {
      end(ctx.payload.executionId, error.message);
    },
    cancelled(ctx) {
      end(ctx.payload.executionId, 'Cancelled by the user; the files already verified are kept. Retry to copy the others.');
    },
  };
}
