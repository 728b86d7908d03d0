/**
 * Acknowledgements from outside: DisseminationAckEvent messages (AMQP), patch requests carrying
 * metadata.acknowledgedRecipient (read from the event log), and signed webhook callbacks. Each one
 * ends in `acknowledge` (records.ts); what matches nothing is recorded and shown, never an error.
 */
import { createHash, timingSafeEqual } from 'node:crypto';
import type { ConsumeMessage } from 'amqplib';
import type { WebhookAckResult } from '../../../src-shared/api';
import { DISSEMINATION_AMQP } from '../../../src-shared/domain/dissemination';
import { REGARDS } from '../../../src-shared/domain/product';
import { FondsError } from '../../../src-shared/errors';
import type { Amqp } from '../amqp';
import { consumeInWindows, type Verdict, type WindowConsumer } from '../amqp/consumer';
import { bodySha256Of, recordDeadLetter } from '../amqp/dead-letters';
import { decodeUtf8 } from '../amqp/regards';
import type { Session } from '../amqp/link';
import type { Deps } from '../capability';
import { signBody } from './deliver';
import { acknowledge, getRecipientRow, recordUnmatched, settingsOf } from './records';

/** Fonds' queue of DisseminationAckEvent messages. */
export const ackQueueName = (prefix: string) => `${prefix}.dissemination-acks`;

export type ParsedAck =
  | { kind: 'valid'; urn: string; recipientLabel: string; tenant: string; ref: Record<string, unknown> }
  | { kind: 'unreadable'; reason: string; bodySha256: string };

/** Reads a DisseminationAckEvent: header regards.tenant, body {urn, recipientLabel} (GSON). Never throws. */
export function parseAck(msg: Pick<ConsumeMessage, 'content' | 'properties'>, maxBytes: number): ParsedAck {
  const bodySha256 = createHash('sha256').update(msg.content).digest('hex');
  const bad = (reason: string): ParsedAck => ({ kind: 'unreadable', reason, bodySha256 });
  const headers = msg.properties.headers ?? {};
  const rawTenant = headers[REGARDS.headers.tenant];
  const tenant = typeof rawTenant === 'string' ? rawTenant.trim() : Buffer.isBuffer(rawTenant) ? rawTenant.toString('utf8').trim() : undefined;
  if (!tenant) return bad(`${REGARDS.headers.tenant}: ${rawTenant === undefined ? 'missing' : 'not a non-empty string'}`);
  if (msg.content.length > maxBytes) return bad(`body: ${msg.content.length} bytes, over the limit of ${maxBytes} bytes`);
  let json: unknown;
  try {
    json = JSON.parse(decodeUtf8(msg.content));
  } catch (err) {
    return bad(`body: not UTF-8 JSON (${(err as Error).message})`);
  }
  if (typeof json !== 'object' || json === null || Array.isArray(json)) return bad('body: not a JSON object {urn, recipientLabel}');
  const o = json as Record<string, unknown>;
  const problems: string[] = [];
  if (typeof o.urn !== 'string' || !o.urn.trim() || o.urn.length > 300) problems.push('urn: missing or not a string of at most 300 characters');
  if (typeof o.recipientLabel !== 'string' || !o.recipientLabel.trim() || o.recipientLabel.length > 128) problems.push('recipientLabel: missing or not a string of at most 128 characters');
  if (problems.length) return bad(problems.join('; '));
  const requestId = headers[REGARDS.headers.requestId];
  const messageId = msg.properties.messageId ?? (typeof requestId === 'string' ? requestId : undefined);
  return { kind: 'valid', urn: (o.urn as string).trim(), recipientLabel: (o.recipientLabel as string).trim(), tenant, ref: messageId ? { messageId: String(messageId) } : {} };
}

