import { randomUUID } from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { pipeline } from 'node:stream/promises';
import type { Readable } from 'node:stream';
import type { BagValidation } from '../../../src-shared/api';
import { FondsError } from '../../../src-shared/errors';
import type { Capability, Deps } from '../capability';
import { nowIso, timeline } from '../db/store';
import type { HashAlgorithm } from '../fixity/hash-pool';
import { resolveInside } from '../paths';
import { createBag, validateBag, type BagAlgorithm } from './bagit';
import { CHECK_JOB, createCheckJob } from './check';
import { beginPush, getUploadRow, listFiles, listFindings, listUploads, refuseWhilePushing, rowToUpload, setUploadStatus, type Source } from './uploads';

export { intakeMigrations } from './migrations';

/** A hashFile for the BagIt module that runs in the worker pool. */
export function poolHashFile(deps: Pick<Deps, 'pool'>) {
  return async (abs: string, algorithms: BagAlgorithm[], signal?: AbortSignal) =>
    (await deps.pool.hash({ path: abs, algorithms: algorithms as HashAlgorithm[], signal })).hashes as Partial<Record<BagAlgorithm, string>>;
}

/**
 * A copy-while-hashing for bag creation that runs in the worker pool (each byte read once). A
 * source written to while it was copied is refused: the bag would agree with itself (its manifest
 * is of the bytes copied) and still hold a half-written file. createBag then leaves the
 * destination as it found it.
 */
export function poolCopyFile(deps: Pick<Deps, 'pool'>) {
  return async (source: string, target: string, algorithms: BagAlgorithm[], signal?: AbortSignal) => {
    const r = await deps.pool.hash({ path: source, algorithms: algorithms as HashAlgorithm[], copyTo: target, signal });
    if (r.changedDuringRead) {
      throw new FondsError('CONFLICT', `${source}: changed while it was being copied into the bag (it is still being written); bag the folder again once it is complete.`, {
        path: source,
      });
    }
    return r.hashes as Partial<Record<BagAlgorithm, string>>;
  };
}

/** Validates a bag with the worker pool; used by the command and the CLI. */
export async function validateBagAt(deps: Pick<Deps, 'pool'>, bagPath: string, signal?: AbortSignal): Promise<BagValidation> {
  const abs = path.resolve(bagPath);
  const st = await fs.promises.stat(abs).catch(() => undefined);
  if (!st?.isDirectory()) throw new FondsError('NOT_FOUND', `${abs}: no such folder.`, { path: abs });
  const report = await validateBag(abs, { hashFile: poolHashFile(deps), signal });
  return {
    path: abs,
    valid: report.valid,
    errors: report.errors,
    warnings: report.warnings,
    payloadFiles: report.payloadFiles,
    payloadBytes: report.payloadBytes,
    ...(report.declaration ? { version: report.declaration.version } : {}),
    algorithms: report.declaration?.manifestAlgorithms ?? [],
  };
}

/**
 * Starts both checks of an upload (from scratch: walk, hashes, findings). `uploads.recheck` is
 * processing's command (it is refused while an execution reads the upload) and calls this.
 */
export function startChecks(deps: Pick<Deps, 'store'>, id: string, trigger: 'ingest' | 'close' | 'recheck') {
  return deps.store.transact((tx) => {
    const row = getUploadRow(tx.db, id);
    if (row.status === 'CHECKING') throw new FondsError('CONFLICT', `Upload '${row.name}' is already being checked.`);
    refuseWhilePushing(row, trigger === 'close' ? 'close it' : 'check it');
    tx.db
      .prepare(`UPDATE uploads SET walked = 0, archive_check = 'WAITING', standard_check = 'WAITING', progress = NULL WHERE id = ?`)
      .run(id);
    setUploadStatus(tx, id, 'CHECKING', { trigger });
    tx.enqueue({ kind: CHECK_JOB, payload: { uploadId: id }, objectKind: 'upload', objectId: id, maxAttempts: 3 });
    return rowToUpload(getUploadRow(tx.db, id));
  });
}

