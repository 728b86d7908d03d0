import Database from 'better-sqlite3';
import fs from 'node:fs';
import http from 'node:http';
import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { commandNames } from '../../src-shared/api';
import { startHttpServer, type HttpServer } from '../../src-main/transport/http';
import { startService, tempDir, waitFor, writeTree } from '../helpers/service';

const cleanups: Array<() => void | Promise<void>> = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

async function server(opts: { maxBodyBytes?: number; staticDir?: string } = {}) {
  const s = await startService();
  cleanups.push(s.dispose);
  const srv: HttpServer = await startHttpServer({
    service: s.service,
    host: '127.0.0.1',
    port: 0,
    token: s.service.token,
    maxBodyBytes: opts.maxBodyBytes ?? 1024 * 1024,
    staticDir: opts.staticDir,
  });
  cleanups.push(() => srv.close());
  const auth = { authorization: `Bearer ${s.service.token}` };
  const callApi = (name: string, body: unknown, headers: Record<string, string> = auth): Promise<JsonResponse> =>
    fetch(`${srv.url}/api/call/${name}`, { method: 'POST', headers: { 'content-type': 'application/json', ...headers }, body: JSON.stringify(body) });
  return { ...s, srv, auth, callApi };
}

// eslint-disable-next-line @typescript-eslint/no-explicit-any -- test bodies are checked field by field
type JsonResponse = Omit<Response, 'json'> & { json(): Promise<any> };

/** A raw request, so the Host header can be forged (fetch does not allow it). */
function rawGet(url: string, headers: Record<string, string>): Promise<number> {
  return new Promise((resolve, reject) => {
    const req = http.get(url, { headers }, (res) => {
      res.resume();
      resolve(res.statusCode ?? 0);
    });
    req.on('error', reject);
  });
}

describe('headless server security', () => {
  it('binds to loopback and requires the bearer token on every API route', async () => {
    const { srv, callApi } = await server();
    expect(srv.url).toMatch(/^http:\/\/127\.0\.0\.1:\d+$/);
    expect((await fetch(`${srv.url}/api/health`)).status).toBe(200);
    const none = await callApi('uploads.list', {}, {});
    expect(none.status).toBe(401);
    expect((await none.json()).error.code).toBe('UNAUTHORIZED');
    expect((await callApi('uploads.list', {}, { authorization: 'Bearer wrong-token-of-some-length' })).status).toBe(401);
    expect((await fetch(`${srv.url}/api/events`)).status).toBe(401);
  });

  it('refuses a Host header that does not name the server (DNS rebinding)', async () => {
    const { srv, auth } = await server();
    expect(await rawGet(`${srv.url}/api/commands`, { ...auth, host: 'evil.example:80' })).toBe(403);
    expect(await rawGet(`${srv.url}/api/commands`, { ...auth, host: `localhost:${srv.port}` })).toBe(200);
  });

  it('refuses a body over the limit with 413 and changes nothing', async () => {
    const { callApi, service } = await server({ maxBodyBytes: 2048 });
    const res = await callApi('uploads.create', { name: 'x', description: 'y'.repeat(5000) });
    expect(res.status).toBe(413);
    expect((await res.json()).error.code).toBe('PAYLOAD_TOO_LARGE');
    expect((await service.call('uploads.list', {})).total).toBe(0);
  });

  it('answers malformed JSON and bad input with 400 naming the field', async () => {
    const { srv, auth, callApi } = await server();
    const bad = await fetch(`${srv.url}/api/call/uploads.get`, { method: 'POST', headers: auth, body: '{nope' });
    expect(bad.status).toBe(400);
    const invalid = await callApi('uploads.ingestPaths', { paths: 'not-an-array' });
    expect(invalid.status).toBe(400);
    const body = await invalid.json();
    expect(body.error.code).toBe('INVALID_INPUT');
    expect(body.error.details.issues[0].field).toBe('paths');
    expect((await callApi('no.such.command', {})).status).toBe(404);
  });
});

