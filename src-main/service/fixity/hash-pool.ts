import os from 'node:os';
import { Worker } from 'node:worker_threads';
import { FondsError } from '../../../src-shared/errors';

export const HashAlgorithms = ['md5', 'sha1', 'sha224', 'sha256', 'sha384', 'sha512'] as const;
export type HashAlgorithm = (typeof HashAlgorithms)[number];
export type Hashes = Partial<Record<HashAlgorithm, string>>;

export interface HashTask {
  path: string;
  algorithms: readonly HashAlgorithm[];
  /** also write every byte read to this new file (created exclusively), in the same pass */
  copyTo?: string;
  /** fsync the copy before reporting done */
  fsync?: boolean;
  /** read the copy back in the same task and return its MD5 (`copyMd5`) */
  verifyCopy?: boolean;
  /** the read-back's hash, default md5 (result: `copyHash`, `copySize`) */
  verifyAlgorithm?: HashAlgorithm;
  signal?: AbortSignal;
  /** bytes read since the last call */
  onBytes?: (bytes: number) => void;
  /** the file's size when known: small files are sent to a worker in batches */
  sizeHint?: number;
}

/** What fstat said of a file: its size and its modification time, in nanoseconds since the epoch. */
export interface FileState {
  size: number;
  mtimeNs: bigint;
}

export interface HashResult {
  /** bytes read (and hashed) */
  size: number;
  hashes: Hashes;
  /** fstat when the file was opened, before the first read */
  opened: FileState;
  /** fstat after the last read */
  afterRead: FileState;
  /**
   * The size or the modification time differ between `opened` and `afterRead`: the file was
   * written while it was read, so the hashes are of bytes that were moving. Equality of the values
   * the file system records is the test, without any time window: on a file system with coarse
   * times (FAT: 2 s, some network shares: 1 s) a write within the same tick goes unseen.
   */
  changedDuringRead: boolean;
  /** MD5 of the copy, read back, when `verifyCopy` was asked */
  copyMd5?: string;
  /** the copy's `verifyAlgorithm` hash (hex) and size, read back, when `verifyCopy` was asked */
  copyHash?: string;
  copySize?: number;
}

/*
 * The worker is plain CommonJS evaluated from this string, so it runs the same under vitest,
 * tsx and the bundled app without a separate build entry. It reads each byte once with a reused
 * 1 MiB buffer, feeds every hash and, when asked, the copy; it never follows a final symlink.
 * It fstats the open file before the first read and after the last one (times in ns, as bigint),
 * so that a caller can tell bytes that moved under the read from bytes that held still.
 */
const WORKER_SOURCE = `
const { parentPort } = require('node:worker_threads');
const fs = require('node:fs');
const crypto = require('node:crypto');
const buf = Buffer.allocUnsafe(1 << 20);
const REPORT = 8 << 20;
function run(t, replies) {
  let fd, out, size = 0, since = 0;
  try {
    fd = fs.openSync(t.path, fs.constants.O_RDONLY | (fs.constants.O_NOFOLLOW || 0));
    const st = fs.fstatSync(fd, { bigint: true });
    if (!st.isFile()) { const e = new Error('not a regular file'); e.code = 'ENOTFILE'; throw e; }
    const opened = { size: Number(st.size), mtimeNs: st.mtimeNs };
    const hs = t.algorithms.map((a) => crypto.createHash(a));
    if (t.copyTo) out = fs.openSync(t.copyTo, 'wx', 0o644);
    for (;;) {
      const n = fs.readSync(fd, buf, 0, buf.length, null);
      if (n === 0) break;
      const chunk = n === buf.length ? buf : buf.subarray(0, n);
      for (const h of hs) h.update(chunk);
      if (out !== undefined) { let off = 0; while (off < n) off += fs.writeSync(out, chunk, off, n - off); }
      size += n; since += n;
      if (since >= REPORT) { parentPort.postMessage([{ id: t.id, bytes: since }]); since = 0; }
    }
    const end = fs.fstatSync(fd, { bigint: true });
    const afterRead = { size: Number(end.size), mtimeNs: end.mtimeNs };
    if (out !== undefined && t.fsync) fs.fsyncSync(out);
    const hashes = {};
    t.algorithms.forEach((a, i) => { hashes[a] = hs[i].digest('hex'); });
    let copyMd5, copyHash, copySize = 0;
    if (out !== undefined && t.verifyCopy) {
      // read the written copy back (a separate read, through the file system) and hash it
      fs.closeSync(out);
      out = undefined;
      const vfd = fs.openSync(t.copyTo, 'r');
      try {
        const algorithm = t.verifyAlgorithm || 'md5';
        const h = crypto.createHash(algorithm);
        for (;;) { const n = fs.readSync(vfd, buf, 0, buf.length, null); if (n === 0) break; h.update(n === buf.length ? buf : buf.subarray(0, n)); copySize += n; }
        copyHash = h.digest('hex');
        if (algorithm === 'md5') copyMd5 = copyHash;
      } finally { fs.closeSync(vfd); }
    }
    replies.push({ id: t.id, bytes: since, done: true, size, hashes, opened, afterRead, copyMd5, copyHash, copySize });
  } catch (e) {
    replies.push({ id: t.id, bytes: since, error: { code: e.code || 'EIO', message: e.message } });
  } finally {
    if (fd !== undefined) try { fs.closeSync(fd); } catch {}
    if (out !== undefined) try { fs.closeSync(out); } catch {}
  }
}
// a message is a batch of tasks (many small files travel together); one reply per batch
parentPort.on('message', (batch) => {
  const replies = [];
  for (const t of batch) run(t, replies);
  parentPort.postMessage(replies);
});
`;

