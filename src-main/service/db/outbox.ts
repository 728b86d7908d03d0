import type { Statement } from 'better-sqlite3';
import type { OutboxItem, Page } from '../../../src-shared/api';
import { FondsError } from '../../../src-shared/errors';
import { nowIso, type NewOutboxMessage, type OutboxTaker, type Store, type TakenMessage, type Tx } from './store';

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
 * The condition of the partial index `outbox_open` (core/002): SQLite uses a partial index only when
 * the query repeats its condition, so queries on open messages AND it in.
 */
export const OUTBOX_OPEN = `status IN ('pending', 'sending', 'failed')`;

/**
 * Sends one message and calls `done` once: with no error only when the far side has confirmed it
 * (AMQP publisher confirm, HTTP 2xx), with the reason otherwise. Registered per channel ('amqp',
 * 'webhook', ...). A callback, as Node's streams take one: thousands of messages a second each
 * paid for their promises.
 */
export interface OutboxTransport {
  send(item: OutboxItem, done: (error?: unknown) => void): void;
}

export interface OutboxRelayOptions {
  retryBaseMs?: number;
  retryMaxMs?: number;
  /** rows claimed at a time (default 200) */
  batch?: number;
  /** messages sent and not yet confirmed, at most (default 1000) */
  inFlight?: number;
}

/** A person's change to a message not yet sent: cancelled, put back in the queue (retry, send now), or its headers or body edited. */
export type OutboxChange = 'cancelled' | 'retried' | 'edited';

/**
 * Told inside the transaction of a person's change, with the message as it is after it and its
 * status before, so that what the message stands for (a dissemination) changes with it or the
 * change is refused (throw: nothing is changed).
 */
export type OutboxChangeHook = (tx: Tx, item: OutboxItem, change: OutboxChange, before: OutboxItem['status']) => void;

/** A message in the relay's hands: claimed from the table, or taken as it was written (owed ones numbered in the order taken). */
type Claimed = TakenMessage & { ordinal?: number };

/**
 * A capability whose rows owe messages: each message is a function of a row the capability
 * commits itself (a patch request received and settled at once owes its answers), so it needs no
 * outbox row of its own while the relay takes it in hand at the commit and the broker confirms
 * it. The relay keeps, per source, the seq through which every owed message is settled
 * (confirmed, or written as a row because it had to wait) in `settings` (`outbox.owed.<name>`);
 * at registration (each start) the messages owed by the rows after it are written as pending
 * rows: a crash loses none (at least once, as for rows left 'sending').
 */
export interface OwedSource {
  /** the greatest seq committed so far (0: none); seqs order the source's rows and are never reused */
  latest(): number;
  /** the messages owed by the rows after `seq`, in seq order, exactly as they were owed */
  owedAfter(seq: number): NewOutboxMessage[];
}

/** What the relay knows of a source's owed messages. */
interface OwedState {
  key: string;
  source: OwedSource;
  /** every message owed by a row up to this seq is settled (as stored in settings) */
  through: number;
  /** messages in hand (taken, sent, not yet settled), by the seq that owes them */
  inHand: Map<number, number>;
  /** the seqs with messages in hand, in the order taken (increasing); those before `head` are settled */
  order: number[];
  head: number;
}

const claimedOf = (r: OutboxRow): Claimed => ({ item: rowToOutboxItem(r), priority: r.priority, maxAttempts: r.max_attempts });

/**
 * Publishes outbox rows through the registered transports. A row is marked sent only after its
 * transport confirms; with no transport (no broker configured or reachable) rows wait, visible
 * to the user, who can edit, cancel, retry or send them now.
 *
 * Two ways in. While a channel's transport is attached and nothing older waits, the relay takes
 * new messages in hand as the Store writes them (inserted as 'sending', handed over after the
 * commit: no read back, no claiming UPDATE). Otherwise they are written 'pending' and claimed from
 * the table, highest priority first, oldest first; new messages are not taken in hand again
 * until that backlog is empty, so nothing overtakes an older message (a GRANTED answer waiting
 * since before an outage still goes before its SUCCESS). A row left 'sending' by a crash is sent
 * again at the next start (at-least-once; receivers deduplicate by request id).
 */
