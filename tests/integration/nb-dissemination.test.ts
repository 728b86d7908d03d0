import { spawnSync } from 'node:child_process';
import crypto from 'node:crypto';
import fs from 'node:fs';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import type { FondsEvent } from '../../src-shared/api';
import { NbStatuses } from '../../src-shared/domain/nb';
import { createService, type Service } from '../../src-main/service';
import { loadConfig, type Config } from '../../src-main/service/config';
import { NbSecrets } from '../../src-main/service/dissemination/nb/secrets';
import { startHttpServer } from '../../src-main/transport/http';
import { startS3 } from '../helpers/s3';
import { tempDir, tempDirs, waitFor, writeTree } from '../helpers/service';

const cleanups: Array<() => void | Promise<void>> = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});
const dir = tempDirs(afterEach);
const sha256 = (b: Buffer | string) => crypto.createHash('sha256').update(b).digest('hex');

const CLIENT_TOKEN = 'client-token-0123456789abcdef';
const WEBHOOK_SECRET = 'webhook-secret-0123456789';
const SEED_KEYS = ['archiveId', 'clientId', 'contractId', 'dateCreated', 'disseminationId', 'objectId', 'priority', 'status', 'sumSizeInBytes'];
const FLOW = ['RECEIVED', 'QUEUED', 'DOWNLOADING_FROM_REPOSITORY', 'FIXITY_CHECK', 'UPLOADING_TO_S3', 'DISSEMINATED'];

// eslint-disable-next-line @typescript-eslint/no-explicit-any -- bodies are checked field by field
type Json = any;

/** A Fonds service on a data directory (kept when `dataDir` is given, for restarts). */
async function fonds(overrides: Partial<Config> = {}): Promise<Service> {
  const dataDir = overrides.dataDir ?? tempDir('fonds-nb-');
  const service = await createService(loadConfig({ env: {}, overrides: { hashWorkers: 2, ...overrides, dataDir } }));
  // service.close() is idempotent: a test may close early (a restart), the cleanup closes again
  cleanups.push(async () => {
    await service.close();
    if (!overrides.dataDir) fs.rmSync(dataDir, { recursive: true, force: true });
  });
  return service;
}

/** The headless server of a service, on a free loopback port. */
async function serve(service: Service): Promise<string> {
  const srv = await startHttpServer({ service, host: '127.0.0.1', port: 0, token: service.token, maxBodyBytes: 1024 * 1024 });
  cleanups.push(() => srv.close());
  return srv.url;
}

/** A preserved archive: a real upload, checked, then an archive-to-archive execution into a stored data. */
async function preservedArchive(s: Service, files: Record<string, string | Buffer>, name = 'digifoto_5584a028'): Promise<string> {
  const root = dir();
  writeTree(root, files);
  const u = await s.call('uploads.ingestPaths', { paths: [root] });
  await s.idle();
  const e = await s.call('executions.create', { processing: 'archive-to-archive', inputs: { upload: [u._id] }, output: { stored_data: { name, storage_tags: [] } } });
  await s.call('executions.launch', { id: e._id });
  await s.idle();
  const sd = await s.call('storedData.get', { id: e.output.stored_data._id });
  expect(sd).toMatchObject({ status: 'GENERATED', verified: true });
  return sd._id;
}

/** A webhook receiver: answers 500 to the first `failFirst` calls, then 200; keeps what it received. */
async function webhookReceiver(failFirst = 0) {
  const received: Array<{ headers: http.IncomingHttpHeaders; body: string; answered: number }> = [];
  const server = http.createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const answered = received.length < failFirst ? 500 : 200;
      received.push({ headers: req.headers, body: Buffer.concat(chunks).toString('utf8'), answered });
      res.writeHead(answered).end();
    });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  cleanups.push(() => new Promise<void>((r) => server.close(() => r())));
  return { url: `http://127.0.0.1:${(server.address() as AddressInfo).port}/hooks/nb`, received };
}

