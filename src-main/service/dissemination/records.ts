/**
 * Rows of `recipients` and `disseminations`, their mappers, the queries the commands answer with,
 * and the state changes every acknowledgement path shares. Each state change writes its event in
 * the caller's transaction.
 */
import path from 'node:path';
import type { FondsEvent, Page, ProductDisseminationSummary } from '../../../src-shared/api';
import {
  DISSEMINATION_UNMATCHED,
  DisseminationEventTypes,
  SECRET_MASK,
  recipientSettingsSchema,
  type AckSource,
  type Dissemination,
  type DisseminationStatus,
  type FixityOutcome,
  type ProductDisseminationStatus,
  type Recipient,
  type RecipientKind,
  type RecipientRecord,
  type RecipientSettings,
  recipientInputSchema,
} from '../../../src-shared/domain/dissemination';
import { FondsError } from '../../../src-shared/errors';
import type { z } from 'zod';
import type { DB } from '../db/database';
import { eventsOfObject, nowIso, rowToEvent, timeline, type Tx } from '../db/store';
import { getProduct } from '../products';

/** The product, or undefined when the catalogue has none with this urn. */
export function productOrUndefined(db: DB, urn: string) {
  try {
    return getProduct(db, urn);
  } catch (err) {
    if (err instanceof FondsError && err.code === 'NOT_FOUND') return undefined;
    throw err;
  }
}

export interface RecipientRow {
  label: string;
  description: string;
  kind: RecipientKind;
  direct_notification: number;
  ack_required: number;
  blocking_required: number;
  settings: string;
  created_at: string;
  updated_at: string;
}

export interface DisseminationRow {
  id: string;
  urn: string;
  tenant: string;
  product_name: string;
  recipient_label: string;
  recipient_kind: RecipientKind;
  status: DisseminationStatus;
  blocking: number;
  ack_required: number;
  request_date: string;
  sent_date: string | null;
  ack_date: string | null;
  ack_via: AckSource | null;
  attempts: number;
  last_error: string | null;
  bytes: number;
  files: number;
  fixity: FixityOutcome | null;
  outbox_id: number | null;
  updated_at: string;
}

/** The settings with their secrets read as '********'. */
export function maskSettings(s: RecipientSettings): RecipientSettings {
  if (s.kind === 'webhook') return { ...s, secret: SECRET_MASK };
  if (s.kind === 's3' && s.secretAccessKey) return { ...s, secretAccessKey: SECRET_MASK };
  return s;
}

/** The stored settings (with their secrets), parsed. */
export function settingsOf(r: RecipientRow): RecipientSettings {
  return recipientSettingsSchema.parse(JSON.parse(r.settings));
}

export function rowToRecipient(r: RecipientRow): Recipient {
  return {
    recipientLabel: r.label,
    description: r.description,
    kind: r.kind,
    directNotificationEnabled: r.direct_notification === 1,
    ackRequired: r.ack_required === 1,
    blockingRequired: r.blocking_required === 1,
    settings: maskSettings(settingsOf(r)),
    created: r.created_at,
    updated: r.updated_at,
  };
}

export function getRecipientRow(db: DB, label: string): RecipientRow | undefined {
  return db.prepare('SELECT * FROM recipients WHERE label = ?').get(label) as RecipientRow | undefined;
}

export function listRecipients(db: DB, directOnly: boolean | undefined): Recipient[] {
  const where = directOnly === undefined ? '' : 'WHERE direct_notification = ?';
  const args = directOnly === undefined ? [] : [directOnly ? 1 : 0];
  return (db.prepare(`SELECT * FROM recipients ${where} ORDER BY label`).all(...args) as RecipientRow[]).map(rowToRecipient);
}

/**
 * Creates or updates a recipient. A secret given as '********' keeps the stored one (refused when
 * there is none); a folder must be an absolute path.
 */
