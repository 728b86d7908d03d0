/** Rows of `products` and `patch_requests`, and the queries the commands answer with. */
import type { FondsEvent, Page } from '../../../src-shared/api';
import type { FeatureFile, PatchDirection, PatchRequest, PatchState, Product, ProductSummary } from '../../../src-shared/domain/product';
import { FondsError } from '../../../src-shared/errors';
import type { DB } from '../db/database';
import { eventsOfObject, rowToEvent, tailEquals } from '../db/store';

export interface ProductRow {
  urn: string;
  tenant: string;
  provider_id: string;
  version: number;
  stored_data_id: string | null;
  properties: string;
  files: string;
  acknowledged_by: string;
  created_at: string;
  updated_at: string;
}

export interface PatchRow {
  key: string;
  direction: PatchDirection;
  request_id: string;
  tenant: string;
  owner: string;
  urn: string | null;
  state: PatchState;
  errors: string;
  priority: PatchRequest['priority'];
  file_update_mode: PatchRequest['fileUpdateMode'] | null;
  request_date: string | null;
  run_at: string | null;
  acknowledged_recipient: string | null;
  headers: string;
  body: string | null;
  body_sha256: string | null;
  outbox_id: number | null;
  created_at: string;
  updated_at: string;
  /** joined from the outbox */
  outbox_status?: PatchRequest['outboxStatus'] | null;
  outbox_error?: string | null;
}

export const patchKey = (direction: PatchDirection, requestId: string) => `${direction}:${requestId}`;

export function getProductRow(db: DB, urn: string): ProductRow {
  const row = db.prepare('SELECT * FROM products WHERE urn = ?').get(urn) as ProductRow | undefined;
  if (!row) throw new FondsError('NOT_FOUND', `Product ${urn} does not exist.`, { urn });
  return row;
}

export function rowToProduct(db: DB, r: ProductRow): Product {
  const counts = db
    .prepare(`SELECT sum(direction = 'received') AS received, sum(direction = 'sent') AS sent FROM patch_requests WHERE ${tailEquals('urn', '@urn')}`)
    .get({ urn: r.urn }) as { received: number | null; sent: number | null };
  return {
    urn: r.urn,
    tenant: r.tenant,
    providerId: r.provider_id,
    version: r.version,
    ...(r.stored_data_id ? { storedDataId: r.stored_data_id } : {}),
    properties: JSON.parse(r.properties),
    files: JSON.parse(r.files) as FeatureFile[],
    acknowledgedBy: JSON.parse(r.acknowledged_by),
    createdAt: r.created_at,
    updatedAt: r.updated_at,
    patches: { received: counts.received ?? 0, sent: counts.sent ?? 0 },
  };
}

/** A product, for the later capabilities (dissemination reads acknowledgements through it). */
export function getProduct(db: DB, urn: string): Product {
  return rowToProduct(db, getProductRow(db, urn));
}

const likeArg = (q: string) => `%${q.replace(/[\\%_]/g, (c) => `\\${c}`)}%`;

/** Products, most recently changed first; `q` is part of the URN, the provider id or the properties' text. */
export function listProducts(db: DB, q: string | undefined, tenant: string | undefined, offset: number, limit: number): Page<ProductSummary> {
  const where: string[] = [];
  const args: unknown[] = [];
  if (q?.trim()) {
    where.push(`(urn LIKE ? ESCAPE '\\' OR provider_id LIKE ? ESCAPE '\\' OR properties LIKE ? ESCAPE '\\')`);
    const l = likeArg(q.trim());
    args.push(l, l, l);
  }
  if (tenant) {
    where.push('tenant = ?');
    args.push(tenant);
  }
  const w = where.length ? `WHERE ${where.join(' AND ')}` : '';
  const total = db.prepare(`SELECT count(*) FROM products ${w}`).pluck().get(...args) as number;
  const rows = db
    .prepare(
      `SELECT p.urn, p.tenant, p.provider_id, p.version, p.stored_data_id, json_array_length(p.files) AS files, p.created_at, p.updated_at,
              (SELECT json_object('requestId', r.request_id, 'direction', r.direction,
                        -- as rowToPatch: a request cancelled in the outbox before it went out
                        'state', CASE WHEN r.direction = 'sent' AND r.state = 'QUEUED' AND o.status = 'cancelled' THEN 'CANCELLED' ELSE r.state END,
                        'at', r.updated_at)
                 FROM patch_requests r LEFT JOIN outbox o ON o.id = r.outbox_id WHERE ${tailEquals('r.urn', 'p.urn')} ORDER BY r.updated_at DESC LIMIT 1) AS last_patch
       FROM products p ${w} ORDER BY p.updated_at DESC, p.urn LIMIT ? OFFSET ?`,
    )
    .all(...args, limit, offset) as Array<{
    urn: string;
    tenant: string;
    provider_id: string;
    version: number;
    stored_data_id: string | null;
    files: number;
    created_at: string;
    updated_at: string;
    last_patch: string | null;
  }>;
  return {
    items: rows.map((r) => ({
      urn: r.urn,
      tenant: r.tenant,
      providerId: r.provider_id,
      version: r.version,
      ...(r.stored_data_id ? { storedDataId: r.stored_data_id } : {}),
      files: r.files,
      createdAt: r.created_at,
      updatedAt: r.updated_at,
      ...(r.last_patch ? { lastPatch: JSON.parse(r.last_patch) } : {}),
    })),
    total,
    offset,
  };
}

