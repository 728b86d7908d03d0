/**
 * Products: the catalogue of products (REGARDS features) and their patch requests over AMQP,
 * received as a catalogue and sent as a client (seed 001). See README.md.
 */
import { randomUUID } from 'node:crypto';
import { FEATURE_URN, productUrn, type Product } from '../../../src-shared/domain/product';
import { FondsError } from '../../../src-shared/errors';
import type { Amqp } from '../amqp';
import { consumeInWindows, type WindowConsumer } from '../amqp/consumer';
import type { Capability, Deps } from '../capability';
import { nowIso, tailEquals } from '../db/store';
import { createAnswerBinding } from './answers';
import { ANSWERS_SOURCE, PATCH_JOB, createCatalogue } from './receive';
import { createClient } from './send';
import { getProduct, listPatches, listProducts, productTimeline } from './store';

export { productsMigrations } from './migrations';
export { getProduct } from './store';

export function createProducts(deps: Deps, amqp: Amqp): Capability {
  const { store, config } = deps;
  const db = store.db;
  const catalogue = createCatalogue(deps, amqp);
  // the answers a received request owes have no outbox row unless they must wait (receive.ts)
  deps.outbox.registerOwed(ANSWERS_SOURCE, catalogue.answers);
  const client = createClient(deps, amqp);
  // a patch request edited in the outbox must still be one a catalogue accepts
  deps.outbox.onChange(client.onOutboxChange);
  const answers = createAnswerBinding(db, amqp);
  let consumers: WindowConsumer[] = [];

  // on every connection, after the topology: the answers queue's binding, then the consumers
  amqp.link.onSession(async (session) => {
    await answers.setup(session);
    const started: WindowConsumer[] = [];
    if (config.regardsCatalogue) {
      started.push(
        await consumeInWindows(session, { queue: amqp.names.requests, prefetch: config.amqpPrefetch, handle: catalogue.receiveWindow, onPoison: catalogue.poison }),
      );
    }
    const handleAnswers = (window: Parameters<typeof client.responseWindow>[0]) => {
      const verdicts = client.responseWindow(window);
      answers.settled();
      return verdicts;
    };
    started.push(await consumeInWindows(session, { queue: amqp.names.responses, prefetch: config.amqpPrefetch, handle: handleAnswers, onPoison: client.poison }));
    consumers = started;
  });
  amqp.beforeSend(answers.beforeSend);
  amqp.onSent(client.onSent);

  function create(input: { tenant?: string; urn?: string; providerId: string; properties: Record<string, unknown>; files: Product['files']; storedDataId?: string }): Product {
    const tenant = input.tenant ?? config.regardsTenants[0];
    if (!config.regardsTenants.includes(tenant)) {
      throw new FondsError('INVALID_INPUT', `tenant: '${tenant}' is not a known tenant (regardsTenants: ${config.regardsTenants.join(', ')}).`, {
        issues: [{ field: 'tenant', message: 'not a known tenant' }],
      });
    }
    const urn = input.urn ?? productUrn(tenant, randomUUID());
    const version = Number(FEATURE_URN.exec(urn)?.[4] ?? 1);
    store.transact((tx) => {
      if (tx.db.prepare('SELECT 1 FROM products WHERE urn = ?').get(urn)) throw new FondsError('CONFLICT', `Product ${urn} already exists.`, { urn });
      const t = nowIso();
      tx.db
        .prepare(
          `INSERT INTO products (urn, tenant, provider_id, version, stored_data_id, properties, files, created_at, updated_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)`,
        )
        .run(urn, tenant, input.providerId, version, input.storedDataId ?? null, JSON.stringify(input.properties), JSON.stringify(input.files), t, t);
      tx.event({
        kind: 'product',
        objectId: urn,
        type: 'created',
        payload: { tenant, providerId: input.providerId, files: input.files.length, ...(input.storedDataId ? { storedDataId: input.storedDataId } : {}) },
      });
    });
    return getProduct(db, urn);
  }

  return {
    jobs: { [PATCH_JOB]: catalogue.job as never },
    handlers: {
      'products.list': ({ q, tenant, offset, limit }) => listProducts(db, q, tenant, offset, limit),
      'products.get': ({ urn }) => getProduct(db, urn),
      'products.create': (input) => create(input),
      'products.timeline': ({ urn, offset, limit }) => {
        const known = db.prepare(`SELECT 1 FROM products WHERE urn = @urn UNION ALL SELECT 1 FROM patch_requests WHERE ${tailEquals('urn', '@urn')} LIMIT 1`).get({ urn });
        if (!known) throw new FondsError('NOT_FOUND', `Product ${urn} does not exist and no patch request names it.`, { urn });
        return productTimeline(db, urn, offset, limit);
      },
      'patches.compose': (input) => client.compose(input),
      'patches.send': (input) => client.send(input),
      'patches.list': ({ direction, urn, state, q, offset, limit }) => listPatches(db, { direction, urn, state, q }, offset, limit),
    },
    async stop() {
      // stop taking deliveries, then settle the window in hand while the connection still lives
      await Promise.all(consumers.map((c) => c.channel.cancel(c.consumerTag).catch(() => undefined)));
      await Promise.all(consumers.map((c) => c.drained().catch(() => undefined)));
      consumers = [];
    },
  };
}
