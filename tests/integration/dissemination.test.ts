/**
 * Dissemination with real parts: a RabbitMQ recipient read by a raw amqplib consumer, acks published
 * by a raw client and by a patch request, a webhook receiver started here (signature checked, 500
 * twice then 200), an S3 recipient on s3rver, a folder recipient, and a restart in the middle of a
 * delivery (a copy damaged at the destination meanwhile is found and copied again).
 */
import { GetObjectCommand, S3Client } from '@aws-sdk/client-s3';
import { randomUUID } from 'node:crypto';
import crypto from 'node:crypto';
import fs from 'node:fs';
import http from 'node:http';
import path from 'node:path';
import type { ConsumeMessage } from 'amqplib';
import Database from 'better-sqlite3';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import type { Service } from '../../src-main/service';
import type { Config } from '../../src-main/service/config';
import { startHttpServer } from '../../src-main/transport/http';
import { DISSEMINATION_AMQP, type RecipientInput } from '../../src-shared/domain/dissemination';
import { REGARDS } from '../../src-shared/domain/product';
import { RawClient, amqpUrlOf, brokerAvailable, deleteVhost, ensureVhost } from '../helpers/regards';
import { startS3 } from '../helpers/s3';
import { startService, tempDir, waitFor, writeTree } from '../helpers/service';

const available = await brokerAvailable();
const VHOST = `fonds-dis-${process.pid}-${randomUUID().slice(0, 8)}`;
const sha256 = (b: Buffer | string) => crypto.createHash('sha256').update(b).digest('hex');
const hmac = (secret: string, body: string) => `sha256=${crypto.createHmac('sha256', secret).update(body).digest('hex')}`;

const cleanups: Array<() => void | Promise<void>> = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

async function fonds(overrides: Partial<Config> = {}): Promise<{ service: Service; dataDir: string; close(): Promise<void> }> {
  const dataDir = overrides.dataDir ?? tempDir('fonds-dis-');
  const s = await startService({ messageWatch: false, hashWorkers: 1, ...overrides, dataDir });
  // service.close() is idempotent: a test may close early, the cleanup closes again
  const close = () => s.service.close();
  cleanups.push(async () => {
    await close();
    if (!overrides.dataDir) fs.rmSync(dataDir, { recursive: true, force: true });
  });
  return { service: s.service, dataDir, close };
}

async function withBroker(prefix = `d${randomUUID().slice(0, 8)}`, extra: Partial<Config> = {}) {
  const f = await fonds({ amqpUrl: amqpUrlOf(), amqpVhost: VHOST, amqpQueuePrefix: prefix, amqpReconnectMaxMs: 500, ...extra });
  await waitFor(() => f.service.call('amqp.status', {}), (st) => st.state === 'connected', 20_000);
  return { ...f, prefix };
}

/** A product published from a stored data holding `files`. */
async function product(s: Service, files: Record<string, string | Buffer>, providerId = 'PRODUCT_001') {
  const root = tempDir('fonds-dis-src-');
  cleanups.push(() => fs.rmSync(root, { recursive: true, force: true }));
  writeTree(root, files);
  const up = await s.call('uploads.ingestPaths', { paths: [root] });
  await s.idle();
  const e = await s.call('executions.create', { processing: 'archive-to-archive', inputs: { upload: [up._id] }, output: { stored_data: { name: providerId, storage_tags: ['ARCHIVE'] } } });
  await s.call('executions.launch', { id: e._id });
  await s.idle();
  const done = await s.call('executions.get', { id: e._id });
  expect(done.status).toBe('SUCCESS');
  return s.call('products.create', { providerId, properties: { title: `Product ${providerId}`, level: 2 }, storedDataId: done.output.stored_data._id });
}

const recipient = (label: string, settings: RecipientInput['settings'], extra: Partial<RecipientInput> = {}): RecipientInput => ({
  recipientLabel: label,
  description: `${label} for tests`,
  directNotificationEnabled: true,
  ackRequired: false,
  blockingRequired: false,
  settings,
  ...extra,
});

const types = async (s: Service, id: string) => (await s.call('disseminations.timeline', { id })).items.map((e) => e.type).reverse();

let raw: RawClient;
beforeAll(async () => {
  if (!available) return;
  await ensureVhost(VHOST);
  raw = await RawClient.open(VHOST);
}, 120_000);
afterAll(async () => {
  if (!available) return;
  await raw?.close();
  await deleteVhost(VHOST);
}, 120_000);