const clients = (webhookUrl = '') => ({
  [CLIENT_TOKEN]: { clientId: 'client-id', contractId: '2d17', webhookUrl, webhookSecret: webhookUrl ? WEBHOOK_SECRET : '' },
});

function api(base: string, token = CLIENT_TOKEN) {
  const headers = { authorization: `Bearer ${token}`, 'content-type': 'application/json' };
  return {
    post: (body: unknown, raw?: string) => fetch(`${base}/v1/disseminations`, { method: 'POST', headers, body: raw ?? JSON.stringify(body) }),
    get: (id: string) => fetch(`${base}/v1/disseminations/${id}`, { headers }),
    link: (id: string) => fetch(`${base}/v1/disseminations/${id}/link`, { headers }),
  };
}

/** GETs until a final status, recording every status seen. */
async function pollUntilFinal(get: () => Promise<Response>): Promise<{ last: Json; seen: string[] }> {
  const seen: string[] = [];
  let last: Json;
  await waitFor(
    async () => {
      const res = await get();
      expect(res.status).toBe(200);
      last = await res.json();
      if (seen[seen.length - 1] !== last.status) seen.push(last.status);
      return last.status as string;
    },
    (s) => ['DISSEMINATED', 'FAILED', 'REJECTED'].includes(s),
    60_000,
  );
  return { last, seen };
}

async function statusEvents(s: Service, id: string): Promise<string[]> {
  const t = await s.call('nb.disseminations.timeline', { id, limit: 1000 });
  return t.items
    .filter((e: FondsEvent) => e.type.startsWith('status.'))
    .map((e: FondsEvent) => e.type.slice(7))
    .reverse();
}

/** Extracts a tar with the system's tar and returns every file under the bag root. */
function untar(bytes: Buffer): { root: string; bagDir: string; files: Record<string, Buffer> } {
  const d = dir();
  fs.writeFileSync(path.join(d, 'p.tar'), bytes);
  const out = path.join(d, 'x');
  fs.mkdirSync(out);
  const r = spawnSync('tar', ['-xf', path.join(d, 'p.tar'), '-C', out]);
  expect(r.status, String(r.stderr)).toBe(0);
  const [root] = fs.readdirSync(out);
  const files: Record<string, Buffer> = {};
  const walk = (rel: string) => {
    for (const e of fs.readdirSync(path.join(out, root, rel), { withFileTypes: true })) {
      const p = rel ? `${rel}/${e.name}` : e.name;
      if (e.isDirectory()) walk(p);
      else files[p] = fs.readFileSync(path.join(out, root, p));
    }
  };
  walk('');
  return { root, bagDir: path.join(out, root), files };
}

