/**
 * Patch requests over a real RabbitMQ, published and answered by a raw amqplib client (none of
 * Fonds' code on the remote side): seed 001's examples, refusals, duplicates, delayed requests,
 * priorities, a connection closed by the broker and a restart mid-stream, and requests Fonds
 * sends while no broker is there. Each file works in a virtual host of its own.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { createHash, randomUUID } from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import type { ConsumeMessage } from 'amqplib';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { migrations, type Service } from '../../src-main/service';
import { bodySha256Of, listDeadLetters, recordDeadLetter } from '../../src-main/service/amqp/dead-letters';
import { migrate, openDatabase } from '../../src-main/service/db/database';
import { Store } from '../../src-main/service/db/store';
import { queueNames } from '../../src-main/service/amqp/topology';
import { createCatalogue } from '../../src-main/service/products/receive';
import type { Config } from '../../src-main/service/config';
import { REGARDS, type FeatureFile } from '../../src-shared/domain/product';
import {
  BROKER,
  RawClient,
  SEED_URN,
  amqpUrlOf,
  answerOf,
  bindingsOf,
  brokerAvailable,
  closeConnectionsNamed,
  deleteVhost,
  ensureVhost,
  seedExamples,
} from '../helpers/regards';
import { repoRoot, startService, tempDir, waitFor } from '../helpers/service';

const available = await brokerAvailable();
const VHOST = `fonds-it-${process.pid}-${randomUUID().slice(0, 8)}`;
const ID = '12345463-0f6b-4488-b58c-52af3f7e9563';

interface Running {
  service: Service;
  dataDir: string;
  prefix: string;
  close(): Promise<void>;
}

const cleanups: Array<() => Promise<void> | void> = [];
const prefixes: Array<{ vhost: string; prefix: string }> = [];
let raw: RawClient;

/** A Fonds catalogue on the test virtual host, connected. Reopen with the same dataDir and prefix to restart it. */
async function catalogue(overrides: Partial<Config> & { prefix?: string } = {}, waitConnected = true): Promise<Running> {
  const { prefix = `t${randomUUID().slice(0, 8)}`, ...rest } = overrides;
  const dataDir = rest.dataDir ?? tempDir('fonds-amqp-');
  const vhost = rest.amqpVhost ?? VHOST;
  if (!prefixes.some((p) => p.prefix === prefix)) prefixes.push({ vhost, prefix });
  const s = await startService({ amqpUrl: amqpUrlOf(), amqpVhost: vhost, amqpQueuePrefix: prefix, amqpReconnectMaxMs: 500, messageWatch: false, hashWorkers: 1, ...rest, dataDir });
  // service.close() is idempotent: a test may close early (a restart), the cleanup closes again
  const close = () => s.service.close();
  cleanups.push(async () => {
    await close();
    fs.rmSync(dataDir, { recursive: true, force: true });
  });
  if (waitConnected) await waitFor(() => s.service.call('amqp.status', {}), (st) => st.state === 'connected', 20_000);
  return { service: s.service, dataDir, prefix, close };
}

const file = (checksum: string, url: string, filename: string): FeatureFile => ({
  locations: [{ storage: 'S3Server', url }],
  attributes: { dataType: 'RAWDATA', mimeType: 'application/xml', filename, filesize: 10, algorithm: 'MD5', checksum },
});

const headers = (requestId: string, extra: Record<string, unknown> = {}) => ({
  'regards.tenant': 'project1',
  'regards.request.id': requestId,
  'regards.request.owner': 'tester',
  ...extra,
});
const body = (urn: string, properties: Record<string, unknown>, metadata: Record<string, unknown> = {}) =>
  JSON.stringify({ metadata: { storages: [], priority: 'NORMAL', ...metadata }, feature: { urn, properties } });

/** The answers (FeatureRequestEvent) about one request, in arrival order. */
const about = (answers: ConsumeMessage[], requestId: string) => answers.map(answerOf).filter((a) => a.body.requestId === requestId);
const states = (answers: ConsumeMessage[], requestId: string) => about(answers, requestId).map((a) => a.body.state);
async function answered(answers: ConsumeMessage[], requestId: string, final: string[] = ['SUCCESS', 'ERROR', 'DENIED'], timeoutMs = 15_000) {
  await waitFor(() => states(answers, requestId), (s) => s.some((x) => final.includes(x)), timeoutMs);
  return about(answers, requestId);
}

beforeAll(async () => {
  if (!available) return;
  await ensureVhost(VHOST);
  await ensureVhost(REGARDS.defaultVhost);
  raw = await RawClient.open(VHOST);
}, 120_000);

afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

afterAll(async () => {
  if (!available) return;
  await raw?.close();
  // queues left in the shared default virtual host by the seed tests
  const def = prefixes.filter((p) => p.vhost === REGARDS.defaultVhost);
  if (def.length) {
    const c = await RawClient.open(REGARDS.defaultVhost);
    for (const { prefix } of def) for (const q of ['feature-update-requests', 'feature-request-events', 'dead-letter']) await c.channel.deleteQueue(`${prefix}.${q}`).catch(() => undefined);
    for (const { prefix } of def) await c.channel.deleteExchange(`${prefix}.dead-letter`).catch(() => undefined);
    await c.close();
  }
  await deleteVhost(VHOST);
}, 120_000);