describe('recipients and notify selection', () => {
  it('keeps secrets out of answers, keeps them on update, and notifies only direct recipients without duplicating active pairs', async () => {
    const { service: s } = await fonds();
    const p = await product(s, { 'a.txt': 'alpha' });
    const dest = tempDir('fonds-dis-dest-');
    cleanups.push(() => fs.rmSync(dest, { recursive: true, force: true }));
    const saved = await s.call('recipients.save', recipient('hook', { kind: 'webhook', url: 'http://127.0.0.1:9/none', secret: 'a-shared-secret-of-32-characters', maxAttempts: 1 }));
    expect(saved.settings).toMatchObject({ kind: 'webhook', secret: '********' });
    await s.call('recipients.save', { ...recipient('hook', { kind: 'webhook', url: 'http://127.0.0.1:9/other', secret: '********', maxAttempts: 1 }), directNotificationEnabled: false });
    const stored = s.internals.store.db.prepare(`SELECT settings FROM recipients WHERE label = 'hook'`).pluck().get() as string;
    expect(JSON.parse(stored)).toMatchObject({ url: 'http://127.0.0.1:9/other', secret: 'a-shared-secret-of-32-characters' });
    await expect(s.call('recipients.save', recipient('new-hook', { kind: 'webhook', url: 'http://127.0.0.1:9/', secret: '********', maxAttempts: 1 }))).rejects.toMatchObject({ code: 'INVALID_INPUT' });
    await expect(s.call('recipients.save', recipient('rel', { kind: 'folder', path: 'relative/dir' }))).rejects.toThrow(/absolute/);
    await s.call('recipients.save', recipient('archive-folder', { kind: 'folder', path: dest }, { ackRequired: true }));

    expect((await s.call('recipients.list', { directNotificationEnabled: true })).map((r) => r.recipientLabel)).toEqual(['archive-folder']);
    const r = await s.call('disseminations.notify', { urns: [p.urn, 'URN:FEATURE:DATA:project1:00000000-0000-4000-8000-000000000000:V1'], recipients: ['archive-folder', 'hook', 'ghost'] });
    expect(r.created.map((d) => [d.urn, d.recipientLabel, d.status])).toEqual([[p.urn, 'archive-folder', 'PENDING']]);
    expect(r.skipped.map((x) => x.reason)).toEqual([
      expect.stringMatching(/directNotificationEnabled is false/),
      expect.stringMatching(/no recipient 'ghost'/),
      expect.stringMatching(/no product/),
      expect.stringMatching(/no product/),
      expect.stringMatching(/no product/),
    ]);
    const again = await s.call('disseminations.notify', { urns: [p.urn], recipients: ['archive-folder'] });
    expect(again.created).toEqual([]);
    expect(again.skipped[0].reason).toMatch(/already PENDING/);
    await s.idle();
    const d = await s.call('disseminations.get', { id: r.created[0]._id });
    expect(d).toMatchObject({ status: 'WAITING_ACK', files: 1, bytes: 5, fixity: 'verified' });
    await expect(s.call('recipients.delete', { recipientLabel: 'archive-folder' })).rejects.toMatchObject({ code: 'CONFLICT' });
    const summary = await s.call('products.disseminationStatus', { urn: p.urn });
    expect(summary).toEqual({ urn: p.urn, status: 'WAITING_ACK', recipients: [{ label: 'archive-folder', requestDate: d.requestDate, blocking: false }] });
    const acked = await s.call('disseminations.ack', { id: d._id });
    expect(acked).toMatchObject({ status: 'DONE', ackVia: 'manual' });
    expect((await s.call('products.disseminationStatus', { urn: p.urn })).recipients[0].ackDate).toBe(acked.ackDate);
    expect(await types(s, d._id)).toEqual(['dissemination.requested', 'dissemination.sent', 'dissemination.acknowledged']);
    await expect(s.call('disseminations.ack', { id: d._id })).rejects.toMatchObject({ code: 'CONFLICT' });
  });
});

