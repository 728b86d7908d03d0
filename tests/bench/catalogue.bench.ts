/**
 * The catalogue's write path without the broker, as the catalogue grows: FONDS_BENCH_STEPS
 * (default 6) steps of FONDS_BENCH_REQUESTS (default 10,000) patch requests for 1,000 products,
 * handed to the catalogue's window handler (products/receive.ts `receiveWindow`) in windows of
 * half the prefetch, as the AMQP consumer hands them over: parse, merge, one transaction a window
 * (the request row, its event, the product; the 2 answers it owes handed to the outbox relay, which
 * a transport confirming at once stands in for the broker, so that the relay's bookkeeping between
 * windows is counted too). Per step: µs a request (wall and main-thread CPU) and the bytes a
 * request adds to the WAL, i.e. what the commits write (the checkpointer is kept out of the step;
 * the WAL is truncated before each).
 *
 * Reference, same process, same pragmas, same windows, same requests: a bare SQLite loop doing
 * the least a catalogue must (JSON.parse of the body, the product's properties merged with
 * Object.assign, one INSERT of the request keyed by its id, one UPDATE of the product). The ratio
 * Fonds / bare is printed for time and for WAL bytes, at each size: a WAL figure that climbs step
 * after step is write amplification (index entries spread over random pages, each dirty page
 * written whole at every commit), which the AMQP benchmark, on a fresh catalogue each round,
 * cannot show.
 *
 * FONDS_BENCH_STATEMENTS=1 also times every SQLite statement (run, get, all: each call wrapped
 * in a clock) and prints, after the steps, the 12 that took longest: where a request's time goes,
 * statement by statement (the wrapping adds ~1 µs a call).
 */
import { randomUUID } from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { performance } from 'node:perf_hooks';
import Database from 'better-sqlite3';
import type { ConsumeMessage } from 'amqplib';
import { createService } from '../../src-main/service';
import { queueNames } from '../../src-main/service/amqp/topology';
import { loadConfig } from '../../src-main/service/config';
import { openDatabase } from '../../src-main/service/db/database';
import { createCatalogue } from '../../src-main/service/products/receive';
import { REGARDS, productUrn } from '../../src-shared/domain/product';
import { BENCH_TENANT as TENANT, patchRequest } from './patch-requests';
import { threadCpuMs } from './proc-cpu.mjs';

const N = Number(process.env.FONDS_BENCH_REQUESTS ?? 10_000);
const STEPS = Number(process.env.FONDS_BENCH_STEPS ?? 6);
const PRODUCTS = 1_000;
const work = fs.mkdtempSync(path.join(os.tmpdir(), 'fonds-bench-catalogue-'));

/** FONDS_BENCH_STATEMENTS=1: time spent in each statement, by its SQL */
const statements = new Map<string, { calls: number; ms: number }>();
if (process.env.FONDS_BENCH_STATEMENTS === '1') {
  const probe = new Database(':memory:');
  const proto = Object.getPrototypeOf(probe.prepare('SELECT 1')) as Record<'run' | 'get' | 'all', (...args: unknown[]) => unknown>;
  probe.close();
  for (const method of ['run', 'get', 'all'] as const) {
    const original = proto[method];
    proto[method] = function (this: Database.Statement, ...args: unknown[]) {
      const t0 = performance.now();
      try {
        return original.apply(this, args);
      } finally {
        const sql = this.source.replace(/\s+/g, ' ').slice(0, 90);
        const s = statements.get(sql) ?? { calls: 0, ms: 0 };
        s.calls++;
        s.ms += performance.now() - t0;
        statements.set(sql, s);
      }
    };
  }
}

