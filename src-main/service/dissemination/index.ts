/**
 * Dissemination (REGARDS notifier and ingest semantics, seed 000): recipients, notify a selection,
 * durable deliveries, acknowledgements from four sources, the per-product records. See README.md.
 * The NB-style REST contract (seed 004) lives in `nb/` and is wired on its own.
 */
import { randomUUID } from 'node:crypto';
import type { Channel } from 'amqplib';
import type { NotifyResult } from '../../../src-shared/api';
import { DisseminationEventTypes, type Dissemination, type RecipientSettings } from '../../../src-shared/domain/dissemination';
import type { StoredFile } from '../../../src-shared/domain/execution';
import { FondsError } from '../../../src-shared/errors';
import type { Amqp } from '../amqp';
import type { Session } from '../amqp/link';
import type { Capability, Deps } from '../capability';
import { nowIso } from '../db/store';
import type { Storage } from '../storage';
import { createAckConsumer, createPatchAcks, createWebhookAcks } from './acks';
import { COPY_ATTEMPTS, DELIVER_JOB, createDeliverJob, onAmqpSent, onOutboxChange, type DeliverPayload } from './deliver';
import {
  base,
  disseminationTimeline,
  getDisseminationRow,
  getRecipientRow,
  listDisseminations,
  listRecipients,
  productOrUndefined,
  productSummary,
  rowToDissemination,
  rowToRecipient,
  saveRecipient,
  settingsOf,
  unmatchedAcks,
  type DisseminationRow,
} from './records';

export { disseminationMigrations } from './migrations';
export { CANCELLED_IN_OUTBOX, DELIVER_JOB, disseminationMessage, productFolder, signBody } from './deliver';
export { ackQueueName, parseAck } from './acks';

export interface DisseminationNeeds {
  amqp: Amqp;
  /** processing's storage and its `storedData.files` command: the files a folder or S3 recipient receives */
  processing: Capability & { storage: Storage };
}

type AmqpSettings = Extract<RecipientSettings, { kind: 'amqp' }>;

