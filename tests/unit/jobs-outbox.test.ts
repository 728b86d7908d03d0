import fs from 'node:fs';
import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { migrate, openDatabase, type DB } from '../../src-main/service/db/database';
import { JobRunner, PermanentJobError } from '../../src-main/service/db/jobs';
import { coreMigrations } from '../../src-main/service/db/migrations';
import { OutboxRelay } from '../../src-main/service/db/outbox';
import { Store, timeline } from '../../src-main/service/db/store';
import { tempDir, waitFor } from '../helpers/util';

const cleanups: Array<() => void | Promise<void>> = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

function openStore(dir = tempDir()): { store: Store; db: DB; dir: string } {
  const db = openDatabase(path.join(dir, 'fonds.sqlite'));
  migrate(db, coreMigrations);
  cleanups.push(() => {
    if (db.open) db.close();
  });
  cleanups.push(() => fs.rmSync(dir, { recursive: true, force: true }));
  return { store: new Store(db), db, dir };
}

describe('event log', () => {
  it('writes events in the same transaction as the change, and publishes them only after commit', () => {
    const { store, db } = openStore();
    db.exec('CREATE TABLE things (id TEXT)');
    const seen: string[] = [];
    store.subscribe((p) => p.channel === 'event' && seen.push(p.event.type));
    expect(() =>
      store.transact((tx) => {
        tx.db.prepare('INSERT INTO things VALUES (?)').run('a');
        tx.event({ kind: 'upload', objectId: 'a', type: 'created' });
        throw new Error('boom');
      }),
    ).toThrow('boom');
    expect(db.prepare('SELECT count(*) FROM things').pluck().get()).toBe(0);
    expect(db.prepare('SELECT count(*) FROM events').pluck().get()).toBe(0);
    expect(seen).toEqual([]);
    store.transact((tx) => {
      tx.db.prepare('INSERT INTO things VALUES (?)').run('b');
      tx.event({ kind: 'upload', objectId: 'b', type: 'created' });
      tx.event({ kind: 'upload', objectId: 'b', type: 'status.CHECKING' });
    });
    expect(seen).toEqual(['created', 'status.CHECKING']);
    expect(timeline(db, 'upload', 'b', 0, 10).items.map((e) => e.type)).toEqual(['status.CHECKING', 'created']);
  });

  it('refuses an event written outside a transaction', () => {
    const { store } = openStore();
    const tx = store.transact((t) => t);
    expect(() => tx.event({ kind: 'upload', objectId: 'x', type: 'y' })).toThrow(/inside Store.transact/);
  });
});

