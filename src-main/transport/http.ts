import { timingSafeEqual } from 'node:crypto';
import fs from 'node:fs';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import path from 'node:path';
import { pipeline } from 'node:stream/promises';
import { commandNames, type Pushed } from '../../src-shared/api';
import { FondsError, httpStatusOf, toErrorShape } from '../../src-shared/errors';
import type { Service } from '../service';
import { isInside } from '../service/paths';
import { restRoutes, type RestRoute } from './rest';
import { DISSEMINATION_ACK_PATH, receiveSignedAck } from './dissemination-ack';
import { handleNb, isNbPath } from './nb';
import { REPORT_ROUTE, serveReport } from './reports';

export interface HttpOptions {
  service: Service;
  host: string;
  port: number;
  token: string;
  maxBodyBytes: number;
  /** the built renderer (out/renderer); omitted = API only */
  staticDir?: string;
}

export interface HttpServer {
  url: string;
  port: number;
  close(): Promise<void>;
}

const CSP =
  "default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; img-src 'self' data: blob:; font-src 'self' data:; connect-src 'self'; worker-src 'self' blob:; object-src 'none'; base-uri 'none'; frame-ancestors 'none'; form-action 'none'";

const MIME: Record<string, string> = {
  '.html': 'text/html; charset=utf-8',
  '.js': 'text/javascript; charset=utf-8',
  '.mjs': 'text/javascript; charset=utf-8',
  '.css': 'text/css; charset=utf-8',
  '.json': 'application/json; charset=utf-8',
  '.svg': 'image/svg+xml',
  '.png': 'image/png',
  '.ico': 'image/x-icon',
  '.woff2': 'font/woff2',
  '.ttf': 'font/ttf',
  '.geojson': 'application/geo+json',
};

/**
 * A path segment as the client meant it. A malformed escape (`%E0%A4%A`) is the client's mistake:
 * 400 naming the segment, not a URIError that would read as the server's fault.
 */
export function decodeSegment(segment: string): string {
  try {
    return decodeURIComponent(segment);
  } catch {
    throw new FondsError('INVALID_INPUT', `The URL segment '${segment.slice(0, 200)}' is not validly percent-encoded (UTF-8).`);
  }
}

/**
 * An event stream whose client does not read (a paused tab, a stuck script) would buffer without
 * limit: past this much unsent, progress (transient) is skipped for it...
 */
const SSE_PROGRESS_BUFFER = 256 * 1024;
/** ...and past this, its stream is closed: the client reconnects and reloads what it shows. */
const SSE_MAX_BUFFER = 8 * 1024 * 1024;

export function sendJson(res: http.ServerResponse, status: number, body: unknown): void {
  const data = JSON.stringify(body);
  res.writeHead(status, { 'content-type': 'application/json; charset=utf-8', 'content-length': Buffer.byteLength(data), 'cache-control': 'no-store' });
  res.end(data);
}

export function sendError(res: http.ServerResponse, err: unknown): void {
  const shape = toErrorShape(err);
  if (res.headersSent) {
    res.destroy();
    return;
  }
  sendJson(res, httpStatusOf[shape.code], { error: shape });
}

/** Reads a JSON body, refusing more than `limit` bytes (413) and bad JSON (400). */
export async function readJson(req: http.IncomingMessage, limit: number): Promise<unknown> {
  const declared = Number(req.headers['content-length'] ?? 0);
  if (declared > limit) throw new FondsError('PAYLOAD_TOO_LARGE', `The request body has ${declared} bytes; the limit is ${limit}.`);
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of req as AsyncIterable<Buffer>) {
    size += chunk.length;
    if (size > limit) throw new FondsError('PAYLOAD_TOO_LARGE', `The request body is over the limit of ${limit} bytes.`);
    chunks.push(chunk);
  }
  if (size === 0) return {};
  try {
    return JSON.parse(Buffer.concat(chunks).toString('utf8'));
  } catch (err) {
    throw new FondsError('INVALID_INPUT', `The request body is not valid JSON: ${(err as Error).message}`);
  }
}

function tokenMatches(header: string | undefined, token: string): boolean {
  if (!header?.startsWith('Bearer ')) return false;
  const given = Buffer.from(header.slice(7).trim());
  const expected = Buffer.from(token);
  return given.length === expected.length && timingSafeEqual(given, expected);
}

/**
 * The headless transport: the same commands as IPC, as JSON over HTTP (POST /api/call/<name>),
 * events as Server-Sent Events (GET /api/events), pushed files (PUT /api/uploads/<id>/files/<path>),
 * REST routes shaped like the seed APIs, and the built renderer. Loopback by default, bearer token
 * on every /api route, Host header checked against DNS rebinding, bodies capped.
 */
