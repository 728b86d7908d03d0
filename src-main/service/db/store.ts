import { EventEmitter } from 'node:events';
import type { FondsEvent, ObjectKind, OutboxItem, ProgressEvent, Pushed } from '../../../src-shared/api';
import type { DB } from './database';

export interface NewEvent {
  kind: ObjectKind;
  objectId: string;
  type: string;
  payload?: Record<string, unknown>;
}

export interface NewJob {
  kind: string;
  payload?: Record<string, unknown>;
  objectKind?: ObjectKind;
  objectId?: string;
  /** higher runs first */
  priority?: number;
  runAt?: Date;
  maxAttempts?: number;
}

export interface NewOutboxMessage {
  channel: string;
  destination: string;
  headers?: Record<string, unknown>;
  body: string;
  priority?: number;
  objectKind?: ObjectKind;
  objectId?: string;
  /** 0 = retry forever (until cancelled) */
  maxAttempts?: number;
  /**
   * Owed by a row its capability commits in the same transaction (see `OwedSource` in outbox.ts):
   * while the relay takes it in hand at once, no outbox row is written for it; it gets one only
   * if it has to wait (no transport, a refusal, a stop).
   */
  owedBy?: Owed;
}

/** Which row owes a message: `seq` orders the rows of `source` (see `OwedSource`). */
export interface Owed {
  source: string;
  seq: number;
}

/**
 * Takes outbox messages in hand as they are written: a message it accepts is inserted as
 * 'sending' and given to it right after the commit, so that it need not be read back (the outbox
 * relay, while its transport is attached and nothing older waits).
 */
export interface OutboxTaker {
  /**
   * may a message on `channel` be taken in hand? `already` are taken in the open transaction;
   * `owedBy`: the row that owes the message (it overtakes nothing: every message of that row is owed)
   */
  accepts(channel: string, already: number, owedBy: Owed | undefined): boolean;
  /** the messages taken, committed (in insertion order) */
  take(items: TakenMessage[]): void;
}

/**
 * Told, inside the transaction, that a message owed by a row was written as an outbox row (nobody
 * could take it in hand); `alsoInHand`: messages owed by rows of the same source are taken in hand
 * in this transaction.
 */
export type OwedWritten = (owedBy: Owed, alsoInHand: boolean) => void;

/**
 * An outbox message handed over after its commit, as `rowToOutboxItem` would read it back; an
 * owed message has no row (its item's id is 0) and says which row owes it.
 */
export interface TakenMessage {
  item: OutboxItem;
  priority: number;
  maxAttempts: number;
  owedBy?: Owed;
}

/** What a transaction may do besides plain SQL: append events, enqueue jobs, queue messages. */
export interface Tx {
  db: DB;
  event(e: NewEvent): FondsEvent;
  enqueue(job: NewJob): number;
  outbox(msg: NewOutboxMessage): number;
}

let lastMs = -1;
let lastIso = '';
/** The current time as ISO 8601 (formatted once a millisecond: a window of requests asks thousands of times). */
export const nowIso = (): string => {
  const ms = Date.now();
  if (ms !== lastMs) {
    lastMs = ms;
    lastIso = new Date(ms).toISOString();
  }
  return lastIso;
};

/** Header values as a JSON round trip would give them back (plain values copied as they are). */
function asStored(headers: Record<string, unknown>): Record<string, unknown> {
  for (const k in headers) {
    const v = headers[k];
    if (typeof v !== 'string' && typeof v !== 'boolean' && !(typeof v === 'number' && Number.isFinite(v))) return JSON.parse(JSON.stringify(headers));
  }
  return { ...headers };
}

/**
 * SQLite is the source of truth. Every state change goes through `transact`, which writes the
 * change, its event rows, its jobs and its outbox rows in ONE transaction, and only after the
 * commit tells subscribers, wakes the job workers and the outbox relay.
 */
export class Store {
  readonly db: DB;
  private readonly bus = new EventEmitter();
  private depth = 0;
  private pending: { events: FondsEvent[]; jobs: number; outbox: number; taken: TakenMessage[] } = { events: [], jobs: 0, outbox: 0, taken: [] };
  private taker: OutboxTaker | undefined;
  private owedWritten: OwedWritten | undefined;
  private readonly insertEvent;
  private readonly insertJob;
  private readonly insertOutbox;
  private readonly insertTaken;
  /** told after every commit (the WAL checkpointer) */
  private readonly writeHooks: Array<() => void> = [];

