/**
 * Client side of the NB dissemination contract (seed 004): Fonds orders a dissemination from such
 * a service and follows it, as the seed's best practices say — store the disseminationId, on 409
 * fetch the existing one instead of posting again, poll with exponential backoff (and jitter),
 * reuse download links until they expire. Submitting and polling are durable jobs.
 */
import { randomUUID } from 'node:crypto';
import { z } from 'zod';
import type { Page } from '../../../../src-shared/api';
import { NbStatuses, isNbFinal, type NbOrder, type NbOrderLink, type NbOrderState, type NbStatus } from '../../../../src-shared/domain/nb';
import { FondsError, type ErrorCode } from '../../../../src-shared/errors';
import type { Deps, Handlers } from '../../capability';
import type { JobHandler } from '../../db/jobs';
import { nowIso, timeline, type Tx } from '../../db/store';
import type { NbSecrets } from './secrets';

export const SUBMIT_JOB = 'nb.order.submit';
export const POLL_JOB = 'nb.order.poll';

interface ORow {
  id: string;
  base_url: string;
  token_sealed: string;
  archive_id: string;
  priority: number;
  state: NbOrderState;
  dissemination_id: string | null;
  adopted: number;
  status: string | null;
  client_id: string | null;
  contract_id: string | null;
  object_id: string | null;
  sum_size: number | null;
  date_created: string | null;
  reason: string | null;
  error: string | null;
  polls: number;
  backoff_step: number;
  next_poll_at: string | null;
  link_url: string | null;
  link_expires_at: string | null;
  link_name: string | null;
  link_size: number | null;
  link_sha256: string | null;
  links_fetched: number;
  created_at: string;
  updated_at: string;
}

/** What a service answers for a dissemination; unknown extra fields are ignored, a later status is kept as is. */
const remoteDissemination = z.object({
  disseminationId: z.string().min(1).max(200),
  archiveId: z.string().max(200),
  clientId: z.string().max(200),
  contractId: z.string().max(200),
  objectId: z.string().max(1000),
  sumSizeInBytes: z.number(),
  status: z.string().min(1).max(100),
  priority: z.number(),
  dateCreated: z.string().max(100),
  reason: z.string().max(5000).optional(),
});
type Remote = z.infer<typeof remoteDissemination>;

const remoteLink = z.object({
  url: z.string().min(1).max(10_000),
  expiresAt: z.string().max(100),
  fileName: z.string().max(1000).optional(),
  sizeInBytes: z.number().optional(),
  sha256: z.string().max(200).optional(),
});

const isFinalStatus = (s: string) => (NbStatuses as readonly string[]).includes(s) && isNbFinal(s as NbStatus);

function toOrder(r: ORow): NbOrder {
  return {
    id: r.id,
    baseUrl: r.base_url,
    archiveId: r.archive_id,
    priority: r.priority,
    state: r.state,
    adopted: r.adopted === 1,
    polls: r.polls,
    createdAt: r.created_at,
    updatedAt: r.updated_at,
    ...(r.dissemination_id ? { disseminationId: r.dissemination_id } : {}),
    ...(r.status ? { status: r.status } : {}),
    ...(r.client_id !== null ? { clientId: r.client_id } : {}),
    ...(r.contract_id !== null ? { contractId: r.contract_id } : {}),
    ...(r.object_id !== null ? { objectId: r.object_id } : {}),
    ...(r.sum_size !== null ? { sumSizeInBytes: r.sum_size } : {}),
    ...(r.date_created ? { dateCreated: r.date_created } : {}),
    ...(r.reason ? { reason: r.reason } : {}),
    ...(r.error ? { error: r.error } : {}),
    ...(r.next_poll_at && r.state === 'POLLING' ? { nextPollAt: r.next_poll_at } : {}),
    ...(r.link_url && r.link_expires_at
      ? {
          link: {
            url: r.link_url,
            expiresAt: r.link_expires_at,
            fetched: r.links_fetched,
            ...(r.link_name ? { fileName: r.link_name } : {}),
            ...(r.link_size !== null ? { sizeInBytes: r.link_size } : {}),
            ...(r.link_sha256 ? { sha256: r.link_sha256 } : {}),
          },
        }
      : {}),
  };
}

/** An answer of the service: the HTTP status and the parsed JSON body (undefined when not JSON). */
interface Answer {
  status: number;
  body: unknown;
}