describe('durable jobs', () => {
  it('runs jobs by priority, then by due time', async () => {
    const { store } = openStore();
    const runner = new JobRunner(store, { concurrency: 1 });
    const order: string[] = [];
    runner.register<{ name: string }>('t', { run: async (ctx) => void order.push(ctx.payload.name) });
    store.transact((tx) => {
      tx.enqueue({ kind: 't', payload: { name: 'low' }, priority: 0 });
      tx.enqueue({ kind: 't', payload: { name: 'high' }, priority: 10 });
      tx.enqueue({ kind: 't', payload: { name: 'later' }, priority: 99, runAt: new Date(Date.now() + 300) });
    });
    runner.start();
    cleanups.push(() => runner.stop());
    await waitFor(() => order.length, (n) => n === 3, 5000);
    expect(order).toEqual(['high', 'low', 'later']);
  });

  it('retries a failing job with backoff, and gives up on a permanent error', async () => {
    const { store, db } = openStore();
    const runner = new JobRunner(store, { concurrency: 2, retryBaseMs: 10 });
    let attempts = 0;
    const failed: string[] = [];
    runner.register('flaky', {
      run: async () => {
        attempts++;
        if (attempts < 3) throw new Error('temporary');
      },
    });
    runner.register('broken', {
      run: async () => {
        throw new PermanentJobError('cannot ever work');
      },
      failed: (_ctx, err) => void failed.push(err.message),
    });
    store.transact((tx) => {
      tx.enqueue({ kind: 'flaky' });
      tx.enqueue({ kind: 'broken' });
    });
    runner.start();
    cleanups.push(() => runner.stop());
    await runner.idle(5000);
    expect(attempts).toBe(3);
    expect(failed).toEqual(['cannot ever work']);
    const rows = db.prepare('SELECT kind, status, attempts, last_error FROM jobs ORDER BY id').all();
    expect(rows).toEqual([
      { kind: 'flaky', status: 'done', attempts: 3, last_error: 'temporary' },
      { kind: 'broken', status: 'failed', attempts: 1, last_error: 'cannot ever work' },
    ]);
  });

  it('resumes a job left running by a crashed process', async () => {
    const dir = tempDir();
    const first = openStore(dir);
    first.store.transact((tx) => tx.enqueue({ kind: 'work', payload: { n: 1 } }));
    // simulate a crash: the job was claimed and never finished
    first.db.prepare(`UPDATE jobs SET status = 'running', lease_owner = 'dead', attempts = 1`).run();
    first.db.close();

    const second = openStore(dir);
    const runner = new JobRunner(second.store, { concurrency: 1 });
    const runs: number[] = [];
    runner.register('work', { run: async (ctx) => void runs.push(ctx.attempt) });
    runner.start();
    cleanups.push(() => runner.stop());
    await runner.idle(5000);
    expect(runs).toEqual([2]);
    expect(second.db.prepare('SELECT status FROM jobs').pluck().get()).toBe('done');
  });

  it('cancels a running job through its AbortSignal', async () => {
    const { store, db } = openStore();
    const runner = new JobRunner(store, { concurrency: 1 });
    const cancelled: number[] = [];
    runner.register('long', {
      run: (ctx) => new Promise((_resolve, reject) => ctx.signal.addEventListener('abort', () => reject(new Error('aborted')))),
      cancelled: (ctx) => void cancelled.push(ctx.id),
    });
    const id = store.transact((tx) => tx.enqueue({ kind: 'long' }));
    runner.start();
    cleanups.push(() => runner.stop());
    await waitFor(() => db.prepare('SELECT status FROM jobs WHERE id = ?').pluck().get(id), (s) => s === 'running');
    expect(runner.cancel(id)).toBe(true);
    await waitFor(() => cancelled.length, (n) => n === 1);
    expect(db.prepare('SELECT status FROM jobs WHERE id = ?').pluck().get(id)).toBe('cancelled');
    expect(runner.cancel(id)).toBe(false);
  });
});

describe('outbox', () => {
  it('keeps messages while no transport is attached, then sends them in priority order once one is', async () => {
    const { store, db } = openStore();
    const relay = new OutboxRelay(store, { retryBaseMs: 10 });
    relay.start();
    cleanups.push(() => relay.stop());
    store.transact((tx) => {
      tx.outbox({ channel: 'amqp', destination: 'x', body: 'normal' });
      tx.outbox({ channel: 'amqp', destination: 'x', body: 'urgent', priority: 5 });
    });
    await new Promise((r) => setTimeout(r, 50));
    expect(relay.list('pending', 0, 10).total).toBe(2);
    const sent: string[] = [];
    relay.attach('amqp', { send: async (m) => void sent.push(m.body) });
    await relay.flushed(5000);
    expect(sent).toEqual(['urgent', 'normal']);
    expect(db.prepare(`SELECT count(*) FROM outbox WHERE status = 'sent'`).pluck().get()).toBe(2);
  });

  it('marks a message sent only after the transport confirms; a refusal is retried', async () => {
    const { store } = openStore();
    const relay = new OutboxRelay(store, { retryBaseMs: 10 });
    relay.start();
    cleanups.push(() => relay.stop());
    let calls = 0;
    relay.attach('webhook', {
      send: async () => {
        calls++;
        if (calls < 3) throw new Error('HTTP 500');
      },
    });
    const id = store.transact((tx) => tx.outbox({ channel: 'webhook', destination: 'http://127.0.0.1/', body: '{}' }));
    await waitFor(() => relay.get(id).status, (s) => s === 'sent', 5000);
    expect(calls).toBe(3);
    expect(relay.get(id).attempts).toBe(3);
  });

  it('lets a person edit, cancel and retry a waiting message', () => {
    const { store } = openStore();
    const relay = new OutboxRelay(store);
    const id = store.transact((tx) => tx.outbox({ channel: 'amqp', destination: 'x', body: 'v1', headers: { a: 1 } }));
    expect(relay.edit(id, { body: 'v2' }).body).toBe('v2');
    expect(relay.edit(id, {}).headers).toEqual({ a: 1 });
    expect(relay.cancel(id).status).toBe('cancelled');
    expect(() => relay.cancel(id)).toThrow(/cancelled/);
    expect(relay.retry(id).status).toBe('pending');
  });
});