describe('folder recipient', () => {
  /** Notifies `urn` to a new folder recipient `label` and waits for the delivery to settle. */
  async function toFolder(s: Service, urn: string, label: string) {
    const dest = tempDir('fonds-dis-dest-');
    cleanups.push(() => fs.rmSync(dest, { recursive: true, force: true }));
    await s.call('recipients.save', recipient(label, { kind: 'folder', path: dest }));
    const { created } = await s.call('disseminations.notify', { urns: [urn], recipients: [label] });
    await s.idle();
    return { dest, d: await s.call('disseminations.get', { id: created[0]._id }) };
  }

  it('copies the files with fixity verified at the destination, plus feature.json and a manifest; without ackRequired ackDate = requestDate', async () => {
    const { service: s } = await fonds();
    const big = crypto.randomBytes(3 * 1024 * 1024 + 17);
    const p = await product(s, { 'data/big.bin': big, 'readme.txt': 'read me' });
    const { dest, d } = await toFolder(s, p.urn, 'folder');
    expect(d).toMatchObject({ status: 'DONE', ackVia: 'auto', ackDate: d.requestDate, files: 2, bytes: big.length + 7, fixity: 'verified' });
    const folder = path.join(dest, p.urn.replace(/[^A-Za-z0-9._-]/g, '_'));
    expect(sha256(fs.readFileSync(path.join(folder, 'data/big.bin')))).toBe(sha256(big));
    expect(fs.readFileSync(path.join(folder, 'readme.txt'), 'utf8')).toBe('read me');
    const feature = fs.readFileSync(path.join(folder, 'feature.json'));
    expect(JSON.parse(feature.toString())).toMatchObject({ payload: { type: 'Feature', urn: p.urn, id: 'PRODUCT_001' }, metadata: { action: 'NOTIFIED' } });
    expect(fs.readFileSync(path.join(folder, 'manifest-sha256.txt'), 'utf8')).toBe(`${sha256(big)}  data/big.bin\n${sha256('read me')}  readme.txt\n${sha256(feature)}  feature.json\n`);
    expect(fs.readdirSync(folder).filter((n) => n.startsWith('.fonds-part-'))).toEqual([]);
    const events = (await s.call('disseminations.timeline', { id: d._id })).items.reverse();
    expect(events.map((e) => e.type)).toEqual(['dissemination.requested', 'dissemination.sent', 'dissemination.acknowledged']);
    for (const e of events) expect(e.payload).toMatchObject({ urn: p.urn, recipientLabel: 'folder', tenant: 'project1' });
    expect(events[1].payload).toMatchObject({ bytes: big.length + 7, files: 2, fixity: 'verified', attempt: 1 });
    expect(events[2].payload.via).toBe('auto');
  });

  it('resumes after a restart in the middle of a delivery, and copies again a file damaged at the destination meanwhile', async () => {
    const dataDir = tempDir('fonds-dis-restart-');
    cleanups.push(() => fs.rmSync(dataDir, { recursive: true, force: true }));
    const first = await fonds({ dataDir });
    const files: Record<string, Buffer> = {};
    for (let i = 0; i < 24; i++) files[`f${String(i).padStart(2, '0')}.bin`] = crypto.randomBytes(1024 * 1024);
    const p = await product(first.service, files);
    const dest = tempDir('fonds-dis-dest-');
    cleanups.push(() => fs.rmSync(dest, { recursive: true, force: true }));
    await first.service.call('recipients.save', recipient('slow-folder', { kind: 'folder', path: dest }));
    const { created } = await first.service.call('disseminations.notify', { urns: [p.urn], recipients: ['slow-folder'] });
    const id = created[0]._id;
    const db = first.service.internals.store.db;
    await waitFor(() => db.prepare('SELECT count(*) FROM dissemination_files WHERE dissemination_id = ?').pluck().get(id) as number, (n) => n >= 2, 30_000);
    await first.close();
    const after = new Database(path.join(dataDir, 'fonds.sqlite'), { readonly: true });
    const copied = new Set(after.prepare('SELECT path FROM dissemination_files WHERE dissemination_id = ?').pluck().all(id) as string[]);
    after.close();
    expect(copied.size).toBeGreaterThanOrEqual(2);
    expect(copied.size).toBeLessThan(24);
    const folder = path.join(dest, p.urn.replace(/[^A-Za-z0-9._-]/g, '_'));
    const damaged = [...copied][0];
    fs.writeFileSync(path.join(folder, damaged), 'damaged at the destination');

    const second = await fonds({ dataDir });
    await second.service.idle(60_000);
    const d = await second.service.call('disseminations.get', { id });
    expect(d).toMatchObject({ status: 'DONE', files: 24, bytes: 24 * 1024 * 1024, fixity: 'verified' });
    for (const [name, content] of Object.entries(files)) expect(sha256(fs.readFileSync(path.join(folder, name))), name).toBe(sha256(content));
    const events = (await second.service.call('disseminations.timeline', { id })).items.reverse();
    expect(events.filter((e) => e.type === 'dissemination.sent')).toHaveLength(1);
    const repaired = events.find((e) => e.type === 'dissemination.destination-damaged');
    expect(repaired?.payload).toMatchObject({ path: damaged, urn: p.urn, recipientLabel: 'slow-folder', reason: expect.stringMatching(/bytes stored|SHA-256/) });
  }, 120_000);

  it('refuses, before copying anything, a stored data holding its own feature.json or manifest-sha256.txt at the root', async () => {
    const { service: s } = await fonds();
    const p = await product(s, { 'feature.json': 'THE ARCHIVED FILE feature.json\n', 'Manifest-SHA256.txt': 'an archived manifest', 'scan.tif': 'tif bytes' }, 'CLASH');
    const { dest, d } = await toFolder(s, p.urn, 'clash-folder');
    // refused at once (renaming the data is the only way out: not retried), and no "verified" delivery
    expect(d).toMatchObject({ status: 'FAILED', attempts: 1, files: 0, bytes: 0 });
    expect(d.fixity).toBeUndefined();
    expect(d.lastError).toMatch(/'Manifest-SHA256\.txt', 'feature\.json' would be overwritten .* by the delivery's own feature\.json or manifest-sha256\.txt/);
    expect(d.lastError).toContain('nothing was copied');
    expect(fs.readdirSync(dest)).toEqual([]);
    const events = (await s.call('disseminations.timeline', { id: d._id })).items;
    expect(events[0]).toMatchObject({ type: 'dissemination.failed', payload: { final: true, error: d.lastError } });

    // the same names below the root are the product's own files: delivered as they are
    const ok = await product(s, { 'docs/feature.json': '{"archived": true}', 'scan.tif': 'tif bytes' }, 'NESTED');
    const second = await s.call('disseminations.notify', { urns: [ok.urn], recipients: ['clash-folder'] });
    await s.idle();
    expect(await s.call('disseminations.get', { id: second.created[0]._id })).toMatchObject({ status: 'DONE', files: 2, fixity: 'verified' });
    const folder = path.join(dest, ok.urn.replace(/[^A-Za-z0-9._-]/g, '_'));
    expect(fs.readFileSync(path.join(folder, 'docs/feature.json'), 'utf8')).toBe('{"archived": true}');
    const feature = fs.readFileSync(path.join(folder, 'feature.json'));
    expect(JSON.parse(feature.toString()).payload.urn).toBe(ok.urn);
    expect(fs.readFileSync(path.join(folder, 'manifest-sha256.txt'), 'utf8')).toBe(
      `${sha256('{"archived": true}')}  docs/feature.json\n${sha256('tif bytes')}  scan.tif\n${sha256(feature)}  feature.json\n`,
    );
  }, 60_000);
});

describe('an AMQP dissemination whose outbox message is cancelled', () => {
  it('becomes FAILED ("cancelled in the outbox"), so that it can be sent again, by retry or from the outbox, never twice', async () => {
    const { service: s } = await fonds(); // no broker: the message waits in the outbox
    const p = await product(s, { 'x.txt': 'x' });
    await s.call('recipients.save', recipient('cat2', { kind: 'amqp', exchange: 'ex.cat2', queue: '', deadLetterRoutingKey: '' }, { ackRequired: true }));
    const { created } = await s.call('disseminations.notify', { urns: [p.urn], recipients: ['cat2'] });
    const id = created[0]._id;
    await s.idle();
    const messagesOf = async () => (await s.call('outbox.list', {})).items.filter((o) => o.objectId === id).map((o) => [o.id, o.status]);
    const [[m1]] = await messagesOf();

    await s.call('outbox.cancel', { id: m1 as number });
    expect(await s.call('disseminations.get', { id })).toMatchObject({ status: 'FAILED', lastError: 'cancelled in the outbox' });
    expect((await s.call('disseminations.timeline', { id })).items[0]).toMatchObject({
      type: 'dissemination.failed',
      payload: { final: true, error: 'cancelled in the outbox', outboxId: m1, urn: p.urn, recipientLabel: 'cat2' },
    });
    // FAILED counts as not delivered in REGARDS' view of the product (as a delivery given up does)
    expect((await s.call('products.disseminationStatus', { urn: p.urn })).status).toBe('PENDING');

    // sent again by the archivist: a new message; the cancelled one cannot go out too
    expect((await s.call('disseminations.retry', { id })).status).toBe('PENDING');
    await s.idle();
    const after = await messagesOf();
    expect(after).toEqual([
      [expect.any(Number), 'pending'],
      [m1, 'cancelled'],
    ]);
    const m2 = after[0][0] as number;
    await expect(s.call('outbox.retry', { id: m1 as number })).rejects.toMatchObject({ code: 'CONFLICT', message: expect.stringMatching(new RegExp(`earlier message of dissemination ${id}.*with message ${m2}.*twice`)) });
    expect((await s.call('outbox.get', { id: m1 as number })).status).toBe('cancelled');

    // cancelled again, then put back from the outbox: PENDING again, waiting on that same message
    await s.call('outbox.cancel', { id: m2 });
    expect((await s.call('disseminations.get', { id })).status).toBe('FAILED');
    expect((await s.call('outbox.retry', { id: m2 })).status).toBe('pending');
    expect(await s.call('disseminations.get', { id })).toMatchObject({ status: 'PENDING' });
    expect((await s.call('disseminations.timeline', { id })).items[0]).toMatchObject({ type: 'dissemination.retried', payload: { by: 'archivist', outboxId: m2 } });
    expect(await types(s, id)).toEqual([
      'dissemination.requested',
      'dissemination.failed',
      'dissemination.retried',
      'dissemination.failed',
      'dissemination.retried',
    ]);

    // and once FAILED, notify takes the pair again
    await s.call('outbox.cancel', { id: m2 });
    const again = await s.call('disseminations.notify', { urns: [p.urn], recipients: ['cat2'] });
    expect(again.skipped).toEqual([]);
    expect(again.created).toHaveLength(1);
  }, 60_000);
});

describe('S3 recipient', () => {
  it('copies the files into the bucket with fixity verified, and the manifest beside them', async () => {
    const s3 = await startS3('partner-bucket');
    cleanups.push(() => s3.stop());
    const { service: s } = await fonds();
    const big = crypto.randomBytes(2 * 1024 * 1024 + 3);
    const p = await product(s, { 'scene/big.tif': big, 'meta.xml': '<m/>' });
    await s.call('recipients.save', recipient('partner-s3', { kind: 's3', endpoint: s3.endpoint, bucket: s3.bucket, prefix: 'incoming', accessKeyId: s3.accessKeyId, secretAccessKey: s3.secretAccessKey, region: 'us-east-1', forcePathStyle: true }));
    expect((await s.call('recipients.list', {}))[0].settings).toMatchObject({ secretAccessKey: '********' });
    const { created } = await s.call('disseminations.notify', { urns: [p.urn], recipients: ['partner-s3'] });
    await s.idle(60_000);
    const d = await s.call('disseminations.get', { id: created[0]._id });
    expect(d).toMatchObject({ status: 'DONE', files: 2, fixity: 'verified', bytes: big.length + 4 });
    const client = new S3Client({ endpoint: s3.endpoint, region: 'us-east-1', forcePathStyle: true, credentials: { accessKeyId: s3.accessKeyId, secretAccessKey: s3.secretAccessKey } });
    cleanups.push(() => client.destroy());
    const get = async (key: string) => Buffer.from(await (await client.send(new GetObjectCommand({ Bucket: s3.bucket, Key: key }))).Body!.transformToByteArray());
    const folder = `incoming/${p.urn.replace(/[^A-Za-z0-9._-]/g, '_')}`;
    expect(sha256(await get(`${folder}/scene/big.tif`))).toBe(sha256(big));
    const manifest = (await get(`${folder}/manifest-sha256.txt`)).toString();
    expect(manifest.split('\n').slice(0, 2)).toEqual([`${sha256('<m/>')}  meta.xml`, `${sha256(big)}  scene/big.tif`]);
    // every PUT carried a Content-MD5 equal to what the server received
    for (const put of s3.puts) expect(put.contentMd5).toBe(put.bodyMd5);
  }, 60_000);
});

describe('webhook recipient', () => {
  it('signs the body, retries on 500 with backoff, and takes a signed acknowledgement callback', async () => {
    const secret = 'webhook-shared-secret-0123456789';
    const received: Array<{ body: string; signature: string | undefined; status: number }> = [];
    const receiver = http.createServer((req, res) => {
      const chunks: Buffer[] = [];
      req.on('data', (c: Buffer) => chunks.push(c));
      req.on('end', () => {
        const body = Buffer.concat(chunks).toString('utf8');
        const signature = req.headers['x-fonds-signature'] as string | undefined;
        const status = signature !== hmac(secret, body) ? 401 : received.length < 2 ? 500 : 200;
        received.push({ body, signature, status });
        res.writeHead(status).end();
      });
    });
    await new Promise<void>((r) => receiver.listen(0, '127.0.0.1', r));
    cleanups.push(() => new Promise<void>((r) => receiver.close(() => r())));
    const url = `http://127.0.0.1:${(receiver.address() as { port: number }).port}/hook`;

    const { service: s } = await fonds();
    const p = await product(s, { 'x.txt': 'x' });
    await s.call('recipients.save', recipient('partner-hook', { kind: 'webhook', url, secret, maxAttempts: 5 }, { ackRequired: true, blockingRequired: true }));
    const { created } = await s.call('disseminations.notify', { urns: [p.urn], recipients: ['partner-hook'] });
    await s.idle(30_000);
    expect(received.map((r) => r.status)).toEqual([500, 500, 200]);
    const body = JSON.parse(received[2].body);
    expect(body).toEqual({
      payload: { type: 'Feature', id: 'PRODUCT_001', urn: p.urn, entityType: 'DATA', geometry: null, properties: p.properties, files: p.files, last: true },
      metadata: { action: 'NOTIFIED', sessionOwner: 'fonds', session: created[0].requestDate.slice(0, 10) },
    });
    const id = created[0]._id;
    expect(await s.call('disseminations.get', { id })).toMatchObject({ status: 'WAITING_ACK', attempts: 3, blocking: true });
    expect(await types(s, id)).toEqual([
      'dissemination.requested',
      'dissemination.failed',
      'dissemination.retried',
      'dissemination.failed',
      'dissemination.retried',
      'dissemination.sent',
    ]);

    const srv = await startHttpServer({ service: s, host: '127.0.0.1', port: 0, token: s.token, maxBodyBytes: 1024 * 1024 });
    cleanups.push(() => srv.close());
    const post = (ack: string, signature: string) => fetch(`${srv.url}/v1/dissemination-acks`, { method: 'POST', headers: { 'content-type': 'application/json', 'x-fonds-signature': signature }, body: ack });
    const ack = JSON.stringify({ urn: p.urn, recipientLabel: 'partner-hook' });
    const forged = await post(ack, hmac('not-the-secret-at-all-000000', ack));
    expect(forged.status).toBe(401);
    expect((await s.call('disseminations.get', { id })).status).toBe('WAITING_ACK');
    const unknown = JSON.stringify({ urn: 'URN:FEATURE:DATA:project1:11111111-1111-4111-8111-111111111111:V1', recipientLabel: 'partner-hook' });
    const u = await post(unknown, hmac(secret, unknown));
    expect(u.status).toBe(202);
    expect(await u.json()).toMatchObject({ acknowledged: false, reason: expect.stringMatching(/no product/) });
    const ok = await post(ack, hmac(secret, ack));
    expect(ok.status).toBe(200);
    expect(await ok.json()).toEqual({ acknowledged: true, disseminationId: id });
    expect(await s.call('disseminations.get', { id })).toMatchObject({ status: 'DONE', ackVia: 'webhook' });
    const unmatched = (await s.call('disseminations.unmatchedAcks', {})).items.map((e) => e.payload.reason);
    expect(unmatched).toEqual([expect.stringMatching(/no product/), expect.stringMatching(/does not match/)]);
  }, 60_000);

  it('gives up after maxAttempts on 5xx, and a retry by the archivist sends it again', async () => {
    let fail = true;
    const receiver = http.createServer((req, res) => {
      req.resume();
      req.on('end', () => res.writeHead(fail ? 503 : 204).end());
    });
    await new Promise<void>((r) => receiver.listen(0, '127.0.0.1', r));
    cleanups.push(() => new Promise<void>((r) => receiver.close(() => r())));
    const { service: s } = await fonds();
    const p = await product(s, { 'x.txt': 'x' });
    await s.call('recipients.save', recipient('flaky', { kind: 'webhook', url: `http://127.0.0.1:${(receiver.address() as { port: number }).port}/`, secret: 'flaky-secret-0123456789', maxAttempts: 2 }));
    const { created } = await s.call('disseminations.notify', { urns: [p.urn], recipients: ['flaky'] });
    const id = created[0]._id;
    await s.idle(30_000);
    expect(await s.call('disseminations.get', { id })).toMatchObject({ status: 'FAILED', lastError: expect.stringMatching(/HTTP 503/) });
    const events = (await s.call('disseminations.timeline', { id })).items;
    expect(events[0]).toMatchObject({ type: 'dissemination.failed', payload: { final: true, attempt: 2 } });
    expect((await s.call('products.disseminationStatus', { urn: p.urn })).status).toBe('PENDING');
    fail = false;
    expect((await s.call('disseminations.retry', { id })).status).toBe('PENDING');
    await s.idle(30_000);
    expect(await s.call('disseminations.get', { id })).toMatchObject({ status: 'DONE', ackVia: 'auto' });
    expect((await s.call('products.disseminationStatus', { urn: p.urn })).status).toBe('DONE');
  }, 60_000);
});

describe.runIf(available)('AMQP recipient and acknowledgements over RabbitMQ', () => {
  it('publishes the feature JSON as the REGARDS notifier does, and takes a DisseminationAckEvent from a raw client', async () => {
    const f = await withBroker();
    const s = f.service;
    const p = await product(s, { 'x.txt': 'x' });
    const exchange = `partner.${f.prefix}`;
    const queue = `partner.${f.prefix}.products`;
    await s.call('recipients.save', recipient('partner-amqp', { kind: 'amqp', exchange, queue, deadLetterRoutingKey: 'partner.dlq' }, { ackRequired: true }));
    const got: ConsumeMessage[] = [];
    await raw.channel.checkQueue(queue);
    await raw.channel.consume(queue, (m) => m && got.push(m), { noAck: true });
    const { created } = await s.call('disseminations.notify', { urns: [p.urn], recipients: ['partner-amqp'] });
    const id = created[0]._id;
    await waitFor(() => got.length, (n) => n === 1, 15_000);
    const m = got[0];
    expect(m.fields.exchange).toBe(exchange);
    expect(m.properties.headers).toMatchObject({ 'regards.tenant': 'project1', 'regards.request.id': id });
    expect(m.properties.contentType).toBe('application/json');
    expect(m.properties.deliveryMode).toBe(2);
    expect(JSON.parse(m.content.toString('utf8'))).toEqual({
      payload: { type: 'Feature', id: 'PRODUCT_001', urn: p.urn, entityType: 'DATA', geometry: null, properties: { title: 'Product PRODUCT_001', level: 2 }, files: [], last: true },
      metadata: { action: 'NOTIFIED', sessionOwner: 'fonds', session: created[0].requestDate.slice(0, 10) },
    });
    await waitFor(() => s.call('disseminations.get', { id }), (d) => d.status === 'WAITING_ACK', 10_000);
    expect((await s.call('products.disseminationStatus', { urn: p.urn })).status).toBe('WAITING_ACK');

    const publishAck = async (headers: Record<string, unknown>, body: string) => {
      raw.channel.publish(DISSEMINATION_AMQP.ackExchange, '', Buffer.from(body), { headers, contentType: 'application/json', deliveryMode: 2 });
      await (raw.channel as typeof raw.channel & { waitForConfirms(): Promise<void> }).waitForConfirms();
    };
    // malformed: dead-lettered, never a crash; unknown urn: shown, not fatal
    await publishAck({}, JSON.stringify({ urn: p.urn, recipientLabel: 'partner-amqp' }));
    await publishAck({ 'regards.tenant': 'project1' }, '{not json');
    await publishAck({ 'regards.tenant': 'project1' }, JSON.stringify({ urn: 'URN:FEATURE:DATA:project1:22222222-2222-4222-8222-222222222222:V1', recipientLabel: 'partner-amqp' }));
    await waitFor(() => s.call('amqp.deadLetters', {}), (d) => d.total === 2, 10_000);
    await waitFor(() => s.call('disseminations.unmatchedAcks', {}), (u) => u.total === 1, 10_000);
    expect((await s.call('amqp.deadLetters', {})).items.map((d) => d.reason)).toEqual([expect.stringMatching(/^body: not UTF-8 JSON/), 'regards.tenant: missing']);
    expect((await s.call('disseminations.get', { id })).status).toBe('WAITING_ACK');

    await publishAck({ 'regards.tenant': 'project1' }, JSON.stringify({ urn: p.urn, recipientLabel: 'partner-amqp' }));
    const d = await waitFor(() => s.call('disseminations.get', { id }), (x) => x.status === 'DONE', 10_000);
    expect(d.ackVia).toBe('amqp');
    expect(await s.call('products.disseminationStatus', { urn: p.urn })).toEqual({ urn: p.urn, status: 'DONE', recipients: [{ label: 'partner-amqp', requestDate: d.requestDate, ackDate: d.ackDate, blocking: false }] });
    expect((await s.call('amqp.status', {})).state).toBe('connected');
  }, 60_000);

  it('takes an acknowledgement carried by a patch request (metadata.acknowledgedRecipient)', async () => {
    const f = await withBroker();
    const s = f.service;
    const p = await product(s, { 'x.txt': 'x' });
    await s.call('recipients.save', recipient('partner-patch', { kind: 'amqp', exchange: `partner.${f.prefix}`, queue: '', deadLetterRoutingKey: '' }, { ackRequired: true }));
    const { created } = await s.call('disseminations.notify', { urns: [p.urn], recipients: ['partner-patch'] });
    const id = created[0]._id;
    await waitFor(() => s.call('disseminations.get', { id }), (d) => d.status === 'WAITING_ACK', 10_000);
    const requestId = randomUUID();
    await raw.publishRequest(
      { 'regards.tenant': 'project1', 'regards.request.id': requestId, 'regards.request.owner': 'partner' },
      JSON.stringify({ metadata: { storages: [], priority: 'NORMAL', acknowledgedRecipient: 'partner-patch' }, feature: { urn: p.urn } }),
    );
    const d = await waitFor(() => s.call('disseminations.get', { id }), (x) => x.status === 'DONE', 15_000);
    expect(d.ackVia).toBe('patch');
    const ack = (await s.call('disseminations.timeline', { id })).items[0];
    expect(ack).toMatchObject({ type: 'dissemination.acknowledged', payload: { via: 'patch', requestId, urn: p.urn, recipientLabel: 'partner-patch', tenant: 'project1' } });
  }, 60_000);

  /** Fonds without a broker, on a data directory kept for a restart: a product notified to an AMQP recipient. */
  async function offlineAmqpDissemination(label: string) {
    const dataDir = tempDir(`fonds-dis-amqp-${label}-`);
    cleanups.push(() => fs.rmSync(dataDir, { recursive: true, force: true }));
    const prefix = `d${randomUUID().slice(0, 8)}`;
    const offline = await fonds({ dataDir, amqpQueuePrefix: prefix });
    const p = await product(offline.service, { 'x.txt': 'x' });
    const exchange = `partner.${prefix}`;
    await offline.service.call('recipients.save', recipient(label, { kind: 'amqp', exchange, queue: `${exchange}.q`, deadLetterRoutingKey: '' }));
    const { created } = await offline.service.call('disseminations.notify', { urns: [p.urn], recipients: [label] });
    await offline.service.idle();
    return { dataDir, prefix, offline, p, exchange, created };
  }

  it('waits in the outbox while the broker is away, and is delivered after a restart', async () => {
    const { dataDir, prefix, offline, exchange, created } = await offlineAmqpDissemination('later');
    expect((await offline.service.call('outbox.list', {})).items.filter((o) => o.objectId === created[0]._id).map((o) => o.status)).toEqual(['pending']);
    expect((await offline.service.call('disseminations.get', { id: created[0]._id })).status).toBe('PENDING');
    await offline.close();

    const online = await withBroker(prefix, { dataDir });
    const d = await waitFor(() => online.service.call('disseminations.get', { id: created[0]._id }), (x) => x.status === 'DONE', 15_000);
    expect(d.ackVia).toBe('auto');
    const q = await raw.channel.checkQueue(`${exchange}.q`);
    expect(q.messageCount).toBe(1);
    await raw.channel.deleteQueue(`${exchange}.q`);
    await raw.channel.deleteExchange(exchange);
    expect(REGARDS.headers.tenant).toBe('regards.tenant');
  }, 60_000);

  it('a message cancelled in the outbox, the dissemination sent again: delivered once, by its new message', async () => {
    const { dataDir, prefix, offline, exchange, created } = await offlineAmqpDissemination('again');
    const id = created[0]._id;
    const [m1] = (await offline.service.call('outbox.list', {})).items.filter((o) => o.objectId === id);
    await offline.service.call('outbox.cancel', { id: m1.id });
    expect((await offline.service.call('disseminations.get', { id })).status).toBe('FAILED');
    await offline.service.call('disseminations.retry', { id });
    await offline.service.idle();
    await offline.close();

    const online = await withBroker(prefix, { dataDir });
    const d = await waitFor(() => online.service.call('disseminations.get', { id }), (x) => x.status === 'DONE', 15_000);
    expect(d).toMatchObject({ ackVia: 'auto', attempts: 2 });
    await online.service.idle();
    expect((await online.service.call('outbox.list', {})).items.filter((o) => o.objectId === id).map((o) => o.status)).toEqual(['sent', 'cancelled']);
    expect((await raw.channel.checkQueue(`${exchange}.q`)).messageCount).toBe(1);
    await raw.channel.deleteQueue(`${exchange}.q`);
    await raw.channel.deleteExchange(exchange);
  }, 60_000);

  it('records every acknowledgement whose processing failed twice, each once', async () => {
    const f = await withBroker();
    const s = f.service;
    // the acknowledgement's commit fails for these (as a full disk would): window, one by one, redelivery, dead letter
    s.internals.store.db.exec(
      `CREATE TRIGGER poison BEFORE INSERT ON events WHEN NEW.type = 'dissemination.ack-unmatched' AND NEW.payload LIKE '%poison-%' BEGIN SELECT RAISE(ABORT, 'disk on fire'); END`,
    );
    const urn = 'URN:FEATURE:DATA:project1:33333333-3333-4333-8333-333333333333:V1';
    for (const label of ['poison-1', 'poison-2']) {
      raw.channel.publish(DISSEMINATION_AMQP.ackExchange, '', Buffer.from(JSON.stringify({ urn, recipientLabel: label })), { headers: { 'regards.tenant': 'project1' }, deliveryMode: 2 });
    }
    await (raw.channel as typeof raw.channel & { waitForConfirms(): Promise<void> }).waitForConfirms();
    const dead = await waitFor(() => s.call('amqp.deadLetters', {}), (d) => d.total === 2, 20_000);
    expect(dead.items.map((d) => [d.queue, d.reason, JSON.parse(d.bodyPreview).recipientLabel]).sort()).toEqual([
      [`${f.prefix}.dissemination-acks`, 'processing failed twice: disk on fire', 'poison-1'],
      [`${f.prefix}.dissemination-acks`, 'processing failed twice: disk on fire', 'poison-2'],
    ]);
    await waitFor(async () => (await raw.channel.checkQueue(`${f.prefix}.dead-letter`)).messageCount, (n) => n === 2);
    expect((await s.call('disseminations.unmatchedAcks', {})).total).toBe(0);
  }, 60_000);
});
