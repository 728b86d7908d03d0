import type { Statement } from 'better-sqlite3';
import type { OutboxItem, Page } from '../../../src-shared/api';
import { FondsError } from '../../../src-shared/errors';
import { nowIso, type Store } from './store';

interface OutboxRow {
  id: number;
  channel: string;
  destination: string;
  headers: string;
  body: string;
  status: OutboxItem['status'];
  priority: number;
  attempts: number;
  max_attempts: number;
  last_error: string | null;
  object_kind: string | null;
  object_id: string | null;
  created_at: string;
  next_attempt_at: string;
  sent_at: string | null;
}

export function rowToOutboxItem(r: OutboxRow): OutboxItem {
  return {
    id: r.id,
    channel: r.channel,
    destination: r.destination,
    headers: JSON.parse(r.headers),
    body: r.body,
    status: r.status,
    attempts: r.attempts,
    ...(r.last_error ? { lastError: r.last_error } : {}),
    createdAt: r.created_at,
    nextAttemptAt: r.next_attempt_at,
    ...(r.sent_at ? { sentAt: r.sent_at } : {}),
    ...(r.object_kind ? { objectKind: r.object_kind } : {}),
    ...(r.object_id ? { objectId: r.object_id } : {}),
  };
}

/**
 * Sends one message. Resolves only once the far side has confirmed (AMQP publisher confirm,
 * HTTP 2xx); rejects otherwise. Registered per channel ('amqp', 'webhook', ...).
 */
export interface OutboxTransport {
  send(item: OutboxItem): Promise<void>;
}

export interface OutboxRelayOptions {
  retryBaseMs?: number;
  retryMaxMs?: number;
  /** rows claimed at a time (default 200) */
  batch?: number;
  /** messages sent and not yet confirmed, at most (default 1000) */
  inFlight?: number;
}

/**
 * Publishes outbox rows through the registered transports. A row is marked sent only after its
 * transport confirms; with no transport (no broker configured or reachable) rows wait, visible
 * to the user, who can edit, cancel, retry or send them now.
 */
export class OutboxRelay {
  private readonly transports = new Map<string, OutboxTransport>();
  private timer: NodeJS.Timeout | undefined;
  private stopped = true;
  private pumping: Promise<void> | undefined;
  private again = false;
  private unsubscribe: (() => void) | undefined;
  private readonly retryBaseMs: number;
  private readonly retryMaxMs: number;
  private readonly batch: number;
  private readonly maxInFlight: number;
  /** wakes a pump waiting for confirms when new rows arrive */
  private nudge: (() => void) | undefined;
  private claimStmt: Statement | undefined;
  private sentStmt: Statement | undefined;
  private failedStmt: Statement | undefined;

  constructor(
    private readonly store: Store,
    options: OutboxRelayOptions = {},
  ) {
    this.retryBaseMs = options.retryBaseMs ?? 1_000;
    this.retryMaxMs = options.retryMaxMs ?? 5 * 60_000;
    this.batch = Math.max(1, options.batch ?? 200);
    this.maxInFlight = Math.max(1, options.inFlight ?? 1000);
  }

  /** Attaches a transport for a channel (e.g. when the broker connects) and flushes what waits. */
  attach(channel: string, transport: OutboxTransport): void {
    this.transports.set(channel, transport);
    this.wake();
  }

  /** Detaches a channel's transport (e.g. broker lost); its messages wait. */
  detach(channel: string): void {
    this.transports.delete(channel);
  }

  isAttached(channel: string): boolean {
    return this.transports.has(channel);
  }

  start(): void {
    if (!this.stopped) return;
    this.stopped = false;
    // A row left 'sending' by a crash may or may not have reached the broker: send it again
    // (at-least-once; receivers deduplicate by request id).
    this.store.db.prepare(`UPDATE outbox SET status = 'pending' WHERE status = 'sending'`).run();
    this.unsubscribe = this.store.onOutbox(() => this.wake());
    this.wake();
  }

  async stop(): Promise<void> {
    this.stopped = true;
    this.unsubscribe?.();
    if (this.timer) clearTimeout(this.timer);
    await this.pumping;
  }