export function createDissemination(deps: Deps, needs: DisseminationNeeds): Capability {
  const { store, jobs, outbox } = deps;
  const { amqp, processing } = needs;
  const db = store.db;
  let session: Session | undefined;

  /**
   * Declares an AMQP recipient's exchange (fanout, durable; an existing one of another type is used
   * as it is) and its queue bound to it, dead-lettering to Fonds' dead-letter exchange with the
   * recipient's routing key. Best effort: a queue declared elsewhere with other arguments is used as it is.
   */
  async function declare(s: AmqpSettings): Promise<void> {
    const current = session;
    if (!current || current.signal.aborted) return;
    const attempt = async (fn: (ch: Channel) => Promise<unknown>): Promise<boolean> => {
      const ch = await current.connection.createChannel();
      ch.on('error', () => undefined);
      try {
        await fn(ch);
        return true;
      } catch {
        return false;
      } finally {
        await ch.close().catch(() => undefined);
      }
    };
    if (!(await attempt((ch) => ch.assertExchange(s.exchange, 'fanout', { durable: true })))) {
      if (!(await attempt((ch) => ch.checkExchange(s.exchange)))) throw new Error(`exchange '${s.exchange}' cannot be declared`);
    }
    if (s.queue) {
      const args = { durable: true, deadLetterExchange: amqp.names.deadLetterExchange, ...(s.deadLetterRoutingKey ? { deadLetterRoutingKey: s.deadLetterRoutingKey } : {}) };
      if (!(await attempt((ch) => ch.assertQueue(s.queue, args)))) await attempt((ch) => ch.checkQueue(s.queue));
      await attempt((ch) => ch.bindQueue(s.queue, s.exchange, ''));
    }
    amqp.link.knownExchange(current, s.exchange);
  }

  const amqpRecipients = () =>
    (db.prepare(`SELECT * FROM recipients WHERE kind = 'amqp'`).all() as Parameters<typeof settingsOf>[0][]).map((r) => settingsOf(r) as AmqpSettings);

  async function storedFiles(storedDataId: string): Promise<StoredFile[]> {
    const handler = processing.handlers['storedData.files']!;
    const out: StoredFile[] = [];
    for (let offset = 0; ; offset += 1000) {
      const page = await handler({ id: storedDataId, offset, limit: 1000 }, { transport: 'internal' });
      out.push(...page.items);
      if (page.items.length < 1000 || out.length >= page.total) return out;
    }
  }

  const deliver = createDeliverJob({ deps, storage: processing.storage, storedFiles, declare });
  const ackConsumer = createAckConsumer(deps, amqp);
  const patchAcks = createPatchAcks(deps);
  const webhookAcks = createWebhookAcks(deps);

  // after the topology and the products' consumers: recipients' exchanges, then the ack consumer
  amqp.link.onSession(async (s) => {
    session = s;
    s.signal.addEventListener('abort', () => {
      if (session === s) session = undefined;
    });
    for (const settings of amqpRecipients()) await declare(settings).catch(() => undefined);
    await ackConsumer.setup(s);
  });
  amqp.onSent((item) => onAmqpSent(deps, item));
  // a message cancelled (or put back) by a person in the outbox: its dissemination follows
  outbox.onChange(onOutboxChange);

  const maxAttemptsOf = (s: RecipientSettings) => (s.kind === 'webhook' ? s.maxAttempts : s.kind === 'amqp' ? 5 : COPY_ATTEMPTS);

  function enqueueDelivery(tx: Parameters<Parameters<typeof store.transact>[0]>[0], id: string, s: RecipientSettings): void {
    const maxAttempts = maxAttemptsOf(s);
    tx.enqueue({ kind: DELIVER_JOB, payload: { disseminationId: id, maxAttempts } satisfies DeliverPayload, objectKind: 'dissemination', objectId: id, maxAttempts });
  }

  function notify(urns: string[], labels: string[]): NotifyResult {
    const created: Dissemination[] = [];
    const skipped: NotifyResult['skipped'] = [];
    const uniqueUrns = [...new Set(urns.map((u) => u.trim()))];
    const uniqueLabels = [...new Set(labels.map((l) => l.trim()))];
    store.transact((tx) => {
      const recipients = new Map(uniqueLabels.map((l) => [l, getRecipientRow(tx.db, l)]));
      const active = tx.db.prepare(`SELECT id, status FROM disseminations WHERE urn = ? AND recipient_label = ? AND status IN ('PENDING','WAITING_ACK')`);
      const insert = tx.db.prepare(
        `INSERT INTO disseminations (id, urn, tenant, product_name, recipient_label, recipient_kind, status, blocking, ack_required, request_date, updated_at)
         VALUES (@id, @urn, @tenant, @productName, @label, @kind, 'PENDING', @blocking, @ack, @now, @now)`,
      );
      for (const urn of uniqueUrns) {
        const product = productOrUndefined(tx.db, urn);
        for (const label of uniqueLabels) {
          const rec = recipients.get(label);
          if (!product) {
            skipped.push({ urn, recipientLabel: label, reason: `no product ${urn} in the catalogue` });
            continue;
          }
          if (!rec) {
            skipped.push({ urn, recipientLabel: label, reason: `no recipient '${label}'` });
            continue;
          }
          if (rec.direct_notification !== 1) {
            skipped.push({ urn, recipientLabel: label, reason: `recipient '${label}' does not accept direct notification (directNotificationEnabled is false)` });
            continue;
          }
          const busy = active.get(urn, label) as { id: string; status: string } | undefined;
          if (busy) {
            skipped.push({ urn, recipientLabel: label, reason: `already ${busy.status} (dissemination ${busy.id})` });
            continue;
          }
          const id = randomUUID();
          const now = nowIso();
          const name = product.providerId || (typeof product.properties.name === 'string' ? product.properties.name : '') || urn;
          insert.run({ id, urn, tenant: product.tenant, productName: name, label, kind: rec.kind, blocking: rec.blocking_required, ack: rec.ack_required, now });
          tx.event({
            kind: 'dissemination',
            objectId: id,
            type: DisseminationEventTypes.requested,
            payload: { urn, recipientLabel: label, tenant: product.tenant, productName: name, blocking: rec.blocking_required === 1, ackRequired: rec.ack_required === 1, recipientKind: rec.kind },
          });
          enqueueDelivery(tx, id, settingsOf(rec));
          created.push(rowToDissemination(getDisseminationRow(tx.db, id)));
        }
      }
    });
    return { created, skipped };
  }

  function ackByHand(id: string): Dissemination {
    store.transact((tx) => {
      const r = getDisseminationRow(tx.db, id);
      if (r.status === 'DONE') throw new FondsError('CONFLICT', `Dissemination ${id} of ${r.urn} to '${r.recipient_label}' is already acknowledged (${r.ack_date}, via ${r.ack_via}).`, { status: r.status });
      const now = nowIso();
      tx.db.prepare(`UPDATE disseminations SET status = 'DONE', ack_date = ?, ack_via = 'manual', updated_at = ? WHERE id = ?`).run(now, now, id);
      tx.event({ kind: 'dissemination', objectId: id, type: DisseminationEventTypes.acknowledged, payload: { ...base(r), via: 'manual', ...(r.status === 'PENDING' ? { undelivered: true } : {}) } });
      if (r.status === 'PENDING') {
        // confirmed another way: stop delivering it
        jobs.cancelFor('dissemination', id);
        if (r.outbox_id) {
          try {
            outbox.cancel(r.outbox_id);
          } catch {
            /* sent already, or being sent */
          }
        }
      }
    });
    return rowToDissemination(getDisseminationRow(db, id));
  }

  function retry(id: string): Dissemination {
    store.transact((tx) => {
      const r = getDisseminationRow(tx.db, id);
      if (r.status !== 'FAILED') throw new FondsError('CONFLICT', `Dissemination ${id} is ${r.status}; only a FAILED dissemination can be sent again.`, { status: r.status });
      const rec = getRecipientRow(tx.db, r.recipient_label);
      if (!rec) throw new FondsError('NOT_FOUND', `Recipient '${r.recipient_label}' no longer exists; dissemination ${id} cannot be sent again.`);
      try {
        tx.db.prepare(`UPDATE disseminations SET status = 'PENDING', outbox_id = NULL, last_error = NULL, updated_at = ? WHERE id = ?`).run(nowIso(), id);
      } catch (err) {
        if (/UNIQUE/.test((err as Error).message)) {
          throw new FondsError('CONFLICT', `${r.urn} is already being disseminated to '${r.recipient_label}' by another dissemination.`);
        }
        throw err;
      }
      tx.event({ kind: 'dissemination', objectId: id, type: DisseminationEventTypes.retried, payload: { ...base(r), attempt: r.attempts + 1, by: 'archivist' } });
      enqueueDelivery(tx, id, settingsOf(rec));
    });
    return rowToDissemination(getDisseminationRow(db, id));
  }

  return {
    jobs: { [DELIVER_JOB]: deliver as never },
    handlers: {
      'recipients.list': ({ directNotificationEnabled }) => listRecipients(db, directNotificationEnabled),
      'recipients.save': async (input) => {
        store.transact((tx) => saveRecipient(tx, input));
        const row = getRecipientRow(db, input.recipientLabel)!;
        const settings = settingsOf(row);
        if (settings.kind === 'amqp') await declare(settings).catch(() => undefined);
        return rowToRecipient(row);
      },
      'recipients.delete': ({ recipientLabel }) =>
        store.transact((tx) => {
          if (!getRecipientRow(tx.db, recipientLabel)) return { deleted: false };
          const busy = tx.db
            .prepare(`SELECT count(*) FROM disseminations WHERE recipient_label = ? AND status IN ('PENDING','WAITING_ACK')`)
            .pluck()
            .get(recipientLabel) as number;
          if (busy) throw new FondsError('CONFLICT', `Recipient '${recipientLabel}' has ${busy} dissemination(s) PENDING or WAITING_ACK; acknowledge or let them end first.`, { active: busy });
          tx.db.prepare('DELETE FROM recipients WHERE label = ?').run(recipientLabel);
          return { deleted: true };
        }),
      'disseminations.notify': ({ urns, recipients }) => notify(urns, recipients),
      'disseminations.list': ({ urn, recipientLabel, status, q, offset, limit }) => listDisseminations(db, { urn, recipientLabel, status, q }, offset, limit),
      'disseminations.get': ({ id }) => rowToDissemination(getDisseminationRow(db, id)),
      'disseminations.timeline': ({ id, urn, offset, limit }) => disseminationTimeline(db, { id, urn }, offset, limit),
      'disseminations.ack': ({ id }) => ackByHand(id),
      'disseminations.retry': ({ id }) => retry(id),
      'disseminations.unmatchedAcks': ({ offset, limit }) => unmatchedAcks(db, offset, limit),
      'disseminations.webhookAck': (input) => webhookAcks.receive(input),
      'products.disseminationStatus': ({ urn }) => {
        const known = productOrUndefined(db, urn) || db.prepare('SELECT 1 FROM disseminations WHERE urn = ? LIMIT 1').get(urn);
        if (!known) throw new FondsError('NOT_FOUND', `Product ${urn} does not exist and was never disseminated.`, { urn });
        return productSummary(db, urn);
      },
    },
    start() {
      patchAcks.start();
    },
    async stop() {
      patchAcks.stop();
      webhookAcks.stop();
      await ackConsumer.stop();
    },
  };
}

export type { DisseminationRow };