/** A file pushed where the upload has a folder of that name. */
const folderAlready = (rel: string) => new FondsError('CONFLICT', `${rel}: is a folder of this upload already; the file was not kept.`, { path: rel, errno: 'EISDIR' });

/** A pushed file that could not be kept, said with its path in the upload (never the server's own paths). */
function pushError(rel: string, err: unknown): FondsError {
  if (err instanceof FondsError) return err;
  const errno = (err as NodeJS.ErrnoException).code;
  const details = { path: rel, ...(errno ? { errno } : {}) };
  if (errno === 'EEXIST' || errno === 'ENOTDIR') return new FondsError('CONFLICT', `${rel}: a file already pushed into this upload has the name of one of its folders; it was not kept.`, details);
  if (errno === 'EISDIR') return folderAlready(rel);
  if (errno === 'ENOSPC') return new FondsError('IO_ERROR', `${rel}: the disk of the staging folder is full; the file was not kept.`, details);
  if (errno === 'ECONNRESET' || errno === 'ERR_STREAM_PREMATURE_CLOSE') return new FondsError('IO_ERROR', `${rel}: the client stopped sending before the end; the file was not kept.`, details);
  return new FondsError('IO_ERROR', `${rel}: could not be written (${errno ?? 'error'}); the file was not kept.`, details);
}