describe('NB dissemination service (seed 004), folder mode', () => {
  it('answers 201 in the seed shape, 409 with the existing id, goes through every status, and delivers a signed link by webhook', async () => {
    const hook = await webhookReceiver(1); // the first delivery gets a 500: retried with backoff
    const s = await fonds({ nbClients: clients(hook.url) });
    const base = await serve(s);
    const big = crypto.randomBytes(3 * 1024 * 1024 + 7);
    const files = { 'a.txt': 'alpha', 'sub/b.bin': big, 'sub/ætt ø.txt': 'unicode name' };
    const archiveId = await preservedArchive(s, files);
    const nb = api(base);

    const created = await nb.post({ archiveId, priority: 50 });
    expect(created.status).toBe(201);
    const d: Json = await created.json();
    expect(Object.keys(d).sort()).toEqual(SEED_KEYS);
    expect(d).toMatchObject({ archiveId, clientId: 'client-id', contractId: '2d17', objectId: 'digifoto_5584a028', status: 'RECEIVED', priority: 50, sumSizeInBytes: 5 + big.length + 12 });
    expect(d.disseminationId).toMatch(/^[0-9A-Za-z]{22}$/);
    expect(d.dateCreated).toMatch(/^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}[+-]\d\d:\d\d$/);
    expect(created.headers.get('location')).toBe(`/v1/disseminations/${d.disseminationId}`);

    const again = await nb.post({ archiveId, priority: 80 });
    expect(again.status).toBe(409);
    const conflict: Json = await again.json();
    expect(conflict.disseminationId).toBe(d.disseminationId);
    expect(conflict.error.code).toBe('CONFLICT');

    const { last, seen } = await pollUntilFinal(() => nb.get(d.disseminationId));
    expect(Object.keys(last).sort()).toEqual(SEED_KEYS);
    expect(last.status).toBe('DISSEMINATED');
    // polling may miss fast statuses, never reorders them
    expect(seen.map((x) => FLOW.indexOf(x))).toEqual([...seen.map((x) => FLOW.indexOf(x))].sort((a, b) => a - b));
    expect(await statusEvents(s, d.disseminationId)).toEqual(FLOW);

    // the webhook: a 500 first, then delivered; signed with the client's secret
    await waitFor(() => hook.received.length, (n) => n >= 2, 20_000);
    const delivered = hook.received[1];
    expect(delivered.headers['x-fonds-signature']).toBe(`sha256=${crypto.createHmac('sha256', WEBHOOK_SECRET).update(delivered.body).digest('hex')}`);
    expect(hook.received[0].body).toBe(delivered.body);
    const body: Json = JSON.parse(delivered.body);
    expect(body).toMatchObject({ disseminationId: d.disseminationId, status: 'DISSEMINATED', archiveId, clientId: 'client-id' });
    expect(body.downloadUrl).toMatch(new RegExp(`^${base}/v1/disseminations/${d.disseminationId}/download\\?expires=\\d+&signature=`));
    await waitFor(async () => (await s.call('nb.disseminations.list', {})).items[0].webhook?.state, (x) => x === 'sent');

    // the link downloads the package: a BagIt bag as tar, with the right bytes
    const res = await fetch(body.downloadUrl);
    expect(res.status).toBe(200);
    expect(res.headers.get('content-type')).toBe('application/x-tar');
    const bytes = Buffer.from(await res.arrayBuffer());
    expect(bytes.length).toBe(body.sizeInBytes);
    expect(sha256(bytes)).toBe(body.sha256);
    const bag = untar(bytes);
    expect(bag.root).toBe('digifoto_5584a028');
    for (const [p, content] of Object.entries(files)) expect(sha256(bag.files[`data/${p}`])).toBe(sha256(content));
    expect(String(bag.files['bagit.txt'])).toContain('BagIt-Version: 1.0');
    expect(String(bag.files['manifest-sha256.txt'])).toContain(`${sha256(big)}  data/sub/b.bin`);
    expect(String(bag.files['bag-info.txt'])).toContain(`Payload-Oxum: ${5 + big.length + 12}.3`);
    const validation = await s.call('bags.validate', { path: bag.bagDir });
    expect(validation.errors).toEqual([]);
    expect(validation.warnings).toEqual([]);
    expect(validation).toMatchObject({ valid: true, payloadFiles: 3, algorithms: expect.arrayContaining(['md5', 'sha256']) });

    // links are reused until they expire
    const l1: Json = await (await nb.link(d.disseminationId)).json();
    const l2: Json = await (await nb.link(d.disseminationId)).json();
    expect(l1.url).toBe(body.downloadUrl);
    expect(l2.url).toBe(l1.url);
    expect((await s.call('nb.disseminations.list', {})).items[0].link?.issued).toBe(1);

    // forged and expired links are refused
    const u = new URL(body.downloadUrl);
    const forged = new URL(u);
    forged.searchParams.set('signature', u.searchParams.get('signature')!.replace(/^./, (c) => (c === 'A' ? 'B' : 'A')));
    expect((await fetch(forged)).status).toBe(403);
    const longer = new URL(u);
    longer.searchParams.set('expires', String(Number(u.searchParams.get('expires')) + 3600));
    expect((await fetch(longer)).status).toBe(403);
    const past = Math.floor(Date.now() / 1000) - 10;
    const expired = await fetch(`${base}/v1/disseminations/${d.disseminationId}/download?expires=${past}&signature=${new NbSecrets(s.config.dataDir).signLink(d.disseminationId, past)}`);
    expect(expired.status).toBe(403);
    expect(((await expired.json()) as Json).error.message).toMatch(/expired/);

    // the token names the client: another client does not see it; no token is refused
    expect((await api(base, s.token).get(d.disseminationId)).status).toBe(404);
    expect((await fetch(`${base}/v1/disseminations/${d.disseminationId}`)).status).toBe(401);
    expect((await api(base, 'not-a-known-token-0123456789').get(d.disseminationId)).status).toBe(401);

    // once DISSEMINATED, a new order of the same archive is a new dissemination
    const third = await nb.post({ archiveId });
    expect(third.status).toBe(201);
    expect(((await third.json()) as Json).priority).toBe(50);
  });

  it('refuses bad bodies, unknown and not preserved archives, and fails on a fixity mismatch naming the file', async () => {
    const s = await fonds({ nbClients: clients() });
    const base = await serve(s);
    const nb = api(base);
    const archiveId = await preservedArchive(s, { 'a.txt': 'alpha', 'b.txt': 'bravo' });

    const notJson = await nb.post(undefined, '{"archiveId": ');
    expect(notJson.status).toBe(400);
    expect(((await notJson.json()) as Json).error.message).toMatch(/not valid JSON/);
    for (const bad of [{}, { archiveId: '' }, { archiveId, priority: 101 }, { archiveId, priority: -1 }, { archiveId, priority: 'high' }, { archiveId, priority: 2.5 }, { archiveId, prio: 5 }, [archiveId]]) {
      const r = await nb.post(bad);
      expect(r.status, JSON.stringify(bad)).toBe(400);
      expect(((await r.json()) as Json).error.code).toBe('INVALID_INPUT');
    }
    const unknown = await nb.post({ archiveId: 'no-such-archive' });
    expect(unknown.status).toBe(404);
    expect(((await unknown.json()) as Json).error.message).toMatch(/no-such-archive/);

    // a stored data created but never generated is not preserved
    const root = dir();
    writeTree(root, { 'c.txt': 'charlie' });
    const u = await s.call('uploads.ingestPaths', { paths: [root] });
    await s.idle();
    const e = await s.call('executions.create', { processing: 'archive-to-archive', inputs: { upload: [u._id] }, output: { stored_data: { name: 'not yet', storage_tags: [] } } });
    const unpreserved = await nb.post({ archiveId: e.output.stored_data._id });
    expect(unpreserved.status).toBe(422);
    expect(((await unpreserved.json()) as Json).error.message).toMatch(/not preserved.*CREATED/);
    expect((await s.call('nb.disseminations.list', {})).total).toBe(0);

    // a stored file damaged in the repository: FAILED at FIXITY_CHECK with the reason
    fs.writeFileSync(path.join(s.config.dataDir, 'storage', archiveId, 'b.txt'), 'BRAVO');
    const created: Json = await (await nb.post({ archiveId, priority: 10 })).json();
    const { last } = await pollUntilFinal(() => nb.get(created.disseminationId));
    expect(last.status).toBe('FAILED');
    expect(last.reason).toMatch(/Fixity check failed.*b\.txt.*SHA-256/);
    expect(await statusEvents(s, created.disseminationId)).toEqual(['RECEIVED', 'QUEUED', 'DOWNLOADING_FROM_REPOSITORY', 'FIXITY_CHECK', 'FAILED']);
    // a FAILED one is no longer active: the archive can be ordered again
    expect((await nb.post({ archiveId })).status).toBe(201);
  });

  it('serves higher priorities first', async () => {
    const s = await fonds({ nbClients: clients(), jobConcurrency: 1 });
    const ids: string[] = [];
    for (const n of ['low', 'high', 'mid']) ids.push(await preservedArchive(s, { [`${n}.txt`]: n }, n));
    const made = await Promise.all(
      [10, 90, 50].map((priority, i) => s.call('nb.disseminations.create', { archiveId: ids[i], priority }, { transport: 'http', clientId: 'nb:client-id' })),
    );
    await s.idle();
    const started = await Promise.all(
      made.map(async (d) => (await s.call('nb.disseminations.timeline', { id: d.disseminationId, limit: 100 })).items.find((e) => e.type === 'status.DOWNLOADING_FROM_REPOSITORY')!.seq),
    );
    const order = made.map((d, i) => [d.priority, started[i]]).sort((a, b) => a[1] - b[1]).map((x) => x[0]);
    expect(order).toEqual([90, 50, 10]);
  });

  it('resumes a dissemination stopped in the middle after a restart', async () => {
    const dataDir = tempDir('fonds-nb-restart-');
    cleanups.push(() => fs.rmSync(dataDir, { recursive: true, force: true }));
    const first = await fonds({ dataDir, nbClients: clients() });
    const big = crypto.randomBytes(8 * 1024 * 1024);
    const archiveId = await preservedArchive(first, { 'big.bin': big, 'small.txt': 'small' });
    let stopping: Promise<void> | undefined;
    const off = first.subscribe((p) => {
      // stop the service the moment the fixity check begins
      if (p.channel === 'event' && p.event.kind === 'nb_dissemination' && p.event.type === 'status.FIXITY_CHECK') stopping ??= first.close();
    });
    const d = await first.call('nb.disseminations.create', { archiveId, priority: 50 });
    await waitFor(() => stopping !== undefined, Boolean);
    await stopping;
    off();

    const second = await fonds({ dataDir, nbClients: clients() });
    expect((await second.call('nb.disseminations.get', { id: d.disseminationId })).status).toBe('FIXITY_CHECK');
    const done = await waitFor(() => second.call('nb.disseminations.get', { id: d.disseminationId }), (x) => x.status === 'DISSEMINATED' || x.status === 'FAILED');
    expect(done.status).toBe('DISSEMINATED');
    expect(await statusEvents(second, d.disseminationId)).toEqual(FLOW);
    const types = (await second.call('nb.disseminations.timeline', { id: d.disseminationId, limit: 100 })).items.map((e) => e.type);
    expect(types).toContain('resumed');
    const served = (await second.call('nb.disseminations.list', {})).items[0];
    const pkg = fs.readFileSync(path.join(dataDir, 'nb', 'deliveries', served.package!.fileName));
    expect(sha256(pkg)).toBe(served.package!.sha256);
    expect(sha256(untar(pkg).files['data/big.bin'])).toBe(sha256(big));
    // the work folder is removed just after DISSEMINATED is committed (a crash in between leaves it for the next start)
    expect(await waitFor(() => fs.existsSync(path.join(dataDir, 'nb', 'work', d.disseminationId)), (exists) => !exists, 5000)).toBe(false);
  });
});