export async function startHttpServer(opts: HttpOptions): Promise<HttpServer> {
  const { service, token } = opts;
  const sse = new Set<http.ServerResponse>();
  const routes: RestRoute[] = restRoutes(service, opts.maxBodyBytes);
  let port = opts.port;

  const allowedHost = (host: string | undefined) => {
    if (!host) return false;
    const names = ['127.0.0.1', 'localhost', '[::1]', opts.host.includes(':') ? `[${opts.host}]` : opts.host];
    return names.some((n) => host === `${n}:${port}` || (port === 80 && host === n));
  };

  const server = http.createServer(async (req, res) => {
    try {
      res.setHeader('x-content-type-options', 'nosniff');
      res.setHeader('referrer-policy', 'no-referrer');
      if (!allowedHost(req.headers.host)) throw new FondsError('FORBIDDEN', `Host '${req.headers.host ?? ''}' is not served here.`);
      const url = URL.parse(req.url ?? '/', `http://${req.headers.host}`);
      if (!url) throw new FondsError('INVALID_INPUT', `'${(req.url ?? '').slice(0, 200)}' is not a URL path.`);
      const p = url.pathname;
      if (p === '/api/health') return sendJson(res, 200, { ok: true });
      // signed by the recipient (HMAC), not by the bearer token: see dissemination-ack.ts
      if (p === DISSEMINATION_ACK_PATH && req.method === 'POST') return await receiveSignedAck(req, res, service, opts.maxBodyBytes);
      // NB dissemination service (seed 004): its own clients' tokens, and signed download links
      if (isNbPath(p)) return await handleNb(req, res, url, { service, token, maxBodyBytes: opts.maxBodyBytes });
      const isApi = p.startsWith('/api/') || p.startsWith('/v1/') || p.startsWith('/medona/');
      if (!isApi) return await serveStatic(opts.staticDir, p, res);
      if (!tokenMatches(req.headers.authorization, token)) {
        res.setHeader('www-authenticate', 'Bearer');
        throw new FondsError('UNAUTHORIZED', 'Missing or wrong bearer token (see the token printed at start, or <dataDir>/token).');
      }
      const ctx = { transport: 'http' as const, clientId: 'token' };
      if (p === '/api/commands' && req.method === 'GET') return sendJson(res, 200, { commands: commandNames });
      if (p.startsWith('/api/call/')) {
        if (req.method !== 'POST') throw new FondsError('INVALID_INPUT', 'Commands are called with POST.');
        const name = decodeSegment(p.slice('/api/call/'.length));
        const input = await readJson(req, opts.maxBodyBytes);
        return sendJson(res, 200, { result: await service.call(name as never, input, ctx) });
      }
      if (p === '/api/events' && req.method === 'GET') return openEventStream(req, res);
      const report = REPORT_ROUTE.exec(p);
      if (report && req.method === 'GET') return await serveReport(req, res, service, url, report[1]);
      const put = /^\/api\/uploads\/([^/]+)\/files\/(.+)$/.exec(p);
      if (put && req.method === 'PUT') {
        const rel = put[2].split('/').map(decodeSegment).join('/');
        return sendJson(res, 201, { result: await service.stageFile(decodeSegment(put[1]), rel, req) });
      }
      for (const r of routes) {
        if (r.method !== req.method) continue;
        const m = r.pattern.exec(p);
        if (m) return await r.handle({ req, res, params: m.groups ?? {}, url, ctx });
      }
      throw new FondsError('NOT_FOUND', `No route ${req.method} ${p}.`);
    } catch (err) {
      // drain what the client is still sending so it reads the answer
      req.resume();
      sendError(res, err);
    }
  });

  function openEventStream(req: http.IncomingMessage, res: http.ServerResponse): void {
    res.writeHead(200, { 'content-type': 'text/event-stream', 'cache-control': 'no-store', connection: 'keep-alive' });
    res.write(': fonds\n\n');
    const send = (p: Pushed) => {
      if (res.writableLength > SSE_MAX_BUFFER) return void res.destroy(); // 'close' below cleans up
      if (p.channel === 'progress' && res.writableLength > SSE_PROGRESS_BUFFER) return;
      res.write(`event: ${p.channel}\ndata: ${JSON.stringify(p.channel === 'event' ? p.event : p.progress)}\n\n`);
    };
    const unsubscribe = service.subscribe(send);
    const beat = setInterval(() => {
      if (res.writableLength > SSE_MAX_BUFFER) res.destroy();
      else res.write(': keep-alive\n\n');
    }, 15_000);
    sse.add(res);
    req.on('close', () => {
      clearInterval(beat);
      unsubscribe();
      sse.delete(res);
    });
  }

  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(opts.port, opts.host, () => resolve());
  });
  port = (server.address() as AddressInfo).port;
  const shownHost = opts.host.includes(':') ? `[${opts.host}]` : opts.host;
  return {
    url: `http://${shownHost}:${port}`,
    port,
    close: () =>
      new Promise<void>((resolve) => {
        for (const res of sse) res.end();
        server.close(() => resolve());
        server.closeAllConnections();
      }),
  };
}

async function serveStatic(dir: string | undefined, urlPath: string, res: http.ServerResponse): Promise<void> {
  if (!dir) throw new FondsError('NOT_FOUND', 'This server has no renderer to serve (API only).');
  let rel = decodeSegment(urlPath).replace(/^\/+/, '');
  if (rel === '' || !path.extname(rel)) rel = 'index.html';
  const file = path.resolve(dir, rel);
  if (!isInside(dir, file)) throw new FondsError('PATH_OUTSIDE_ROOT', 'Refused path.');
  const st = await fs.promises.stat(file).catch(() => undefined);
  if (!st?.isFile()) throw new FondsError('NOT_FOUND', `No file ${urlPath}.`);
  res.writeHead(200, {
    'content-type': MIME[path.extname(file)] ?? 'application/octet-stream',
    'content-length': st.size,
    'content-security-policy': CSP,
    'cache-control': rel === 'index.html' ? 'no-store' : 'max-age=3600',
  });
  // pipeline, not pipe: a client that goes away (or a read error) closes the file, and the error
  // ends this response instead of escaping as an uncaught exception
  await pipeline(fs.createReadStream(file), res).catch(() => res.destroy());
}