interface Pending {
  id: number;
  task: HashTask;
  resolve: (r: HashResult) => void;
  reject: (e: Error) => void;
  worker?: Slot;
  onAbort?: () => void;
}

interface Slot {
  worker: Worker;
  /** ids of the tasks it holds */
  inFlight: Set<number>;
  /** messages (batches) sent and not yet answered */
  batches: number;
}

/** tasks (or batches of small files) a worker holds at once, so it never waits for the next */
const IN_FLIGHT_PER_WORKER = 2;
const SMALL_BATCH_BYTES = 4 << 20;

interface WorkerReply {
  id: number;
  bytes: number;
  done?: true;
  size?: number;
  hashes?: Hashes;
  opened?: FileState;
  afterRead?: FileState;
  copyMd5?: string;
  copyHash?: string;
  copySize?: number;
  error?: { code: string; message: string };
}

/** Maps an errno from the worker to a message a person can act on. */
export function ioMessage(path: string, code: string, message: string): string {
  switch (code) {
    case 'ENOENT':
      return `${path}: the file does not exist (moved or deleted during the check?)`;
    case 'EACCES':
    case 'EPERM':
      return `${path}: permission denied`;
    case 'ELOOP':
      return `${path}: is a symbolic link, which is not followed`;
    case 'ENOTFILE':
      return `${path}: is not a regular file`;
    case 'ENOSPC':
      return `${path}: no space left on the device`;
    case 'EROFS':
      return `${path}: the file system is read-only`;
    case 'EDQUOT':
      return `${path}: disk quota exceeded`;
    case 'EEXIST':
      return `${path}: the target file already exists`;
    default:
      return `${path}: ${message}`;
  }
}

/**
 * A pool of worker threads that hash (and optionally copy) files, so that hashing never blocks
 * the event loop. Tasks queue in the main thread; each worker holds at most two so it never
 * waits for the next one. Aborting a task that is being read restarts its worker.
 */
export class HashPool {
  private readonly slots: Slot[] = [];
  private readonly queue: Pending[] = [];
  private readonly pending = new Map<number, Pending>();
  private nextId = 1;
  private closed = false;

  constructor(readonly size: number = Math.max(1, Math.min(4, os.availableParallelism()))) {
    for (let i = 0; i < size; i++) this.slots.push(this.spawn());
  }

  hash(task: HashTask): Promise<HashResult> {
    if (this.closed) return Promise.reject(new FondsError('INTERNAL', 'the hash pool is closed'));
    if (task.signal?.aborted) return Promise.reject(abortError(task.signal));
    return new Promise<HashResult>((resolve, reject) => {
      const p: Pending = { id: this.nextId++, task, resolve, reject };
      if (task.signal) {
        p.onAbort = () => this.abort(p);
        task.signal.addEventListener('abort', p.onAbort, { once: true });
      }
      this.pending.set(p.id, p);
      this.queue.push(p);
      this.dispatch();
    });
  }

  async close(): Promise<void> {
    this.closed = true;
    for (const p of this.pending.values()) p.reject(new FondsError('CANCELLED', 'the hash pool was closed'));
    this.pending.clear();
    this.queue.length = 0;
    await Promise.all(this.slots.map((s) => s.worker.terminate()));
  }

