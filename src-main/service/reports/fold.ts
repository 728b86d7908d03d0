/**
 * Folding the event log into report rows, in two streaming passes and bounded memory.
 *
 * Pass 1 (`foldDisseminations`) reads the `dissemination` events in seq order, in keyset pages
 * (never an iterator held open across an await: the service shares its connection), and keeps for
 * each dissemination requested in the period and matching the filters only a few numbers in
 * typed-array columns (status, dates as epoch ms, bytes, attempts, the seq of its `requested`
 * event and of its last failure). Pass 2 (`reportRows`) walks those columns in request order and
 * fetches the strings (URN, names, last error) back by seq, a batch at a time, so rows go to the
 * writer as they are made and no document is ever held in memory.
 *
 * Events are append-only, so reading up to the `max(seq)` seen at the start is a consistent
 * snapshot however long the export takes.
 */
import {
  AckSources,
  DisseminationEventTypes as T,
  DisseminationStatuses,
  FixityOutcomes,
  type AckSource,
  type FixityOutcome,
  type ReportRow,
} from '../../../src-shared/domain/dissemination';
import type { ReportFilters, ReportSummary, ReportTimeline, StatusCounts } from '../../../src-shared/domain/report';
import { FondsError } from '../../../src-shared/errors';
import type { Statement } from 'better-sqlite3';
import type { DB } from '../db/database';

const PENDING = 0;
const WAITING_ACK = 1;
const DONE = 2;
const FAILED = 3;
const AUTO = AckSources.indexOf('auto');

/** events read per page in pass 1; strings fetched per batch in pass 2 */
const PAGE = 4000;
export const ROW_BATCH = 500;

/** The period as epoch ms and ISO bounds (whole UTC days, both included). */
export function periodOf(filters: Pick<ReportFilters, 'from' | 'to'>): { fromIso?: string; toIso?: string; fromMs: number; toMs: number } {
  const fromIso = filters.from ? `${filters.from}T00:00:00.000Z` : undefined;
  const toIso = filters.to ? `${filters.to}T23:59:59.999Z` : undefined;
  return { fromIso, toIso, fromMs: fromIso ? Date.parse(fromIso) : -Infinity, toMs: toIso ? Date.parse(toIso) : Infinity };
}

/** Growable struct-of-arrays: one slot per dissemination, in request order. */
class Columns {
  size = 0;
  requestedSeq = new Float64Array(1024);
  requestedAt = new Float64Array(1024);
  sentAt = new Float64Array(1024);
  ackAt = new Float64Array(1024);
  bytes = new Float64Array(1024);
  files = new Float64Array(1024);
  lastErrorSeq = new Float64Array(1024);
  attempts = new Int32Array(1024);
  recipient = new Int32Array(1024);
  status = new Uint8Array(1024);
  ackRequired = new Uint8Array(1024);
  /** index in AckSources + 1; 0 = none */
  ackVia = new Uint8Array(1024);
  /** index in FixityOutcomes + 1; 0 = none */
  fixity = new Uint8Array(1024);

  add(): number {
    if (this.size === this.status.length) this.grow(this.size * 2);
    const i = this.size++;
    this.sentAt[i] = NaN;
    this.ackAt[i] = NaN;
    return i;
  }

  private grow(n: number): void {
    for (const key of ['requestedSeq', 'requestedAt', 'sentAt', 'ackAt', 'bytes', 'files', 'lastErrorSeq', 'attempts', 'recipient', 'status', 'ackRequired', 'ackVia', 'fixity'] as const) {
      const old = this[key];
      const next = new (old.constructor as new (n: number) => typeof old)(n);
      next.set(old as never);
      (this as Record<string, unknown>)[key] = next;
    }
  }
}

export interface Fold {
  filters: ReportFilters;
  generatedAt: string;
  /** the snapshot: events up to this seq */
  maxSeq: number;
  cols: Columns;
  recipients: string[];
  /** slots that pass the status filter */
  total: number;
}

export interface FoldOptions {
  signal?: AbortSignal;
  /** called after each page with the events read so far */
  onPage?: (eventsRead: number) => void;
}

interface EventRow {
  seq: number;
  object_id: string;
  type: string;
  time: string;
  payload: string;
}

const tick = () => new Promise<void>((resolve) => setImmediate(resolve));

function checkAbort(signal?: AbortSignal): void {
  if (signal?.aborted) throw new FondsError('CANCELLED', 'The report was cancelled (the client went away or the export was stopped).');
}