describe.runIf(available)('the seed examples, published verbatim by a raw client', () => {
  const [metadataOnly, withFiles] = seedExamples();

  it('metadata only: GRANTED then SUCCESS, on the default virtual host, and the properties deep-merged', async () => {
    const c = await catalogue({ amqpVhost: REGARDS.defaultVhost });
    expect((await c.service.call('app.info', {})).amqp).toBe('connected');
    await c.service.call('products.create', {
      urn: SEED_URN,
      providerId: 'seed-product',
      properties: { file_characterization: { invalidation_date: null, valid: true, format: 'XML' }, title: 'Seed product' },
      files: [file('c0', 'http://s/f0.xml', 'f0.xml')],
    });
    const client = await RawClient.open(REGARDS.defaultVhost);
    cleanups.push(() => client.close());
    const answers = await client.listen(REGARDS.requestEventExchange);
    await client.publishRequest(metadataOnly.headers, metadataOnly.body);

    const got = await answered(answers, ID);
    expect(got.map((a) => a.body.state)).toEqual(['GRANTED', 'SUCCESS']);
    for (const a of got) {
      expect(a.headers).toEqual({ 'regards.tenant': 'project1', 'regards.request.id': ID });
      expect(a.body).toEqual({ requestId: ID, type: 'PATCH', urn: SEED_URN, requestOwner: 'owner', state: a.body.state, errors: [] });
    }
    const p = await c.service.call('products.get', { urn: SEED_URN });
    expect(p.properties).toEqual({ file_characterization: { invalidation_date: '2019-12-03T12:31:42.466Z', valid: false, format: 'XML' }, title: 'Seed product' });
    expect(p.files.map((f) => f.attributes.filename)).toEqual(['f0.xml']);
    const timeline = await c.service.call('products.timeline', { urn: SEED_URN });
    // granted and applied in one transaction: one event records both states and what changed
    expect(timeline.items.map((e) => e.type)).toEqual(['received.SUCCESS', 'created']);
    expect(timeline.items[0].payload).toEqual({
      requestId: ID,
      urn: SEED_URN,
      states: ['GRANTED', 'SUCCESS'],
      changed: ['file_characterization.invalidation_date', 'file_characterization.valid'],
    });
    const [patch] = (await c.service.call('patches.list', { urn: SEED_URN })).items;
    expect(patch).toMatchObject({ requestId: ID, direction: 'received', state: 'SUCCESS', tenant: 'project1', owner: 'owner', priority: 'NORMAL' });
  });

  it('files APPEND with a past request date: processed at once, the seed file added to the existing one', async () => {
    const c = await catalogue();
    await c.service.call('products.create', { urn: SEED_URN, properties: { title: 'T' }, files: [file('c0', 'http://s/f0.xml', 'f0.xml')] });
    const answers = await raw.listen(REGARDS.requestEventExchange);
    await raw.publishRequest(withFiles.headers, withFiles.body);
    expect((await answered(answers, ID)).map((a) => a.body.state)).toEqual(['GRANTED', 'SUCCESS']);
    const p = await c.service.call('products.get', { urn: SEED_URN });
    expect(p.files.map((f) => f.attributes.filename)).toEqual(['f0.xml', 'filename']);
    expect(p.files[1]).toEqual(JSON.parse(withFiles.body).feature.files[0]);
    expect(p.properties).toEqual({ title: 'T', file_characterization: { invalidation_date: '2019-12-03T12:31:42.466Z', valid: false } });
  });

  it('both on one catalogue: they share a request id, so the second is DENIED and not applied', async () => {
    const c = await catalogue();
    await c.service.call('products.create', { urn: SEED_URN });
    const answers = await raw.listen(REGARDS.requestEventExchange);
    await raw.publishRequest(metadataOnly.headers, metadataOnly.body);
    await waitFor(() => states(answers, ID), (s) => s.includes('SUCCESS'));
    await raw.publishRequest(withFiles.headers, withFiles.body);
    await waitFor(() => states(answers, ID), (s) => s.length === 3);
    const last = about(answers, ID)[2].body;
    expect(last.state).toBe('DENIED');
    expect(last.errors).toEqual([expect.stringMatching(/^regards\.request\.id: '12345463-0f6b-4488-b58c-52af3f7e9563' was already used by the request received .* \(SUCCESS\); this one was not applied$/)]);
    expect((await c.service.call('products.get', { urn: SEED_URN })).files).toEqual([]);
  });
});

