/** The `messages` table: rows, queries, and the one upsert every indexing path goes through. */
import type { Page } from '../../../src-shared/api';
import type { Message, MessageFacets, MessageState, StatusSource } from '../../../src-shared/domain/message';
import { FondsError } from '../../../src-shared/errors';
import type { DB } from '../db/database';
import { printable } from '../paths';

export interface MessageRow {
  id: string;
  state: MessageState;
  type: string | null;
  schema: string | null;
  status: string | null;
  status_source: StatusSource | null;
  status_changed_at: string | null;
  date: string | null;
  date_source: 'message' | 'file' | null;
  reference: string | null;
  request_reference: string | null;
  reply_code: string | null;
  sender: string | null;
  recipient: string | null;
  comment: string | null;
  format: 'xml' | 'json' | null;
  file: string | null;
  is_dir: number;
  beside: string;
  files: number;
  size: number;
  fingerprint: string;
  reason: string | null;
  last_change: string;
  indexed_at: string;
}

export function rowToMessage(r: MessageRow): Message {
  const o = <K extends string, V>(k: K, v: V | null): Partial<Record<K, V>> => (v === null ? {} : ({ [k]: v } as Record<K, V>));
  return {
    id: r.id,
    state: r.state,
    ...o('type', r.type),
    ...o('schema', r.schema),
    ...o('status', r.status),
    ...o('statusSource', r.status_source),
    ...o('date', r.date),
    ...o('dateSource', r.date_source),
    ...o('reference', r.reference),
    ...o('requestReference', r.request_reference),
    ...o('replyCode', r.reply_code),
    ...o('sender', r.sender),
    ...o('recipient', r.recipient),
    ...o('comment', r.comment),
    ...o('format', r.format),
    ...o('file', r.file),
    files: r.files,
    size: r.size,
    ...o('reason', r.reason),
    lastChange: r.last_change,
    indexedAt: r.indexed_at,
  };
}

export function findMessageRow(db: DB, id: string): MessageRow | undefined {
  return db.prepare('SELECT * FROM messages WHERE id = ?').get(id) as MessageRow | undefined;
}

export function getMessageRow(db: DB, id: string): MessageRow {
  const row = findMessageRow(db, id);
  if (!row) throw new FondsError('NOT_FOUND', `Message '${printable(id)}' is not in the message directory index.`, { id: printable(id) });
  return row;
}

const COLUMNS = [
  'id',
  'state',
  'type',
  'schema',
  'status',
  'status_source',
  'status_changed_at',
  'date',
  'date_source',
  'reference',
  'request_reference',
  'reply_code',
  'sender',
  'recipient',
  'comment',
  'format',
  'file',
  'is_dir',
  'beside',
  'files',
  'size',
  'fingerprint',
  'reason',
  'last_change',
  'indexed_at',
] as const satisfies ReadonlyArray<keyof MessageRow>;

const upserts = new WeakMap<DB, ReturnType<DB['prepare']>>();

export function upsertMessageRow(db: DB, row: MessageRow): void {
  let stmt = upserts.get(db);
  if (!stmt) {
    stmt = db.prepare(
      `INSERT INTO messages (${COLUMNS.join(', ')}) VALUES (${COLUMNS.map(() => '?').join(', ')})
       ON CONFLICT (id) DO UPDATE SET ${COLUMNS.filter((c) => c !== 'id')
         .map((c) => `${c} = excluded.${c}`)
         .join(', ')}`,
    );
    upserts.set(db, stmt);
  }
  // positional parameters: binding 25 named ones is measurably slower over 100,000 rows
  stmt.run(COLUMNS.map((c) => row[c]));
}

export interface ListFilters {
  type?: string;
  status?: string;
  state?: MessageState;
  from?: string;
  to?: string;
  q?: string;
  offset: number;
  limit: number;
}

/** A date-only bound covers its whole day. */
function bound(iso: string, end: boolean): string {
  if (/^\d{4}-\d{2}-\d{2}$/.test(iso)) return end ? `${iso}T23:59:59.999Z` : `${iso}T00:00:00.000Z`;
  return new Date(iso).toISOString();
}

export function listMessages(db: DB, f: ListFilters): Page<Message> {
  const where: string[] = [];
  const args: Array<string | number> = [];
  if (f.type) {
    where.push('type = ?');
    args.push(f.type);
  }
  if (f.status === 'none') where.push('status IS NULL');
  else if (f.status) {
    where.push('status = ?');
    args.push(f.status.toLowerCase());
  }
  if (f.state) {
    where.push('state = ?');
    args.push(f.state);
  }
  if (f.from) {
    where.push('date >= ?');
    args.push(bound(f.from, false));
  }
  if (f.to) {
    where.push('date <= ?');
    args.push(bound(f.to, true));
  }
  if (f.q) {
    where.push(`(instr(lower(id), ?) > 0 OR instr(lower(coalesce(reference, '')), ?) > 0 OR instr(lower(coalesce(sender, '')), ?) > 0 OR instr(lower(coalesce(recipient, '')), ?) > 0)`);
    const q = f.q.toLowerCase();
    args.push(q, q, q, q);
  }
  const w = where.length ? `WHERE ${where.join(' AND ')}` : '';
  const total = db.prepare(`SELECT count(*) FROM messages ${w}`).pluck().get(...args) as number;
  const rows = db
    .prepare(`SELECT * FROM messages ${w} ORDER BY date IS NULL, date DESC, id LIMIT ? OFFSET ?`)
    .all(...args, f.limit, f.offset) as MessageRow[];
  return { items: rows.map(rowToMessage), total, offset: f.offset };
}

export function messageFacets(db: DB, directory: string, watching: boolean): MessageFacets {
  const group = (col: string) =>
    (db.prepare(`SELECT ${col} AS value, count(*) AS count FROM messages WHERE ${col} IS NOT NULL GROUP BY ${col} ORDER BY ${col}`).all() as Array<{
      value: string;
      count: number;
    }>);
  return {
    directory,
    total: db.prepare('SELECT count(*) FROM messages').pluck().get() as number,
    watching,
    types: group('type'),
    statuses: group('status'),
    states: group('state') as MessageFacets['states'],
  };
}