  private spawn(): Slot {
    const worker = new Worker(WORKER_SOURCE, { eval: true });
    worker.unref();
    const slot: Slot = { worker, inFlight: new Set(), batches: 0 };
    worker.on('message', (replies: WorkerReply[]) => {
      const final = replies.some((m) => m.done || m.error);
      for (const m of replies) this.onMessage(slot, m);
      if (final) {
        slot.batches = Math.max(0, slot.batches - 1);
        this.dispatch();
      }
    });
    worker.on('error', (err) => this.onWorkerDeath(slot, err));
    return slot;
  }

  private onMessage(slot: Slot, m: WorkerReply): void {
    const p = this.pending.get(m.id);
    if (!p) return;
    if (m.bytes) p.task.onBytes?.(m.bytes);
    if (!m.done && !m.error) return;
    slot.inFlight.delete(m.id);
    this.settle(p);
    if (m.error) {
      const err = new FondsError('IO_ERROR', ioMessage(p.task.path, m.error.code, m.error.message), { path: p.task.path, errno: m.error.code });
      p.reject(err);
    } else {
      const opened = m.opened!;
      const afterRead = m.afterRead!;
      const changedDuringRead = opened.size !== afterRead.size || opened.mtimeNs !== afterRead.mtimeNs;
      p.resolve({ size: m.size!, hashes: m.hashes!, opened, afterRead, changedDuringRead, ...(m.copyMd5 ? { copyMd5: m.copyMd5 } : {}), ...(m.copyHash ? { copyHash: m.copyHash, copySize: m.copySize } : {}) });
    }
  }

  private onWorkerDeath(slot: Slot, err: Error): void {
    const index = this.slots.indexOf(slot);
    for (const id of slot.inFlight) {
      const p = this.pending.get(id);
      if (p) {
        this.settle(p);
        p.reject(new FondsError('INTERNAL', `hashing ${p.task.path} failed: ${err.message}`));
      }
    }
    if (index >= 0 && !this.closed) this.slots[index] = this.spawn();
    this.dispatch();
  }

  private settle(p: Pending): void {
    this.pending.delete(p.id);
    if (p.onAbort) p.task.signal?.removeEventListener('abort', p.onAbort);
  }

  private abort(p: Pending): void {
    if (!this.pending.has(p.id)) return;
    this.settle(p);
    const queued = this.queue.indexOf(p);
    if (queued >= 0) this.queue.splice(queued, 1);
    const slot = p.worker;
    if (slot && slot.inFlight.has(p.id)) {
      // The worker is inside a synchronous read loop: replace it, and re-queue its other task.
      slot.inFlight.delete(p.id);
      for (const other of slot.inFlight) {
        const o = this.pending.get(other);
        if (o) this.queue.unshift(o);
      }
      slot.inFlight.clear();
      const index = this.slots.indexOf(slot);
      slot.worker.removeAllListeners('message');
      slot.worker.removeAllListeners('error');
      void slot.worker.terminate();
      if (index >= 0) this.slots[index] = this.spawn();
    }
    p.reject(abortError(p.task.signal!));
    this.dispatch();
  }

  private dispatch(): void {
    while (this.queue.length) {
      let best: Slot | undefined;
      for (const s of this.slots) if (s.batches < IN_FLIGHT_PER_WORKER && (!best || s.batches < best.batches)) best = s;
      if (!best) return;
      const batch: Pending[] = [this.queue.shift()!];
      // small files travel together: one message, one reply, for up to 64 files or 4 MiB
      let bytes = batch[0].task.sizeHint ?? Infinity;
      while (this.queue.length && batch.length < 64 && bytes < SMALL_BATCH_BYTES) {
        const next = this.queue[0].task.sizeHint ?? Infinity;
        if (bytes + next > SMALL_BATCH_BYTES) break;
        bytes += next;
        batch.push(this.queue.shift()!);
      }
      for (const p of batch) {
        p.worker = best;
        best.inFlight.add(p.id);
      }
      best.batches++;
      best.worker.postMessage(
        batch.map((p) => ({ id: p.id, path: p.task.path, algorithms: p.task.algorithms, copyTo: p.task.copyTo, fsync: p.task.fsync, verifyCopy: p.task.verifyCopy, verifyAlgorithm: p.task.verifyAlgorithm })),
      );
    }
  }
}

export function abortError(signal: AbortSignal): FondsError {
  const reason = typeof signal.reason === 'string' ? signal.reason : 'cancelled';
  return new FondsError('CANCELLED', `Stopped: ${reason}.`);
}