/** One step's requests as the consumer delivers them: request i patches product i % PRODUCTS. */
function deliveries(urns: string[], step: number): ConsumeMessage[] {
  const date = new Date().toISOString();
  return Array.from({ length: N }, (_, i) => {
    const requestId = randomUUID();
    const { headers, body } = patchRequest(urns[i % urns.length], `k${(step + i) % 7}`, requestId, date);
    return {
      content: body,
      fields: { deliveryTag: i + 1, redelivered: false, exchange: REGARDS.updateRequestExchange, routingKey: '', consumerTag: 'bench' },
      properties: {
        headers,
        contentType: 'application/json',
        contentEncoding: 'UTF-8',
        deliveryMode: 2,
      },
    } as unknown as ConsumeMessage;
  });
}

interface Step {
  us: number;
  cpuUs?: number;
  walBytes: number;
}

/** Runs `handle` over the step's deliveries window by window (the event loop turns in between, as between deliveries); what it cost. */
async function measure(wal: string, checkpoint: () => void, msgs: ConsumeMessage[], window: number, handle: (w: ConsumeMessage[]) => void, settled: () => Promise<void>): Promise<Step> {
  checkpoint();
  const c0 = threadCpuMs();
  const t0 = performance.now();
  for (let i = 0; i < msgs.length; i += window) {
    handle(msgs.slice(i, i + window));
    await new Promise((r) => setImmediate(r));
  }
  await settled();
  const t = performance.now() - t0;
  const c1 = threadCpuMs();
  return { us: (t * 1000) / msgs.length, ...(c0 !== undefined && c1 !== undefined ? { cpuUs: ((c1 - c0) * 1000) / msgs.length } : {}), walBytes: fs.statSync(wal).size / msgs.length };
}

/** The bare loop's database: the same pragmas as Fonds', two tables, no other index. */
function bareCatalogue(file: string, urns: string[]) {
  const db: Database.Database = openDatabase(file);
  db.pragma('wal_autocheckpoint = 0');
  db.exec(`CREATE TABLE products (urn TEXT PRIMARY KEY, properties TEXT NOT NULL);
           CREATE TABLE requests (request_id TEXT PRIMARY KEY, urn TEXT NOT NULL, headers TEXT NOT NULL, body TEXT NOT NULL, state TEXT NOT NULL)`);
  const insertProduct = db.prepare('INSERT INTO products (urn, properties) VALUES (?, ?)');
  db.transaction(() => urns.forEach((u, i) => insertProduct.run(u, JSON.stringify({ name: `product ${i}`, bench: {} }))))();
  const select = db.prepare('SELECT properties FROM products WHERE urn = ?').pluck();
  const update = db.prepare('UPDATE products SET properties = ? WHERE urn = ?');
  const insert = db.prepare('INSERT INTO requests (request_id, urn, headers, body, state) VALUES (?, ?, ?, ?, ?)');
  const handle = (window: ConsumeMessage[]) =>
    db.transaction(() => {
      for (const m of window) {
        const body = JSON.parse(m.content.toString('utf8')) as { feature: { urn: string; properties: Record<string, Record<string, unknown>> } };
        const urn = body.feature.urn;
        const properties = JSON.parse(select.get(urn) as string) as Record<string, Record<string, unknown>>;
        for (const [k, v] of Object.entries(body.feature.properties)) properties[k] = { ...properties[k], ...v };
        update.run(JSON.stringify(properties), urn);
        insert.run(String(m.properties.headers?.[REGARDS.headers.requestId]), urn, JSON.stringify(m.properties.headers), m.content.toString('utf8'), 'SUCCESS');
      }
    })();
  return { db, handle, checkpoint: () => db.pragma('wal_checkpoint(TRUNCATE)') };
}

