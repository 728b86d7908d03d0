/**
 * REGARDS patch requests end to end over the real RabbitMQ: FONDS_BENCH_REQUESTS (default 10,000)
 * requests published by a raw amqplib confirm channel on FeatureUpdateRequestEvent, for
 * FONDS_BENCH_PRODUCTS (default 1,000) products created beforehand (products.create), each
 * request patching one key of its product. Fonds consumes them in windows, merges, commits and
 * answers GRANTED then SUCCESS through the outbox (publisher confirms). The clock runs from the
 * first publish until a raw consumer bound to FeatureRequestEvent has every SUCCESS answer. The
 * publisher and that consumer (amqp-load.mjs) run in a worker thread: the load generator shares no
 * event loop with what is measured, as a remote REGARDS would not.
 *
 * Reference, same broker, same run: a bare amqplib loop (consume a request, ack it, publish one
 * SUCCESS answer of the same size with a publisher confirm) on a virtual host of its own, fed by
 * the same publisher and measured by the same receiving consumer; for context, the same loop
 * publishing GRANTED + SUCCESS (as many answers as Fonds). Each side runs FONDS_BENCH_ROUNDS
 * (default 3) times, alternating; the best of each is kept; each round's queues are deleted after
 * it (left bound to the fanout exchanges they would slow the next rounds). FONDS_* settings
 * (FONDS_AMQP_PREFETCH…) apply to Fonds. Every answer is checked (one SUCCESS per request, nothing
 * else but GRANTED), and for Fonds every request was applied exactly once (one `received.SUCCESS`
 * event with its changes per request id, each product carrying the values of its own requests).
 *
 * Each round also says where the machine's CPU went (Linux, from /proc), in µs a request: this
 * process's main thread (what is measured), the broker (beam.smp, when it runs here), the load
 * generator's thread (it reports its own), the process's other threads (V8's GC and compiler
 * helpers, SQLite's checkpointer), and the CPU left idle (cores × elapsed time, less all that):
 * a loop that keeps the machine busy shows an idle near zero, one that waits on the broker (or
 * makes it wait) does not.
 */
import { randomUUID } from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { connect } from 'amqplib';
import { performance } from 'node:perf_hooks';
import { Worker } from 'node:worker_threads';
import { BENCH_TENANT as TENANT, patchRequest } from './patch-requests';
import { cpuMs } from './proc-cpu.mjs';
import { createService, type Service } from '../../src-main/service';
import { PUBLISH_PROPERTIES, requestEvent } from '../../src-main/service/amqp/regards';
import { queueNames } from '../../src-main/service/amqp/topology';
import { loadConfig } from '../../src-main/service/config';
import { REGARDS, productUrn } from '../../src-shared/domain/product';

// tests/helpers/util.ts reads __dirname (vitest provides it; tsx in ESM does not): give it its own
// folder, then load the REGARDS helpers (ensureVhost, the broker's address) dynamically.
Object.assign(globalThis, { __dirname: path.join(path.dirname(new URL(import.meta.url).pathname), '..', 'helpers') });
const { BROKER, amqpUrlOf, deleteVhost, ensureVhost } = await import('../helpers/regards');

const N = Number(process.env.FONDS_BENCH_REQUESTS ?? 10_000);
const PRODUCTS = Math.min(N, Number(process.env.FONDS_BENCH_PRODUCTS ?? 1_000));
const ROUNDS = Number(process.env.FONDS_BENCH_ROUNDS ?? 3);
/** Fonds' rounds alone, for profiling (node --cpu-prof): no reference, no ratio */
const FONDS_ONLY = process.env.FONDS_BENCH_FONDS_ONLY === '1';
const tag = `${process.pid}-${randomUUID().slice(0, 6)}`;
const VHOST = `fonds-bench-amqp-${tag}`;
const BARE_VHOST = `fonds-bench-amqp-bare-${tag}`;
const work = fs.mkdtempSync(path.join(os.tmpdir(), 'fonds-bench-amqp-'));

interface Request {
  requestId: string;
  urn: string;
  /** the property key this request writes in its product */
  key: string;
  headers: Record<string, string>;
  body: Buffer;
}

/** N requests over the products: request i writes properties.bench.k<i / PRODUCTS> = its request id. */
function requests(urns: string[]): Request[] {
  const date = new Date().toISOString();
  return Array.from({ length: N }, (_, i) => {
    const requestId = randomUUID();
    const urn = urns[i % urns.length];
    const key = `k${Math.floor(i / urns.length)}`;
    return { requestId, urn, key, ...patchRequest(urn, key, requestId, date) };
  });
}

