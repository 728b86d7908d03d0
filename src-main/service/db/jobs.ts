import { randomUUID } from 'node:crypto';
import { setMaxListeners } from 'node:events';
import type { ObjectKind } from '../../../src-shared/api';
import type { Progress } from '../../../src-shared/domain/upload';
import { FondsError } from '../../../src-shared/errors';
import { nowIso, type Store } from './store';

export interface JobRow {
  id: number;
  kind: string;
  payload: string;
  object_kind: ObjectKind | null;
  object_id: string | null;
  priority: number;
  run_at: string;
  status: 'queued' | 'running' | 'done' | 'failed' | 'cancelled';
  attempts: number;
  max_attempts: number;
  last_error: string | null;
}

export interface JobContext<P = Record<string, unknown>> {
  id: number;
  kind: string;
  payload: P;
  /** 1 on the first run */
  attempt: number;
  objectKind: ObjectKind | null;
  objectId: string | null;
  /** aborted on cancel or shutdown; `signal.reason` says which */
  signal: AbortSignal;
  /** throttled: pushed live, and kept on the job row about once a second */
  progress(p: Progress): void;
}

export interface JobHandler<P = Record<string, unknown>> {
  run(ctx: JobContext<P>): Promise<void>;
  /** called once when the job gives up (attempts exhausted or not retryable), inside no transaction */
  failed?(ctx: JobContext<P>, error: Error): void;
  /** called when a queued or running job is cancelled */
  cancelled?(ctx: JobContext<P>): void;
}

/** Thrown by a handler for a failure that retrying cannot fix. */
export class PermanentJobError extends Error {}

export interface JobRunnerOptions {
  concurrency: number;
  leaseMs?: number;
  retryBaseMs?: number;
}

const SHUTDOWN = 'shutdown';
const CANCELLED = 'cancelled';

/**
 * Durable jobs: rows in `jobs`, claimed with a lease, retried with backoff. A crash leaves rows
 * `running`; the next start (which holds the data-directory lock, so no other process runs them)
 * puts them back in the queue, and handlers resume from what they had committed.
 */
export class JobRunner {
  readonly owner = randomUUID();
  private readonly handlers = new Map<string, JobHandler<never>>();
  private readonly running = new Map<number, { controller: AbortController; done: Promise<void> }>();
  private timer: NodeJS.Timeout | undefined;
  private heartbeat: NodeJS.Timeout | undefined;
  private stopped = true;
  private pumping = false;
  private unsubscribe: (() => void) | undefined;
  private readonly leaseMs: number;
  private readonly retryBaseMs: number;

  constructor(
    private readonly store: Store,
    private readonly options: JobRunnerOptions,
  ) {
    this.leaseMs = options.leaseMs ?? 60_000;
    this.retryBaseMs = options.retryBaseMs ?? 1_000;
  }

  register<P>(kind: string, handler: JobHandler<P>): void {
    if (this.handlers.has(kind)) throw new Error(`job kind ${kind} registered twice`);
    this.handlers.set(kind, handler as JobHandler<never>);
  }

  /** Re-queues jobs left running by a previous process, then starts claiming. */
  start(): void {
    if (!this.stopped) return;
    this.stopped = false;
    this.store.db
      .prepare(`UPDATE jobs SET status = 'queued', lease_owner = NULL, lease_until = NULL, updated_at = ? WHERE status = 'running'`)
      .run(nowIso());
    this.unsubscribe = this.store.onJobs(() => this.wake());
    this.heartbeat = setInterval(() => this.renewLeases(), Math.max(1000, this.leaseMs / 3));
    this.heartbeat.unref();
    this.wake();
  }

  /** Stops claiming, aborts running handlers, waits for them to return. Their jobs stay queued. */
  async stop(): Promise<void> {
    this.stopped = true;
    this.unsubscribe?.();
    if (this.timer) clearTimeout(this.timer);
    if (this.heartbeat) clearInterval(this.heartbeat);
    for (const r of this.running.values()) r.controller.abort(SHUTDOWN);
    await Promise.allSettled([...this.running.values()].map((r) => r.done));
  }

  /** Cancels a queued or running job. Returns false if it had already ended. */
  cancel(jobId: number): boolean {
    const row = this.store.db.prepare('SELECT * FROM jobs WHERE id = ?').get(jobId) as JobRow | undefined;
    if (!row || !['queued', 'running'].includes(row.status)) return false;
    this.store.db.prepare(`UPDATE jobs SET status = 'cancelled', updated_at = ? WHERE id = ?`).run(nowIso(), jobId);
    const live = this.running.get(jobId);
    if (live) live.controller.abort(CANCELLED);
    else this.handlers.get(row.kind)?.cancelled?.(this.contextOf(row, new AbortController().signal) as never);
    return true;
  }

  /** Cancels every queued or running job of an object. */
  cancelFor(kind: ObjectKind, objectId: string): number {
    const ids = this.store.db
      .prepare(`SELECT id FROM jobs WHERE object_kind = ? AND object_id = ? AND status IN ('queued','running')`)
      .pluck()
      .all(kind, objectId) as number[];
    return ids.filter((jobId) => this.cancel(jobId)).length;
  }