describe('headless server contract', () => {
  it('exposes exactly the commands of the contract', async () => {
    const { srv, auth } = await server();
    const res: JsonResponse = await fetch(`${srv.url}/api/commands`, { headers: auth });
    expect((await res.json()).commands).toEqual(commandNames);
  });

  it('pushes events as Server-Sent Events, and takes pushed files into an upload', async () => {
    const { srv, auth, callApi } = await server();
    const controller = new AbortController();
    cleanups.push(() => controller.abort());
    const stream = await fetch(`${srv.url}/api/events`, { headers: auth, signal: controller.signal });
    const reader = stream.body!.pipeThrough(new TextDecoderStream()).getReader();
    let received = '';
    void (async () => {
      for (;;) {
        const { value, done } = await reader.read().catch(() => ({ value: undefined, done: true }));
        if (done) return;
        received += value;
      }
    })();
    const created = (await (await callApi('uploads.create', { name: 'From the browser' })).json()).result;
    const put = await fetch(`${srv.url}/api/uploads/${created._id}/files/docs/r%C3%A9sum%C3%A9.txt`, { method: 'PUT', headers: auth, body: 'bonjour' });
    expect(put.status).toBe(201);
    const hostile = await fetch(`${srv.url}/api/uploads/${created._id}/files/..%2F..%2Fescape.txt`, { method: 'PUT', headers: auth, body: 'x' });
    expect(hostile.status).toBe(400);
    await callApi('uploads.close', { id: created._id });
    await waitFor(() => received, (r) => r.includes('"type":"status.CLOSED"'), 20_000);
    expect(received).toContain('event: event');
    const files = (await (await callApi('uploads.files', { id: created._id })).json()).result;
    expect(files.items.map((f: { path: string }) => f.path)).toEqual(['docs/résumé.txt']);
  });

  it('serves the renderer with a Content-Security-Policy, and nothing outside its folder', async () => {
    const dir = tempDir();
    cleanups.push(() => fs.rmSync(dir, { recursive: true, force: true }));
    writeTree(dir, { 'index.html': '<!doctype html><title>Fonds</title>', 'assets/app.js': 'console.log(1)' });
    const { srv } = await server({ staticDir: dir });
    const index = await fetch(`${srv.url}/`);
    expect(index.status).toBe(200);
    expect(index.headers.get('content-security-policy')).toContain("default-src 'self'");
    expect((await fetch(`${srv.url}/assets/app.js`)).headers.get('content-type')).toContain('javascript');
    expect(await rawGet(`${srv.url}/..%2F..%2Fetc%2Fpasswd.js`, { host: `127.0.0.1:${srv.port}` })).not.toBe(200);
    expect(path.isAbsolute(dir)).toBe(true);
  });
});

/** A PUT whose body is sent in two halves: the second only when `finish` is called. */
function slowPut(url: string, headers: Record<string, string>, first: string, rest: string) {
  let req!: http.ClientRequest;
  const answer = new Promise<{ status: number; body: string }>((resolve, reject) => {
    req = http.request(url, { method: 'PUT', headers: { ...headers, 'content-length': String(Buffer.byteLength(first + rest)) } }, (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (c: string) => (body += c));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body }));
    });
    req.on('error', reject);
  });
  req.write(first);
  return { answer, finish: () => req.end(rest) };
}