export function rowToPatch(r: PatchRow): PatchRequest {
  // a request cancelled in the outbox before it went out
  const state: PatchState = r.direction === 'sent' && r.state === 'QUEUED' && r.outbox_status === 'cancelled' ? 'CANCELLED' : r.state;
  return {
    requestId: r.request_id,
    direction: r.direction,
    tenant: r.tenant,
    owner: r.owner,
    ...(r.urn ? { urn: r.urn } : {}),
    state,
    errors: JSON.parse(r.errors),
    priority: r.priority,
    ...(r.file_update_mode ? { fileUpdateMode: r.file_update_mode } : {}),
    ...(r.request_date ? { requestDate: r.request_date } : {}),
    ...(r.acknowledged_recipient ? { acknowledgedRecipient: r.acknowledged_recipient } : {}),
    createdAt: r.created_at,
    updatedAt: r.updated_at,
    ...(r.outbox_id ? { outboxId: r.outbox_id } : {}),
    ...(r.outbox_status ? { outboxStatus: r.outbox_status } : {}),
    ...(r.outbox_error ? { outboxError: r.outbox_error } : {}),
  };
}

const PATCH_SELECT = `SELECT p.*, o.status AS outbox_status, o.last_error AS outbox_error FROM patch_requests p LEFT JOIN outbox o ON o.id = p.outbox_id`;

export function getPatchRow(db: DB, key: string): PatchRow | undefined {
  return db.prepare(`${PATCH_SELECT} WHERE p.key = ?`).get(key) as PatchRow | undefined;
}

export interface PatchFilter {
  direction?: PatchDirection;
  urn?: string;
  state?: PatchState;
  q?: string;
}

/** Patch requests, newest first. */
export function listPatches(db: DB, f: PatchFilter, offset: number, limit: number): Page<PatchRequest> {
  const where: string[] = [];
  const args: unknown[] = [];
  if (f.direction) {
    where.push('p.direction = ?');
    args.push(f.direction);
  }
  if (f.urn) {
    where.push(tailEquals('p.urn', '?'));
    args.push(f.urn, f.urn); // the value appears twice
  }
  if (f.state === 'CANCELLED') where.push(`p.state = 'QUEUED' AND o.status = 'cancelled'`);
  else if (f.state === 'QUEUED') where.push(`p.state = 'QUEUED' AND coalesce(o.status, '') <> 'cancelled'`);
  else if (f.state) {
    where.push('p.state = ?');
    args.push(f.state);
  }
  if (f.q?.trim()) {
    where.push(`(p.request_id LIKE ? ESCAPE '\\' OR p.urn LIKE ? ESCAPE '\\' OR p.owner LIKE ? ESCAPE '\\')`);
    const l = likeArg(f.q.trim());
    args.push(l, l, l);
  }
  const w = where.length ? `WHERE ${where.join(' AND ')}` : '';
  const total = db.prepare(`SELECT count(*) FROM patch_requests p LEFT JOIN outbox o ON o.id = p.outbox_id ${w}`).pluck().get(...args) as number;
  const rows = db.prepare(`${PATCH_SELECT} ${w} ORDER BY p.created_at DESC, p.rowid DESC LIMIT ? OFFSET ?`).all(...args, limit, offset) as PatchRow[];
  return { items: rows.map(rowToPatch), total, offset };
}

/**
 * A product's timeline: its own events (created, patched, dissemination.acknowledged) and those of
 * every patch request naming it, received or sent, newest first.
 */
export function productTimeline(db: DB, urn: string, offset: number, limit: number): Page<FondsEvent> {
  const union = `SELECT e.* FROM events e WHERE ${eventsOfObject("'product'", '@urn', 'e.')}
                 UNION ALL
                 SELECT e.* FROM patch_requests p JOIN events e ON ${eventsOfObject("'patch_request'", 'p.key', 'e.')} WHERE ${tailEquals('p.urn', '@urn')}`;
  const total = db.prepare(`SELECT count(*) FROM (${union})`).pluck().get({ urn }) as number;
  const rows = db.prepare(`${union} ORDER BY seq DESC LIMIT @limit OFFSET @offset`).all({ urn, limit, offset }) as Parameters<typeof rowToEvent>[0][];
  return { items: rows.map(rowToEvent), total, offset };
}