export class OutboxRelay {
  private readonly transports = new Map<string, OutboxTransport>();
  private timer: NodeJS.Timeout | undefined;
  private retryTimer: NodeJS.Timeout | undefined;
  private retryAt = 0;
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
  /** rows may wait as 'pending' in the table: claim them before taking new ones in hand */
  private backlog = true;
  /** messages taken in hand, not yet sent (in order) */
  private taken: Claimed[] = [];
  private claimStmt: Statement | undefined;
  private sentStmt: Statement | undefined;
  private failedStmt: Statement | undefined;
  private releaseStmt: Statement | undefined;
  private readonly changeHooks: OutboxChangeHook[] = [];
  private readonly owed = new Map<string, OwedState>();
  /** owed messages in hand (no row yet), by channel */
  private readonly owedOnChannel = new Map<string, number>();
  private ordinal = 0;
  private owedStmt: Statement | undefined;
  private throughStmt: Statement | undefined;

  constructor(
    private readonly store: Store,
    options: OutboxRelayOptions = {},
  ) {
    // an owed message that has to wait gets its row in the transaction that owes it: the settled
    // seq moves past it there and then when nothing else of its source is in hand
    store.onOwedWritten((owedBy, alsoInHand) => {
      const s = this.owed.get(owedBy.source);
      if (!s || alsoInHand || s.inHand.size > 0 || owedBy.seq <= s.through) return;
      this.writeThrough(s, owedBy.seq);
    });
    this.retryBaseMs = options.retryBaseMs ?? 1_000;
    this.retryMaxMs = options.retryMaxMs ?? 5 * 60_000;
    this.batch = Math.max(1, options.batch ?? 200);
    this.maxInFlight = Math.max(1, options.inFlight ?? 1000);
  }

  /** Attaches a transport for a channel (e.g. when the broker connects) and flushes what waits. */
  attach(channel: string, transport: OutboxTransport): void {
    this.transports.set(channel, transport);
    this.wake(true);
  }

  /** Detaches a channel's transport (e.g. broker lost); its messages wait. */
  detach(channel: string): void {
    this.transports.delete(channel);
    this.nudge?.();
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
    this.unsubscribe = this.store.onOutbox(() => this.wake(true));
    const taker: OutboxTaker = {
      // an owed message overtakes nothing (every message of its row is owed): it is taken in hand
      // while rows wait in the table too
      accepts: (channel, already, owedBy) =>
        !this.stopped &&
        this.transports.has(channel) &&
        (owedBy ? this.owed.has(owedBy.source) : !this.backlog) &&
        this.taken.length + already < 10 * this.maxInFlight,
      take: (items) => {
        for (const c of items) {
          if (c.owedBy) this.hold(c);
          this.taken.push(c);
        }
        this.wake(false);
      },
    };
    this.store.takeOutbox(taker);
    this.wake(true);
  }

  async stop(): Promise<void> {
    this.stopped = true;
    this.store.takeOutbox(undefined);
    this.unsubscribe?.();
    if (this.timer) clearTimeout(this.timer);
    if (this.retryTimer) clearTimeout(this.retryTimer);
    this.nudge?.();
    await this.pumping;
    this.release();
  }

  /** Resolves when nothing sendable is pending (for tests and the CLI). */
  async flushed(timeoutMs = 30_000): Promise<void> {
    const until = Date.now() + timeoutMs;
    for (;;) {
      const channels = JSON.stringify([...this.transports.keys()]);
      const n = this.store.db
        .prepare(
          `SELECT count(*) FROM outbox WHERE ${OUTBOX_OPEN} AND ((status = 'pending' AND next_attempt_at <= ? AND channel IN (SELECT value FROM json_each(?))) OR status = 'sending')`,
        )
        .pluck()
        .get(nowIso(), channels) as number;
      if (n === 0 && !this.pumping && this.owedInHand() === 0) return;
      if (Date.now() > until) throw new Error(`outbox not flushed after ${timeoutMs} ms`);
      await new Promise((r) => setTimeout(r, 20));
    }
  }