describe('headless server under hostile or careless clients', () => {
  it('neither closes, checks nor deletes an upload while a file is on its way into it, and never shows half a file', async () => {
    const { srv, auth, callApi, dataDir, service } = await server();
    const created = (await (await callApi('uploads.create', { name: 'Pushed slowly' })).json()).result;
    const put = slowPut(`${srv.url}/api/uploads/${created._id}/files/late.bin`, auth, 'a'.repeat(100_000), 'b'.repeat(300_000));
    const parts = path.join(dataDir, 'staging', '.parts');
    await waitFor(() => (fs.existsSync(parts) ? fs.readdirSync(parts) : []), (inside) => inside.length === 1, 10_000);
    // the half-written file is outside the upload's folder: a check would not see it
    expect(fs.readdirSync(path.join(dataDir, 'staging', created._id))).toEqual([]);
    for (const [name, action] of [['uploads.close', 'close it'], ['uploads.recheck', 'check it'], ['uploads.delete', 'delete it']] as const) {
      const refused = await callApi(name, { id: created._id });
      expect(refused.status).toBe(409);
      expect((await refused.json()).error.message).toMatch(new RegExp(`1 file still being pushed; ${action} once it is in`));
    }
    put.finish();
    expect((await put.answer).status).toBe(201);
    expect((await callApi('uploads.close', { id: created._id })).status).toBe(200);
    await waitFor(() => service.call('uploads.get', { id: created._id }), (u) => u.status === 'CLOSED', 20_000);
    const files = (await service.call('uploads.files', { id: created._id })).items;
    expect(files.map((f) => [f.path, f.size])).toEqual([['late.bin', 400_000]]);
    expect(fs.readdirSync(parts)).toEqual([]);
  });

  it('refuses a path pushed twice, and a file where a folder is or under a file, without naming server paths', async () => {
    const { srv, auth, callApi, dataDir } = await server();
    const created = (await (await callApi('uploads.create', { name: 'Clashing names' })).json()).result;
    const base = `${srv.url}/api/uploads/${created._id}/files`;
    expect((await fetch(`${base}/a`, { method: 'PUT', headers: auth, body: 'file a' })).status).toBe(201);
    const clash = await fetch(`${base}/a/b`, { method: 'PUT', headers: auth, body: 'under a' });
    expect(clash.status).toBe(409);
    const { error } = (await clash.json()) as { error: { code: string; message: string } };
    expect(error).toMatchObject({ code: 'CONFLICT', message: expect.stringMatching(/^a\/b: /) });
    expect(error.message).not.toContain(dataDir);
    // the same path twice is a naming conflict, not a silent replacement
    const again = await fetch(`${base}/a`, { method: 'PUT', headers: auth, body: 'another a' });
    expect(again.status).toBe(409);
    expect(((await again.json()) as { error: { message: string } }).error.message).toMatch(/^a: was already pushed into this upload/);
    expect((await fetch(`${base}/d/e`, { method: 'PUT', headers: auth, body: 'e' })).status).toBe(201);
    const onFolder = await fetch(`${base}/d`, { method: 'PUT', headers: auth, body: 'd' });
    expect(onFolder.status).toBe(409);
    expect(((await onFolder.json()) as { error: { message: string } }).error.message).toMatch(/^d: is a folder of this upload already/);
    expect(fs.readFileSync(path.join(dataDir, 'staging', created._id, 'a'), 'utf8')).toBe('file a');
    expect(fs.readdirSync(path.join(dataDir, 'staging', created._id)).sort()).toEqual(['a', 'd']);
    expect(fs.readdirSync(path.join(dataDir, 'staging', '.parts'))).toEqual([]);
  });

  it('answers malformed percent-encoding and non-object bodies with 400, never 500', async () => {
    const { srv, auth } = await server({ staticDir: tempDir() });
    const post = (url: string, body: string, headers: Record<string, string> = auth) => fetch(`${srv.url}${url}`, { method: 'POST', headers: { 'content-type': 'application/json', ...headers }, body });
    const cases: Array<[string, Promise<Response>]> = [
      ['command name', post('/api/call/%E0%A4%A', '{}')],
      ['pushed path', fetch(`${srv.url}/api/uploads/x/files/%E0%A4%A`, { method: 'PUT', headers: auth, body: 'x' })],
      ['REST id', fetch(`${srv.url}/api/datastores/default/uploads/%E0%A4%A`, { headers: auth })],
      ['static file', fetch(`${srv.url}/%E0%A4%A.js`)],
      ['null body', post('/api/datastores/default/uploads', 'null')],
      ['array body', post('/api/datastores/default/uploads', '[1]')],
    ];
    for (const [what, res] of cases) {
      const r = await res;
      expect({ what, status: r.status }).toEqual({ what, status: 400 });
      expect(((await r.json()) as { error: { code: string } }).error.code).toBe('INVALID_INPUT');
    }
    const nb = await fetch(`${srv.url}/v1/disseminations/%E0`);
    expect(nb.status).toBe(400);
  });

  it.runIf(process.platform === 'linux')('closes the file of every download the client gives up on', async () => {
    const dir = tempDir();
    cleanups.push(() => fs.rmSync(dir, { recursive: true, force: true }));
    writeTree(dir, { 'index.html': '<!doctype html>', 'big.geojson': Buffer.alloc(2_000_000, 32) });
    const { srv } = await server({ staticDir: dir });
    const target = (fd: string) => {
      try {
        return fs.readlinkSync(`/proc/self/fd/${fd}`, { encoding: 'utf8' });
      } catch {
        return ''; // closed meanwhile
      }
    };
    const openFiles = () => fs.readdirSync('/proc/self/fd').filter((fd) => target(fd).endsWith('big.geojson')).length;
    for (let i = 0; i < 20; i++) {
      const controller = new AbortController();
      const res = await fetch(`${srv.url}/big.geojson`, { signal: controller.signal });
      await res.body!.getReader().read();
      controller.abort();
    }
    await waitFor(async () => openFiles(), (n) => n === 0, 10_000);
  });

  it('closes the event stream of a client that stops reading, instead of buffering for it without end', async () => {
    const { srv, auth, service } = await server();
    const stream = await new Promise<http.IncomingMessage>((resolve, reject) => {
      http.get(`${srv.url}/api/events`, { headers: auth }, (res) => resolve(res.pause())).on('error', reject); // reads nothing for now
    });
    await new Promise((r) => setTimeout(r, 200));
    const payload = { filler: 'x'.repeat(512 * 1024) };
    const events = 80; // 40 MiB, more than the kernel's buffers and the server's limit together
    for (let i = 0; i < events; i++) {
      service.internals.store.transact((tx) => tx.event({ kind: 'upload', objectId: `flood-${i}`, type: 'test.flood', payload }));
      await new Promise((r) => setImmediate(r));
    }
    // reading again, the client finds its stream ended by the server, short of what was pushed
    let bytes = 0;
    await new Promise<void>((resolve, reject) => {
      stream.on('data', (c: Buffer) => (bytes += c.length));
      stream.on('end', resolve);
      stream.on('error', () => resolve()); // a reset counts as ended
      setTimeout(() => reject(new Error('the stream of a client that read nothing stayed open')), 20_000).unref();
      stream.resume();
    });
    expect(bytes).toBeLessThan(events * payload.filler.length);
    // the server still serves
    expect((await fetch(`${srv.url}/api/commands`, { headers: auth })).status).toBe(200);
  });

  it('tells an unsigned acknowledgement nothing about the recipients, and records a flood of them as a count', async () => {
    const { srv, service, dataDir } = await server();
    await service.call('recipients.save', { recipientLabel: 'partner-hook', description: '', directNotificationEnabled: true, ackRequired: true, blockingRequired: false, settings: { kind: 'webhook', url: 'http://127.0.0.1:9/', secret: 'a-shared-secret-of-32-characters', maxAttempts: 1 } });
    const ack = (label: string) =>
      fetch(`${srv.url}/v1/dissemination-acks`, { method: 'POST', headers: { 'content-type': 'application/json', 'x-fonds-signature': 'sha256=00' }, body: JSON.stringify({ urn: 'URN:FEATURE:DATA:project1:11111111-1111-4111-8111-111111111111:V1', recipientLabel: label }) });
    const answers = new Set<string>();
    for (const label of ['nobody', 'partner-hook']) {
      const r = await ack(label);
      expect(r.status).toBe(401);
      answers.add(((await r.json()) as { error: { message: string } }).error.message);
    }
    expect(answers.size).toBe(1); // the same words whether the recipient exists or not
    for (let i = 0; i < 40; i++) expect((await ack(`flood-${i}`)).status).toBe(401);
    const recorded = await service.call('disseminations.unmatchedAcks', { limit: 100 });
    expect(recorded.total).toBe(30); // one by one up to 30 a minute, with their reasons
    expect(recorded.items.at(-1)!.payload.reason).toMatch(/no recipient 'nobody'/);
    // the other 12 are one count, written at the end of the minute, or when the service stops
    await service.close();
    const db = new Database(path.join(dataDir, 'fonds.sqlite'), { readonly: true });
    try {
      const rows = db.prepare(`SELECT payload FROM events WHERE type = 'dissemination.ack-unmatched' ORDER BY seq`).all() as Array<{ payload: string }>;
      expect(rows).toHaveLength(31);
      expect(JSON.parse(rows[30].payload)).toMatchObject({ suppressed: 12, reason: expect.stringMatching(/^12 more acknowledgements were refused/) });
    } finally {
      db.close();
    }
  });
});
