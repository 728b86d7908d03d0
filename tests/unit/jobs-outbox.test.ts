import fs from 'node:fs';
import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { migrate, openDatabase, type DB } from '../../src-main/service/db/database';
import { JobRunner, PermanentJobError } from '../../src-main/service/db/jobs';
import { coreMigrations } from '../../src-main/service/db/migrations';
import { OutboxRelay, type OutboxRelayOptions, type OwedSource } from '../../src-main/service/db/outbox';
import { Store, eventsOfObject, timeline } from '../../src-main/service/db/store';
import { tempDir, transportOf, waitFor } from '../helpers/util';

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

  it('finds the events of an object through the tail of its id, and tells apart ids that share it', () => {
    const { store, db } = openStore();
    const tail = '0123456789abcdef'; // the 16 characters the index keeps
    store.transact((tx) => {
      for (let i = 0; i < 5; i++) {
        tx.event({ kind: 'upload', objectId: `a-${tail}`, type: `a${i}` });
        tx.event({ kind: 'upload', objectId: `b-${tail}`, type: `b${i}` });
        tx.event({ kind: 'execution', objectId: `a-${tail}`, type: `x${i}` });
      }
      tx.event({ kind: 'upload', objectId: tail.slice(4), type: 'short' });
    });
    const page = timeline(db, 'upload', `a-${tail}`, 1, 3);
    expect(page.total).toBe(5);
    expect(page.items.map((e) => e.type)).toEqual(['a3', 'a2', 'a1']);
    expect(timeline(db, 'execution', `a-${tail}`, 0, 10).items.map((e) => e.type)).toEqual(['x4', 'x3', 'x2', 'x1', 'x0']);
    expect(timeline(db, 'upload', tail.slice(4), 0, 10).items.map((e) => e.type)).toEqual(['short']);
    const plan = db.prepare(`EXPLAIN QUERY PLAN SELECT * FROM events WHERE ${eventsOfObject('@kind', '@objectId')} ORDER BY seq DESC`).all({ kind: 'upload', objectId: 'x' });
    expect(JSON.stringify(plan)).toContain('events_object_tail');
  });

  it('keeps the timelines of events written before the tail index (core/003) replaced the old one', () => {
    const dir = tempDir();
    const db = openDatabase(path.join(dir, 'fonds.sqlite'));
    cleanups.push(() => fs.rmSync(dir, { recursive: true, force: true }));
    cleanups.push(() => {
      if (db.open) db.close();
    });
    migrate(db, coreMigrations.filter((m) => m.id < 'core/003'));
    const old = new Store(db);
    old.transact((tx) => ['created', 'status.CHECKING', 'status.CLOSED'].forEach((type) => tx.event({ kind: 'upload', objectId: 'before', type })));
    expect(migrate(db, coreMigrations)).toEqual(['core/003_events_object_tail']);
    const indexes = db.prepare(`SELECT name FROM sqlite_master WHERE type = 'index' AND tbl_name = 'events'`).pluck().all();
    expect(indexes).toContain('events_object_tail');
    expect(indexes).not.toContain('events_object');
    expect(timeline(db, 'upload', 'before', 0, 10).items.map((e) => e.type)).toEqual(['status.CLOSED', 'status.CHECKING', 'created']);
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
    relay.attach('amqp', transportOf(async (m) => void sent.push(m.body)));
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
    relay.attach(
      'webhook',
      transportOf(async () => {
        calls++;
        if (calls < 3) throw new Error('HTTP 500');
      }),
    );
    const id = store.transact((tx) => tx.outbox({ channel: 'webhook', destination: 'http://127.0.0.1/', body: '{}' }));
    await waitFor(() => relay.get(id).status, (s) => s === 'sent', 5000);
    expect(calls).toBe(3);
    expect(relay.get(id).attempts).toBe(3);
  });

  it('takes new messages in hand while attached: written as sending, sent without being claimed, marked sent after the confirm', async () => {
    const { store, db } = openStore();
    const relay = new OutboxRelay(store);
    const confirms: Array<() => void> = [];
    const seen: Array<{ body: string; status: string; headers: unknown }> = [];
    relay.attach(
      'amqp',
      transportOf((m) => {
        seen.push({ body: m.body, status: m.status, headers: m.headers });
        return new Promise<void>((resolve) => confirms.push(resolve));
      }),
    );
    relay.start();
    cleanups.push(() => relay.stop());
    await relay.flushed(2000); // nothing older waits: new messages are taken in hand from now on
    const ids = store.transact((tx) => [tx.outbox({ channel: 'amqp', destination: 'x', body: 'a', headers: { h: 1 } }), tx.outbox({ channel: 'amqp', destination: 'x', body: 'b' })]);
    // taken in the transaction: 'sending' in the table as soon as it is committed
    expect(db.prepare(`SELECT status FROM outbox WHERE id IN (?, ?)`).pluck().all(...ids)).toEqual(['sending', 'sending']);
    await waitFor(() => seen.length, (n) => n === 2);
    expect(seen).toEqual([
      { body: 'a', status: 'sending', headers: { h: 1 } },
      { body: 'b', status: 'sending', headers: {} },
    ]);
    // not confirmed yet: still 'sending' (a crash now sends them again at the next start)
    await new Promise((r) => setTimeout(r, 50));
    expect(relay.get(ids[0]).status).toBe('sending');
    for (const c of confirms) c();
    await relay.flushed(2000);
    expect(ids.map((id) => relay.get(id))).toMatchObject([
      { status: 'sent', attempts: 1 },
      { status: 'sent', attempts: 1 },
    ]);
  });

  it('after an outage, sends what waited first, in order, and only then takes new messages in hand', async () => {
    const { store } = openStore();
    const relay = new OutboxRelay(store);
    relay.start();
    cleanups.push(() => relay.stop());
    // no transport: written as pending
    store.transact((tx) => {
      tx.outbox({ channel: 'amqp', destination: 'x', body: 'GRANTED r1' });
      tx.outbox({ channel: 'amqp', destination: 'x', body: 'GRANTED r2' });
    });
    const sent: string[] = [];
    let release!: () => void;
    const gate = new Promise<void>((r) => (release = r));
    relay.attach(
      'amqp',
      transportOf(async (m) => {
        await gate;
        sent.push(m.body);
      }),
    );
    // written while the backlog is being sent: waits in the table behind it
    const later = store.transact((tx) => tx.outbox({ channel: 'amqp', destination: 'x', body: 'SUCCESS r1' }));
    expect(relay.get(later).status).toBe('pending');
    release();
    await relay.flushed(2000);
    expect(sent).toEqual(['GRANTED r1', 'GRANTED r2', 'SUCCESS r1']);
  });

  it('gives messages in hand back to the table when their transport goes away, and sends them once it is back', async () => {
    const { store } = openStore();
    const relay = new OutboxRelay(store, { retryBaseMs: 10 });
    relay.start();
    cleanups.push(() => relay.stop());
    let calls = 0;
    const transport = transportOf(() => {
      calls++;
    });
    relay.attach('amqp', transport);
    await relay.flushed(2000);
    // taken in hand (attached) but detached before the relay got to it
    const id = store.transact((tx) => {
      const id = tx.outbox({ channel: 'amqp', destination: 'x', body: 'late' });
      relay.detach('amqp');
      return id;
    });
    await waitFor(() => relay.get(id).status, (s) => s === 'pending', 2000);
    expect(calls).toBe(0);
    relay.attach('amqp', transport);
    await waitFor(() => relay.get(id).status, (s) => s === 'sent', 2000);
    expect(calls).toBe(1);
  });

  it('sends again, at the next start, a message left sending by a crash', async () => {
    const dir = tempDir();
    const first = openStore(dir);
    const relay = new OutboxRelay(first.store);
    relay.attach('amqp', transportOf(() => new Promise<void>(() => undefined))); // never confirmed
    relay.start();
    await relay.flushed(2000);
    const id = first.store.transact((tx) => tx.outbox({ channel: 'amqp', destination: 'x', body: 'in flight' }));
    expect(relay.get(id).status).toBe('sending');
    first.db.close(); // the process dies: no stop, no confirm

    const again = openStore(dir);
    const next = new OutboxRelay(again.store);
    const sent: string[] = [];
    next.attach('amqp', transportOf(async (m) => void sent.push(m.body)));
    next.start();
    cleanups.push(() => next.stop());
    await next.flushed(2000);
    expect(sent).toEqual(['in flight']);
    expect(next.get(id)).toMatchObject({ status: 'sent', attempts: 1 });
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

  it('tells change hooks of a cancel or a retry inside its transaction, and a hook that throws refuses it', () => {
    const { store, db } = openStore();
    db.exec('CREATE TABLE things (id TEXT, state TEXT)');
    const relay = new OutboxRelay(store);
    const seen: string[] = [];
    const pushed: string[] = [];
    store.subscribe((p) => p.channel === 'event' && pushed.push(p.event.type));
    relay.onChange((tx, item, change, before) => {
      seen.push(`${item.id} ${before}→${item.status} (${change})`);
      if (item.objectId === 'refused' && change === 'retried') throw new Error('sending it would deliver it twice');
      tx.db.prepare('UPDATE things SET state = ? WHERE id = ?').run(change, item.objectId);
      tx.event({ kind: 'dissemination', objectId: item.objectId!, type: `outbox.${change}` });
    });
    const [a, b] = store.transact((tx) => {
      tx.db.prepare(`INSERT INTO things VALUES ('a', 'waiting'), ('refused', 'waiting')`).run();
      return [tx.outbox({ channel: 'amqp', destination: 'x', body: 'a', objectKind: 'dissemination', objectId: 'a' }), tx.outbox({ channel: 'amqp', destination: 'x', body: 'b', objectKind: 'dissemination', objectId: 'refused' })];
    });
    expect(relay.cancel(a).status).toBe('cancelled');
    expect(db.prepare(`SELECT state FROM things WHERE id = 'a'`).pluck().get()).toBe('cancelled');
    expect(relay.retry(a).status).toBe('pending');
    expect(db.prepare(`SELECT state FROM things WHERE id = 'a'`).pluck().get()).toBe('retried');
    expect(pushed).toEqual(['outbox.cancelled', 'outbox.retried']);
    relay.cancel(b);
    expect(() => relay.retry(b)).toThrow('sending it would deliver it twice');
    // refused: the message and the hook's writes are as before the retry
    expect(relay.get(b).status).toBe('cancelled');
    expect(db.prepare(`SELECT state FROM things WHERE id = 'refused'`).pluck().get()).toBe('cancelled');
    expect(seen).toEqual([`${a} pending→cancelled (cancelled)`, `${a} cancelled→pending (retried)`, `${b} pending→cancelled (cancelled)`, `${b} cancelled→pending (retried)`]);
    // a cancel refused by its status tells no hook
    expect(() => relay.cancel(b)).toThrow(/cancelled/);
    expect(seen).toHaveLength(4);
  });
});