  list(status: OutboxItem['status'] | undefined, offset: number, limit: number): Page<OutboxItem> {
    const open = status === 'pending' || status === 'sending' || status === 'failed';
    const where = status ? `WHERE ${open ? `${OUTBOX_OPEN} AND ` : ''}status = ?` : '';
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

  /** Messages waiting or being sent: rows, and owed messages in hand. */
  pendingCount(): number {
    return (this.store.db.prepare(`SELECT count(*) FROM outbox WHERE ${OUTBOX_OPEN} AND status IN ('pending','sending')`).pluck().get() as number) + this.owedInHand();
  }

  /** Owed messages in hand on a channel, or on all: being sent, with no row (they get one if they have to wait). */
  owedInHand(channel?: string): number {
    if (channel !== undefined) return this.owedOnChannel.get(channel) ?? 0;
    let n = 0;
    for (const count of this.owedOnChannel.values()) n += count;
    return n;
  }

  /**
   * Registers a source of owed messages (see OwedSource), before the capability commits any: the
   * messages owed by rows past the stored seq (a crash before their confirms) are written as
   * pending rows now, sent again once a transport is attached.
   */
  registerOwed(name: string, source: OwedSource): void {
    if (this.owed.has(name)) throw new Error(`owed messages of '${name}' are registered twice`);
    const key = `outbox.owed.${name}`;
    const through = this.store.transact((tx) => {
      const stored = tx.db.prepare('SELECT value FROM settings WHERE key = ?').pluck().get(key) as string | undefined;
      const latest = source.latest();
      // none stored: a first start, or a data directory from before owed messages, whose every
      // message has a row of its own
      if (stored !== undefined) for (const m of source.owedAfter(Number(stored))) tx.outbox({ ...m, owedBy: undefined });
      tx.db.prepare('INSERT INTO settings (key, value) VALUES (?, ?) ON CONFLICT (key) DO UPDATE SET value = excluded.value').run(key, String(latest));
      return latest;
    });
    this.owed.set(name, { key, source, through, inHand: new Map(), order: [], head: 0 });
    this.wake(true);
  }

  /**
   * Registers a hook told of every cancel and retry (see OutboxChangeHook): a capability whose
   * objects wait on outbox messages keeps them in step (a cancelled dissemination message must
   * not leave the dissemination PENDING for good).
   */
  onChange(hook: OutboxChangeHook): void {
    this.changeHooks.push(hook);
  }

  /** Cancels a message that has not been sent. */
  cancel(id: number): OutboxItem {
    return this.store.transact((tx) => {
      const before = this.requireStatus(id, ['pending', 'failed'], 'cancel');
      tx.db.prepare(`UPDATE outbox SET status = 'cancelled' WHERE id = ?`).run(id);
      return this.changed(tx, id, 'cancelled', before);
    });
  }

  /** Puts a failed, cancelled or waiting message back in the queue, due now. */
  retry(id: number): OutboxItem {
    const item = this.store.transact((tx) => {
      const before = this.requireStatus(id, ['pending', 'failed', 'cancelled'], 'retry');
      tx.db.prepare(`UPDATE outbox SET status = 'pending', next_attempt_at = ?, last_error = NULL WHERE id = ?`).run(nowIso(), id);
      return this.changed(tx, id, 'retried', before);
    });
    this.wake(true);
    return item;
  }

  /** Replaces headers and/or body of a message not yet sent; a hook may refuse the result (nothing is changed). */
  edit(id: number, change: { headers?: Record<string, unknown>; body?: string }): OutboxItem {
    return this.store.transact((tx) => {
      const before = this.requireStatus(id, ['pending', 'failed', 'cancelled'], 'edit');
      const current = this.get(id);
      tx.db.prepare(`UPDATE outbox SET headers = ?, body = ? WHERE id = ?`).run(JSON.stringify(change.headers ?? current.headers), change.body ?? current.body, id);
      return this.changed(tx, id, 'edited', before);
    });
  }

  private requireStatus(id: number, allowed: OutboxItem['status'][], action: string): OutboxItem['status'] {
    const item = this.get(id);
    if (!allowed.includes(item.status)) {
      throw new FondsError('CONFLICT', `Cannot ${action} outbox message ${id}: it is ${item.status}.`, { status: item.status });
    }
    return item.status;
  }

  /** The message after a person's change, once every hook has seen it (in the change's transaction). */
  private changed(tx: Tx, id: number, change: OutboxChange, before: OutboxItem['status']): OutboxItem {
    const item = this.get(id);
    for (const hook of this.changeHooks) hook(tx, item, change, before);
    return item;
  }

  /** Runs the pump (or tells the running one); `fromTable`: rows may wait as 'pending' in the table. */
  private wake(fromTable: boolean): void {
    if (fromTable) this.backlog = true;
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
        this.wake(false);
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
    this.timer = setTimeout(() => this.wake(true), delay);
    this.timer.unref();
  }

  /** Failed sends come back after their backoff, even while the pump keeps running on new messages. */
  private retryIn(delayMs: number): void {
    if (this.stopped) return;
    const at = Date.now() + delayMs;
    if (this.retryTimer && this.retryAt <= at) return;
    if (this.retryTimer) clearTimeout(this.retryTimer);
    this.retryAt = at;
    this.retryTimer = setTimeout(() => {
      this.retryTimer = undefined;
      this.wake(true);
    }, delayMs);
    this.retryTimer.unref();
  }

  /**
   * Messages taken in hand and not sent (stopped, or their transport went away) wait in the table
   * again: rows go back to 'pending', owed messages are written as pending rows. `rowsOnly`: owed
   * messages stay in hand (rows wait in the table: they must not overtake them, owed ones may).
   */
  private release(rowsOnly = false): void {
    const held = this.taken;
    const rows = held.filter((c) => !c.owedBy);
    const owed = rowsOnly ? [] : held.filter((c) => c.owedBy);
    if (!rows.length && !owed.length) return;
    this.taken = rowsOnly ? held.filter((c) => c.owedBy) : [];
    const release = (this.releaseStmt ??= this.store.db.prepare(`UPDATE outbox SET status = 'pending' WHERE id IN (SELECT value FROM json_each(?)) AND status = 'sending'`));
    this.store.db.transaction(() => {
      if (rows.length) release.run(JSON.stringify(rows.map((c) => c.item.id)));
      for (const c of owed) this.writeOwed(c, 'pending', c.item.attempts, null, nowIso());
      if (owed.length) this.advanceOwed();
    })();
    this.store.wrote();
    this.backlog = true;
  }

  /** An owed message taken in hand. */
  private hold(c: Claimed): void {
    const s = this.owed.get(c.owedBy!.source)!;
    const seq = c.owedBy!.seq;
    const n = s.inHand.get(seq);
    if (n === undefined) s.order.push(seq);
    s.inHand.set(seq, (n ?? 0) + 1);
    this.owedOnChannel.set(c.item.channel, (this.owedOnChannel.get(c.item.channel) ?? 0) + 1);
    c.ordinal = ++this.ordinal;
  }

  /** An owed message settled: confirmed, or written as a row. */
  private settleOwed(c: Claimed): void {
    const s = this.owed.get(c.owedBy!.source)!;
    const seq = c.owedBy!.seq;
    const n = s.inHand.get(seq)! - 1;
    if (n === 0) s.inHand.delete(seq);
    else s.inHand.set(seq, n);
    this.owedOnChannel.set(c.item.channel, this.owedOnChannel.get(c.item.channel)! - 1);
  }

  /** Writes an owed message as a row of its own (it has to wait), as it was when taken. */
  private writeOwed(c: Claimed, status: 'pending' | 'failed', attempts: number, lastError: string | null, nextAttemptAt: string): void {
    const write = (this.owedStmt ??= this.store.db.prepare(
      `INSERT INTO outbox (channel, destination, headers, body, priority, object_kind, object_id, max_attempts, created_at, next_attempt_at, status, attempts, last_error)
       VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
    ));
    const m = c.item;
    write.run(m.channel, m.destination, JSON.stringify(m.headers), m.body, c.priority, m.objectKind ?? null, m.objectId ?? null, c.maxAttempts, m.createdAt, nextAttemptAt, status, attempts, lastError);
    this.settleOwed(c);
  }

  /** Moves each source's settled seq past what is settled and stores it (inside the caller's transaction). */
  private advanceOwed(): void {
    for (const s of this.owed.values()) {
      while (s.head < s.order.length && !s.inHand.has(s.order[s.head])) s.head++;
      if (s.head > 1024 && s.head * 2 > s.order.length) {
        s.order = s.order.slice(s.head);
        s.head = 0;
      }
      // nothing in hand: every row committed so far has had its messages confirmed or written
      const through = s.head < s.order.length ? s.order[s.head] - 1 : s.source.latest();
      if (through > s.through) this.writeThrough(s, through);
    }
  }

  /** Stores a source's settled seq (inside the caller's transaction). */
  private writeThrough(s: OwedState, through: number): void {
    (this.throughStmt ??= this.store.db.prepare('UPDATE settings SET value = ? WHERE key = ?')).run(String(through), s.key);
    s.through = through;
  }

  /**
   * Sends what is due, pipelined: up to `inFlight` messages wait for their confirms at once (a
   * confirm takes a broker round trip and a disk sync: waiting for each batch before sending the
   * next would cap the rate at one batch per sync). Messages come from the hand-off or are claimed
   * `batch` at a time from the table; outcomes are recorded together, one transaction per round
   * of confirms. A row is marked sent only after its transport confirmed it.
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
      `UPDATE outbox SET status = 'sent', sent_at = ?, attempts = attempts + 1, last_error = NULL WHERE id IN (SELECT value FROM json_each(?)) AND status = 'sending'`,
    ));
    const markFailed = (this.failedStmt ??= db.prepare(
      `UPDATE outbox SET status = ?, attempts = ?, last_error = ?, next_attempt_at = ? WHERE id = ? AND status = 'sending'`,
    ));
    let inFlight = 0;
    let settled: Array<{ c: Claimed; failed: boolean; error?: unknown }> = [];
    let resume: (() => void) | undefined;
    const settle = (c: Claimed, failed: boolean, error?: unknown) => {
      settled.push({ c, failed, error });
      inFlight--;
      resume?.();
    };
    let recordedAt = Date.now();
    /**
     * Outcomes are written in batches (a transaction per confirm would be hundreds per second):
     * when enough have settled, when a while has passed, or when nothing is in flight. A crash
     * in between sends those messages again, as a crash before the confirm would (at-least-once).
     */
    const due = () => settled.length >= this.batch || inFlight === 0 || Date.now() - recordedAt >= 100;
    const record = () => {
      if (!settled.length) return;
      recordedAt = Date.now();
      const outcomes = settled;
      settled = [];
      const now = nowIso();
      let retryMs = Infinity;
      // owed messages that failed get their rows in the order they were taken (GRANTED before SUCCESS)
      if (outcomes.some((o) => o.failed && o.c.owedBy)) outcomes.sort((a, b) => (a.c.ordinal ?? 0) - (b.c.ordinal ?? 0));
      let owed = false;
      db.transaction(() => {
        const sent: number[] = [];
        for (const { c, failed, error } of outcomes) {
          if (c.owedBy) owed = true;
          if (!failed) {
            if (c.owedBy) this.settleOwed(c);
            else sent.push(c.item.id);
            continue;
          }
          const attempts = c.item.attempts + 1;
          const giveUp = c.maxAttempts > 0 && attempts >= c.maxAttempts;
          const delay = Math.min(this.retryBaseMs * 2 ** Math.min(attempts - 1, 20), this.retryMaxMs);
          if (!giveUp) retryMs = Math.min(retryMs, delay);
          const why = error instanceof Error ? error.message : String(error ?? 'refused');
          const next = new Date(Date.now() + delay).toISOString();
          if (c.owedBy) this.writeOwed(c, giveUp ? 'failed' : 'pending', attempts, why, next);
          else markFailed.run(giveUp ? 'failed' : 'pending', attempts, why, next, c.item.id);
        }
        if (sent.length) markSent.run(now, JSON.stringify(sent));
        if (owed) this.advanceOwed();
      })();
      this.store.wrote();
      if (retryMs !== Infinity) this.retryIn(retryMs);
    };
    const pause = () =>
      new Promise<void>((resolve) => {
        resume = resolve;
        this.nudge = resolve;
      }).finally(() => {
        resume = undefined;
        this.nudge = undefined;
      });
    const send = (c: Claimed) => {
      inFlight++;
      const transport = this.transports.get(c.item.channel);
      if (!transport) {
        settle(c, true, new Error(`no transport for channel ${c.item.channel}`));
        return;
      }
      let called = false;
      try {
        transport.send(c.item, (error) => {
          if (called) return;
          called = true;
          settle(c, error !== undefined && error !== null, error);
        });
      } catch (err) {
        if (!called) {
          called = true;
          settle(c, true, err);
        }
      }
    };
    try {
      while (!this.stopped && this.transports.size > 0) {
        if (due()) record();
        const room = this.maxInFlight - inFlight;
        let sentSome = false;
        if (this.backlog && room >= Math.min(this.batch, this.maxInFlight)) {
          // older rows first; new ones wait in the table (not taken in hand) until none is left
          if (this.taken.length) this.release(true);
          const limit = Math.min(room, this.batch);
          const rows = claim.all(nowIso(), JSON.stringify([...this.transports.keys()]), limit) as OutboxRow[];
          if (rows.length < limit) this.backlog = false;
          rows.sort((a, b) => b.priority - a.priority || a.id - b.id);
          for (const row of rows) send(claimedOf(row));
          sentSome = rows.length > 0;
        } else if (!this.backlog && room > 0 && this.taken.length) {
          const batch = this.taken.splice(0, room);
          for (const c of batch) {
            // taken while its transport was attached; gone since: back to the table
            if (!this.transports.has(c.item.channel)) this.taken.push(c);
            else send(c);
          }
          if (this.taken.length && this.taken.every((c) => !this.transports.has(c.item.channel))) this.release();
          sentSome = true;
        }
        if (!sentSome && inFlight === 0 && !this.taken.length && !this.backlog) return;
        // room left and more to send: go on at once; otherwise wait for confirms (or new rows)
        if (!sentSome || this.maxInFlight - inFlight < Math.min(this.batch, this.maxInFlight)) await pause();
      }
    } finally {
      // stopped, or the transport went away: what was sent still settles and is recorded
      while (inFlight > 0) await pause();
      record();
      if (this.transports.size === 0) this.release();
    }
  }
}