const mainThreadCpu = () => cpuMs(`/proc/self/task/${process.pid}/stat`);
/** every thread of this process: the main thread, the load generator, V8's GC and compiler helpers, SQLite's checkpointer */
const processCpu = () => cpuMs('/proc/self/stat');
/** the local broker's Erlang VM, when it runs on this machine */
const brokerPid = (() => {
  try {
    return fs.readdirSync('/proc').find((d) => /^\d+$/.test(d) && fs.readFileSync(`/proc/${d}/comm`, 'utf8').trim() === 'beam.smp');
  } catch {
    return undefined;
  }
})();
const brokerCpu = () => (brokerPid ? cpuMs(`/proc/${brokerPid}/stat`) : undefined);

/**
 * Waits until the broker is quiet (under 10 % of a core over 500 ms, 15 s at most): deleting a
 * round's queues and compacting its message store goes on after the round, and would otherwise be
 * charged to the next one.
 */
async function brokerQuiet(): Promise<void> {
  const until = Date.now() + 15_000;
  for (;;) {
    const a = brokerCpu();
    await new Promise((r) => setTimeout(r, 500));
    const b = brokerCpu();
    if (a === undefined || b === undefined || b - a < 50 || Date.now() > until) return;
  }
}

const open = (vhost: string) => connect({ hostname: BROKER.host, port: BROKER.port, username: BROKER.user, password: BROKER.password, vhost });

interface Received {
  states: Map<string, number>;
  success: number;
  duplicates: number;
}

interface Outcome {
  seconds: number;
  rate: number;
  received: Received;
  /** main-thread CPU time per request, in µs (Linux; else its event-loop busy time) */
  busyUs: number;
  /** the broker's CPU time per request, in µs (when it runs here) */
  brokerUs?: number;
  /** the load generator's thread (publishing the requests, reading the answers), per request, in µs (Linux) */
  loadUs?: number;
  /** the other threads of this process (V8's GC and compiler helpers, SQLite's checkpointer), per request, in µs (Linux) */
  otherUs?: number;
  /**
   * the machine's CPU left unused per request, in µs (Linux): cores × elapsed time, less all the
   * above. The CPU figures also count the load generator's start and end, outside the clock: a
   * loop that keeps every core busy shows a few µs below zero.
   */
  idleUs?: number;
}

/** What amqp-load.mjs (the load generator, a worker thread) is given. */
interface LoadInput {
  broker: typeof BROKER;
  vhost: string;
  exchanges: { requests: string; answers: string };
  /** of each request published */
  properties: { contentType: string; contentEncoding: string; deliveryMode: number };
  requests: Array<{ requestId: string; headers: Record<string, string>; body: string }>;
  timeoutMs: number;
}

/** What it answers. */
interface LoadResult {
  seconds?: number;
  /** the load generator's own CPU time, in ms (Linux) */
  cpuMs?: number;
  /** answers seen, by state */
  states: Array<[string, number]>;
  success: number;
  /** SUCCESS answers for an unknown request, or a second one for the same */
  duplicates: number;
  error?: string;
}

/**
 * Publishes `reqs` on `vhost` and waits for every SUCCESS answer there, from a worker thread
 * (amqp-load.mjs): the load generator shares no event loop with what is measured.
 */