describe('NB dissemination service, S3 delivery', () => {
  it('uploads the package to the delivery bucket and answers a presigned URL that downloads the right bytes', async () => {
    const s3 = await startS3('nb-delivery');
    cleanups.push(() => s3.stop());
    const s = await fonds({
      nbClients: clients(),
      nbS3Bucket: s3.bucket,
      nbS3Prefix: 'out',
      s3Endpoint: s3.endpoint,
      s3AccessKeyId: s3.accessKeyId,
      s3SecretAccessKey: s3.secretAccessKey,
    });
    const base = await serve(s);
    const nb = api(base);
    const payload = crypto.randomBytes(1024 * 1024 + 3);
    const archiveId = await preservedArchive(s, { 'scan/page-1.tif': payload, 'meta.xml': '<m/>' });
    const d: Json = await (await nb.post({ archiveId, priority: 70 })).json();
    const { last } = await pollUntilFinal(() => nb.get(d.disseminationId));
    expect(last.status).toBe('DISSEMINATED');
    const link: Json = await (await nb.link(d.disseminationId)).json();
    expect(link.url).toContain(`${s3.endpoint}/nb-delivery/out/${d.disseminationId}/${d.disseminationId}.tar?`);
    expect(link.url).toMatch(/X-Amz-Signature=/);
    expect(s3.puts.some((p) => p.key === `out/${d.disseminationId}/${d.disseminationId}.tar` && p.contentMd5 === p.bodyMd5)).toBe(true);
    const res = await fetch(link.url);
    expect(res.status).toBe(200);
    const bytes = Buffer.from(await res.arrayBuffer());
    expect(sha256(bytes)).toBe(link.sha256);
    expect(sha256(untar(bytes).files['data/scan/page-1.tif'])).toBe(sha256(payload));
    // s3rver does not check signatures: that the URL is presigned for the link lifetime is what can be checked here
    expect(new URL(link.url).searchParams.get('X-Amz-Expires')).toBe('86400');
  });
});