async function main(): Promise<void> {
  const config = loadConfig({ env: process.env, overrides: { dataDir: path.join(work, 'fonds'), messageWatch: false, regardsTenants: [TENANT] } });
  const window = Math.max(1, Math.floor(config.amqpPrefetch / 2));
  const service = await createService(config);
  const db = service.internals.store.db;
  // SQLite's own checkpoints off: the WAL's size after a step is what that step's commits wrote
  // (the service's checkpointer runs only after its debounce, on the event loop this loop holds)
  db.pragma('wal_autocheckpoint = 0');
  const urns: string[] = [];
  for (let i = 0; i < PRODUCTS; i++) {
    urns.push((await service.call('products.create', { tenant: TENANT, urn: productUrn(TENANT, randomUUID()), providerId: `bench-${i}`, properties: { name: `product ${i}`, bench: {} } })).urn);
  }
  const catalogue = createCatalogue(service.internals, { names: queueNames(config.amqpQueuePrefix), appId: 'fonds/bench' });
  // the broker confirms every answer at once: the relay takes them in hand, as while connected
  const relay = service.internals.outbox;
  relay.attach('amqp', { send: (_item, done) => setImmediate(done) });
  await relay.flushed(10_000);
  const bare = bareCatalogue(path.join(work, 'bare', 'bare.sqlite'), urns);
  const fondsWal = path.join(config.dataDir, 'fonds.sqlite-wal');
  const bareWal = path.join(work, 'bare', 'bare.sqlite-wal');
  console.log(`${STEPS} steps of ${N} patch requests over ${PRODUCTS} products, windows of ${window} (half of amqpPrefetch ${config.amqpPrefetch})`);
  const rows: string[] = [];
  try {
    for (let step = 0; step < STEPS; step++) {
      const msgs = deliveries(urns, step);
      // the same requests on both sides, the bare loop first (its cost is the smaller)
      const b = await measure(bareWal, bare.checkpoint, msgs, window, bare.handle, async () => undefined);
      const f = await measure(
        fondsWal,
        () => db.pragma('wal_checkpoint(TRUNCATE)'),
        msgs,
        window,
        (w) => {
          const verdicts = catalogue.receiveWindow(w);
          if (verdicts.some((v) => v !== 'ack')) throw new Error(`the catalogue refused a request: ${JSON.stringify(verdicts.find((v) => v !== 'ack'))}`);
        },
        () => relay.flushed(60_000),
      );
      const size = (step + 1) * N;
      const cpu = (s: Step) => (s.cpuUs !== undefined ? `, CPU ${s.cpuUs.toFixed(0)}` : '');
      console.log(
        `  after ${size} requests: fonds ${f.us.toFixed(0)} µs a request${cpu(f)}, WAL ${f.walBytes.toFixed(0)} B; bare ${b.us.toFixed(0)} µs${cpu(b)}, WAL ${b.walBytes.toFixed(0)} B; ratio time ${(f.us / b.us).toFixed(2)}, WAL ${(f.walBytes / b.walBytes).toFixed(2)}`,
      );
      rows.push(`${size}:${(f.walBytes / 1024).toFixed(1)}`);
    }
    const success = db.prepare(`SELECT count(*) FROM patch_requests WHERE direction = 'received' AND state = 'SUCCESS'`).pluck().get() as number;
    if (success !== STEPS * N) throw new Error(`fonds: ${success} requests in SUCCESS for ${STEPS * N}`);
    const waited = db.prepare('SELECT count(*) FROM outbox').pluck().get() as number;
    if (waited) throw new Error(`fonds: ${waited} answers had to wait in the outbox; every one should have been confirmed at once`);
    console.log(`checked: ${success} requests applied (SUCCESS); fonds' WAL KiB a request by catalogue size: ${rows.join(' ')}`);
    if (statements.size) {
      console.log('statements (both sides, setup included), longest first:');
      for (const [sql, t] of [...statements].sort((a, b) => b[1].ms - a[1].ms).slice(0, 12)) {
        console.log(`  ${t.ms.toFixed(0).padStart(6)} ms ${String(t.calls).padStart(7)} calls ${((t.ms * 1000) / t.calls).toFixed(1).padStart(7)} µs  ${sql}`);
      }
    }
  } finally {
    bare.db.close();
    await service.close();
  }
}

main()
  .catch((err) => {
    console.error(err);
    process.exitCode = 1;
  })
  .finally(() => fs.rmSync(work, { recursive: true, force: true }));