/** The AMQP consumer: declared and started on every connection, after the topology. */
export function createAckConsumer(deps: Deps, amqp: Amqp) {
  const { store, config } = deps;
  const queue = ackQueueName(config.amqpQueuePrefix);
  let consumer: WindowConsumer | undefined;

  function handle(window: ConsumeMessage[]): Verdict[] {
    return store.transact((tx) =>
      window.map((msg): Verdict => {
        const a = parseAck(msg, config.amqpMaxMessageBytes);
        if (a.kind === 'unreadable') {
          recordDeadLetter(tx, queue, msg, a.reason, a.bodySha256);
          return { deadLetter: a.reason };
        }
        if (!config.regardsTenants.includes(a.tenant)) {
          recordUnmatched(tx, { urn: a.urn, recipientLabel: a.recipientLabel, tenant: a.tenant, via: 'amqp', reason: `regards.tenant: '${a.tenant}' is not a known tenant`, ref: a.ref });
          return 'ack';
        }
        acknowledge(tx, { urn: a.urn, recipientLabel: a.recipientLabel, tenant: a.tenant, via: 'amqp', ref: a.ref });
        return 'ack';
      }),
    );
  }

  async function setup(session: Session): Promise<void> {
    const ch = await session.channel();
    try {
      await ch.assertExchange(DISSEMINATION_AMQP.ackExchange, 'fanout', { durable: true });
      await ch.assertQueue(queue, { durable: true, deadLetterExchange: amqp.names.deadLetterExchange });
      await ch.bindQueue(queue, DISSEMINATION_AMQP.ackExchange, '');
    } finally {
      await ch.close().catch(() => undefined);
    }
    amqp.link.knownExchange(session, DISSEMINATION_AMQP.ackExchange);
    consumer = await consumeInWindows(session, {
      queue,
      prefetch: config.amqpPrefetch,
      handle,
      onPoison: (msg, err) => store.transact((tx) => recordDeadLetter(tx, queue, msg, `processing failed twice: ${err.message}`, bodySha256Of(msg.content))),
    });
  }

  async function stop(): Promise<void> {
    const c = consumer;
    consumer = undefined;
    if (!c) return;
    await c.channel.cancel(c.consumerTag).catch(() => undefined);
    await c.drained().catch(() => undefined);
  }

  return { queue, setup, stop };
}

const CURSOR = 'dissemination.patchAckCursor';

/**
 * Acknowledgements by patch request: products/receive.ts writes a `product` event
 * `dissemination.acknowledged` in the transaction that applies the patch. They are read from the
 * event log after a cursor kept in `settings`, which advances in the same transaction as the
 * acknowledgement: none is lost by a crash between the two, none is applied twice.
 */
export function createPatchAcks(deps: Deps) {
  const { store } = deps;
  const db = store.db;
  let scheduled = false;
  let unsubscribe: (() => void) | undefined;

  function catchUp(): void {
    for (;;) {
      const cursor = Number(db.prepare('SELECT value FROM settings WHERE key = ?').pluck().get(CURSOR) ?? 0);
      const rows = db
        .prepare(`SELECT seq, payload FROM events WHERE kind = 'product' AND type = 'dissemination.acknowledged' AND seq > ? ORDER BY seq LIMIT 500`)
        .all(cursor) as Array<{ seq: number; payload: string }>;
      if (!rows.length) return;
      store.transact((tx) => {
        for (const row of rows) {
          let p: { urn?: unknown; recipientLabel?: unknown; requestId?: unknown } = {};
          try {
            p = JSON.parse(row.payload);
          } catch {
            /* unreadable payload: recorded as unmatched below */
          }
          if (typeof p.urn === 'string' && typeof p.recipientLabel === 'string') {
            acknowledge(tx, { urn: p.urn, recipientLabel: p.recipientLabel, via: 'patch', ref: typeof p.requestId === 'string' ? { requestId: p.requestId } : {} });
          } else {
            recordUnmatched(tx, { urn: String(p.urn ?? ''), recipientLabel: String(p.recipientLabel ?? ''), tenant: '', via: 'patch', reason: `event ${row.seq}: no urn or recipientLabel` });
          }
        }
        tx.db.prepare('INSERT OR REPLACE INTO settings (key, value) VALUES (?, ?)').run(CURSOR, String(rows[rows.length - 1].seq));
      });
    }
  }

  const schedule = () => {
    if (scheduled) return;
    scheduled = true;
    setImmediate(() => {
      scheduled = false;
      try {
        catchUp();
      } catch {
        /* retried at the next event or start */
      }
    });
  };

  return {
    start() {
      unsubscribe = store.subscribe((p) => {
        if (p.channel === 'event' && p.event.kind === 'product' && p.event.type === 'dissemination.acknowledged') schedule();
      });
      catchUp();
    },
    stop() {
      unsubscribe?.();
    },
  };
}

/** Refused webhook acknowledgements recorded one by one at most this often a minute; the rest are counted. */
export const REFUSED_ACKS_RECORDED_PER_MINUTE = 30;
/** What the caller of a refused acknowledgement is told, whatever the reason (the reason is for the archivist). */
export const ACK_REFUSED = 'Acknowledgement refused: X-Fonds-Signature does not prove a webhook recipient of this workstation (sha256=<hex HMAC-SHA256 of the raw body with its shared secret>).';