describe('owed messages (answers a row owes: no outbox row unless they have to wait)', () => {
  /** Rows of `things` owe two messages each, `<body>-a` then `<body>-b`, in rowid order. */
  function owingStore(dir?: string) {
    const opened = openStore(dir);
    opened.db.exec('CREATE TABLE IF NOT EXISTS things (body TEXT NOT NULL)');
    const messagesOf = (seq: number, body: string) =>
      ['a', 'b'].map((part) => ({ channel: 'amqp', destination: 'x', body: `${body}-${part}`, objectKind: 'patch_request' as const, objectId: body, owedBy: { source: 'things', seq } }));
    const source: OwedSource = {
      latest: () => (opened.db.prepare('SELECT max(rowid) FROM things').pluck().get() as number | null) ?? 0,
      owedAfter: (seq) =>
        (opened.db.prepare('SELECT rowid, body FROM things WHERE rowid > ? ORDER BY rowid').all(seq) as Array<{ rowid: number; body: string }>).flatMap((r) =>
          messagesOf(r.rowid, r.body).map(({ owedBy: _, ...m }) => m),
        ),
    };
    /** commits a row and the messages it owes */
    const commit = (body: string) =>
      opened.store.transact((tx) => {
        const seq = Number(tx.db.prepare('INSERT INTO things (body) VALUES (?)').run(body).lastInsertRowid);
        for (const m of messagesOf(seq, body)) tx.outbox(m);
      });
    /** a relay on this store, the rows of `things` registered as owing */
    const relayOf = (options?: OutboxRelayOptions) => {
      const relay = new OutboxRelay(opened.store, options);
      relay.registerOwed('things', source);
      return relay;
    };
    const settledThrough = () => Number(opened.db.prepare(`SELECT value FROM settings WHERE key = 'outbox.owed.things'`).pluck().get());
    const rows = () => opened.db.prepare('SELECT body, status, attempts, last_error FROM outbox ORDER BY id').all() as Array<{ body: string; status: string; attempts: number; last_error: string | null }>;
    return { ...opened, source, relayOf, commit, settledThrough, rows };
  }

  it('sends them without writing a row, and keeps in settings the row through which all are confirmed', async () => {
    const o = owingStore();
    const relay = o.relayOf();
    const sent: string[] = [];
    relay.attach('amqp', transportOf((m) => void sent.push(m.body)));
    relay.start();
    cleanups.push(() => relay.stop());
    await relay.flushed(2000);
    for (const body of ['r1', 'r2', 'r3']) o.commit(body);
    await relay.flushed(2000);
    expect(sent).toEqual(['r1-a', 'r1-b', 'r2-a', 'r2-b', 'r3-a', 'r3-b']);
    expect(o.rows()).toEqual([]);
    expect(o.settledThrough()).toBe(3);
    expect(relay.pendingCount()).toBe(0);
  });

  it('counts them as waiting while they are in hand, and tells flushed() only once they are confirmed', async () => {
    const o = owingStore();
    const relay = o.relayOf();
    const confirms: Array<() => void> = [];
    relay.attach('amqp', transportOf(() => new Promise<void>((resolve) => confirms.push(resolve))));
    relay.start();
    cleanups.push(() => relay.stop());
    o.commit('r1');
    await waitFor(() => confirms.length, (n) => n === 2);
    expect(relay.pendingCount()).toBe(2);
    expect(relay.owedInHand('amqp')).toBe(2);
    let flushed = false;
    const flushing = relay.flushed(2000).then(() => (flushed = true));
    await new Promise((r) => setTimeout(r, 60));
    expect(flushed).toBe(false);
    for (const c of confirms) c();
    await flushing;
    expect(o.settledThrough()).toBe(1);
  });

  it('writes one as a pending row when it has to wait: no transport, or a refusal, then sends it', async () => {
    const o = owingStore();
    const relay = o.relayOf({ retryBaseMs: 10 });
    relay.start();
    cleanups.push(() => relay.stop());
    // no transport attached: the messages are written as rows at once
    o.commit('offline');
    expect(o.rows()).toEqual([
      { body: 'offline-a', status: 'pending', attempts: 0, last_error: null },
      { body: 'offline-b', status: 'pending', attempts: 0, last_error: null },
    ]);
    const sent: string[] = [];
    let refusals = 0;
    relay.attach(
      'amqp',
      transportOf(async (m) => {
        if (m.body === 'nacked-a' && refusals++ === 0) throw new Error('the broker refused the message (nack)');
        sent.push(m.body);
      }),
    );
    await relay.flushed(2000);
    o.commit('nacked');
    await waitFor(() => sent.length, (n) => n === 4, 2000);
    await relay.flushed(2000);
    // the refused one got a row (retried, then sent); the one confirmed at once never had one
    expect(sent).toEqual(['offline-a', 'offline-b', 'nacked-b', 'nacked-a']);
    expect(o.rows()).toEqual([
      { body: 'offline-a', status: 'sent', attempts: 1, last_error: null },
      { body: 'offline-b', status: 'sent', attempts: 1, last_error: null },
      { body: 'nacked-a', status: 'sent', attempts: 2, last_error: null },
    ]);
    expect(o.settledThrough()).toBe(2);
  });

  it('gives those in hand to the table, in the order they were owed, when the transport goes away', async () => {
    const o = owingStore();
    const relay = o.relayOf();
    const gate: { open?: () => void } = {};
    const held = new Promise<void>((r) => (gate.open = r));
    relay.attach(
      'amqp',
      transportOf(() => held.then(() => Promise.reject(new Error('the broker connection was lost before the confirm')))),
    );
    relay.start();
    cleanups.push(() => relay.stop());
    o.commit('r1');
    o.commit('r2');
    relay.detach('amqp');
    gate.open!();
    await waitFor(() => o.rows().length, (n) => n === 4, 2000);
    expect(o.rows().map((r) => `${r.body} ${r.status}`)).toEqual(['r1-a pending', 'r1-b pending', 'r2-a pending', 'r2-b pending']);
    expect(relay.owedInHand('amqp')).toBe(0);
    expect(o.settledThrough()).toBe(2);
    const sent: string[] = [];
    relay.attach('amqp', transportOf((m) => void sent.push(m.body)));
    await waitFor(() => sent.length, (n) => n === 4, 5000);
    expect(sent).toEqual(['r1-a', 'r1-b', 'r2-a', 'r2-b']);
  });

  it('after a crash, writes again what the rows past the stored one owe, and sends it', async () => {
    const dir = tempDir();
    const first = owingStore(dir);
    const relay = first.relayOf();
    let confirmed = 0;
    relay.attach(
      'amqp',
      transportOf(() => (confirmed++ < 2 ? undefined : new Promise<void>(() => undefined))), // r1's two confirmed, then none
    );
    relay.start();
    first.commit('r1');
    await waitFor(() => first.settledThrough(), (s) => s === 1, 2000);
    first.commit('r2');
    first.commit('r3');
    await waitFor(() => confirmed, (n) => n === 6, 2000);
    first.db.close(); // the process dies: no stop, no confirm, no row for r2's and r3's answers

    const again = owingStore(dir);
    const next = again.relayOf();
    expect(again.rows().map((r) => `${r.body} ${r.status}`)).toEqual(['r2-a pending', 'r2-b pending', 'r3-a pending', 'r3-b pending']);
    expect(again.settledThrough()).toBe(3);
    const sent: string[] = [];
    next.attach('amqp', transportOf((m) => void sent.push(m.body)));
    next.start();
    cleanups.push(() => next.stop());
    await next.flushed(2000);
    expect(sent).toEqual(['r2-a', 'r2-b', 'r3-a', 'r3-b']);
  });

  it('writes a message that had to wait once: its row is not written again at the next start', async () => {
    const dir = tempDir();
    const first = owingStore(dir);
    const relay = first.relayOf();
    relay.attach('amqp', transportOf(() => undefined));
    relay.start();
    first.commit('r1');
    await relay.flushed(2000);
    await relay.stop();
    // committed after the relay stopped (a window drained at shutdown): written as rows, and the
    // settled seq moves past them in the same transaction
    first.commit('r2');
    expect(first.settledThrough()).toBe(2);
    first.db.close();

    const again = owingStore(dir);
    again.relayOf();
    expect(again.rows().map((r) => `${r.body} ${r.status}`)).toEqual(['r2-a pending', 'r2-b pending']);
  });

  it('starts from the rows there are when first registered: what they owed before had rows of its own', () => {
    const o = owingStore();
    o.db.prepare(`INSERT INTO things (body) VALUES ('old')`).run();
    const relay = o.relayOf();
    expect(o.rows()).toEqual([]);
    expect(o.settledThrough()).toBe(1);
    expect(() => relay.registerOwed('things', o.source)).toThrow(/registered twice/);
  });
});
