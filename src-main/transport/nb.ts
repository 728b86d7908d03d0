import fs from 'node:fs';
import type http from 'node:http';
import { pipeline } from 'node:stream/promises';
import { nbCreateBodySchema } from '../../src-shared/domain/nb';
import { FondsError, httpStatusOf, toErrorShape } from '../../src-shared/errors';
import type { CallContext, Service } from '../service';
import { NB_CLIENT_PREFIX, clientForToken } from '../service/dissemination/nb';
import { decodeSegment, readJson, sendJson } from './http';

/**
 * The NB dissemination service (seed 004) on the headless server:
 *   POST /v1/disseminations {archiveId, priority}        201 | 400 | 401 | 404 | 409 | 422
 *   GET  /v1/disseminations/{id}                          200 | 401 | 404
 *   GET  /v1/disseminations/{id}/link                     200 {url, expiresAt, ...} (Fonds' addition)
 *   GET  /v1/disseminations/{id}/download?expires=&signature=   the package (folder mode; the signature authenticates)
 * The bearer token names the client: the main token is the default client, `nbClients` adds others.
 */
export const NB_PATH = '/v1/disseminations';

export function isNbPath(p: string): boolean {
  return p === NB_PATH || p.startsWith(NB_PATH + '/');
}

/** Errors the NB way: 422 for an archive that is not preserved, the existing id beside a 409. */
function sendNbError(res: http.ServerResponse, err: unknown): void {
  const shape = toErrorShape(err);
  if (res.headersSent) {
    res.destroy();
    return;
  }
  const status = shape.code === 'CHECK_FAILED' ? 422 : httpStatusOf[shape.code];
  const existing = shape.code === 'CONFLICT' ? shape.details?.disseminationId : undefined;
  if (typeof existing === 'string') res.setHeader('location', `${NB_PATH}/${encodeURIComponent(existing)}`);
  if (status === 401) res.setHeader('www-authenticate', 'Bearer');
  sendJson(res, status, { error: shape, ...(typeof existing === 'string' ? { disseminationId: existing } : {}) });
}

export async function handleNb(req: http.IncomingMessage, res: http.ServerResponse, url: URL, opts: { service: Service; token: string; maxBodyBytes: number }): Promise<void> {
  const { service } = opts;
  try {
    const parts = url.pathname.slice(NB_PATH.length).split('/').filter(Boolean).map(decodeSegment);
    // the download link carries its own HMAC signature and expiry instead of a bearer token
    if (parts.length === 2 && parts[1] === 'download' && req.method === 'GET') return await download(req, res, url, service, parts[0]);

    const header = req.headers.authorization;
    const client = header?.startsWith('Bearer ') ? clientForToken(service.config, opts.token, header.slice(7).trim()) : undefined;
    if (!client) throw new FondsError('UNAUTHORIZED', 'Missing or unknown bearer token: use the token of your NB client (nbClients) or the main token.');
    const ctx: CallContext = { transport: 'http', clientId: NB_CLIENT_PREFIX + client.clientId };
    const linkBaseUrl = `http://${req.headers.host}`;

    if (parts.length === 0 && req.method === 'POST') {
      const raw = await readJson(req, opts.maxBodyBytes);
      const body = nbCreateBodySchema.safeParse(raw);
      if (!body.success) {
        const issues = body.error.issues.map((i) => ({ field: i.path.join('.') || '(body)', message: i.message }));
        throw new FondsError('INVALID_INPUT', `POST ${NB_PATH}: ${issues.map((i) => `${i.field}: ${i.message}`).join('; ')}`, { issues });
      }
      const d = await service.call('nb.disseminations.create', { ...body.data, linkBaseUrl }, ctx);
      res.setHeader('location', `${NB_PATH}/${encodeURIComponent(d.disseminationId)}`);
      return sendJson(res, 201, d);
    }
    if (parts.length === 1 && req.method === 'GET') return sendJson(res, 200, await service.call('nb.disseminations.get', { id: parts[0] }, ctx));
    if (parts.length === 2 && parts[1] === 'link' && req.method === 'GET') return sendJson(res, 200, await service.call('nb.disseminations.link', { id: parts[0], linkBaseUrl }, ctx));
    throw new FondsError('NOT_FOUND', `No route ${req.method} ${url.pathname}.`);
  } catch (err) {
    req.resume();
    sendNbError(res, err);
  }
}

async function download(req: http.IncomingMessage, res: http.ServerResponse, url: URL, service: Service, id: string): Promise<void> {
  const expires = Number(url.searchParams.get('expires'));
  const signature = url.searchParams.get('signature') ?? '';
  if (!Number.isSafeInteger(expires) || !signature) throw new FondsError('FORBIDDEN', 'This download link is not valid: it needs expires and signature.');
  const pkg = await service.call('nb.disseminations.download', { id, expires, signature }, { transport: 'http', clientId: 'download-link' });
  const stream = fs.createReadStream(pkg.path);
  await new Promise<void>((resolve, reject) => {
    stream.once('open', () => resolve());
    stream.once('error', reject);
  });
  res.writeHead(200, {
    'content-type': 'application/x-tar',
    'content-length': pkg.sizeInBytes,
    'content-disposition': `attachment; filename="${pkg.fileName.replace(/[^\w.-]/g, '_')}"`,
    'repr-digest': `sha-256=:${Buffer.from(pkg.sha256, 'hex').toString('base64')}:`,
    'x-checksum-sha256': pkg.sha256,
    'cache-control': 'no-store',
  });
  await pipeline(stream, res);
}