describe.runIf(available)('refusals: DENIED with every reason, or dead-lettered', () => {
  it('an unknown URN, an unknown tenant: DENIED, each reason named', async () => {
    const c = await catalogue();
    const answers = await raw.listen(REGARDS.requestEventExchange);
    const unknownUrn = `URN:FEATURE:DATA:project1:${randomUUID()}:V1`;
    await raw.publishRequest(headers('r-unknown-urn'), body(unknownUrn, { a: 1 }));
    await raw.publishRequest(headers('r-unknown-tenant', { 'regards.tenant': 'project9' }), body(unknownUrn, { a: 1 }));
    const urnAnswer = (await answered(answers, 'r-unknown-urn'))[0];
    expect(urnAnswer.body).toEqual({ requestId: 'r-unknown-urn', type: 'PATCH', urn: unknownUrn, requestOwner: 'tester', state: 'DENIED', errors: [`feature.urn: no product ${unknownUrn} in this catalogue`] });
    const tenantAnswer = (await answered(answers, 'r-unknown-tenant'))[0];
    expect(tenantAnswer.headers['regards.tenant']).toBe('project9');
    expect(tenantAnswer.body.errors).toEqual(["regards.tenant: 'project9' is not a known tenant (known: project1)"]);
    const denied = await c.service.call('patches.list', { state: 'DENIED' });
    expect(denied.total).toBe(2);
  });

  it('a body that is not JSON, a header of the wrong type, an oversize body: DENIED with the reason', async () => {
    const c = await catalogue({ amqpMaxMessageBytes: 2048 });
    const { urn } = await c.service.call('products.create', {});
    const answers = await raw.listen(REGARDS.requestEventExchange);
    await raw.publishRequest(headers('r-not-json'), 'metadata=storages');
    await raw.publishRequest(headers('r-bad-header', { 'regards.request.owner': 42, 'regards.request.date': ['2020-01-01'] }), body(urn, { a: 1 }));
    await raw.publishRequest(headers('r-oversize'), body(urn, { pad: 'x'.repeat(3000) }));
    expect((await answered(answers, 'r-not-json'))[0].body).toMatchObject({ state: 'DENIED', errors: [expect.stringMatching(/^body: not JSON \(/)] });
    expect((await answered(answers, 'r-bad-header'))[0].body).toMatchObject({
      state: 'DENIED',
      requestOwner: null,
      errors: ['regards.request.owner: must be a string, not a number', 'regards.request.date: must be a string, not a list'],
    });
    expect((await answered(answers, 'r-oversize'))[0].body.errors).toEqual([expect.stringMatching(/^body: \d+ bytes, over the limit of 2048 bytes/)]);
    expect((await c.service.call('products.get', { urn })).properties).toEqual({});
  });

  it('no request id: nobody to answer, so it is recorded, dead-lettered once, and never redelivered', async () => {
    const c = await catalogue();
    const answers = await raw.listen(REGARDS.requestEventExchange);
    await raw.publishRequest({ 'regards.tenant': 'project1' }, Buffer.from([0xde, 0xad, 0xbe, 0xef]));
    await raw.publishRequest({ 'regards.request.id': { nested: true } }, '{}');
    const dead = await waitFor(() => c.service.call('amqp.deadLetters', {}), (p) => p.total === 2);
    expect(dead.items.map((d) => d.reason).sort()).toEqual([
      'regards.request.id: missing; nobody to answer',
      'regards.request.id: must be a string, not a table; nobody to answer',
    ]);
    expect(dead.items.find((d) => d.bodyBytes === 4)).toMatchObject({ queue: `${c.prefix}.feature-update-requests`, headers: { 'regards.tenant': 'project1' } });
    await waitFor(async () => (await raw.channel.checkQueue(`${c.prefix}.dead-letter`)).messageCount, (n) => n === 2);
    await new Promise((r) => setTimeout(r, 500));
    expect((await raw.channel.checkQueue(`${c.prefix}.feature-update-requests`)).messageCount).toBe(0);
    expect((await c.service.call('amqp.deadLetters', {})).total).toBe(2);
    expect(answers).toEqual([]);
    expect((await c.service.call('amqp.status', {})).deadLetters).toBe(2);
  });

  it('every message whose processing failed twice is recorded, each once, by the SHA-256 of its own body', async () => {
    const c = await catalogue();
    const { urn } = await c.service.call('products.create', { files: [] });
    // the catalogue's commit fails for these requests (as a full disk would): window, one by one, redelivery, dead letter
    c.service.internals.store.db.exec(`CREATE TRIGGER poison BEFORE INSERT ON patch_requests WHEN NEW.request_id LIKE 'poison-%' BEGIN SELECT RAISE(ABORT, 'disk on fire'); END`);
    await raw.publishRequest(headers('poison-1'), body(urn, { n: 1 }));
    await raw.publishRequest(headers('poison-2'), body(urn, { n: 2 }));
    const dead = await waitFor(() => c.service.call('amqp.deadLetters', {}), (p) => p.total === 2, 20_000);
    expect(dead.items.map((d) => [d.reason, JSON.parse(d.bodyPreview).feature.properties.n]).sort()).toEqual([
      ['processing failed twice: disk on fire', 1],
      ['processing failed twice: disk on fire', 2],
    ]);
    const db = c.service.internals.store.db;
    const hashes = db.prepare('SELECT body_sha256 FROM amqp_dead_letters ORDER BY id').pluck().all() as string[];
    expect(hashes.sort()).toEqual([body(urn, { n: 1 }), body(urn, { n: 2 })].map((b) => createHash('sha256').update(b).digest('hex')).sort());
    await waitFor(async () => (await raw.channel.checkQueue(`${c.prefix}.dead-letter`)).messageCount, (n) => n === 2);
    // the queue goes on: a good request after them is applied
    db.exec('DROP TRIGGER poison');
    const answers = await raw.listen(REGARDS.requestEventExchange);
    await raw.publishRequest(headers('after-poison'), body(urn, { n: 3 }));
    expect((await answered(answers, 'after-poison')).map((a) => a.body.state)).toEqual(['GRANTED', 'SUCCESS']);
    expect((await c.service.call('amqp.deadLetters', {})).total).toBe(2);
  }, 30_000);
});

describe('recording dead letters (no broker needed)', () => {
  const redelivered = (content: string) => ({ content: Buffer.from(content), fields: { redelivered: true, deliveryTag: 1 }, properties: { headers: {} } }) as unknown as ConsumeMessage;

  it('tells different redelivered messages apart, and records a redelivery of the same one once', () => {
    const dir = tempDir('fonds-dead-letters-');
    cleanups.push(() => fs.rmSync(dir, { recursive: true, force: true }));
    const db = openDatabase(path.join(dir, 'fonds.sqlite'));
    cleanups.push(() => {
      db.close();
    });
    migrate(db, migrations);
    const store = new Store(db);
    const q = 'fonds.dissemination-acks';
    store.transact((tx) => recordDeadLetter(tx, q, redelivered('{"urn":"A"}'), 'processing failed twice: boom A', bodySha256Of(Buffer.from('{"urn":"A"}'))));
    store.transact((tx) => recordDeadLetter(tx, q, redelivered('{"urn":"B"}'), 'processing failed twice: boom B'));
    // an empty hash counts as none given: the body's own is recorded
    store.transact((tx) => recordDeadLetter(tx, q, redelivered('{"urn":"C"}'), 'processing failed twice: boom C', ''));
    // the process stopped before the nack reached the broker: the same message comes back
    store.transact((tx) => recordDeadLetter(tx, q, redelivered('{"urn":"A"}'), 'processing failed twice: boom A'));
    // the same body on another queue is another message
    store.transact((tx) => recordDeadLetter(tx, 'fonds.feature-update-requests', redelivered('{"urn":"A"}'), 'processing failed twice: boom A'));
    const page = listDeadLetters(db, 0, 10);
    expect(page.items.map((d) => [d.queue, d.bodyPreview]).reverse()).toEqual([
      [q, '{"urn":"A"}'],
      [q, '{"urn":"B"}'],
      [q, '{"urn":"C"}'],
      ['fonds.feature-update-requests', '{"urn":"A"}'],
    ]);
    expect(new Set(db.prepare('SELECT body_sha256 FROM amqp_dead_letters').pluck().all()).size).toBe(3);
  });
});

describe('answers owed by the request rows (no broker needed)', () => {
  const delivery = (requestId: string, h: Record<string, unknown>, content: string) =>
    ({ content: Buffer.from(content), fields: { redelivered: false, deliveryTag: 1 }, properties: { headers: { 'regards.request.id': requestId, ...h }, contentType: 'application/json' } }) as unknown as ConsumeMessage;

  it('are, read again from the rows after a crash, exactly the answers given as the requests were settled', async () => {
    // no broker: the answers cannot be taken in hand, so each is written as an outbox row as given
    const s = await startService({ amqpUrl: '', messageWatch: false, hashWorkers: 1 });
    cleanups.push(s.dispose);
    const { urn } = await s.service.call('products.create', {});
    const catalogue = createCatalogue(s.service.internals, { names: queueNames('t'), appId: 'fonds/test' });
    const owner = { 'regards.request.owner': 'tester' };
    const verdicts = catalogue.receiveWindow([
      delivery('r-ok', { 'regards.tenant': 'project1', ...owner }, body(urn, { a: 1 })),
      delivery('r-unknown', { 'regards.tenant': 'project1', ...owner }, body(`URN:FEATURE:DATA:project1:${randomUUID()}:V1`, { a: 1 })),
      delivery('r-no-tenant', owner, 'not json'),
      delivery('r-no-owner', { 'regards.tenant': 'elsewhere' }, body(urn, { a: 1 })),
      delivery('r-later', { 'regards.tenant': 'project1', 'regards.request.date': '2999-01-01T00:00:00Z', ...owner }, body(urn, { b: 2 })),
    ]);
    expect(verdicts).toEqual(['ack', 'ack', 'ack', 'ack', 'ack']);
    const written = s.service.internals.store.db.prepare('SELECT headers, body FROM outbox ORDER BY id').all() as Array<{ headers: string; body: string }>;
    const given = written.map((w) => ({ headers: JSON.parse(w.headers) as unknown, body: w.body }));
    // the delayed request's GRANTED is a row of its own, not owed: it is not read again
    const owed = catalogue.answers.owedAfter(0).map((m) => ({ headers: m.headers, body: m.body }));
    expect(given.map((g) => JSON.parse(g.body).state)).toEqual(['GRANTED', 'SUCCESS', 'DENIED', 'DENIED', 'DENIED', 'GRANTED']);
    expect(owed).toEqual(given.slice(0, 5));
    expect(JSON.parse(given[3].body)).toMatchObject({ requestId: 'r-no-tenant', urn: null, requestOwner: 'tester' });
    expect(given[3].headers).toEqual({ 'regards.request.id': 'r-no-tenant' });
    expect(JSON.parse(given[4].body)).toMatchObject({ requestId: 'r-no-owner', requestOwner: null });
  });
});

describe.runIf(available)('duplicates', () => {
  it('the same request sent twice is answered from the stored outcome and applied once', async () => {
    const c = await catalogue();
    const { urn } = await c.service.call('products.create', { files: [] });
    const answers = await raw.listen(REGARDS.requestEventExchange);
    const m = JSON.stringify({ metadata: { storages: [] }, feature: { urn, files: [file('c1', 'http://s/1.xml', '1.xml')], properties: { n: 1 } } });
    await raw.publishRequest(headers('r-dup', { 'regards.request.file_update_mode': 'REPLACE' }), m);
    await waitFor(() => states(answers, 'r-dup'), (s) => s.includes('SUCCESS'));
    await raw.publishRequest(headers('r-dup', { 'regards.request.file_update_mode': 'REPLACE' }), m);
    await waitFor(() => states(answers, 'r-dup'), (s) => s.length === 3);
    expect(states(answers, 'r-dup')).toEqual(['GRANTED', 'SUCCESS', 'SUCCESS']);
    const timeline = await c.service.call('products.timeline', { urn });
    expect(timeline.items.filter((e) => e.type === 'received.SUCCESS')).toHaveLength(1);
    expect(timeline.items.find((e) => e.type === 'received.SUCCESS')!.payload).toMatchObject({ changed: ['n'], fileUpdateMode: 'REPLACE', filesBefore: 0, filesAfter: 1 });
    expect(timeline.items[0]).toMatchObject({ type: 'received.duplicate', payload: { sameContent: true, answered: 'SUCCESS' } });
    expect((await c.service.call('patches.list', { q: 'r-dup' })).total).toBe(1);
  });
});

describe.runIf(available)('delayed requests (regards.request.date in the future)', () => {
  it('is GRANTED at once, applied after its date, and survives a restart in between', async () => {
    const first = await catalogue();
    const { urn } = await first.service.call('products.create', { properties: { v: 'before' } });
    const answers = await raw.listen(REGARDS.requestEventExchange);
    const at = new Date(Date.now() + 3000);
    await raw.publishRequest(headers('r-delayed', { 'regards.request.date': at.toISOString().replace('Z', '') }), body(urn, { v: 'after' }, { priority: 'HIGH' }));
    await waitFor(() => states(answers, 'r-delayed'), (s) => s.includes('GRANTED'));
    expect((await first.service.call('products.get', { urn })).properties).toEqual({ v: 'before' });
    await first.close();
    await new Promise((r) => setTimeout(r, Math.max(0, at.getTime() - Date.now() + 300)));
    expect(states(answers, 'r-delayed')).toEqual(['GRANTED']);

    const again = await catalogue({ dataDir: first.dataDir, prefix: first.prefix });
    expect((await answered(answers, 'r-delayed')).map((a) => a.body.state)).toEqual(['GRANTED', 'SUCCESS']);
    expect((await again.service.call('products.get', { urn })).properties).toEqual({ v: 'after' });
    const timeline = (await again.service.call('products.timeline', { urn })).items;
    expect(timeline.map((e) => e.type)).toEqual(['received.SUCCESS', 'received.GRANTED', 'created']);
    expect(timeline[1].payload.runAt).toBe(at.toISOString());
    // applied by its job, later: the outcome event has its own state only, and what changed
    expect(timeline[0].payload).toEqual({ requestId: 'r-delayed', urn, changed: ['v'] });
  });
});

describe.runIf(available)('windows of deliveries', () => {
  it('cuts a window at windowBytes however few its messages, and acknowledges each after its window', async () => {
    const { consumeInWindows } = await import('../../src-main/service/amqp/consumer');
    const queue = `t-windows-${randomUUID().slice(0, 8)}`;
    const connection = await (await import('amqplib')).connect({ hostname: BROKER.host, port: BROKER.port, username: BROKER.user, password: BROKER.password, vhost: VHOST });
    const controller = new AbortController();
    cleanups.push(async () => {
      controller.abort();
      await connection.close().catch(() => undefined);
    });
    const setup = await connection.createChannel();
    await setup.assertQueue(queue, { durable: false, autoDelete: false });
    for (let i = 0; i < 8; i++) setup.sendToQueue(queue, Buffer.alloc(1024, i));
    const windows: number[][] = [];
    const consumer = await consumeInWindows(
      { connection, signal: controller.signal, channel: () => connection.createChannel(), drop: () => undefined },
      { queue, prefetch: 100, windowBytes: 3000, windowMs: 500, handle: (w) => (windows.push(w.map((m) => m.content[0])), w.map(() => 'ack' as const)) },
    );
    await waitFor(() => windows.flat().length, (n) => n === 8, 10_000);
    // 3 KiB is past 3000 bytes: a window of three, another, and the last two when the timer ends it
    expect(windows).toEqual([[0, 1, 2], [3, 4, 5], [6, 7]]);
    // closing the consumer's channel would put back any message not acknowledged
    await consumer.drained();
    await consumer.channel.close();
    expect((await setup.checkQueue(queue)).messageCount).toBe(0);
    await setup.deleteQueue(queue);
  });
});

describe.runIf(available)('priorities: HIGH first', () => {
  const levels = ['LOW', 'NORMAL', 'HIGH', 'LOW', 'HIGH', 'NORMAL'] as const;

  it('a backlog waiting in the queue is processed HIGH, then NORMAL, then LOW', async () => {
    const first = await catalogue();
    const { urn } = await first.service.call('products.create', {});
    await first.close();
    const answers = await raw.listen(REGARDS.requestEventExchange);
    for (const [i, level] of levels.entries()) await raw.publishRequest(headers(`r-prio-${i}`), body(urn, { last: `${level}-${i}` }, { priority: level }));
    const again = await catalogue({ dataDir: first.dataDir, prefix: first.prefix });
    await waitFor(() => answers.map(answerOf).filter((a) => a.body.state === 'SUCCESS'), (s) => s.length === levels.length);
    const order = answers.map(answerOf).filter((a) => a.body.state === 'SUCCESS').map((a) => a.body.requestId);
    expect(order).toEqual(['r-prio-2', 'r-prio-4', 'r-prio-1', 'r-prio-5', 'r-prio-0', 'r-prio-3']);
    expect((await again.service.call('products.get', { urn })).properties).toEqual({ last: 'LOW-3' });
  });

  it('the AMQP priority property sorts a backlog on the broker (x-max-priority amqpMaxPriority, 2 by default)', async () => {
    const first = await catalogue();
    const { urn } = await first.service.call('products.create', {});
    await first.close();
    // the same body priority for all: only the broker's order counts; 9 counts as the highest (2)
    const amqpPriorities = [0, 1, 2, 0, 9, 1];
    const answers = await raw.listen(REGARDS.requestEventExchange);
    for (const [i, priority] of amqpPriorities.entries()) await raw.publishRequest(headers(`r-amqp-${i}`), body(urn, { last: `amqp-${i}` }), { priority });
    const again = await catalogue({ dataDir: first.dataDir, prefix: first.prefix });
    await waitFor(() => answers.map(answerOf).filter((a) => a.body.state === 'SUCCESS'), (s) => s.length === amqpPriorities.length);
    const order = answers.map(answerOf).filter((a) => a.body.state === 'SUCCESS').map((a) => a.body.requestId);
    expect(order).toEqual(['r-amqp-2', 'r-amqp-4', 'r-amqp-1', 'r-amqp-5', 'r-amqp-0', 'r-amqp-3']);
    expect((await again.service.call('amqp.status', {})).notes).toBeUndefined();
  });

  it('takes a request queue declared earlier with another x-max-priority as it is, and says how to renew it', async () => {
    const prefix = `t${randomUUID().slice(0, 8)}`;
    // as an older Fonds declared it
    await raw.channel.assertQueue(`${prefix}.feature-update-requests`, { durable: true, deadLetterExchange: `${prefix}.dead-letter`, maxPriority: 10 });
    const c = await catalogue({ prefix });
    const status = await c.service.call('amqp.status', {});
    expect(status.notes).toHaveLength(1);
    expect(status.notes![0]).toMatch(new RegExp(`queue ${prefix}\.feature-update-requests was declared earlier with other arguments .*x-max-priority.*rabbitmqctl delete_queue ${prefix}\.feature-update-requests`));
    const { urn } = await c.service.call('products.create', {});
    const answers = await raw.listen(REGARDS.requestEventExchange);
    await raw.publishRequest(headers('r-old-queue'), body(urn, { v: 1 }));
    expect((await answered(answers, 'r-old-queue')).map((a) => a.body.state)).toEqual(['GRANTED', 'SUCCESS']);
  });

  it('delayed requests due at the same date run HIGH first', async () => {
    const c = await catalogue();
    const { urn } = await c.service.call('products.create', {});
    const answers = await raw.listen(REGARDS.requestEventExchange);
    const at = new Date(Date.now() + 2000).toISOString();
    for (const [i, level] of levels.entries()) {
      await raw.publishRequest(headers(`r-later-${i}`, { 'regards.request.date': at }), body(urn, { last: `${level}-${i}` }, { priority: level }));
    }
    await waitFor(() => answers.map(answerOf).filter((a) => a.body.state === 'SUCCESS'), (s) => s.length === levels.length, 20_000);
    const order = answers.map(answerOf).filter((a) => a.body.state === 'SUCCESS').map((a) => a.body.requestId);
    expect(order).toEqual(['r-later-2', 'r-later-4', 'r-later-1', 'r-later-5', 'r-later-0', 'r-later-3']);
  });
});

describe.runIf(available)('nothing lost when the connection or the app goes away mid-stream', () => {
  const N = 300;

  async function stream(c: Running, urn: string, tag: string, interrupt: () => Promise<void>) {
    const answers = await raw.listen(REGARDS.requestEventExchange);
    const ids = Array.from({ length: N }, (_, i) => `${tag}-${i}`);
    const publishing = (async () => {
      for (const [i, id] of ids.entries()) {
        await raw.publishRequest(headers(id), body(urn, { [`p${i}`]: i }));
      }
    })();
    await waitFor(() => answers.map(answerOf).filter((a) => a.body.state === 'SUCCESS').length, (n) => n >= N / 4, 30_000);
    await interrupt();
    await publishing;
    await waitFor(() => new Set(answers.map(answerOf).filter((a) => a.body.state === 'SUCCESS').map((a) => a.body.requestId)).size, (n) => n === N, 60_000);
    for (const id of ids) {
      const s = states(answers, id);
      expect(s, id).toContain('GRANTED');
      expect(s, id).toContain('SUCCESS');
      expect(s.indexOf('GRANTED'), id).toBeLessThan(s.indexOf('SUCCESS'));
    }
    return answers;
  }

  async function appliedOnce(service: Service, urn: string, tag: string) {
    const p = await service.call('products.get', { urn });
    expect(Object.keys(p.properties)).toHaveLength(N);
    for (let i = 0; i < N; i++) expect(p.properties[`p${i}`]).toBe(i);
    const patched = (await service.call('products.timeline', { urn, limit: 1000 })).items.filter(
      (e) => e.type === 'received.SUCCESS' && Array.isArray(e.payload.changed) && String(e.payload.requestId).startsWith(tag),
    );
    expect(patched).toHaveLength(N);
    expect(new Set(patched.map((e) => e.payload.requestId)).size).toBe(N);
  }

  it('the broker closes the connection: Fonds reconnects, every request is applied once and answered', async () => {
    const c = await catalogue({ amqpPrefetch: 16 });
    const { urn } = await c.service.call('products.create', {});
    await stream(c, urn, 'r-cut', async () => {
      expect(await closeConnectionsNamed(c.dataDir)).toBe(1);
    });
    await waitFor(() => c.service.call('amqp.status', {}), (s) => s.state === 'connected' && s.connections >= 2);
    await appliedOnce(c.service, urn, 'r-cut');
    await waitFor(() => c.service.call('app.info', {}), (i) => i.outboxPending === 0);
  });

  /** A catalogue in a child process, on `dataDir`: resolves once connected. `dieAt`: it kills itself once the window of that request is committed. */
  function catalogueChild(dataDir: string, prefix: string, dieAt?: string): Promise<ChildProcess> {
    const config = { dataDir, amqpUrl: amqpUrlOf(), amqpVhost: VHOST, amqpQueuePrefix: prefix, amqpPrefetch: 16, amqpReconnectMaxMs: 500 };
    const args = ['--import', 'tsx', path.join(repoRoot, 'tests/helpers/catalogue-child.ts'), JSON.stringify(config), ...(dieAt ? [dieAt] : [])];
    const child = spawn(process.execPath, args, { cwd: repoRoot, stdio: ['ignore', 'pipe', 'inherit'] });
    cleanups.push(() => void child.kill('SIGKILL'));
    return new Promise((resolve, reject) => {
      let out = '';
      child.stdout!.on('data', (d: Buffer) => {
        out += d.toString();
        if (out.includes('connected\n')) resolve(child);
      });
      child.once('exit', (code) => reject(new Error(`the catalogue child exited (${code}) before it connected`)));
    });
  }
  const exited = (child: ChildProcess) => new Promise<void>((resolve) => (child.exitCode !== null || child.signalCode !== null ? resolve() : child.once('exit', () => resolve())));

  it('the app is killed (SIGKILL) mid-stream and starts again: every request is applied once and answered', async () => {
    // the product is made by the app, which then stops: the data directory is the child's from then on
    const setup = await catalogue({ amqpPrefetch: 16 });
    const { urn } = await setup.service.call('products.create', {});
    await setup.close();
    // it dies as the window of the request half way is committed: that window's answers are
    // handed over, not confirmed, and have no outbox row; the window is not acknowledged either,
    // so it comes back already applied: the restart must answer it from its rows
    let child = await catalogueChild(setup.dataDir, setup.prefix, `r-kill-${N / 2}`);
    await stream(setup, urn, 'r-kill', async () => {
      await exited(child);
      expect(child.signalCode).toBe('SIGKILL');
      child = await catalogueChild(setup.dataDir, setup.prefix);
    });
    child.kill('SIGTERM');
    await exited(child);
    const after = await catalogue({ dataDir: setup.dataDir, prefix: setup.prefix, amqpPrefetch: 16 });
    await appliedOnce(after.service, urn, 'r-kill');
    expect((await after.service.call('app.info', {})).outboxPending).toBe(0);
  });

  it('the app stops mid-stream and starts again: every request is applied once and answered', async () => {
    const first = await catalogue({ amqpPrefetch: 16 });
    const { urn } = await first.service.call('products.create', {});
    let again: Running | undefined;
    await stream(first, urn, 'r-restart', async () => {
      await first.close();
      again = await catalogue({ dataDir: first.dataDir, prefix: first.prefix, amqpPrefetch: 16 });
    });
    await appliedOnce(again!.service, urn, 'r-restart');
  });
});

describe.runIf(available)('patch requests Fonds sends to a remote REGARDS', () => {
  const urn = `URN:FEATURE:DATA:project1:${randomUUID()}:V1`;
  const input = {
    tenant: 'project1',
    urn,
    properties: { file_characterization: { valid: false } },
    files: [file('abc', 'http://s/new.xml', 'new.xml')],
    fileUpdateMode: 'REPLACE' as const,
    priority: 'HIGH' as const,
    acknowledgedRecipient: 'recipient-A',
    requestId: 'fonds-out-1',
  };

  it('with no broker configured, waits in the outbox and says so; goes out exactly as composed once connected; follows the answers', async () => {
    const offline = await catalogue({ amqpUrl: '' }, false);
    expect((await offline.service.call('app.info', {})).amqp).toBe('not-configured');
    await offline.service.call('products.create', { urn });
    const composed = await offline.service.call('patches.compose', input);
    expect(composed.problems).toEqual([]);
    const sent = await offline.service.call('patches.send', input);
    expect(sent).toMatchObject({ requestId: 'fonds-out-1', direction: 'sent', state: 'QUEUED', outboxStatus: 'pending' });
    const status = await offline.service.call('amqp.status', {});
    expect(status).toMatchObject({ state: 'not-configured', outboxWaiting: 1 });
    const [waiting] = (await offline.service.call('outbox.list', { status: 'pending' })).items;
    expect(waiting).toMatchObject({ channel: 'amqp', destination: REGARDS.updateRequestExchange, headers: composed.headers, body: composed.body });
    await expect(offline.service.call('patches.send', input)).rejects.toThrow(/already sent/);
    await offline.close();

    const requests = await raw.listen(REGARDS.updateRequestExchange);
    const answers = await raw.listen(REGARDS.requestEventExchange);
    const online = await catalogue({ dataDir: offline.dataDir, prefix: offline.prefix });
    await waitFor(() => requests.length, (n) => n === 1);
    const [m] = requests;
    expect(m.properties.headers).toEqual(composed.headers);
    expect(m.content.toString('utf8')).toBe(composed.body);
    expect(m.properties).toMatchObject({ contentType: 'application/json', contentEncoding: 'UTF-8', deliveryMode: 2, appId: composed.properties.app_id });
    await waitFor(() => online.service.call('patches.list', { direction: 'sent' }), (p) => p.items[0]?.state === 'SENT');

    // the remote catalogue answers
    await raw.publishAnswer('project1', { requestId: 'fonds-out-1', urn, requestOwner: 'fonds', state: 'GRANTED', errors: [] });
    await raw.publishAnswer('project1', { requestId: 'fonds-out-1', urn, requestOwner: 'fonds', state: 'ERROR', errors: ['storage S3Server is full'] });
    await raw.publishAnswer('project1', { requestId: 'someone-else', urn, requestOwner: 'x', state: 'SUCCESS', errors: [] });
    const done = await waitFor(() => online.service.call('patches.list', { direction: 'sent' }), (p) => p.items[0]?.state === 'ERROR');
    expect(done.items[0]).toMatchObject({ state: 'ERROR', errors: ['storage S3Server is full'], outboxStatus: 'sent' });
    const types = (await online.service.call('products.timeline', { urn })).items.map((e) => e.type);
    expect(types).toEqual(['sent.ERROR', 'sent.GRANTED', 'sent.SENT', 'sent.QUEUED', 'created']);
    // Fonds, a catalogue too on this virtual host, did not answer its own request
    await new Promise((r) => setTimeout(r, 300));
    expect(about(answers, 'fonds-out-1').filter((a) => a.appId?.startsWith('fonds/'))).toEqual([]);
  });

  it('refuses an edit in the outbox that a catalogue would deny, or that takes another request\'s id, and changes nothing', async () => {
    const offline = await catalogue({ amqpUrl: '' }, false);
    await offline.service.call('products.create', { urn });
    await offline.service.call('patches.send', { ...input, requestId: 'edit-a' });
    await offline.service.call('patches.send', { ...input, requestId: 'edit-b' });
    const waiting = (await offline.service.call('outbox.list', { status: 'pending' })).items;
    const a = waiting.find((w) => w.headers['regards.request.id'] === 'edit-a')!;
    const edit = (change: { headers?: Record<string, unknown>; body?: string }) => offline.service.call('outbox.edit', { id: a.id, ...change });
    await expect(edit({ body: 'not json' })).rejects.toMatchObject({ code: 'INVALID_INPUT', message: expect.stringMatching(/would be refused: body/) });
    await expect(edit({ headers: { ...a.headers, 'regards.request.id': 'x'.repeat(80) } })).rejects.toMatchObject({ code: 'INVALID_INPUT', message: expect.stringMatching(/regards\.request\.id/) });
    await expect(edit({ headers: { ...a.headers, 'regards.request.id': 'edit-b' } })).rejects.toMatchObject({ code: 'CONFLICT', message: expect.stringMatching(/'edit-b' is the id of another/) });
    expect((await offline.service.call('outbox.list', { status: 'pending' })).items.find((w) => w.id === a.id)).toMatchObject({ headers: a.headers, body: a.body });
    // a valid edit goes through, and its new id is taken from then on
    const edited = await edit({ headers: { ...a.headers, 'regards.request.id': 'edit-c' } });
    expect(edited.headers['regards.request.id']).toBe('edit-c');
    await expect(offline.service.call('patches.send', { ...input, requestId: 'edit-c' })).rejects.toMatchObject({ code: 'CONFLICT' });
    await offline.close();
  });

  it('listens for answers only while its own requests await them: bound before sending, unbound after the final answer, again after a restart', async () => {
    const c = await catalogue();
    const queue = `${c.prefix}.feature-request-events`;
    const boundTo = () => bindingsOf(VHOST, queue);
    // a catalogue with nothing awaited does not take in every answer on the virtual host
    expect(await boundTo()).toEqual([]);
    const requests = await raw.listen(REGARDS.updateRequestExchange);
    const other = `URN:FEATURE:DATA:project1:${randomUUID()}:V1`;
    await c.service.call('products.create', { urn: other });
    const sent = await c.service.call('patches.send', { ...input, urn: other, requestId: 'fonds-out-bind' });
    expect(sent.state).toBe('QUEUED');
    await waitFor(() => requests.length, (n) => n === 1);
    // bound before the request went out
    expect(await boundTo()).toEqual([REGARDS.requestEventExchange]);
    await waitFor(() => c.service.call('patches.list', { direction: 'sent' }), (p) => p.items[0]?.state === 'SENT');
    await raw.publishAnswer('project1', { requestId: 'fonds-out-bind', urn: other, requestOwner: 'fonds', state: 'GRANTED', errors: [] });
    await waitFor(() => c.service.call('patches.list', { direction: 'sent' }), (p) => p.items[0]?.state === 'GRANTED');
    expect(await boundTo()).toEqual([REGARDS.requestEventExchange]);

    // a restart while GRANTED: bound again on the new connection, and the final answer is heard
    await c.close();
    const again = await catalogue({ dataDir: c.dataDir, prefix: c.prefix });
    expect(await boundTo()).toEqual([REGARDS.requestEventExchange]);
    await raw.publishAnswer('project1', { requestId: 'fonds-out-bind', urn: other, requestOwner: 'fonds', state: 'SUCCESS', errors: [] });
    await waitFor(() => again.service.call('patches.list', { direction: 'sent' }), (p) => p.items[0]?.state === 'SUCCESS');
    await waitFor(boundTo, (b) => b.length === 0, 10_000);
  });

  it('with the broker not reachable yet (no such virtual host), it retries with backoff and sends once it is', async () => {
    const later = `${VHOST}-later`;
    const c = await catalogue({ amqpVhost: later }, false);
    const sent = await c.service.call('patches.send', { ...input, requestId: 'fonds-out-2' });
    expect(sent.state).toBe('QUEUED');
    const st = await waitFor(() => c.service.call('amqp.status', {}), (s) => s.state !== 'connected' && !!s.lastError);
    expect(st.lastError).toMatch(/vhost|virtual host|access/i);
    await ensureVhost(later);
    cleanups.push(() => deleteVhost(later));
    await waitFor(() => c.service.call('amqp.status', {}), (s) => s.state === 'connected', 20_000);
    await waitFor(() => c.service.call('patches.list', { direction: 'sent' }), (p) => p.items[0]?.state === 'SENT');
    expect((await c.service.call('app.info', {})).outboxPending).toBe(0);
  });
});
