/**
 * AMQP: the link to RabbitMQ (reconnecting with backoff), Fonds' topology, the outbox's `amqp`
 * transport (attached while connected, detached when the link drops), and the record of
 * dead-lettered messages. Features (products…) add their consumers with `link.onSession`.
 */
import { randomUUID } from 'node:crypto';
import type { OutboxItem } from '../../../src-shared/api';
import type { AmqpState, AmqpStatus } from '../../../src-shared/domain/product';
import type { Capability, Deps } from '../capability';
import { OUTBOX_OPEN, type OutboxTransport } from '../db/outbox';
import { countDeadLetters, listDeadLetters } from './dead-letters';
import { BrokerLink, redactUrl } from './link';
import { PUBLISH_PROPERTIES } from './regards';
import { assertTopology, queueNames, type QueueNames } from './topology';

export { amqpMigrations } from './migrations';

/** The outbox channel this transport serves. */
export const AMQP_CHANNEL = 'amqp';

export interface Amqp extends Capability {
  readonly link: BrokerLink;
  readonly names: QueueNames;
  /** this data directory's id; its messages carry app_id `fonds/<instanceId>` */
  readonly instanceId: string;
  readonly appId: string;
  state(): AmqpState;
  status(): AmqpStatus;
  /** called after the broker confirmed an outbox message (e.g. to mark a patch request sent) */
  onSent(hook: (item: OutboxItem) => void): void;
  /** awaited before an outbox message is published, when it returns a promise (e.g. bind the answers queue first) */
  beforeSend(hook: (item: OutboxItem) => Promise<void> | undefined): void;
}

/** A stable id for this data directory, kept in `settings`. */
function instanceIdOf(deps: Deps): string {
  const db = deps.store.db;
  db.prepare(`INSERT OR IGNORE INTO settings (key, value) VALUES ('instance.id', ?)`).run(randomUUID());
  return db.prepare(`SELECT value FROM settings WHERE key = 'instance.id'`).pluck().get() as string;
}

export function createAmqp(deps: Deps): Amqp {
  const { config, store, outbox } = deps;
  const instanceId = instanceIdOf(deps);
  const appId = `fonds/${instanceId}`;
  const names = queueNames(config.amqpQueuePrefix);
  const link = new BrokerLink({
    url: config.amqpUrl,
    vhost: config.amqpVhost,
    heartbeatSeconds: config.amqpHeartbeatSeconds,
    reconnectMaxMs: config.amqpReconnectMaxMs,
    connectionName: `fonds ${instanceId} (${config.dataDir})`,
    appId,
  });
  const sentHooks: Array<(item: OutboxItem) => void> = [];
  const beforeHooks: Array<(item: OutboxItem) => Promise<void> | undefined> = [];

  const transport: OutboxTransport = {
    send(item, done) {
      const publish = () =>
        link.publish(
          item.destination,
          '',
          Buffer.from(item.body, 'utf8'),
          {
            headers: item.headers,
            contentType: PUBLISH_PROPERTIES.content_type,
            contentEncoding: PUBLISH_PROPERTIES.content_encoding,
            deliveryMode: PUBLISH_PROPERTIES.delivery_mode,
            appId: link.appId,
          },
          (error) => {
            if (!error) {
              for (const hook of sentHooks) {
                try {
                  hook(item);
                } catch {
                  /* the message is out: a bookkeeping failure must not send it twice */
                }
              }
            }
            done(error);
          },
        );
      // the hooks in order, each awaited when it returns a promise, then the message
      const from = (i: number): void => {
        for (; i < beforeHooks.length; i++) {
          const ready = beforeHooks[i](item);
          if (ready) {
            ready.then(() => from(i + 1), done);
            return;
          }
        }
        publish();
      };
      from(0);
    },
  };

  /** what the last topology declaration had to say (a queue taken as it was declared earlier) */
  let topologyNotes: string[] = [];
  // topology first: the answers go to exchanges it declares
  link.onSession(async (session) => {
    topologyNotes = await assertTopology(link, session, names, { catalogue: config.regardsCatalogue, maxPriority: config.amqpMaxPriority });
  });
  link.on('state', (state: AmqpState) => {
    if (state === 'connected') outbox.attach(AMQP_CHANNEL, transport);
    else outbox.detach(AMQP_CHANNEL);
  });

  // rows waiting or being sent, and owed messages being sent (they have no row until they must wait)
  const waiting = () =>
    (store.db.prepare(`SELECT count(*) FROM outbox WHERE ${OUTBOX_OPEN} AND channel = ? AND status IN ('pending','sending')`).pluck().get(AMQP_CHANNEL) as number) +
    outbox.owedInHand(AMQP_CHANNEL);

  const status = (): AmqpStatus => ({
    state: link.state,
    url: redactUrl(config.amqpUrl),
    vhost: config.amqpVhost,
    ...(link.lastError ? { lastError: link.lastError } : {}),
    since: link.since,
    connections: link.connections,
    ...(link.nextAttemptAt && link.state !== 'connected' ? { nextAttemptAt: link.nextAttemptAt } : {}),
    catalogue: config.regardsCatalogue,
    tenants: config.regardsTenants,
    requestOwner: config.regardsRequestOwner,
    queues: { ...(config.regardsCatalogue ? { requests: names.requests } : {}), responses: names.responses, deadLetter: names.deadLetter },
    ...(topologyNotes.length ? { notes: topologyNotes } : {}),
    outboxWaiting: waiting(),
    deadLetters: countDeadLetters(store.db),
  });

  return {
    link,
    names,
    instanceId,
    appId,
    state: () => link.state,
    status,
    onSent: (hook) => void sentHooks.push(hook),
    beforeSend: (hook) => void beforeHooks.push(hook),
    handlers: {
      'amqp.status': () => status(),
      'amqp.deadLetters': ({ offset, limit }) => listDeadLetters(store.db, offset, limit),
    },
    start() {
      link.start();
    },
    async stop() {
      outbox.detach(AMQP_CHANNEL);
      await link.stop();
    },
  };
}
