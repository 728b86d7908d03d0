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