describe('Fonds orders from an NB-style service (client side)', () => {
  it('adopts the existing dissemination on 409, polls with backoff until DISSEMINATED, keeps the link and reuses it', async () => {
    const server = await fonds({ nbClients: clients() });
    const base = await serve(server);
    const archiveId = await preservedArchive(server, { 'x.txt': 'x-ray', 'y/z.bin': crypto.randomBytes(200_000) });
    const client = await fonds({ nbPollInitialMs: 40, nbPollMaxMs: 400 });

    // a dissemination already under way (ordered before a crash, say): the client must not post a second one
    const existing: Json = await (await api(base).post({ archiveId, priority: 30 })).json();
    const order = await client.call('nb.orders.create', { baseUrl: `${base}/`, token: CLIENT_TOKEN, archiveId, priority: 60 });
    expect(order).toMatchObject({ baseUrl: base, archiveId, state: 'POLLING', disseminationId: existing.disseminationId, adopted: true, clientId: 'client-id', contractId: '2d17' });
    expect(JSON.stringify(order)).not.toContain(CLIENT_TOKEN);
    // ordering again while it runs reuses the order
    expect((await client.call('nb.orders.create', { baseUrl: base, token: CLIENT_TOKEN, archiveId })).id).toBe(order.id);
    expect((await server.call('nb.disseminations.list', {})).total).toBe(1);

    const ended = await waitFor(() => client.call('nb.orders.get', { id: order.id }), (o) => o.state !== 'POLLING' && o.state !== 'SUBMITTING' && !!o.link, 60_000);
    expect(ended).toMatchObject({ state: 'ENDED', status: 'DISSEMINATED' });
    expect(ended.polls).toBeGreaterThanOrEqual(1);
    expect(ended.link!.fetched).toBe(1);
    const all = await client.call('nb.orders.list', {});
    expect(JSON.stringify(all)).not.toContain(CLIENT_TOKEN);
    expect(fs.readFileSync(path.join(client.config.dataDir, 'fonds.sqlite')).includes(Buffer.from(CLIENT_TOKEN))).toBe(false);
    const types = (await client.call('nb.orders.timeline', { id: order.id, limit: 100 })).items.map((e) => e.type).reverse();
    expect(types[0]).toBe('created');
    expect(types).toContain('submitted');
    expect(types).toContain('status.DISSEMINATED');
    expect(types).toContain('link.fetched');

    // the link is kept and reused until it expires
    const l1 = await client.call('nb.orders.link', { id: order.id });
    expect(l1).toMatchObject({ url: ended.link!.url, reused: true });
    const bytes = Buffer.from(await (await fetch(l1.url)).arrayBuffer());
    expect(sha256(bytes)).toBe(ended.link!.sha256);
    expect(untar(bytes).files['x.txt'] ?? untar(bytes).files['data/x.txt']).toEqual(Buffer.from('x-ray'));
    client.internals.store.db.prepare('UPDATE nb_orders SET link_expires_at = ? WHERE id = ?').run(new Date(Date.now() - 1000).toISOString(), order.id);
    const l2 = await client.call('nb.orders.link', { id: order.id });
    expect(l2.reused).toBe(false);
    expect((await client.call('nb.orders.get', { id: order.id })).link!.fetched).toBe(2);

    // a refusal by the service is an error and leaves no order behind
    await expect(client.call('nb.orders.create', { baseUrl: base, token: CLIENT_TOKEN, archiveId: 'missing-archive' })).rejects.toMatchObject({ code: 'NOT_FOUND' });
    await expect(client.call('nb.orders.create', { baseUrl: base, token: 'wrong-token-0123456789abc', archiveId })).rejects.toMatchObject({ code: 'UNAUTHORIZED' });
    expect((await client.call('nb.orders.list', {})).total).toBe(1);
  });

  it('waits twice as long (with jitter) between polls while the status does not change', async () => {
    const server = await fonds({ nbClients: clients() });
    const base = await serve(server);
    const archiveId = await preservedArchive(server, { 'slow.txt': 'slow' });
    await server.internals.jobs.stop(); // the server's work stands still: the dissemination stays RECEIVED
    const client = await fonds({ nbPollInitialMs: 40, nbPollMaxMs: 10_000 });
    const order = await client.call('nb.orders.create', { baseUrl: base, token: CLIENT_TOKEN, archiveId });
    expect(order.status).toBe('RECEIVED');
    await new Promise((r) => setTimeout(r, 2500));
    const o = await client.call('nb.orders.get', { id: order.id });
    // without backoff 2.5 s at 40 ms would be ~60 polls; doubling from 20–40 ms gives 5 to 8
    expect(o.polls).toBeGreaterThanOrEqual(4);
    expect(o.polls).toBeLessThanOrEqual(9);
    const step = client.internals.store.db.prepare('SELECT backoff_step FROM nb_orders WHERE id = ?').pluck().get(order.id) as number;
    expect(step).toBe(o.polls);
    const wait = Date.parse(o.nextPollAt!) - Date.parse(o.updatedAt);
    expect(wait).toBeGreaterThanOrEqual((40 * 2 ** step) / 2 - 5);
    expect(wait).toBeLessThanOrEqual(40 * 2 ** step + 5);
  });

  it('keeps an order when the service is unreachable and submits it once it answers', async () => {
    const server = await fonds({ nbClients: clients() });
    const archiveId = await preservedArchive(server, { 'late.txt': 'late' });
    // a port with nothing listening yet
    const probe = http.createServer();
    await new Promise<void>((r) => probe.listen(0, '127.0.0.1', r));
    const port = (probe.address() as AddressInfo).port;
    await new Promise<void>((r) => probe.close(() => r()));
    const client = await fonds({ nbPollInitialMs: 50, nbPollMaxMs: 300 });
    const order = await client.call('nb.orders.create', { baseUrl: `http://127.0.0.1:${port}`, token: CLIENT_TOKEN, archiveId });
    expect(order.state).toBe('SUBMITTING');
    expect(order.error).toMatch(/could not be reached/);
    const srv = await startHttpServer({ service: server, host: '127.0.0.1', port, token: server.token, maxBodyBytes: 1 << 20 });
    cleanups.push(() => srv.close());
    const done = await waitFor(() => client.call('nb.orders.get', { id: order.id }), (o) => o.state === 'ENDED', 60_000);
    expect(done).toMatchObject({ status: 'DISSEMINATED', adopted: false });
    expect(NbStatuses).toContain(done.status);
  });
});