/** Pass 1: the final state of every dissemination in the report, in compact columns. */
export async function foldDisseminations(db: DB, filters: ReportFilters, opts: FoldOptions = {}): Promise<Fold> {
  const generatedAt = new Date().toISOString();
  const { fromIso, toIso, fromMs, toMs } = periodOf(filters);
  const maxSeq = (db.prepare('SELECT coalesce(max(seq), 0) FROM events').pluck().get() as number) ?? 0;
  // the events_time index narrows the seq range to the period: a dissemination requested in the
  // period has all its events at or after its request, and only events up to the end count
  let after = 0;
  if (fromIso) {
    const first = db.prepare('SELECT min(seq) FROM events WHERE time >= ?').pluck().get(fromIso) as number | null;
    after = first === null ? maxSeq : first - 1;
  }
  let until = maxSeq;
  if (toIso) {
    const last = db.prepare('SELECT max(seq) FROM events WHERE time <= ?').pluck().get(toIso) as number | null;
    until = Math.min(maxSeq, last ?? 0);
  }

  const recipientsWanted = filters.recipients.length ? new Set(filters.recipients) : undefined;
  const urnsWanted = filters.urns.length ? new Set(filters.urns) : undefined;
  const cols = new Columns();
  const slots = new Map<string, number>();
  const recipientIndex = new Map<string, number>();
  const recipients: string[] = [];
  const page = db.prepare(`SELECT seq, object_id, type, time, payload FROM events WHERE kind = 'dissemination' AND seq > ? AND seq <= ? ORDER BY seq LIMIT ${PAGE}`);
  let read = 0;

  for (;;) {
    const rows = page.all(after, until) as EventRow[];
    if (!rows.length) break;
    after = rows[rows.length - 1].seq;
    read += rows.length;
    for (const e of rows) {
      if (toIso && e.time > toIso) continue;
      if (e.type === T.requested) {
        if (slots.has(e.object_id)) continue;
        const at = Date.parse(e.time);
        if (at < fromMs || at > toMs) continue;
        const p = parse(e);
        const label = str(p.recipientLabel);
        const urn = str(p.urn);
        if (recipientsWanted && !recipientsWanted.has(label)) continue;
        if (urnsWanted && !urnsWanted.has(urn)) continue;
        if (filters.urnPrefix && !urn.startsWith(filters.urnPrefix)) continue;
        if (filters.tenant && str(p.tenant) !== filters.tenant) continue;
        const i = cols.add();
        slots.set(e.object_id, i);
        let r = recipientIndex.get(label);
        if (r === undefined) {
          r = recipients.push(label) - 1;
          recipientIndex.set(label, r);
        }
        cols.recipient[i] = r;
        cols.requestedSeq[i] = e.seq;
        cols.requestedAt[i] = at;
        cols.ackRequired[i] = p.ackRequired === true ? 1 : 0;
        cols.status[i] = PENDING;
        continue;
      }
      const i = slots.get(e.object_id);
      if (i === undefined) continue;
      apply(cols, i, e, parse(e));
    }
    opts.onPage?.(read);
    checkAbort(opts.signal);
    await tick();
    checkAbort(opts.signal);
  }

  const wanted = statusFilter(filters);
  let total = 0;
  for (let i = 0; i < cols.size; i++) if (wanted[cols.status[i]]) total++;
  return { filters, generatedAt, maxSeq, cols, recipients, total };
}

function parse(e: EventRow): Record<string, unknown> {
  try {
    const p = JSON.parse(e.payload);
    return p && typeof p === 'object' ? p : {};
  } catch {
    return {};
  }
}

const str = (v: unknown): string => (typeof v === 'string' ? v : '');
const num = (v: unknown): number => (typeof v === 'number' && Number.isFinite(v) ? v : 0);