/** Thrown when the service cannot be reached or answers 5xx/408/429: worth trying again later. */
class Unreachable extends Error {}

function messageOf(a: Answer): string {
  const b = a.body as { error?: { message?: unknown }; message?: unknown } | undefined;
  const m = b?.error?.message ?? b?.message;
  return typeof m === 'string' ? m : `HTTP ${a.status}`;
}

/** The Fonds error for a refusal (4xx) of the service, naming it. */
function refusal(base: string, a: Answer): FondsError {
  const code: ErrorCode = a.status === 400 ? 'INVALID_INPUT' : a.status === 401 || a.status === 403 ? 'UNAUTHORIZED' : a.status === 404 ? 'NOT_FOUND' : a.status === 422 ? 'CHECK_FAILED' : 'CONFLICT';
  return new FondsError(code, `${base} refused (HTTP ${a.status}): ${messageOf(a)}`, { httpStatus: a.status });
}

export function createOrders(deps: Deps, secrets: NbSecrets) {
  const { store, config } = deps;
  const db = store.db;

  const getRow = (id: string): ORow => {
    const r = db.prepare('SELECT * FROM nb_orders WHERE id = ?').get(id) as ORow | undefined;
    if (!r) throw new FondsError('NOT_FOUND', `Order ${id} does not exist.`, { id });
    return r;
  };

  async function remote(base: string, token: string, method: 'GET' | 'POST', route: string, body?: unknown, signal?: AbortSignal): Promise<Answer> {
    let res: Response;
    try {
      res = await fetch(`${base}${route}`, {
        method,
        headers: { authorization: `Bearer ${token}`, accept: 'application/json', ...(body !== undefined ? { 'content-type': 'application/json' } : {}) },
        ...(body !== undefined ? { body: JSON.stringify(body) } : {}),
        redirect: 'error',
        signal: signal ? AbortSignal.any([signal, AbortSignal.timeout(30_000)]) : AbortSignal.timeout(30_000),
      });
    } catch (err) {
      if (signal?.aborted) throw err;
      const cause = (err as Error & { cause?: Error }).cause;
      throw new Unreachable(`${base} could not be reached: ${cause?.message ?? (err as Error).message}`);
    }
    const text = await res.text().catch(() => '');
    let parsed: unknown;
    try {
      parsed = text ? JSON.parse(text) : undefined;
    } catch {
      parsed = undefined;
    }
    const a = { status: res.status, body: parsed };
    if (res.status >= 500 || res.status === 408 || res.status === 429) throw new Unreachable(`${base} answered HTTP ${res.status}: ${messageOf(a)}`);
    return a;
  }

  /** Exponential backoff with jitter: between half and all of min(max, initial × 2^step). */
  const backoff = (step: number) => {
    const full = Math.min(config.nbPollMaxMs, config.nbPollInitialMs * 2 ** Math.min(step, 30));
    return Math.round(full / 2 + (Math.random() * full) / 2);
  };

  function parseRemote(base: string, a: Answer): Remote {
    const r = remoteDissemination.safeParse(a.body);
    if (!r.success) throw new Unreachable(`${base} answered HTTP ${a.status} with a body that is not a dissemination: ${r.error.issues.map((i) => `${i.path.join('.')}: ${i.message}`).join('; ')}`);
    return r.data;
  }

  /** Writes what the service said about the dissemination; an event when its status changed. */
  function applyRemote(tx: Tx, id: string, d: Remote): { changed: boolean } {
    const o = getRow(id);
    const changed = o.status !== d.status;
    tx.db
      .prepare(
        `UPDATE nb_orders SET dissemination_id = ?, status = ?, client_id = ?, contract_id = ?, object_id = ?, sum_size = ?, date_created = ?, reason = ?, error = NULL, updated_at = ? WHERE id = ?`,
      )
      .run(d.disseminationId, d.status, d.clientId, d.contractId, d.objectId, d.sumSizeInBytes, d.dateCreated, d.reason ?? null, nowIso(), id);
    if (changed) tx.event({ kind: 'nb_order', objectId: id, type: `status.${d.status}`, payload: { from: o.status, to: d.status, disseminationId: d.disseminationId, ...(d.reason ? { reason: d.reason } : {}) } });
    return { changed };
  }

  function schedulePoll(tx: Tx, id: string, step: number): void {
    const delay = backoff(step);
    const at = new Date(Date.now() + delay);
    tx.db.prepare(`UPDATE nb_orders SET state = 'POLLING', backoff_step = ?, next_poll_at = ?, updated_at = ? WHERE id = ?`).run(step, at.toISOString(), nowIso(), id);
    tx.enqueue({ kind: POLL_JOB, payload: { id }, objectKind: 'nb_order', objectId: id, runAt: at, priority: 10, maxAttempts: 3 });
  }

  function giveUp(id: string, why: string): void {
    store.transact((tx) => {
      tx.db.prepare(`UPDATE nb_orders SET state = 'ERROR', error = ?, next_poll_at = NULL, updated_at = ? WHERE id = ?`).run(why, nowIso(), id);
      tx.event({ kind: 'nb_order', objectId: id, type: 'error', payload: { error: why } });
    });
  }

  /**
   * POSTs the order; on 409 adopts the existing dissemination (GET by the id in the answer). Returns
   * the dissemination, or throws Unreachable (try later) or a FondsError (the service refused).
   */
  async function submit(o: ORow, signal?: AbortSignal): Promise<{ d: Remote; adopted: boolean }> {
    const token = secrets.open(o.token_sealed);
    const a = await remote(o.base_url, token, 'POST', '/v1/disseminations', { archiveId: o.archive_id, priority: o.priority }, signal);
    if (a.status === 201 || a.status === 200) return { d: parseRemote(o.base_url, a), adopted: false };
    if (a.status === 409) {
      const b = a.body as { disseminationId?: unknown; error?: { details?: { disseminationId?: unknown } } } | undefined;
      const existing = b?.disseminationId ?? b?.error?.details?.disseminationId;
      if (typeof existing !== 'string' || !existing) throw new FondsError('CONFLICT', `${o.base_url} answered 409 without the id of the existing dissemination: ${messageOf(a)}`);
      const g = await remote(o.base_url, token, 'GET', `/v1/disseminations/${encodeURIComponent(existing)}`, undefined, signal);
      if (g.status !== 200) throw refusal(o.base_url, g);
      return { d: parseRemote(o.base_url, g), adopted: true };
    }
    throw refusal(o.base_url, a);
  }

  /** Records a submission; when the same remote dissemination is already followed here, that order is kept and this one removed. */
  function recordSubmitted(id: string, d: Remote, adopted: boolean): string {
    return store.transact((tx) => {
      const o = getRow(id);
      const twin = tx.db.prepare('SELECT id FROM nb_orders WHERE base_url = ? AND dissemination_id = ? AND id != ?').pluck().get(o.base_url, d.disseminationId, id) as string | undefined;
      if (twin) {
        tx.db.prepare('DELETE FROM nb_orders WHERE id = ?').run(id);
        tx.event({ kind: 'nb_order', objectId: twin, type: 'reordered', payload: { disseminationId: d.disseminationId } });
        return twin;
      }
      tx.db.prepare('UPDATE nb_orders SET adopted = ? WHERE id = ?').run(adopted ? 1 : 0, id);
      tx.event({ kind: 'nb_order', objectId: id, type: 'submitted', payload: { disseminationId: d.disseminationId, adopted, baseUrl: o.base_url } });
      applyRemote(tx, id, d);
      if (isFinalStatus(d.status)) {
        tx.db.prepare(`UPDATE nb_orders SET state = 'ENDED', next_poll_at = NULL WHERE id = ?`).run(id);
        if (d.status === 'DISSEMINATED') tx.enqueue({ kind: POLL_JOB, payload: { id }, objectKind: 'nb_order', objectId: id, priority: 10, maxAttempts: 3 });
      } else schedulePoll(tx, id, 0);
      return id;
    });
  }

  /** Asks the service for the download link (Fonds' GET /v1/disseminations/{id}/link) and keeps it. */
  async function fetchLink(o: ORow, signal?: AbortSignal): Promise<boolean> {
    const a = await remote(o.base_url, secrets.open(o.token_sealed), 'GET', `/v1/disseminations/${encodeURIComponent(o.dissemination_id!)}/link`, undefined, signal);
    if (a.status !== 200) {
      store.transact((tx) =>
        tx.event({ kind: 'nb_order', objectId: o.id, type: 'link.unavailable', payload: { httpStatus: a.status, message: `${messageOf(a)} (the service may deliver links by webhook only)` } }),
      );
      return false;
    }
    const l = remoteLink.safeParse(a.body);
    if (!l.success) throw new Unreachable(`${o.base_url} answered a link that cannot be read`);
    store.transact((tx) => {
      tx.db
        .prepare('UPDATE nb_orders SET link_url = ?, link_expires_at = ?, link_name = ?, link_size = ?, link_sha256 = ?, links_fetched = links_fetched + 1, updated_at = ? WHERE id = ?')
        .run(l.data.url, l.data.expiresAt, l.data.fileName ?? null, l.data.sizeInBytes ?? null, l.data.sha256 ?? null, nowIso(), o.id);
      tx.event({ kind: 'nb_order', objectId: o.id, type: 'link.fetched', payload: { expiresAt: l.data.expiresAt } });
    });
    return true;
  }

  const submitJob: JobHandler<{ id: string }> = {
    async run(ctx) {
      const o = db.prepare('SELECT * FROM nb_orders WHERE id = ?').get(ctx.payload.id) as ORow | undefined;
      if (!o || o.state !== 'SUBMITTING') return;
      try {
        const { d, adopted } = await submit(o, ctx.signal);
        recordSubmitted(o.id, d, adopted);
      } catch (err) {
        if (ctx.signal.aborted) throw err;
        if (err instanceof Unreachable) {
          store.transact((tx) => {
            const step = o.backoff_step + 1;
            const at = new Date(Date.now() + backoff(step));
            tx.db.prepare('UPDATE nb_orders SET error = ?, backoff_step = ?, next_poll_at = ?, updated_at = ? WHERE id = ?').run(err.message, step, at.toISOString(), nowIso(), o.id);
            tx.event({ kind: 'nb_order', objectId: o.id, type: 'submit.failed', payload: { error: err.message, retryAt: at.toISOString() } });
            tx.enqueue({ kind: SUBMIT_JOB, payload: { id: o.id }, objectKind: 'nb_order', objectId: o.id, runAt: at, priority: 10, maxAttempts: 3 });
          });
          return;
        }
        giveUp(o.id, (err as Error).message);
      }
    },
  };

  const pollJob: JobHandler<{ id: string }> = {
    async run(ctx) {
      const o = db.prepare('SELECT * FROM nb_orders WHERE id = ?').get(ctx.payload.id) as ORow | undefined;
      if (!o || !o.dissemination_id) return;
      if (o.state === 'ENDED') {
        // final already: only the link of a DISSEMINATED one may be missing
        if (o.status === 'DISSEMINATED' && !o.link_url) await fetchLink(o, ctx.signal).catch(() => undefined);
        return;
      }
      if (o.state !== 'POLLING') return;
      let a: Answer;
      try {
        a = await remote(o.base_url, secrets.open(o.token_sealed), 'GET', `/v1/disseminations/${encodeURIComponent(o.dissemination_id)}`, undefined, ctx.signal);
        if (a.status !== 200) {
          if (a.status === 404 || a.status === 401 || a.status === 403) return giveUp(o.id, refusal(o.base_url, a).message);
          throw new Unreachable(`${o.base_url} answered HTTP ${a.status}: ${messageOf(a)}`);
        }
        const d = parseRemote(o.base_url, a);
        const final = isFinalStatus(d.status);
        store.transact((tx) => {
          const { changed } = applyRemote(tx, o.id, d);
          tx.db.prepare('UPDATE nb_orders SET polls = polls + 1 WHERE id = ?').run(o.id);
          if (final) tx.db.prepare(`UPDATE nb_orders SET state = 'ENDED', next_poll_at = NULL WHERE id = ?`).run(o.id);
          // a change means the work moves: poll soon again; no change: wait twice as long
          else schedulePoll(tx, o.id, changed ? 0 : o.backoff_step + 1);
        });
        if (final && d.status === 'DISSEMINATED') await fetchLink(getRow(o.id), ctx.signal).catch(() => undefined);
      } catch (err) {
        if (ctx.signal.aborted) throw err;
        if (!(err instanceof Unreachable)) return giveUp(o.id, (err as Error).message);
        store.transact((tx) => {
          tx.db.prepare('UPDATE nb_orders SET error = ?, polls = polls + 1 WHERE id = ?').run(err.message, o.id);
          tx.event({ kind: 'nb_order', objectId: o.id, type: 'poll.failed', payload: { error: err.message } });
          schedulePoll(tx, o.id, o.backoff_step + 1);
        });
      }
    },
  };

  const handlers: Partial<Handlers> = {
    'nb.orders.create': async ({ baseUrl, token, archiveId, priority }) => {
      const base = baseUrl.replace(/\/+$/, '').replace(/\/v1\/disseminations$/, '');
      // the seed's first rule: reuse an order already under way here
      const under = db
        .prepare(`SELECT * FROM nb_orders WHERE base_url = ? AND archive_id = ? AND state IN ('SUBMITTING','POLLING') ORDER BY created_at DESC LIMIT 1`)
        .get(base, archiveId) as ORow | undefined;
      if (under) return toOrder(under);
      const id = randomUUID();
      const now = nowIso();
      store.transact((tx) => {
        tx.db
          .prepare(`INSERT INTO nb_orders (id, base_url, token_sealed, archive_id, priority, state, created_at, updated_at) VALUES (?, ?, ?, ?, ?, 'SUBMITTING', ?, ?)`)
          .run(id, base, secrets.seal(token), archiveId, priority, now, now);
        tx.event({ kind: 'nb_order', objectId: id, type: 'created', payload: { baseUrl: base, archiveId, priority } });
      });
      try {
        const { d, adopted } = await submit(getRow(id));
        return toOrder(getRow(recordSubmitted(id, d, adopted)));
      } catch (err) {
        if (err instanceof Unreachable) {
          // kept, and submitted again later by a durable job
          store.transact((tx) => {
            const at = new Date(Date.now() + backoff(0));
            tx.db.prepare('UPDATE nb_orders SET error = ?, next_poll_at = ?, updated_at = ? WHERE id = ?').run(err.message, at.toISOString(), nowIso(), id);
            tx.event({ kind: 'nb_order', objectId: id, type: 'submit.failed', payload: { error: err.message, retryAt: at.toISOString() } });
            tx.enqueue({ kind: SUBMIT_JOB, payload: { id }, objectKind: 'nb_order', objectId: id, runAt: at, priority: 10, maxAttempts: 3 });
          });
          return toOrder(getRow(id));
        }
        // refused (bad archive, token...): nothing to follow
        store.transact((tx) => {
          tx.db.prepare('DELETE FROM nb_orders WHERE id = ?').run(id);
          tx.event({ kind: 'nb_order', objectId: id, type: 'refused', payload: { error: (err as Error).message } });
        });
        throw err;
      }
    },
    'nb.orders.list': ({ state, offset, limit }) => {
      const w = state ? 'WHERE state = ?' : '';
      const args = state ? [state] : [];
      const total = db.prepare(`SELECT count(*) FROM nb_orders ${w}`).pluck().get(...args) as number;
      const rows = db.prepare(`SELECT * FROM nb_orders ${w} ORDER BY created_at DESC, id LIMIT ? OFFSET ?`).all(...args, limit, offset) as ORow[];
      return { items: rows.map(toOrder), total, offset } satisfies Page<NbOrder>;
    },
    'nb.orders.get': ({ id }) => toOrder(getRow(id)),
    'nb.orders.link': async ({ id }): Promise<NbOrderLink> => {
      const o = getRow(id);
      if (o.status !== 'DISSEMINATED') throw new FondsError('CONFLICT', `Order ${id} is ${o.status ?? o.state}; a download link exists once it is DISSEMINATED.`, { status: o.status });
      // reuse the kept link while it has at least 30 s left
      if (o.link_url && o.link_expires_at && Date.parse(o.link_expires_at) - Date.now() > 30_000) return { url: o.link_url, expiresAt: o.link_expires_at, reused: true };
      try {
        if (!(await fetchLink(o))) throw new FondsError('UNAVAILABLE', `${o.base_url} gives no link for ${o.dissemination_id} on request; it is delivered to the client's webhook.`);
      } catch (err) {
        if (err instanceof Unreachable) throw new FondsError('UNAVAILABLE', err.message);
        throw err;
      }
      const n = getRow(id);
      return { url: n.link_url!, expiresAt: n.link_expires_at!, reused: false };
    },
    'nb.orders.timeline': ({ id, offset, limit }) => {
      getRow(id);
      return timeline(db, 'nb_order', id, offset, limit);
    },
  };

  return { handlers, jobs: { [SUBMIT_JOB]: submitJob, [POLL_JOB]: pollJob } as Record<string, JobHandler<never>> };
}