  /** Resolves when no job is running, due, or waiting to be retried (for tests and the CLI). */
  async idle(timeoutMs = 60_000): Promise<void> {
    const until = Date.now() + timeoutMs;
    for (;;) {
      const busy = this.store.db
        .prepare(`SELECT count(*) FROM jobs WHERE status = 'running' OR (status = 'queued' AND (run_at <= ? OR attempts > 0))`)
        .pluck()
        .get(nowIso()) as number;
      if (!busy && this.running.size === 0) return;
      if (Date.now() > until) throw new Error(`jobs still busy after ${timeoutMs} ms`);
      await new Promise((r) => setTimeout(r, 20));
    }
  }

  private wake(): void {
    if (this.stopped) return;
    if (this.timer) clearTimeout(this.timer);
    this.timer = undefined;
    setImmediate(() => this.pump());
  }

  private pump(): void {
    if (this.stopped || this.pumping) return;
    this.pumping = true;
    try {
      while (this.running.size < this.options.concurrency) {
        const row = this.claim();
        if (!row) break;
        this.launch(row);
      }
      this.scheduleNext();
    } finally {
      this.pumping = false;
    }
  }

  private claim(): JobRow | undefined {
    const kinds = JSON.stringify([...this.handlers.keys()]);
    const now = nowIso();
    return this.store.db
      .prepare(
        `UPDATE jobs SET status = 'running', lease_owner = @owner, lease_until = @lease, attempts = attempts + 1, updated_at = @now
         WHERE id = (SELECT id FROM jobs WHERE status = 'queued' AND run_at <= @now AND kind IN (SELECT value FROM json_each(@kinds))
                     ORDER BY priority DESC, run_at, id LIMIT 1)
         RETURNING *`,
      )
      .get({ owner: this.owner, lease: new Date(Date.now() + this.leaseMs).toISOString(), now, kinds }) as JobRow | undefined;
  }

  private scheduleNext(): void {
    if (this.stopped || this.running.size >= this.options.concurrency) return;
    const next = this.store.db
      .prepare(`SELECT min(run_at) FROM jobs WHERE status = 'queued'`)
      .pluck()
      .get() as string | null;
    if (!next) return;
    const delay = Math.min(Math.max(new Date(next).getTime() - Date.now(), 10), 60_000);
    if (this.timer) clearTimeout(this.timer);
    this.timer = setTimeout(() => this.wake(), delay);
    this.timer.unref();
  }

  private contextOf(row: JobRow, signal: AbortSignal): JobContext {
    let lastPush = 0;
    let lastPersist = 0;
    return {
      id: row.id,
      kind: row.kind,
      payload: JSON.parse(row.payload),
      attempt: row.attempts,
      objectKind: row.object_kind,
      objectId: row.object_id,
      signal,
      progress: (p) => {
        const t = Date.now();
        if (t - lastPush >= 200 || (p.totalFiles !== undefined && p.files === p.totalFiles)) {
          lastPush = t;
          if (row.object_kind && row.object_id) this.store.progress({ kind: row.object_kind, objectId: row.object_id, progress: p });
        }
        if (t - lastPersist >= 1000) {
          lastPersist = t;
          this.store.db.prepare('UPDATE jobs SET progress = ? WHERE id = ?').run(JSON.stringify(p), row.id);
        }
      },
    };
  }

  private launch(row: JobRow): void {
    const handler = this.handlers.get(row.kind)!;
    const controller = new AbortController();
    // every file in flight listens for the abort: hundreds of listeners are expected here
    setMaxListeners(0, controller.signal);
    const ctx = this.contextOf(row, controller.signal);
    const done = (async () => {
      try {
        await handler.run(ctx as never);
        if (controller.signal.aborted && controller.signal.reason === SHUTDOWN) return; // stays running -> requeued on start
        if (controller.signal.aborted && controller.signal.reason === CANCELLED) {
          handler.cancelled?.(ctx as never);
          return;
        }
        this.finish(row.id, 'done', null);
      } catch (err) {
        const error = err instanceof Error ? err : new Error(String(err));
        if (controller.signal.aborted && controller.signal.reason === SHUTDOWN) return;
        if (controller.signal.aborted && controller.signal.reason === CANCELLED) {
          handler.cancelled?.(ctx as never);
          return;
        }
        const permanent = error instanceof PermanentJobError || (error instanceof FondsError && error.code !== 'IO_ERROR' && error.code !== 'UNAVAILABLE');
        if (!permanent && row.attempts < row.max_attempts) {
          const delay = this.retryBaseMs * 2 ** (row.attempts - 1);
          this.store.db
            .prepare(
              `UPDATE jobs SET status = 'queued', run_at = ?, last_error = ?, lease_owner = NULL, lease_until = NULL, updated_at = ?
               WHERE id = ? AND status = 'running'`,
            )
            .run(new Date(Date.now() + delay).toISOString(), error.message, nowIso(), row.id);
        } else {
          this.finish(row.id, 'failed', error.message);
          handler.failed?.(ctx as never, error);
        }
      } finally {
        this.running.delete(row.id);
        this.wake();
      }
    })();
    this.running.set(row.id, { controller, done });
  }

  private finish(jobId: number, status: 'done' | 'failed', error: string | null): void {
    this.store.db
      .prepare(
        `UPDATE jobs SET status = ?, last_error = coalesce(?, last_error), lease_owner = NULL, lease_until = NULL, updated_at = ?
         WHERE id = ? AND status = 'running'`,
      )
      .run(status, error, nowIso(), jobId);
  }

  private renewLeases(): void {
    if (this.running.size === 0) return;
    this.store.db
      .prepare(`UPDATE jobs SET lease_until = ? WHERE lease_owner = ? AND status = 'running'`)
      .run(new Date(Date.now() + this.leaseMs).toISOString(), this.owner);
  }
}