/** One event's effect, as the dissemination capability applies it (see dissemination/records.ts). */
function apply(c: Columns, i: number, e: EventRow, p: Record<string, unknown>): void {
  const at = Date.parse(e.time);
  switch (e.type) {
    case T.sent: {
      c.sentAt[i] = at;
      c.bytes[i] = num(p.bytes);
      c.files[i] = num(p.files);
      const f = FixityOutcomes.indexOf(p.fixity as FixityOutcome);
      c.fixity[i] = f + 1;
      c.attempts[i] = Math.max(c.attempts[i], num(p.attempt) || 1);
      if (!Number.isNaN(c.ackAt[i])) c.status[i] = DONE; // the acknowledgement came before the delivery was recorded
      else if (c.ackRequired[i]) c.status[i] = WAITING_ACK;
      else {
        // no acknowledgement required: REGARDS' ackDate = requestDate (the 'auto' event follows)
        c.status[i] = DONE;
        c.ackAt[i] = c.requestedAt[i];
        c.ackVia[i] = AUTO + 1;
      }
      break;
    }
    case T.failed:
      c.attempts[i] = Math.max(c.attempts[i], num(p.attempt) || c.attempts[i] + 1);
      c.lastErrorSeq[i] = e.seq;
      if (p.final === true) c.status[i] = FAILED;
      break;
    case T.retried:
      if (c.status[i] === FAILED) c.status[i] = PENDING;
      break;
    case T.acknowledged: {
      const via = AckSources.indexOf(p.via as AckSource);
      c.ackVia[i] = via + 1;
      c.ackAt[i] = via === AUTO ? c.requestedAt[i] : at;
      // an acknowledgement of an undelivered dissemination waits for the delivery, unless given by hand
      if (c.status[i] !== PENDING || p.undelivered === true) c.status[i] = DONE;
      break;
    }
    default:
      break; // destination-damaged and other notes do not change a row
  }
}

function statusFilter(filters: ReportFilters): boolean[] {
  if (!filters.statuses.length) return [true, true, true, true];
  return DisseminationStatuses.map((s) => filters.statuses.includes(s));
}

const zeroCounts = (): StatusCounts => ({ PENDING: 0, WAITING_ACK: 0, DONE: 0, FAILED: 0 });

/** The summary, from the columns alone (no query). */
export function summarize(fold: Fold): ReportSummary {
  const { cols, recipients } = fold;
  const wanted = statusFilter(fold.filters);
  const byStatus = zeroCounts();
  const perRecipient = recipients.map((recipientLabel) => ({ recipientLabel, total: 0, byStatus: zeroCounts(), bytes: 0 }));
  const durations = new Float64Array(fold.total);
  let acked = 0;
  let totalBytes = 0;
  let totalFiles = 0;
  let first = Infinity;
  let last = -Infinity;
  for (let i = 0; i < cols.size; i++) {
    const s = cols.status[i];
    if (!wanted[s]) continue;
    const status = DisseminationStatuses[s];
    byStatus[status]++;
    const r = perRecipient[cols.recipient[i]];
    r.total++;
    r.byStatus[status]++;
    r.bytes += cols.bytes[i];
    totalBytes += cols.bytes[i];
    totalFiles += cols.files[i];
    first = Math.min(first, cols.requestedAt[i]);
    last = Math.max(last, cols.requestedAt[i]);
    if (!Number.isNaN(cols.ackAt[i]) && cols.ackVia[i] !== AUTO + 1 && cols.ackVia[i] !== 0) durations[acked++] = Math.max(0, cols.ackAt[i] - cols.requestedAt[i]);
  }
  const sorted = durations.subarray(0, acked).sort();
  const median = acked === 0 ? null : acked % 2 ? sorted[(acked - 1) / 2] : (sorted[acked / 2 - 1] + sorted[acked / 2]) / 2;
  const p95 = acked === 0 ? null : sorted[Math.ceil(0.95 * acked) - 1];
  return {
    total: fold.total,
    byStatus,
    byRecipient: perRecipient.filter((r) => r.total > 0).sort((a, b) => b.total - a.total || a.recipientLabel.localeCompare(b.recipientLabel)),
    totalBytes,
    totalFiles,
    firstRequestedAt: fold.total ? new Date(first).toISOString() : null,
    lastRequestedAt: fold.total ? new Date(last).toISOString() : null,
    timeToAck: { count: acked, medianMs: median, p95Ms: p95 },
    timeline: timeline(fold, wanted, first, last),
  };
}

