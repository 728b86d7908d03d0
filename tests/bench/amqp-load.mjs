/**
 * The load generator of the AMQP benchmark, run in a worker thread so that it shares no event loop
 * with what is measured (Fonds, or the bare loop, on the main thread), as a remote REGARDS would
 * not: it publishes the requests on a raw amqplib confirm channel (minding back-pressure) and
 * counts the answers on FeatureRequestEvent from an exclusive queue; the clock runs from the first
 * publish to the last SUCCESS. Plain JavaScript: a worker does not inherit tsx's loader. Its input
 * and result are the `LoadInput` and `LoadResult` of amqp.bench.ts.
 */
import { connect } from 'amqplib';
import { parentPort, workerData } from 'node:worker_threads';
import { threadCpuMs } from './proc-cpu.mjs';

async function run({ broker, vhost, exchanges, properties, requests, timeoutMs }) {
  const conn = await connect({ hostname: broker.host, port: broker.port, username: broker.user, password: broker.password, vhost });
  const states = new Map();
  const success = new Set();
  let duplicates = 0;
  try {
    const expected = new Set(requests.map((r) => r.requestId));
    const listen = await conn.createChannel();
    await listen.assertExchange(exchanges.answers, 'fanout', { durable: true });
    const { queue } = await listen.assertQueue('', { exclusive: true, autoDelete: true });
    await listen.bindQueue(queue, exchanges.answers, '');
    let allIn;
    const done = new Promise((resolve) => (allIn = resolve));
    await listen.consume(
      queue,
      (m) => {
        if (!m) return;
        const a = JSON.parse(m.content.toString('utf8'));
        states.set(a.state, (states.get(a.state) ?? 0) + 1);
        if (a.state !== 'SUCCESS') return;
        if (!expected.has(a.requestId) || success.has(a.requestId)) duplicates++;
        else success.add(a.requestId);
        if (success.size === expected.size) allIn(process.hrtime.bigint());
      },
      { noAck: true },
    );
    const pub = await conn.createConfirmChannel();
    await pub.assertExchange(exchanges.requests, 'fanout', { durable: true });
    const bodies = requests.map((r) => Buffer.from(r.body, 'utf8'));
    const t0 = process.hrtime.bigint();
    const published = (async () => {
      for (let i = 0; i < requests.length; i++) {
        const ok = pub.publish(exchanges.requests, '', bodies[i], { headers: requests[i].headers, ...properties });
        if (!ok) await new Promise((resolve) => pub.once('drain', resolve));
      }
      await pub.waitForConfirms();
    })();
    let timer;
    const timeout = new Promise((_, reject) => {
      timer = setTimeout(() => reject(new Error(`only ${success.size}/${requests.length} SUCCESS answers after ${timeoutMs} ms (answers: ${JSON.stringify([...states])})`)), timeoutMs);
    });
    const t1 = await Promise.race([done, timeout]);
    clearTimeout(timer);
    await published;
    return { seconds: Number(t1 - t0) / 1e9, states: [...states], success: success.size, duplicates };
  } catch (err) {
    return { states: [...states], success: success.size, duplicates, error: err.message };
  } finally {
    await conn.close().catch(() => undefined);
  }
}

// the thread's whole CPU time, its start included (as the main thread's figure includes it)
void run(workerData).then((r) => {
  const cpuMs = threadCpuMs();
  parentPort.postMessage(cpuMs !== undefined ? { ...r, cpuMs } : r);
});