  /** Resolves when nothing sendable is pending (for tests and the CLI). */
  async flushed(timeoutMs = 30_000): Promise<void> {
    const until = Date.now() + timeoutMs;
    for (;;) {
      const channels = JSON.stringify([...this.transports.keys()]);
      const n = this.store.db
        .prepare(
          `SELECT count(*) FROM outbox WHERE (status = 'pending' AND next_attempt_at <= ? AND channel IN (SELECT value FROM json_each(?))) OR status = 'sending'`,
        )
        .pluck()
        .get(nowIso(), channels) as number;
      if (n === 0 && !this.pumping) return;
      if (Date.now() > until) throw new Error(`outbox not flushed after ${timeoutMs} ms`);
      await new Promise((r) => setTimeout(r, 20));
    }
  }

  list(status: OutboxItem['status'] | undefined, offset: number, limit: number): Page<OutboxItem> {
    const where = status ? 'WHERE status = ?' : '';
    const args = status ? [status] : [];
    const total = this.store.db.prepare(`SELECT count(*) FROM outbox ${where}`).pluck().get(...args) as number;
    const rows = this.store.db
      .prepare(`SELECT * FROM outbox ${where} ORDER BY id DESC LIMIT ? OFFSET ?`)
      .all(...args, limit, offset) as OutboxRow[];
    return { items: rows.map(rowToOutboxItem), total, offset };
  }

  get(id: number): OutboxItem {
    const row = this.store.db.prepare('SELECT * FROM outbox WHERE id = ?').get(id) as OutboxRow | undefined;
    if (!row) throw new FondsError('NOT_FOUND', `Outbox message ${id} does not exist.`);
    return rowToOutboxItem(row);
  }

  pendingCount(): number {
    return this.store.db.prepare(`SELECT count(*) FROM outbox WHERE status IN ('pending','sending')`).pluck().get() as number;
  }

  /** Cancels a message that has not been sent. */
  cancel(id: number): OutboxItem {
    this.requireStatus(id, ['pending', 'failed'], 'cancel');
    this.store.db.prepare(`UPDATE outbox SET status = 'cancelled' WHERE id = ?`).run(id);
    return this.get(id);
  }

  /** Puts a failed, cancelled or waiting message back in the queue, due now. */
  retry(id: number): OutboxItem {
    this.requireStatus(id, ['pending', 'failed', 'cancelled'], 'retry');
    this.store.db.prepare(`UPDATE outbox SET status = 'pending', next_attempt_at = ?, last_error = NULL WHERE id = ?`).run(nowIso(), id);
    this.wake();
    return this.get(id);
  }

  /** Replaces headers and/or body of a message not yet sent. */
  edit(id: number, change: { headers?: Record<string, unknown>; body?: string }): OutboxItem {
    this.requireStatus(id, ['pending', 'failed', 'cancelled'], 'edit');
    const current = this.get(id);
    this.store.db
      .prepare(`UPDATE outbox SET headers = ?, body = ? WHERE id = ?`)
      .run(JSON.stringify(change.headers ?? current.headers), change.body ?? current.body, id);
    return this.get(id);
  }

  private requireStatus(id: number, allowed: OutboxItem['status'][], action: string): void {
    const item = this.get(id);
    if (!allowed.includes(item.status)) {
      throw new FondsError('CONFLICT', `Cannot ${action} outbox message ${id}: it is ${item.status}.`, { status: item.status });
    }
  }

  private wake(): void {
    if (this.stopped) return;
    if (this.pumping) {
      this.again = true;
      this.nudge?.();
      return;
    }
    if (this.timer) clearTimeout(this.timer);
    this.pumping = this.pump().finally(() => {
      this.pumping = undefined;
      if (this.again) {
        this.again = false;
        this.wake();
      } else this.scheduleNext();
    });
  }

  private scheduleNext(): void {
    if (this.stopped || this.transports.size === 0) return;
    const channels = JSON.stringify([...this.transports.keys()]);
    const next = this.store.db
      .prepare(`SELECT min(next_attempt_at) FROM outbox WHERE status = 'pending' AND channel IN (SELECT value FROM json_each(?))`)
      .pluck()
      .get(channels) as string | null;
    if (!next) return;
    const delay = Math.min(Math.max(new Date(next).getTime() - Date.now(), 10), 60_000);
    this.timer = setTimeout(() => this.wake(), delay);
    this.timer.unref();
  }

