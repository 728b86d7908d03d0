import type http from 'node:http';
import { FondsError } from '../../src-shared/errors';
import type { CallContext, Service } from '../service';
import { decodeSegment, readJson, sendJson } from './http';

/** A REST route shaped like a seed API (Entrepot, NB, Medona), mapped onto contract commands. */
export interface RestRoute {
  method: string;
  pattern: RegExp;
  handle(args: {
    req: http.IncomingMessage;
    res: http.ServerResponse;
    params: Record<string, string>;
    url: URL;
    ctx: CallContext;
  }): Promise<void>;
}

/** The one local datastore of a workstation. */
export const DATASTORE = 'default';

function datastore(params: Record<string, string>): void {
  const ds = decodeSegment(params.ds);
  if (ds !== DATASTORE) throw new FondsError('NOT_FOUND', `Datastore '${ds}' does not exist (this workstation has '${DATASTORE}').`);
}

const DS = '^/api/datastores/(?<ds>[^/]+)';

/** Entrepot pages its lists with `page` (from 1) and `limit`; `offset` works too. Checked by the command's schema. */
function pageOf(url: URL): { offset: number; limit: number } {
  const limit = Number(url.searchParams.get('limit') ?? 100);
  const page = url.searchParams.get('page');
  return { offset: page !== null ? (Number(page) - 1) * limit : Number(url.searchParams.get('offset') ?? 0), limit };
}

/** A list the Entrepot way: the array as the body, `Content-Range: first-last/total`. */
function sendList<T>(res: http.ServerResponse, page: { items: T[]; total: number; offset: number }): void {
  res.setHeader('Content-Range', page.items.length ? `${page.offset + 1}-${page.offset + page.items.length}/${page.total}` : `*/${page.total}`);
  sendJson(res, 200, page.items);
}
/** A JSON body that must be an object (the seed's bodies all are): anything else is a 400. */
async function readObject(req: http.IncomingMessage, limit: number): Promise<Record<string, unknown>> {
  const body = await readJson(req, limit);
  if (typeof body !== 'object' || body === null || Array.isArray(body)) throw new FondsError('INVALID_INPUT', 'The request body must be a JSON object.');
  return body as Record<string, unknown>;
}
const route = (method: string, tail: string, handle: RestRoute['handle']): RestRoute => ({ method, pattern: new RegExp(`${DS}${tail}$`), handle });

/**
 * Every REST route. Keep them thin: parse the path and body, call one command, shape the answer
 * as the seed does. IGN Entrepot's (seed 002) live under /api/datastores/{datastore}/.
 */
export function restRoutes(service: Service, maxBodyBytes: number): RestRoute[] {
  const call = service.call.bind(service);
  const id = (params: Record<string, string>) => decodeSegment(params.id);
  return [
    // ---- IGN Entrepot: processings, executions, stored data, uploads (seed 002) ----
    route('GET', '/processings', async ({ res, params, ctx }) => {
      datastore(params);
      sendJson(res, 200, await call('processings.list', {}, ctx));
    }),
    route('POST', '/processings/executions', async ({ req, res, params, ctx }) => {
      datastore(params);
      sendJson(res, 201, await call('executions.create', await readJson(req, maxBodyBytes), ctx));
    }),
    route('POST', '/processings/executions/(?<id>[^/]+)/launch', async ({ res, params, ctx }) => {
      datastore(params);
      sendJson(res, 200, await call('executions.launch', { id: id(params) }, ctx));
    }),
    route('GET', '/processings/executions/(?<id>[^/]+)', async ({ res, params, ctx }) => {
      datastore(params);
      sendJson(res, 200, await call('executions.get', { id: id(params) }, ctx));
    }),
    route('GET', '/processings/executions', async ({ res, params, url, ctx }) => {
      datastore(params);
      sendList(res, await call('executions.list', pageOf(url), ctx));
    }),
    route('GET', '/processings/(?<id>[^/]+)', async ({ res, params, ctx }) => {
      datastore(params);
      sendJson(res, 200, await call('processings.get', { id: id(params) }, ctx));
    }),
    route('GET', '/stored_data', async ({ res, params, url, ctx }) => {
      datastore(params);
      sendList(res, await call('storedData.list', pageOf(url), ctx));
    }),
    route('GET', '/stored_data/(?<id>[^/]+)', async ({ res, params, ctx }) => {
      datastore(params);
      sendJson(res, 200, await call('storedData.get', { id: id(params) }, ctx));
    }),
    route('PATCH', '/stored_data/(?<id>[^/]+)', async ({ req, res, params, ctx }) => {
      datastore(params);
      const body = await readObject(req, maxBodyBytes);
      sendJson(res, 200, await call('storedData.patch', { ...body, id: id(params) }, ctx));
    }),
    route('GET', '/uploads', async ({ res, params, url, ctx }) => {
      datastore(params);
      sendList(res, await call('uploads.list', pageOf(url), ctx));
    }),
    route('POST', '/uploads', async ({ req, res, params, ctx }) => {
      datastore(params);
      const body = await readObject(req, maxBodyBytes);
      if (body.type !== undefined && body.type !== 'ARCHIVE') throw new FondsError('INVALID_INPUT', `Upload type '${String(body.type)}' is not supported here (ARCHIVE only).`);
      sendJson(res, 201, await call('uploads.create', { name: body.name, description: body.description ?? '', ...(body.srs ? { srs: body.srs } : {}) }, ctx));
    }),
    route('GET', '/uploads/(?<id>[^/]+)', async ({ res, params, ctx }) => {
      datastore(params);
      sendJson(res, 200, await call('uploads.get', { id: id(params) }, ctx));
    }),
    route('DELETE', '/uploads/(?<id>[^/]+)', async ({ res, params, ctx }) => {
      datastore(params);
      await call('uploads.delete', { id: id(params) }, ctx);
      res.writeHead(204).end();
    }),

    // ---- Maarch RM Medona: message directory purge (seed 003) ----
    {
      method: 'DELETE',
      pattern: /^\/medona\/message\/MessageDirectoryPurge$/,
      handle: async ({ res, url, ctx }) => {
        const raw = url.searchParams.get('dryRun');
        if (raw !== null && !/^(true|false|1|0)$/i.test(raw)) throw new FondsError('INVALID_INPUT', `dryRun: '${raw}' is not true or false.`);
        const dryRun = raw !== null && /^(true|1)$/i.test(raw);
        sendJson(res, 200, await call('purge.run', { dryRun }, ctx));
      },
    },
  ];
}
