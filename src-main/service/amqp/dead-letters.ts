/**
 * The record of dead-lettered messages, for people: what came, on which queue, and why it could
 * not be read. The broker keeps the message itself in the dead-letter queue.
 */
import { createHash } from 'node:crypto';
import type { ConsumeMessage } from 'amqplib';
import type { Page } from '../../../src-shared/api';
import { DEAD_LETTER_PREVIEW_BYTES, type DeadLetter } from '../../../src-shared/domain/product';
import type { DB } from '../db/database';
import { nowIso, type Tx } from '../db/store';
import { jsonSafe } from './regards';

/** The object id of dead-letter events (kind `patch_request`; never a request key). */
export const DEAD_LETTER_OBJECT = '.dead-letters';

interface Row {
  id: number;
  queue: string;
  received_at: string;
  reason: string;
  headers: string;
  properties: string;
  body_preview: string;
  body_bytes: number;
}

function rowToDeadLetter(r: Row): DeadLetter {
  return {
    id: r.id,
    queue: r.queue,
    receivedAt: r.received_at,
    reason: r.reason,
    headers: JSON.parse(r.headers),
    properties: JSON.parse(r.properties),
    bodyPreview: r.body_preview,
    bodyBytes: r.body_bytes,
  };
}

/** The SHA-256 (hex) of a message body: how a redelivery of a message already recorded is recognised. */
export const bodySha256Of = (content: Buffer): string => createHash('sha256').update(content).digest('hex');

/**
 * Records a message about to be dead-lettered, inside the transaction of its window. A redelivery
 * of one already recorded (the process stopped before the nack reached the broker) is not recorded
 * twice: it is recognised by the SHA-256 of its body on the same queue. `bodySha256` is that of
 * `msg.content` (the parsers have it already); without it, or empty, it is computed here — an
 * empty one would make every later redelivered message (every "processing failed twice") look
 * recorded already.
 */
export function recordDeadLetter(tx: Tx, queue: string, msg: ConsumeMessage, reason: string, bodySha256?: string): void {
  bodySha256 ||= bodySha256Of(msg.content);
  if (msg.fields.redelivered) {
    const seen = tx.db.prepare('SELECT 1 FROM amqp_dead_letters WHERE body_sha256 = ? AND queue = ?').get(bodySha256, queue);
    if (seen) return;
  }
  const { headers, ...rest } = msg.properties;
  const properties = Object.fromEntries(Object.entries(rest).filter(([, v]) => v !== undefined));
  const preview = msg.content.subarray(0, DEAD_LETTER_PREVIEW_BYTES).toString('utf8');
  const id = tx.db
    .prepare(
      `INSERT INTO amqp_dead_letters (queue, received_at, reason, headers, properties, body_preview, body_bytes, body_sha256)
       VALUES (?, ?, ?, ?, ?, ?, ?, ?) RETURNING id`,
    )
    .pluck()
    .get(queue, nowIso(), reason, JSON.stringify(jsonSafe(headers ?? {})), JSON.stringify(jsonSafe(properties)), preview, msg.content.length, bodySha256) as number;
  tx.event({ kind: 'patch_request', objectId: DEAD_LETTER_OBJECT, type: 'dead-lettered', payload: { id, queue, reason } });
}

export function listDeadLetters(db: DB, offset: number, limit: number): Page<DeadLetter> {
  const total = db.prepare('SELECT count(*) FROM amqp_dead_letters').pluck().get() as number;
  const rows = db.prepare('SELECT * FROM amqp_dead_letters ORDER BY id DESC LIMIT ? OFFSET ?').all(limit, offset) as Row[];
  return { items: rows.map(rowToDeadLetter), total, offset };
}

export function countDeadLetters(db: DB): number {
  return db.prepare('SELECT count(*) FROM amqp_dead_letters').pluck().get() as number;
}