  /**
   * Sends what is due, pipelined: up to `inFlight` messages wait for their confirms at once (a
   * confirm takes a broker round trip and a disk sync: waiting for each batch before sending the
   * next would cap the rate at one batch per sync). Rows are claimed `batch` at a time, highest
   * priority first, and sent in that order; outcomes are recorded together, one transaction per
   * round of confirms. A row is marked sent only after its transport confirmed it.
   */
  private async pump(): Promise<void> {
    const db = this.store.db;
    const claim = (this.claimStmt ??= db.prepare(
      `UPDATE outbox SET status = 'sending' WHERE id IN (
         SELECT id FROM outbox WHERE status = 'pending' AND next_attempt_at <= ? AND channel IN (SELECT value FROM json_each(?))
         ORDER BY priority DESC, id LIMIT ?)
       RETURNING *`,
    ));
    const markSent = (this.sentStmt ??= db.prepare(
      `UPDATE outbox SET status = 'sent', sent_at = ?, attempts = attempts + 1, last_error = NULL WHERE id = ? AND status = 'sending'`,
    ));
    const markFailed = (this.failedStmt ??= db.prepare(
      `UPDATE outbox SET status = ?, attempts = ?, last_error = ?, next_attempt_at = ? WHERE id = ? AND status = 'sending'`,
    ));
    let inFlight = 0;
    let settled: Array<{ row: OutboxRow; failed: boolean; error?: unknown }> = [];
    let resume: (() => void) | undefined;
    const settle = (row: OutboxRow, failed: boolean, error?: unknown) => {
      settled.push({ row, failed, error });
      inFlight--;
      resume?.();
    };
    const record = () => {
      if (!settled.length) return;
      const outcomes = settled;
      settled = [];
      const now = nowIso();
      db.transaction(() => {
        for (const { row, failed, error } of outcomes) {
          if (!failed) {
            markSent.run(now, row.id);
            continue;
          }
          const attempts = row.attempts + 1;
          const giveUp = row.max_attempts > 0 && attempts >= row.max_attempts;
          const delay = Math.min(this.retryBaseMs * 2 ** Math.min(attempts - 1, 20), this.retryMaxMs);
          markFailed.run(giveUp ? 'failed' : 'pending', attempts, error instanceof Error ? error.message : String(error ?? 'refused'), new Date(Date.now() + delay).toISOString(), row.id);
        }
      })();
    };
    const pause = () =>
      new Promise<void>((resolve) => {
        resume = resolve;
        this.nudge = resolve;
      }).finally(() => {
        resume = undefined;
        this.nudge = undefined;
      });
    try {
      while (!this.stopped && this.transports.size > 0) {
        record();
        const room = this.maxInFlight - inFlight;
        // claim in batches, not one row per confirm
        const rows = room >= Math.min(this.batch, this.maxInFlight) ? (claim.all(nowIso(), JSON.stringify([...this.transports.keys()]), Math.min(room, this.batch)) as OutboxRow[]) : [];
        if (rows.length === 0 && inFlight === 0) return;
        rows.sort((a, b) => b.priority - a.priority || a.id - b.id);
        for (const row of rows) {
          inFlight++;
          const transport = this.transports.get(row.channel);
          if (!transport) {
            settle(row, true, new Error(`no transport for channel ${row.channel}`));
            continue;
          }
          let sending: Promise<void>;
          try {
            sending = transport.send(rowToOutboxItem(row));
          } catch (err) {
            sending = Promise.reject(err);
          }
          sending.then(
            () => settle(row, false),
            (err: unknown) => settle(row, true, err),
          );
        }
        // a full batch claimed and room left: claim again at once; otherwise wait for confirms (or new rows)
        if (rows.length === 0 || this.maxInFlight - inFlight < Math.min(this.batch, this.maxInFlight)) await pause();
      }
    } finally {
      // stopped, or the transport went away: what was sent still settles and is recorded
      while (inFlight > 0) await pause();
      record();
    }
  }
}