export function saveRecipient(tx: Tx, input: z.output<typeof recipientInputSchema>): void {
  const existing = getRecipientRow(tx.db, input.recipientLabel);
  const before = existing ? settingsOf(existing) : undefined;
  const settings = { ...input.settings } as RecipientSettings;
  if (settings.kind === 'webhook' && settings.secret === SECRET_MASK) {
    if (before?.kind !== 'webhook') {
      throw new FondsError('INVALID_INPUT', `settings.secret: recipient '${input.recipientLabel}' has no secret to keep; give a shared secret of at least 16 characters.`, {
        issues: [{ field: 'settings.secret', message: 'required' }],
      });
    }
    settings.secret = before.secret;
  }
  if (settings.kind === 's3' && settings.secretAccessKey === SECRET_MASK) {
    if (before?.kind !== 's3') {
      throw new FondsError('INVALID_INPUT', `settings.secretAccessKey: recipient '${input.recipientLabel}' has no secret key to keep.`, {
        issues: [{ field: 'settings.secretAccessKey', message: 'required' }],
      });
    }
    settings.secretAccessKey = before.secretAccessKey;
  }
  if (settings.kind === 'folder' && !path.isAbsolute(settings.path)) {
    throw new FondsError('INVALID_INPUT', `settings.path: '${settings.path}' is not an absolute path (a local or network folder).`, {
      issues: [{ field: 'settings.path', message: 'not absolute' }],
    });
  }
  const now = nowIso();
  const values = {
    label: input.recipientLabel,
    description: input.description,
    kind: settings.kind,
    direct: input.directNotificationEnabled ? 1 : 0,
    ack: input.ackRequired ? 1 : 0,
    blocking: input.blockingRequired ? 1 : 0,
    settings: JSON.stringify(settings),
    now,
  };
  if (existing) {
    tx.db
      .prepare(
        `UPDATE recipients SET description = @description, kind = @kind, direct_notification = @direct, ack_required = @ack, blocking_required = @blocking,
                settings = @settings, updated_at = @now WHERE label = @label`,
      )
      .run(values);
  } else {
    tx.db
      .prepare(
        `INSERT INTO recipients (label, description, kind, direct_notification, ack_required, blocking_required, settings, created_at, updated_at)
         VALUES (@label, @description, @kind, @direct, @ack, @blocking, @settings, @now, @now)`,
      )
      .run(values);
  }
}

export function rowToDissemination(r: DisseminationRow): Dissemination {
  return {
    _id: r.id,
    urn: r.urn,
    tenant: r.tenant,
    productName: r.product_name,
    recipientLabel: r.recipient_label,
    status: r.status,
    blocking: r.blocking === 1,
    ackRequired: r.ack_required === 1,
    requestDate: r.request_date,
    ...(r.sent_date ? { sentDate: r.sent_date } : {}),
    ...(r.ack_date ? { ackDate: r.ack_date } : {}),
    ...(r.ack_via ? { ackVia: r.ack_via } : {}),
    attempts: r.attempts,
    ...(r.last_error ? { lastError: r.last_error } : {}),
    bytes: r.bytes,
    files: r.files,
    ...(r.fixity ? { fixity: r.fixity } : {}),
  };
}

export function getDisseminationRow(db: DB, id: string): DisseminationRow {
  const row = db.prepare('SELECT * FROM disseminations WHERE id = ?').get(id) as DisseminationRow | undefined;
  if (!row) throw new FondsError('NOT_FOUND', `Dissemination ${id} does not exist.`, { id });
  return row;
}

const likeArg = (q: string) => `%${q.replace(/[\\%_]/g, (c) => `\\${c}`)}%`;

export interface DisseminationFilter {
  urn?: string;
  recipientLabel?: string;
  status?: DisseminationStatus;
  q?: string;
}

/** Disseminations, most recently requested first. */
export function listDisseminations(db: DB, f: DisseminationFilter, offset: number, limit: number): Page<Dissemination> {
  const where: string[] = [];
  const args: unknown[] = [];
  if (f.urn) {
    where.push('urn = ?');
    args.push(f.urn);
  }
  if (f.recipientLabel) {
    where.push('recipient_label = ?');
    args.push(f.recipientLabel);
  }
  if (f.status) {
    where.push('status = ?');
    args.push(f.status);
  }
  if (f.q?.trim()) {
    const l = likeArg(f.q.trim());
    where.push(`(urn LIKE ? ESCAPE '\\' OR product_name LIKE ? ESCAPE '\\' OR recipient_label LIKE ? ESCAPE '\\')`);
    args.push(l, l, l);
  }
  const w = where.length ? `WHERE ${where.join(' AND ')}` : '';
  const total = db.prepare(`SELECT count(*) FROM disseminations ${w}`).pluck().get(...args) as number;
  const rows = db.prepare(`SELECT * FROM disseminations ${w} ORDER BY request_date DESC, id DESC LIMIT ? OFFSET ?`).all(...args, limit, offset) as DisseminationRow[];
  return { items: rows.map(rowToDissemination), total, offset };
}