  constructor(db: DB) {
    this.db = db;
    this.bus.setMaxListeners(0);
    this.insertEvent = db.prepare(
      'INSERT INTO events (kind, object_id, type, time, payload) VALUES (?, ?, ?, ?, ?)',
    );
    this.insertJob = db.prepare(
      `INSERT INTO jobs (kind, payload, object_kind, object_id, priority, run_at, max_attempts, created_at, updated_at)
       VALUES (@kind, @payload, @objectKind, @objectId, @priority, @runAt, @maxAttempts, @now, @now) RETURNING id`,
    );
    // positional parameters (binding by name costs a lookup a parameter: ~1.5 µs a row here)
    const outboxColumns = 'channel, destination, headers, body, priority, object_kind, object_id, max_attempts, created_at, next_attempt_at';
    this.insertOutbox = db.prepare(`INSERT INTO outbox (${outboxColumns}) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`);
    this.insertTaken = db.prepare(`INSERT INTO outbox (${outboxColumns}, status) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, 'sending')`);
  }

  /** Runs `fn` in one transaction; nested calls join the outer one. */
  transact<T>(fn: (tx: Tx) => T): T {
    const tx: Tx = {
      db: this.db,
      event: (e) => this.appendEvent(e),
      enqueue: (j) => this.appendJob(j),
      outbox: (m) => this.appendOutbox(m),
    };
    if (this.depth > 0) return fn(tx);
    this.depth++;
    let result: T;
    try {
      result = this.db.transaction(() => fn(tx))();
    } catch (err) {
      this.pending = { events: [], jobs: 0, outbox: 0, taken: [] };
      throw err;
    } finally {
      this.depth--;
    }
    const { events, jobs, outbox, taken } = this.pending;
    this.pending = { events: [], jobs: 0, outbox: 0, taken: [] };
    this.wrote();
    // the taker first: a listener below may throw, the messages are committed as 'sending'
    if (taken.length) this.taker?.take(taken);
    for (const event of events) this.bus.emit('pushed', { channel: 'event', event } satisfies Pushed);
    if (jobs) this.bus.emit('jobs');
    if (outbox > taken.length) this.bus.emit('outbox');
    return result;
  }

  /** Something was committed outside `transact` (the outbox relay's bookkeeping): tells the write hooks. */
  wrote(): void {
    for (const hook of this.writeHooks) hook();
  }

  onWrite(hook: () => void): void {
    this.writeHooks.push(hook);
  }

  /** Transient progress: pushed to subscribers, not written row by row. */
  progress(p: ProgressEvent): void {
    this.bus.emit('pushed', { channel: 'progress', progress: p } satisfies Pushed);
  }

  subscribe(listener: (p: Pushed) => void): () => void {
    this.bus.on('pushed', listener);
    return () => this.bus.off('pushed', listener);
  }

  onJobs(listener: () => void): () => void {
    this.bus.on('jobs', listener);
    return () => this.bus.off('jobs', listener);
  }

  /** Sets who takes outbox messages in hand as they are written (see OutboxTaker); undefined: nobody. */
  takeOutbox(taker: OutboxTaker | undefined): void {
    this.taker = taker;
  }

  /** Sets who is told, inside the transaction, of an owed message written as a row (see OwedWritten). */
  onOwedWritten(hook: OwedWritten | undefined): void {
    this.owedWritten = hook;
  }

  /** Told after a commit that wrote outbox messages nobody took in hand (they wait as 'pending'). */
  onOutbox(listener: () => void): () => void {
    this.bus.on('outbox', listener);
    return () => this.bus.off('outbox', listener);
  }

  private requireTx(what: string): void {
    if (this.depth === 0) throw new Error(`${what} must be written inside Store.transact`);
  }

  private appendEvent(e: NewEvent): FondsEvent {
    this.requireTx('an event');
    const time = nowIso();
    const payload = e.payload ?? {};
    const seq = Number(this.insertEvent.run(e.kind, e.objectId, e.type, time, JSON.stringify(payload)).lastInsertRowid);
    const event: FondsEvent = { seq, kind: e.kind, objectId: e.objectId, type: e.type, time, payload };
    this.pending.events.push(event);
    return event;
  }

