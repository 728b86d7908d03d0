/**
 * A product's patch requests are found through the tail of its URN (products/003): URNs sharing
 * their last 16 characters are told apart, every query that names a product's requests uses the
 * index, and requests recorded before the migration are found after it.
 */
import fs from 'node:fs';
import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { migrate, openDatabase, type DB } from '../../src-main/service/db/database';
import { coreMigrations } from '../../src-main/service/db/migrations';
import { Store, tailEquals } from '../../src-main/service/db/store';
import { productsMigrations } from '../../src-main/service/products/migrations';
import { getProduct, listPatches, listProducts, productTimeline } from '../../src-main/service/products/store';
import { tempDir } from '../helpers/util';

const cleanups: Array<() => void> = [];
afterEach(() => {
  for (const c of cleanups.splice(0).reverse()) c();
});

// two URNs with the same last 16 characters ('-0123456789ab:V1'), and a third
const A = 'URN:FEATURE:DATA:project1:aaaaaaaa-0000-4000-8000-0123456789ab:V1';
const B = 'URN:FEATURE:DATA:project1:bbbbbbbb-1111-4111-8111-0123456789ab:V1';
const C = 'URN:FEATURE:DATA:project1:cccccccc-2222-4222-8222-fedcba987654:V1';

function open(migrations = [...coreMigrations, ...productsMigrations]): DB {
  const dir = tempDir();
  const db = openDatabase(path.join(dir, 'fonds.sqlite'));
  cleanups.push(() => fs.rmSync(dir, { recursive: true, force: true }));
  cleanups.push(() => {
    if (db.open) db.close();
  });
  migrate(db, migrations);
  return db;
}

function addProduct(db: DB, urn: string): void {
  db.prepare(`INSERT INTO products (urn, tenant, created_at, updated_at) VALUES (?, 'project1', '2026-12-01T00:00:00.000Z', '2026-12-01T00:00:00.000Z')`).run(urn);
}

/** A received request naming `urn`, with its event, as the catalogue writes them. */
function addRequest(db: DB, urn: string, requestId: string, at: string): void {
  const key = `received:${requestId}`;
  new Store(db).transact((tx) => {
    tx.db
      .prepare(`INSERT INTO patch_requests (key, direction, request_id, tenant, owner, urn, state, created_at, updated_at) VALUES (?, 'received', ?, 'project1', 'o', ?, 'SUCCESS', ?, ?)`)
      .run(key, requestId, urn, at, at);
    tx.event({ kind: 'patch_request', objectId: key, type: 'received.SUCCESS', payload: { requestId, urn } });
  });
}

function seed(db: DB): void {
  for (const u of [A, B, C]) addProduct(db, u);
  addRequest(db, A, 'a-1', '2026-12-01T10:00:00.000Z');
  addRequest(db, B, 'b-1', '2026-12-01T11:00:00.000Z');
  addRequest(db, A, 'a-2', '2026-12-01T12:00:00.000Z');
  addRequest(db, C, 'c-1', '2026-12-01T13:00:00.000Z');
}

function expectFound(db: DB): void {
  expect(listPatches(db, { urn: A }, 0, 10).items.map((p) => p.requestId)).toEqual(['a-2', 'a-1']);
  expect(listPatches(db, { urn: B }, 0, 10).items.map((p) => p.requestId)).toEqual(['b-1']);
  expect(listPatches(db, { urn: A }, 0, 10).total).toBe(2);
  expect(getProduct(db, A).patches).toEqual({ received: 2, sent: 0 });
  expect(getProduct(db, B).patches).toEqual({ received: 1, sent: 0 });
  const last = new Map(listProducts(db, undefined, undefined, 0, 10).items.map((p) => [p.urn, p.lastPatch?.requestId]));
  expect(Object.fromEntries(last)).toEqual({ [A]: 'a-2', [B]: 'b-1', [C]: 'c-1' });
  expect(productTimeline(db, A, 0, 10).items.map((e) => e.payload.requestId)).toEqual(['a-2', 'a-1']);
  expect(productTimeline(db, B, 0, 10).total).toBe(1);
}

const plan = (db: DB, sql: string, args: unknown[] | Record<string, unknown>) => JSON.stringify(db.prepare(`EXPLAIN QUERY PLAN ${sql}`).all(args));

describe('a product’s patch requests', () => {
  it('are told apart when URNs share their tail, in every query that names them', () => {
    const db = open();
    seed(db);
    expectFound(db);
  });

  it('are found through patch_requests_urn_tail, by a parameter and by a joined column', () => {
    const db = open();
    seed(db);
    expect(plan(db, `SELECT count(*) FROM patch_requests WHERE ${tailEquals('urn', '@urn')}`, { urn: A })).toContain('patch_requests_urn_tail');
    expect(plan(db, `SELECT * FROM patch_requests p WHERE p.direction = ? AND ${tailEquals('p.urn', '?')} ORDER BY p.created_at DESC`, ['received', A, A])).toContain(
      'patch_requests_urn_tail',
    );
    expect(
      plan(db, `SELECT p.urn, (SELECT r.request_id FROM patch_requests r WHERE ${tailEquals('r.urn', 'p.urn')} ORDER BY r.updated_at DESC LIMIT 1) FROM products p`, []),
    ).toContain('patch_requests_urn_tail');
    const indexes = db.prepare(`SELECT name FROM sqlite_master WHERE type = 'index' AND tbl_name = 'patch_requests'`).pluck().all();
    expect(indexes).toContain('patch_requests_urn_tail');
    expect(indexes).not.toContain('patch_requests_urn');
  });

  it('recorded before products/003 are found after it', () => {
    const db = open([...coreMigrations, ...productsMigrations.filter((m) => m.id < 'products/003')]);
    seed(db);
    expect(migrate(db, [...coreMigrations, ...productsMigrations])).toEqual(['products/003_patch_requests_urn_tail']);
    expectFound(db);
  });
});