/** Events of one dissemination, or of every dissemination of a product, newest first. */
export function disseminationTimeline(db: DB, sel: { id?: string; urn?: string }, offset: number, limit: number): Page<FondsEvent> {
  if (sel.id) {
    getDisseminationRow(db, sel.id);
    return timeline(db, 'dissemination', sel.id, offset, limit);
  }
  if (sel.urn) {
    const q = `FROM events e JOIN disseminations d ON ${eventsOfObject("'dissemination'", 'd.id', 'e.')} WHERE d.urn = ?`;
    const total = db.prepare(`SELECT count(*) ${q}`).pluck().get(sel.urn) as number;
    const rows = db.prepare(`SELECT e.* ${q} ORDER BY e.seq DESC LIMIT ? OFFSET ?`).all(sel.urn, limit, offset);
    return { items: (rows as Parameters<typeof rowToEvent>[0][]).map(rowToEvent), total, offset };
  }
  throw new FondsError('INVALID_INPUT', 'disseminations.timeline: give id (one dissemination) or urn (every dissemination of a product).', {
    issues: [{ field: 'id', message: 'id or urn required' }],
  });
}

export function unmatchedAcks(db: DB, offset: number, limit: number): Page<FondsEvent> {
  return timeline(db, 'dissemination', DISSEMINATION_UNMATCHED.objectId, offset, limit);
}

/**
 * REGARDS' view of a product: one record per recipient (its latest dissemination), and the product's
 * status: NONE without any; PENDING while one is PENDING or FAILED (not delivered); WAITING_ACK while
 * one waits for its acknowledgement; DONE when all are acknowledged.
 */
export function productSummary(db: DB, urn: string): ProductDisseminationSummary {
  const rows = db
    .prepare(
      `SELECT d.* FROM disseminations d
       WHERE d.urn = ? AND d.id = (SELECT id FROM disseminations x WHERE x.urn = d.urn AND x.recipient_label = d.recipient_label ORDER BY request_date DESC, id DESC LIMIT 1)
       ORDER BY d.recipient_label`,
    )
    .all(urn) as DisseminationRow[];
  const recipients: RecipientRecord[] = rows.map((r) => ({
    label: r.recipient_label,
    requestDate: r.request_date,
    ...(r.ack_date && r.status === 'DONE' ? { ackDate: r.ack_date } : {}),
    blocking: r.blocking === 1,
  }));
  let status: ProductDisseminationStatus = 'NONE';
  if (rows.length) {
    if (rows.some((r) => r.status === 'PENDING' || r.status === 'FAILED')) status = 'PENDING';
    else if (rows.some((r) => r.status === 'WAITING_ACK')) status = 'WAITING_ACK';
    else status = 'DONE';
  }
  return { urn, status, recipients };
}

/** The payload fields every dissemination event carries. */
export const base = (r: Pick<DisseminationRow, 'urn' | 'recipient_label' | 'tenant'>) => ({ urn: r.urn, recipientLabel: r.recipient_label, tenant: r.tenant });

/**
 * A delivery proven (or confirmed by the broker): `dissemination.sent`, then DONE without
 * ackRequired (ackDate = requestDate, acknowledged via 'auto') or when an ack came early, otherwise
 * WAITING_ACK. Only a PENDING dissemination changes; returns false otherwise.
 */