async function drive(vhost: string, reqs: Request[], timeoutMs: number): Promise<Outcome> {
  const input: LoadInput = {
    broker: BROKER,
    vhost,
    exchanges: { requests: REGARDS.updateRequestExchange, answers: REGARDS.requestEventExchange },
    properties: { contentType: PUBLISH_PROPERTIES.content_type, contentEncoding: PUBLISH_PROPERTIES.content_encoding, deliveryMode: 2 },
    requests: reqs.map((r) => ({ requestId: r.requestId, headers: r.headers, body: r.body.toString('utf8') })),
    timeoutMs,
  };
  await brokerQuiet();
  const elu = performance.eventLoopUtilization();
  const cpu0 = mainThreadCpu();
  const all0 = processCpu();
  const broker0 = brokerCpu();
  const worker = new Worker(new URL('./amqp-load.mjs', import.meta.url), { workerData: input });
  const r = await new Promise<LoadResult>((resolve, reject) => {
    worker.once('message', resolve);
    worker.once('error', reject);
    worker.once('exit', (code) => reject(new Error(`the load generator exited (${code}) without a result`)));
  });
  const cpu1 = mainThreadCpu();
  const all1 = processCpu();
  const broker1 = brokerCpu();
  const busyUs = ((cpu0 !== undefined && cpu1 !== undefined ? cpu1 - cpu0 : performance.eventLoopUtilization(elu).active) * 1000) / reqs.length;
  const brokerUs = broker0 !== undefined && broker1 !== undefined ? ((broker1 - broker0) * 1000) / reqs.length : undefined;
  const loadUs = r.cpuMs !== undefined ? (r.cpuMs * 1000) / reqs.length : undefined;
  const otherUs =
    all0 !== undefined && all1 !== undefined && cpu0 !== undefined && cpu1 !== undefined && loadUs !== undefined ? ((all1 - all0 - (cpu1 - cpu0)) * 1000) / reqs.length - loadUs : undefined;
  await worker.terminate();
  if (r.error || r.seconds === undefined) throw new Error(`load generator on ${vhost}: ${r.error ?? 'no timing'}`);
  const idleUs =
    brokerUs !== undefined && otherUs !== undefined && loadUs !== undefined
      ? (r.seconds * 1e6 * os.availableParallelism()) / reqs.length - busyUs - brokerUs - loadUs - otherUs
      : undefined;
  return {
    seconds: r.seconds,
    rate: reqs.length / r.seconds,
    busyUs,
    ...(brokerUs !== undefined ? { brokerUs } : {}),
    ...(loadUs !== undefined ? { loadUs } : {}),
    ...(otherUs !== undefined ? { otherUs } : {}),
    ...(idleUs !== undefined ? { idleUs } : {}),
    received: { states: new Map(r.states), success: r.success, duplicates: r.duplicates },
  };
}

/**
 * The bare loop: consume a request, ack it, publish a SUCCESS answer of the same size with a
 * confirm (with `granted`, a GRANTED answer first, as many answers as Fonds sends).
 */
async function bareRound(reqs: Request[], { prefetch, maxPriority }: { prefetch: number; maxPriority: number }, granted = false): Promise<Outcome> {
  const conn = await open(BARE_VHOST);
  const queue = `bare-${randomUUID().slice(0, 8)}`;
  let refused = 0;
  try {
    const ch = await conn.createChannel();
    const pub = await conn.createConfirmChannel();
    await ch.assertExchange(REGARDS.updateRequestExchange, 'fanout', { durable: true });
    await ch.assertExchange(REGARDS.requestEventExchange, 'fanout', { durable: true });
    // the same queue arguments as Fonds' request queue
    await ch.assertQueue(queue, { durable: true, maxPriority });
    await ch.bindQueue(queue, REGARDS.updateRequestExchange, '');
    await ch.prefetch(prefetch);
    await ch.consume(queue, (m) => {
      if (!m) return;
      ch.ack(m);
      const h = m.properties.headers ?? {};
      const body = JSON.parse(m.content.toString('utf8')) as { feature: { urn: string } };
      for (const state of granted ? (['GRANTED', 'SUCCESS'] as const) : (['SUCCESS'] as const)) {
        const a = requestEvent({ requestId: String(h[REGARDS.headers.requestId]), tenant: String(h[REGARDS.headers.tenant]), urn: body.feature.urn, owner: String(h[REGARDS.headers.requestOwner]), state, errors: [] });
        pub.publish(
          a.exchange,
          '',
          Buffer.from(a.body, 'utf8'),
          { headers: a.headers, contentType: PUBLISH_PROPERTIES.content_type, contentEncoding: PUBLISH_PROPERTIES.content_encoding, deliveryMode: 2 },
          (err: unknown) => {
            if (err) refused++;
          },
        );
      }
    });
    const outcome = await drive(BARE_VHOST, reqs, 10 * 60_000);
    await pub.waitForConfirms();
    if (refused) throw new Error(`bare loop: ${refused} answers not confirmed`);
    await ch.deleteQueue(queue).catch(() => undefined);
    return outcome;
  } finally {
    await conn.close().catch(() => undefined);
  }
}

