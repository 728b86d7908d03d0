/**
 * WAL checkpoints off the main thread. In WAL mode every commit appends pages to `fonds.sqlite-wal`;
 * a checkpoint copies them back into the database file and syncs it. SQLite's automatic
 * checkpoint runs inside the commit that crosses the threshold, on the thread that commits: under
 * a stream of small commits (patch requests, outbox confirms) those checkpoints were about a sixth
 * of the main thread's time. Here a worker thread with its own connection runs PASSIVE checkpoints
 * a short while after writes, concurrently with the writer (a passive checkpoint never blocks it);
 * SQLite's own automatic checkpoint stays on, at a higher threshold, as a backstop for when the
 * worker cannot keep up or is gone.
 */
import { createRequire } from 'node:module';
import { Worker } from 'node:worker_threads';

/*
 * Plain CommonJS evaluated from this string (as the hash pool's worker), so it runs the same under
 * vitest, tsx and the bundled app; better-sqlite3 is required by the path the main thread resolved.
 */
const WORKER_SOURCE = `
const { parentPort, workerData } = require('node:worker_threads');
const Database = require(workerData.module);
const db = new Database(workerData.file, { fileMustExist: true });
parentPort.on('message', (m) => {
  if (m === 'close') { db.close(); parentPort.close(); return; }
  try {
    const [r] = db.pragma('wal_checkpoint(PASSIVE)');
    parentPort.postMessage({ busy: r.busy, log: r.log, checkpointed: r.checkpointed });
  } catch (e) {
    parentPort.postMessage({ error: String(e && e.message || e) });
  }
});
`;

export interface CheckpointStats {
  /** checkpoints run by the worker */
  runs: number;
  /** WAL frames copied into the database file by the last run (-1 before the first) */
  lastCheckpointed: number;
  lastError?: string;
}

export class WalCheckpointer {
  private worker: Worker | undefined;
  private timer: NodeJS.Timeout | undefined;
  private running = false;
  private dirty = false;
  private readonly stats: CheckpointStats = { runs: 0, lastCheckpointed: -1 };
  private closing: Promise<void> | undefined;

  /**
   * @param file the database file (already created, in WAL mode)
   * @param delayMs how long after a write the worker checkpoints (writes meanwhile join it)
   */
  constructor(
    file: string,
    private readonly delayMs = 250,
  ) {
    const module = createRequire(import.meta.url).resolve('better-sqlite3');
    const worker = new Worker(WORKER_SOURCE, { eval: true, workerData: { file, module } });
    worker.unref();
    worker.on('message', (r: { log?: number; checkpointed?: number; error?: string }) => {
      this.running = false;
      this.stats.runs++;
      if (r.error) this.stats.lastError = r.error;
      else this.stats.lastCheckpointed = r.checkpointed ?? 0;
      if (this.dirty) this.schedule();
    });
    // a worker that fails leaves the backstop (SQLite's automatic checkpoint) in charge
    worker.on('error', (err) => {
      this.stats.lastError = err.message;
      this.worker = undefined;
    });
    worker.on('exit', () => {
      this.worker = undefined;
    });
    this.worker = worker;
  }

  /** Something was committed: checkpoint soon (at most one checkpoint runs at a time). */
  wrote(): void {
    this.dirty = true;
    if (!this.running) this.schedule();
  }

  status(): CheckpointStats {
    return { ...this.stats };
  }

  /** Stops the worker (its connection closes first); the main connection's close checkpoints the rest. */
  close(): Promise<void> {
    if (this.timer) clearTimeout(this.timer);
    this.timer = undefined;
    const worker = this.worker;
    if (!worker) return Promise.resolve();
    this.closing ??= new Promise<void>((resolve) => {
      worker.once('exit', () => resolve());
      // unref'd so as not to keep the process alive, but waited for here: held until it is gone
      worker.ref();
      worker.postMessage('close');
    });
    return this.closing;
  }

  private schedule(): void {
    if (this.timer || !this.worker || this.closing) return;
    this.timer = setTimeout(() => {
      this.timer = undefined;
      if (!this.worker || this.closing) return;
      this.dirty = false;
      this.running = true;
      this.worker.postMessage('checkpoint');
    }, this.delayMs);
    this.timer.unref();
  }
}