export function markSent(tx: Tx, id: string, sent: { bytes: number; files: number; fixity: FixityOutcome }): boolean {
  const r = getDisseminationRow(tx.db, id);
  if (r.status !== 'PENDING') return false;
  const now = nowIso();
  tx.event({ kind: 'dissemination', objectId: id, type: DisseminationEventTypes.sent, payload: { ...base(r), attempt: r.attempts, bytes: sent.bytes, files: sent.files, fixity: sent.fixity } });
  let status: DisseminationStatus = 'WAITING_ACK';
  let ackDate = r.ack_date;
  let ackVia = r.ack_via;
  if (r.ack_required !== 1) {
    status = 'DONE';
    ackDate = r.request_date;
    ackVia = 'auto';
    tx.event({ kind: 'dissemination', objectId: id, type: DisseminationEventTypes.acknowledged, payload: { ...base(r), via: 'auto' } });
  } else if (r.ack_date) {
    status = 'DONE';
  }
  tx.db
    .prepare(
      `UPDATE disseminations SET status = ?, sent_date = ?, ack_date = ?, ack_via = ?, bytes = ?, files = ?, fixity = ?, last_error = NULL, updated_at = ? WHERE id = ?`,
    )
    .run(status, now, ackDate, ackVia, sent.bytes, sent.files, sent.fixity, now, id);
  return true;
}

/** Records an acknowledgement that matched nothing: an event on `.unmatched-acks`. */
export function recordUnmatched(tx: Tx, a: { urn: string; recipientLabel: string; tenant: string; via: AckSource; reason: string; ref?: Record<string, unknown> }): void {
  tx.event({
    kind: 'dissemination',
    objectId: DISSEMINATION_UNMATCHED.objectId,
    type: DISSEMINATION_UNMATCHED.type,
    payload: { urn: a.urn, recipientLabel: a.recipientLabel, tenant: a.tenant, via: a.via, reason: a.reason, ...(a.ref ?? {}) },
  });
}

export type AckOutcome = { acknowledged: true; disseminationId: string } | { acknowledged: false; reason: string };

/**
 * Applies an acknowledgement of (urn, recipientLabel), whatever its source. The latest dissemination
 * not yet acknowledged takes it: WAITING_ACK or FAILED become DONE; a PENDING one keeps the ack and
 * becomes DONE when delivered (the recipient answered before the broker's confirm was recorded).
 * Anything else (unknown urn or recipient, another tenant, already acknowledged) is recorded as
 * unmatched: never an error.
 */
export function acknowledge(tx: Tx, a: { urn: string; recipientLabel: string; tenant?: string; via: AckSource; ref?: Record<string, unknown> }): AckOutcome {
  const db = tx.db;
  const rows = db.prepare('SELECT * FROM disseminations WHERE urn = ? AND recipient_label = ? ORDER BY request_date DESC, id DESC').all(a.urn, a.recipientLabel) as DisseminationRow[];
  const unmatched = (reason: string): AckOutcome => {
    recordUnmatched(tx, { urn: a.urn, recipientLabel: a.recipientLabel, tenant: a.tenant ?? '', via: a.via, reason, ref: a.ref });
    return { acknowledged: false, reason };
  };
  if (!rows.length) {
    const product = productOrUndefined(db, a.urn);
    const recipient = getRecipientRow(db, a.recipientLabel);
    if (!product) return unmatched(`urn: no product ${a.urn} in this catalogue`);
    if (!recipient) return unmatched(`recipientLabel: no recipient '${a.recipientLabel}'`);
    return unmatched(`product ${a.urn} was never disseminated to '${a.recipientLabel}'`);
  }
  const r = rows.find((x) => x.status !== 'DONE' && !x.ack_date);
  if (!r) return unmatched(`already acknowledged (${rows[0].ack_date ?? rows[0].updated_at}, via ${rows[0].ack_via ?? '?'})`);
  if (a.tenant && a.tenant !== r.tenant) return unmatched(`regards.tenant: '${a.tenant}' is not the product's tenant '${r.tenant}'`);
  const now = nowIso();
  const status: DisseminationStatus = r.status === 'PENDING' ? 'PENDING' : 'DONE';
  db.prepare('UPDATE disseminations SET status = ?, ack_date = ?, ack_via = ?, updated_at = ? WHERE id = ?').run(status, now, a.via, now, r.id);
  tx.event({ kind: 'dissemination', objectId: r.id, type: DisseminationEventTypes.acknowledged, payload: { ...base(r), via: a.via, ...(a.ref ?? {}) } });
  return { acknowledged: true, disseminationId: r.id };
}