/** Intake: uploads of dropped or pushed deliveries, their checks, and BagIt bags. */
export function createIntake(deps: Deps): Capability & {
  stageFile(uploadId: string, rel: string, body: Readable, limit: number): Promise<{ path: string; size: number }>;
} {
  const { store, jobs, config } = deps;
  const db = store.db;
  const stagingDir = (id: string) => path.join(config.dataDir, 'staging', id);
  /**
   * Pushed files are written here first, outside every upload's folder, and renamed in only once
   * whole: a check never sees half a file, and what a crash leaves here is removed on the next start.
   */
  const partsDir = path.join(config.dataDir, 'staging', '.parts');
  fs.rmSync(partsDir, { recursive: true, force: true });

  const insertUpload = (id: string, name: string, description: string, sources: Source[], staged: boolean, srs?: string) =>
    store.transact((tx) => {
      const now = nowIso();
      tx.db
        .prepare(
          `INSERT INTO uploads (id, name, description, srs, status, sources, staged, creation, last_change) VALUES (?, ?, ?, ?, 'OPEN', ?, ?, ?, ?)`,
        )
        .run(id, name, description, srs ?? null, JSON.stringify(sources), staged ? 1 : 0, now, now);
      tx.event({ kind: 'upload', objectId: id, type: 'created', payload: { name, sources: sources.map((s) => s.path) } });
      return id;
    });

  return {
    jobs: { [CHECK_JOB]: createCheckJob(deps) as never },
    handlers: {
      'uploads.list': ({ status, offset, limit }) => listUploads(db, status, offset, limit),
      'uploads.get': ({ id }) => rowToUpload(getUploadRow(db, id)),
      'uploads.create': ({ name, description, srs }) => {
        const id = randomUUID();
        const dir = stagingDir(id);
        fs.mkdirSync(dir, { recursive: true });
        insertUpload(id, name, description, [{ path: dir, base: dir }], true, srs);
        return rowToUpload(getUploadRow(db, id));
      },
      'uploads.ingestPaths': async ({ paths, name, description }) => {
        const sources: Source[] = [];
        for (const p of paths) {
          if (!path.isAbsolute(p)) throw new FondsError('PATH_INVALID', `${p}: give an absolute path.`, { path: p });
          const st = await fs.promises.lstat(p).catch(() => undefined);
          if (!st) throw new FondsError('NOT_FOUND', `${p}: no such file or folder.`, { path: p });
          if (st.isSymbolicLink()) throw new FondsError('PATH_INVALID', `${p}: is a symbolic link; drop its target instead.`, { path: p });
          const abs = path.resolve(p);
          sources.push({ path: abs, base: paths.length === 1 && st.isDirectory() ? abs : path.dirname(abs) });
        }
        const label = name ?? (paths.length === 1 ? path.basename(paths[0]) : `${paths.length} items`);
        const id = insertUpload(randomUUID(), label, description, sources, false);
        return startChecks(deps, id, 'ingest');
      },
      'uploads.close': ({ id }) => {
        const row = getUploadRow(db, id);
        if (row.status !== 'OPEN') throw new FondsError('CONFLICT', `Upload '${row.name}' is ${row.status}; only an OPEN upload can be closed.`);
        return startChecks(deps, id, 'close');
      },
      'uploads.cancel': ({ id }) => {
        const row = getUploadRow(db, id);
        if (row.status !== 'CHECKING') throw new FondsError('CONFLICT', `Upload '${row.name}' is ${row.status}; there is no check to cancel.`);
        jobs.cancelFor('upload', id);
        return rowToUpload(getUploadRow(db, id));
      },
      'uploads.files': ({ id, offset, limit }) => listFiles(db, id, offset, limit),
      'uploads.findings': ({ id, check, offset, limit }) => listFindings(db, id, check, offset, limit),
      'uploads.timeline': ({ id, offset, limit }) => {
        getUploadRow(db, id);
        return timeline(db, 'upload', id, offset, limit);
      },
      'bags.validate': ({ path: p }) => validateBagAt(deps, p),
      'bags.create': async ({ source, destination }) => {
        const result = await createBag(path.resolve(source), path.resolve(destination), { copyFile: poolCopyFile(deps) }).catch((err: Error) => {
          throw err instanceof FondsError ? err : new FondsError('CONFLICT', err.message);
        });
        return { destination: path.resolve(destination), ...result };
      },
    },

    /** Streams one pushed file into an OPEN upload's staging folder (HTTP PUT). */
    async stageFile(uploadId, rel, body, limit) {
      const row = getUploadRow(db, uploadId);
      if (row.status !== 'OPEN' || !row.staged) {
        throw new FondsError('CONFLICT', `Upload '${row.name}' is ${row.status}; files can only be pushed into an OPEN upload created for it.`);
      }
      const target = resolveInside(stagingDir(uploadId), rel);
      const done = beginPush(row);
      const temp = path.join(partsDir, randomUUID());
      let size = 0;
      try {
        await fs.promises.mkdir(partsDir, { recursive: true });
        await pipeline(
          body,
          async function* (source: AsyncIterable<Buffer>) {
            for await (const chunk of source) {
              size += chunk.length;
              if (size > limit) throw new FondsError('PAYLOAD_TOO_LARGE', `${rel}: larger than the limit of ${limit} bytes.`);
              yield chunk;
            }
          },
          fs.createWriteStream(temp, { flags: 'wx' }),
        );
        // still OPEN (closing, checking and deleting wait for pushes; this is the last word), then
        // renamed in at once: nothing else runs between the two
        const now = getUploadRow(db, uploadId);
        if (now.status !== 'OPEN') throw new FondsError('CONFLICT', `Upload '${now.name}' became ${now.status} while ${rel} was being pushed; the file was not kept.`, { path: rel });
        fs.mkdirSync(path.dirname(target), { recursive: true });
        // a path pushed twice is a naming conflict for the archivist to settle, never a silent replacement
        const there = fs.lstatSync(target, { throwIfNoEntry: false });
        if (there?.isDirectory()) throw folderAlready(rel);
        if (there) throw new FondsError('CONFLICT', `${rel}: was already pushed into this upload; the second copy was not kept (push it under another name, or start a new upload).`, { path: rel });
        fs.renameSync(temp, target);
      } catch (err) {
        await fs.promises.rm(temp, { force: true });
        throw pushError(rel, err);
      } finally {
        done();
      }
      store.transact((tx) => tx.event({ kind: 'upload', objectId: uploadId, type: 'file.pushed', payload: { path: rel, size } }));
      return { path: rel, size };
    },
  };
}