/**
 * Signed callbacks: the raw body {urn, recipientLabel}, signed by the recipient with its shared
 * secret (X-Fonds-Signature: sha256=<hex>). A bad signature or an unknown recipient is refused
 * (UNAUTHORIZED, with one message whatever the reason, so that a caller without a secret learns
 * nothing of the recipients) and recorded with its reason among the unmatched acknowledgements:
 * one by one up to REFUSED_ACKS_RECORDED_PER_MINUTE a minute, the rest as one count at the end of
 * the minute (the endpoint takes no bearer token: a flood must not fill the event log). An
 * unknown urn is recorded and answered `acknowledged: false`.
 */
export function createWebhookAcks(deps: Deps): { receive(input: { body: string; signature: string }): WebhookAckResult; stop(): void } {
  const { store } = deps;
  let windowStart = 0;
  let recorded = 0;
  let suppressed = 0;
  let timer: NodeJS.Timeout | undefined;

  /** the count of the refusals not recorded one by one, as one unmatched entry */
  const flush = () => {
    clearTimeout(timer);
    timer = undefined;
    if (!suppressed) return;
    const n = suppressed;
    suppressed = 0;
    const reason = `${n} more acknowledgement${n === 1 ? ' was' : 's were'} refused in that minute (over ${REFUSED_ACKS_RECORDED_PER_MINUTE} a minute: counted, not recorded one by one)`;
    store.transact((tx) => recordUnmatched(tx, { urn: '', recipientLabel: '', tenant: '', via: 'webhook', reason, ref: { suppressed: n } }));
  };

  const recordRefusal = (a: { urn: string; recipientLabel: string; tenant: string; reason: string }) => {
    const now = Date.now();
    if (now - windowStart >= 60_000) {
      flush();
      windowStart = now;
      recorded = 0;
    }
    if (recorded < REFUSED_ACKS_RECORDED_PER_MINUTE) {
      recorded++;
      store.transact((tx) => recordUnmatched(tx, { ...a, via: 'webhook' }));
      return;
    }
    suppressed++;
    timer ??= setTimeout(flush, windowStart + 60_000 - now).unref();
  };

  function receive(input: { body: string; signature: string }): WebhookAckResult {
    let o: { urn?: unknown; recipientLabel?: unknown; tenant?: unknown };
    try {
      o = JSON.parse(input.body);
    } catch (err) {
      throw new FondsError('INVALID_INPUT', `The acknowledgement body is not JSON: ${(err as Error).message}`);
    }
    if (typeof o !== 'object' || o === null || typeof o.urn !== 'string' || typeof o.recipientLabel !== 'string' || !o.urn || !o.recipientLabel) {
      throw new FondsError('INVALID_INPUT', 'The acknowledgement body must be a JSON object {"urn": "...", "recipientLabel": "..."}.');
    }
    const urn = o.urn.slice(0, 300);
    const label = o.recipientLabel.slice(0, 128);
    const tenant = typeof o.tenant === 'string' ? o.tenant.slice(0, 128) : '';
    const refuse = (reason: string): never => {
      recordRefusal({ urn, recipientLabel: label, tenant, reason });
      throw new FondsError('UNAUTHORIZED', ACK_REFUSED);
    };
    const recipient = getRecipientRow(store.db, label);
    if (!recipient) return refuse(`recipientLabel: no recipient '${label}' (the signature cannot be checked)`);
    const settings = settingsOf(recipient);
    if (settings.kind !== 'webhook') return refuse(`recipient '${label}' is a ${settings.kind} recipient: it has no shared secret to sign with`);
    const expected = Buffer.from(signBody(settings.secret, input.body));
    const given = Buffer.from(input.signature.trim());
    if (given.length !== expected.length || !timingSafeEqual(given, expected)) return refuse(`X-Fonds-Signature does not match the body signed with the secret of '${label}'`);
    const outcome = store.transact((tx) => acknowledge(tx, { urn, recipientLabel: label, ...(tenant ? { tenant } : {}), via: 'webhook' }));
    return outcome.acknowledged ? { acknowledged: true, disseminationId: outcome.disseminationId } : { acknowledged: false, reason: outcome.reason };
  }

  return { receive, stop: flush };
}