/** Buckets small enough for a readable chart: days up to two months, weeks up to a year, then months, then years. */
function timeline(fold: Fold, wanted: boolean[], first: number, last: number): ReportTimeline {
  const { fromMs, toMs } = periodOf(fold.filters);
  const start = Number.isFinite(fromMs) ? fromMs : first;
  const end = Number.isFinite(toMs) ? toMs : last;
  if (!Number.isFinite(start) || !Number.isFinite(end)) return { unit: 'day', buckets: [] };
  const days = (end - start) / 86_400_000;
  const unit: ReportTimeline['unit'] = days <= 62 ? 'day' : days <= 366 ? 'week' : days <= 366 * 6 ? 'month' : 'year';
  const floor = (ms: number): number => {
    const d = new Date(ms);
    if (unit === 'day') return Date.UTC(d.getUTCFullYear(), d.getUTCMonth(), d.getUTCDate());
    if (unit === 'week') return Date.UTC(d.getUTCFullYear(), d.getUTCMonth(), d.getUTCDate() - ((d.getUTCDay() + 6) % 7));
    if (unit === 'month') return Date.UTC(d.getUTCFullYear(), d.getUTCMonth(), 1);
    return Date.UTC(d.getUTCFullYear(), 0, 1);
  };
  const next = (ms: number): number => {
    const d = new Date(ms);
    if (unit === 'day') return ms + 86_400_000;
    if (unit === 'week') return ms + 7 * 86_400_000;
    if (unit === 'month') return Date.UTC(d.getUTCFullYear(), d.getUTCMonth() + 1, 1);
    return Date.UTC(d.getUTCFullYear() + 1, 0, 1);
  };
  const buckets: ReportTimeline['buckets'] = [];
  const index = new Map<number, number>();
  for (let b = floor(start); b <= end; b = next(b)) {
    index.set(b, buckets.length);
    buckets.push({ start: new Date(b).toISOString().slice(0, 10), total: 0, byStatus: zeroCounts() });
  }
  const { cols } = fold;
  for (let i = 0; i < cols.size; i++) {
    if (!wanted[cols.status[i]]) continue;
    const k = index.get(floor(cols.requestedAt[i]));
    if (k === undefined) continue;
    buckets[k].total++;
    buckets[k].byStatus[DisseminationStatuses[cols.status[i]]]++;
  }
  return { unit, buckets };
}

const iso = (ms: number): string | null => (Number.isNaN(ms) ? null : new Date(ms).toISOString());

/**
 * Pass 2: the rows in request order, `ROW_BATCH` at a time, their strings read back by seq.
 * Stops after `limit` rows when given.
 */
export async function* reportRows(db: DB, fold: Fold, opts: { limit?: number; signal?: AbortSignal } = {}): AsyncGenerator<ReportRow[]> {
  const { cols, recipients } = fold;
  const wanted = statusFilter(fold.filters);
  const limit = opts.limit ?? Infinity;
  const statements = new Map<number, Statement<unknown[]>>();
  const byIds = (n: number) => {
    let s = statements.get(n);
    if (!s) {
      s = db.prepare(`SELECT seq, time, payload FROM events WHERE seq IN (${Array(n).fill('?').join(',')})`);
      statements.set(n, s);
    }
    return s;
  };
  let emitted = 0;
  let i = 0;
  while (i < cols.size && emitted < limit) {
    const batch: number[] = [];
    for (; i < cols.size && batch.length < ROW_BATCH && emitted + batch.length < limit; i++) if (wanted[cols.status[i]]) batch.push(i);
    if (!batch.length) break;
    const seqs = new Set<number>();
    for (const k of batch) {
      seqs.add(cols.requestedSeq[k]);
      if (cols.lastErrorSeq[k]) seqs.add(cols.lastErrorSeq[k]);
    }
    const found = new Map<number, Record<string, unknown>>();
    for (const r of byIds(seqs.size).all([...seqs]) as Array<{ seq: number; payload: string }>) {
      try {
        found.set(r.seq, JSON.parse(r.payload));
      } catch {
        found.set(r.seq, {});
      }
    }
    const rows: ReportRow[] = batch.map((k) => {
      const req = found.get(cols.requestedSeq[k]) ?? {};
      const err = cols.lastErrorSeq[k] ? found.get(cols.lastErrorSeq[k]) : undefined;
      return {
        urn: str(req.urn),
        productName: str(req.productName),
        tenant: str(req.tenant),
        recipientLabel: recipients[cols.recipient[k]],
        requestedAt: new Date(cols.requestedAt[k]).toISOString(),
        sentAt: iso(cols.sentAt[k]),
        acknowledgedAt: iso(cols.ackAt[k]),
        ackVia: cols.ackVia[k] ? AckSources[cols.ackVia[k] - 1] : null,
        status: DisseminationStatuses[cols.status[k]],
        bytes: cols.bytes[k],
        files: cols.files[k],
        fixity: cols.fixity[k] ? FixityOutcomes[cols.fixity[k] - 1] : null,
        attempts: cols.attempts[k],
        lastError: err ? str(err.error) || null : null,
      };
    });
    emitted += rows.length;
    yield rows;
    checkAbort(opts.signal);
    await tick();
  }
}