async function waitUntil(what: string, fn: () => boolean | Promise<boolean>, timeoutMs = 60_000): Promise<void> {
  const until = Date.now() + timeoutMs;
  while (!(await fn())) {
    if (Date.now() > until) throw new Error(`${what}: not after ${timeoutMs} ms`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

/** A fresh Fonds catalogue (new data directory, new queues) with its products; measured; checked. */
async function fondsRound(round: number): Promise<Outcome & { prefetch: number }> {
  const dataDir = path.join(work, `data-${round}`);
  const config = loadConfig({
    env: process.env, // FONDS_AMQP_PREFETCH etc. may be tried
    overrides: { dataDir, amqpUrl: amqpUrlOf(), amqpVhost: VHOST, amqpQueuePrefix: `bench${round}-${tag}`, messageWatch: false, regardsTenants: [TENANT] },
  });
  const service: Service = await createService(config);
  try {
    await waitUntil('Fonds connected to the broker', async () => (await service.call('amqp.status', {})).state === 'connected', 30_000);
    const urns: string[] = [];
    for (let i = 0; i < PRODUCTS; i++) {
      const p = await service.call('products.create', { tenant: TENANT, urn: productUrn(TENANT, randomUUID()), providerId: `bench-${i}`, properties: { name: `product ${i}`, bench: {} } });
      urns.push(p.urn);
    }
    const reqs = requests(urns);
    const db = service.internals.store.db;
    const trace = process.env.FONDS_BENCH_TRACE
      ? setInterval(() => {
          const received = db.prepare(`SELECT count(*) FROM patch_requests`).pluck().get();
          const outbox = db.prepare(`SELECT status, count(*) n FROM outbox GROUP BY status`).all();
          console.log(`    trace: ${received} received, outbox ${JSON.stringify(outbox)}`);
        }, 500)
      : undefined;
    const outcome = await drive(VHOST, reqs, 10 * 60_000);
    if (trace) clearInterval(trace);
    await service.internals.outbox.flushed(60_000);
    check('fonds', outcome, reqs, 'GRANTED');
    checkApplied(service, reqs);
    return { ...outcome, prefetch: config.amqpPrefetch };
  } finally {
    await service.close();
    fs.rmSync(dataDir, { recursive: true, force: true });
    // the round's queues would otherwise keep receiving (and storing) the next rounds' messages
    const conn = await open(VHOST);
    const ch = await conn.createChannel();
    const names = queueNames(config.amqpQueuePrefix);
    for (const q of [names.requests, names.responses, names.deadLetter]) await ch.deleteQueue(q);
    await ch.deleteExchange(names.deadLetterExchange);
    await conn.close();
  }
}

/** Every request answered SUCCESS once; no answer but SUCCESS (and GRANTED for Fonds). */
function check(who: string, o: Outcome, reqs: Request[], also?: string): void {
  const r = o.received;
  const other = [...r.states].filter(([s]) => s !== 'SUCCESS' && s !== also);
  if (r.success !== reqs.length || r.duplicates || other.length) {
    throw new Error(`${who}: ${r.success}/${reqs.length} SUCCESS, ${r.duplicates} duplicate or unknown, other answers ${JSON.stringify(other)}`);
  }
  if (also && (r.states.get(also) ?? 0) !== reqs.length) throw new Error(`${who}: ${r.states.get(also) ?? 0} ${also} answers for ${reqs.length} requests`);
}

/** Each request applied exactly once: one outcome event saying what changed per request id, its value in its product. */
function checkApplied(service: Service, reqs: Request[]): void {
  const db = service.internals.store.db;
  const perRequest = db
    .prepare(
      `SELECT json_extract(payload, '$.requestId') AS id, count(*) AS n FROM events
       WHERE kind = 'patch_request' AND type = 'received.SUCCESS' AND json_type(payload, '$.changed') = 'array' GROUP BY id`,
    )
    .all() as Array<{ id: string; n: number }>;
  const byId = new Map(perRequest.map((r) => [r.id, r.n]));
  const wrong = reqs.filter((r) => byId.get(r.requestId) !== 1);
  if (wrong.length || perRequest.length !== reqs.length) throw new Error(`fonds: ${wrong.length} requests not applied exactly once (${perRequest.length} patched request ids for ${reqs.length})`);
  const success = db.prepare(`SELECT count(*) FROM patch_requests WHERE direction = 'received' AND state = 'SUCCESS'`).pluck().get() as number;
  if (success !== reqs.length) throw new Error(`fonds: ${success} received requests in SUCCESS for ${reqs.length}`);
  const props = new Map(
    (db.prepare('SELECT urn, properties FROM products').all() as Array<{ urn: string; properties: string }>).map((p) => [p.urn, JSON.parse(p.properties) as { bench: Record<string, string> }]),
  );
  const mismatched = reqs.filter((r) => props.get(r.urn)?.bench?.[r.key] !== r.requestId);
  if (mismatched.length) throw new Error(`fonds: ${mismatched.length} products do not carry the value of their request`);
}

async function main(): Promise<void> {
  await ensureVhost(VHOST);
  await ensureVhost(BARE_VHOST);
  const defaults = loadConfig({ env: process.env, overrides: { dataDir: work } });
  const prefetch = defaults.amqpPrefetch;
  /** the bare loop's queue and consumer are Fonds': the same prefetch and x-max-priority */
  const like = { prefetch, maxPriority: defaults.amqpMaxPriority };
  console.log(`${N} patch requests over ${PRODUCTS} products, ${ROUNDS} rounds per side, prefetch ${prefetch}, x-max-priority ${like.maxPriority}`);
  const bare: number[] = [];
  const bare2: number[] = [];
  const fonds: number[] = [];
  const us = (v: number | undefined) => v?.toFixed(0) ?? '?';
  const show = (round: number, who: string, o: Outcome) =>
    console.log(
      `  round ${round + 1}: ${who.padEnd(9)} ${o.rate.toFixed(0)} requests/s (${o.seconds.toFixed(2)} s, CPU µs a request: main thread ${us(o.busyUs)}, broker ${us(o.brokerUs)}, load generator ${us(o.loadUs)}, other threads ${us(o.otherUs)}, idle ${us(o.idleUs)})`,
    );
  for (let round = 0; round < ROUNDS; round++) {
    if (!FONDS_ONLY) {
      const bareReqs = requests(Array.from({ length: PRODUCTS }, () => productUrn(TENANT, randomUUID())));
      const b = await bareRound(bareReqs, like);
      check('bare', b, bareReqs);
      bare.push(b.rate);
      show(round, 'bare loop', b);
      const b2Reqs = requests(Array.from({ length: PRODUCTS }, () => productUrn(TENANT, randomUUID())));
      const b2 = await bareRound(b2Reqs, like, true);
      check('bare, GRANTED + SUCCESS', b2, b2Reqs, 'GRANTED');
      bare2.push(b2.rate);
      show(round, 'bare loop, 2 answers', b2);
    }
    const f = await fondsRound(round);
    fonds.push(f.rate);
    show(round, 'fonds', f);
  }
  if (FONDS_ONLY) {
    console.log(`fonds alone (FONDS_BENCH_FONDS_ONLY, no reference run, no ratio): ${Math.max(...fonds).toFixed(0)} requests/s`);
    return;
  }
  const bestBare = Math.max(...bare);
  const bestFonds = Math.max(...fonds);
  const ratio = bestFonds / bestBare;
  // each round runs both sides back to back: its ratio is the comparison least moved by the machine's drift
  const paired = fonds.map((f, i) => f / bare[i]).sort((a, b) => a - b);
  const median = paired[Math.floor((paired.length - 1) / 2)];
  console.log(`bare amqplib loop (consume, ack, 1 answer with confirm)   ${bestBare.toFixed(0)} requests/s`);
  console.log(`bare amqplib loop, GRANTED + SUCCESS (as many answers as Fonds)   ${Math.max(...bare2).toFixed(0)} requests/s`);
  console.log(`fonds (parse, merge, commit per window, GRANTED + SUCCESS through the outbox with confirms)   ${bestFonds.toFixed(0)} requests/s`);
  console.log(`checked: ${N} SUCCESS answers on each side, ${N} GRANTED from Fonds, each request applied once`);
  console.log(`ratio fonds / bare, best against best: ${ratio.toFixed(3)}  (target >= 0.5) ${ratio >= 0.5 ? 'ok' : 'MISSED'}`);
  console.log(`ratio fonds / bare, round by round: ${paired.map((r) => r.toFixed(3)).join(' ')}; median ${median.toFixed(3)}  (target >= 0.5) ${median >= 0.5 ? 'ok' : 'MISSED'}`);
  console.log(`ratio fonds / bare with 2 answers: ${(bestFonds / Math.max(...bare2)).toFixed(3)}  (for reference)`);
  console.log(`fonds requests/s: ${bestFonds.toFixed(0)}  (target >= 1000) ${bestFonds >= 1000 ? 'ok' : 'MISSED'}`);
}

main()
  .catch((err) => {
    console.error(err);
    process.exitCode = 1;
  })
  .finally(async () => {
    await deleteVhost(VHOST);
    await deleteVhost(BARE_VHOST);
    fs.rmSync(work, { recursive: true, force: true });
  });