  private appendJob(j: NewJob): number {
    this.requireTx('a job');
    const now = nowIso();
    const jobId = this.insertJob.pluck().get({
      kind: j.kind,
      payload: JSON.stringify(j.payload ?? {}),
      objectKind: j.objectKind ?? null,
      objectId: j.objectId ?? null,
      priority: j.priority ?? 0,
      runAt: (j.runAt ?? new Date()).toISOString(),
      maxAttempts: j.maxAttempts ?? 5,
      now,
    }) as number;
    this.pending.jobs++;
    return jobId;
  }

  /** Writes the message's row, or takes it in hand without one when it is owed; its id (0: no row). */
  private appendOutbox(m: NewOutboxMessage): number {
    this.requireTx('an outbox message');
    const owedBy = m.owedBy;
    const take = this.taker?.accepts(m.channel, this.pending.taken.length, owedBy) ?? false;
    const now = nowIso();
    const priority = m.priority ?? 0;
    const maxAttempts = m.maxAttempts ?? 0;
    // an owed message taken in hand has no row: the row that owes it is its record until the
    // relay has it confirmed, or writes its row because it has to wait
    const id =
      take && owedBy
        ? 0
        : Number(
            (take ? this.insertTaken : this.insertOutbox).run(m.channel, m.destination, JSON.stringify(m.headers ?? {}), m.body, priority, m.objectKind ?? null, m.objectId ?? null, maxAttempts, now, now)
              .lastInsertRowid,
          );
    this.pending.outbox++;
    if (owedBy && !take) this.owedWritten?.(owedBy, this.pending.taken.some((t) => t.owedBy?.source === owedBy.source));
    if (take) {
      this.pending.taken.push({
        // as read back from the row: headers through JSON, optional fields only when set
        item: {
          id,
          channel: m.channel,
          destination: m.destination,
          headers: asStored(m.headers ?? {}),
          body: m.body,
          status: 'sending',
          attempts: 0,
          createdAt: now,
          nextAttemptAt: now,
          ...(m.objectKind ? { objectKind: m.objectKind } : {}),
          ...(m.objectId ? { objectId: m.objectId } : {}),
        },
        priority,
        maxAttempts,
        ...(owedBy ? { owedBy } : {}),
      });
    }
    return id;
  }
}

interface EventRow {
  seq: number;
  kind: ObjectKind;
  object_id: string;
  type: string;
  time: string;
  payload: string;
}

export function rowToEvent(r: EventRow): FondsEvent {
  return { seq: r.seq, kind: r.kind, objectId: r.object_id, type: r.type, time: r.time, payload: JSON.parse(r.payload) };
}

/**
 * The SQL condition `column = value` written for an index on `substr(column, -16)`: SQLite uses an
 * expression index only for the very same expression, so the condition names the tails first,
 * then the whole values sort out those that share a tail. `column` and `value` are SQL expressions
 * (a column, a named parameter, a column of a joined table); the value appears twice, so a
 * positional `?` is bound twice.
 * Such an index takes an entry of ~25 bytes where the value itself may be ~90 (ids and URNs are
 * mostly random: every entry lands on a random page, so a smaller index means fewer pages written
 * at each commit).
 */
export function tailEquals(column: string, value: string): string {
  return `substr(${column}, -16) = substr(${value}, -16) AND ${column} = ${value}`;
}

/**
 * The SQL condition "events of this object", for the index `events_object_tail` (core/003), on the
 * last 16 characters of each object id (see tailEquals); kind and the whole id sort out ids that
 * share a tail. `kind` and `objectId` are SQL expressions; `e` is the events table's alias with its
 * dot.
 */
export function eventsOfObject(kind: string, objectId: string, e = ''): string {
  return `${tailEquals(`${e}object_id`, objectId)} AND ${e}kind = ${kind}`;
}

/** A timeline: the events of one object, newest first, paged. */
export function timeline(db: DB, kind: ObjectKind, objectId: string, offset: number, limit: number) {
  const of = eventsOfObject('@kind', '@objectId');
  const total = db.prepare(`SELECT count(*) FROM events WHERE ${of}`).pluck().get({ kind, objectId }) as number;
  const rows = db.prepare(`SELECT * FROM events WHERE ${of} ORDER BY seq DESC LIMIT @limit OFFSET @offset`).all({ kind, objectId, limit, offset }) as EventRow[];
  return { items: rows.map(rowToEvent), total, offset };
}
