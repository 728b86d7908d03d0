/**
 * WAL checkpoints in a worker thread: the main connection's own (in-commit) checkpoint is kept for
 * backstop only, so a stream of commits must reach the database file through the worker.
 */
import fs from 'node:fs';
import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { WalCheckpointer } from '../../src-main/service/db/checkpoint';
import { openDatabase } from '../../src-main/service/db/database';
import { tempDir, waitFor } from '../helpers/util';

const cleanups: Array<() => void | Promise<void>> = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

describe('WAL checkpointer', () => {
  it('copies committed pages into the database file from a worker, a short while after the writes', async () => {
    const dir = tempDir();
    cleanups.push(() => fs.rmSync(dir, { recursive: true, force: true }));
    const file = path.join(dir, 'fonds.sqlite');
    const db = openDatabase(file);
    db.pragma('wal_autocheckpoint = 0'); // no backstop here: only the worker may checkpoint
    db.exec('CREATE TABLE t (id INTEGER PRIMARY KEY, v TEXT)');
    const checkpointer = new WalCheckpointer(file, 20);
    cleanups.push(() => {
      if (db.open) db.close();
    });
    cleanups.push(() => checkpointer.close());
    const sizeBefore = fs.statSync(file).size;
    const insert = db.prepare('INSERT INTO t (v) VALUES (?)');
    for (let i = 0; i < 20; i++) {
      db.transaction(() => {
        for (let j = 0; j < 100; j++) insert.run('x'.repeat(500));
      })();
      checkpointer.wrote();
    }
    // written to the WAL only, so far
    expect(fs.statSync(file).size).toBe(sizeBefore);
    const status = await waitFor(() => checkpointer.status(), (s) => s.runs > 0 && s.lastCheckpointed > 0, 5000);
    expect(status.lastError).toBeUndefined();
    expect(fs.statSync(file).size).toBeGreaterThan(sizeBefore + 20 * 100 * 500);
    // the data is whole when read from the file by another connection
    await checkpointer.close();
    db.close();
    const again = openDatabase(file);
    expect(again.prepare('SELECT count(*) FROM t').pluck().get()).toBe(2000);
    again.close();
  });

  it('does nothing while nothing is written, and closes at once', async () => {
    const dir = tempDir();
    cleanups.push(() => fs.rmSync(dir, { recursive: true, force: true }));
    const file = path.join(dir, 'fonds.sqlite');
    const db = openDatabase(file);
    cleanups.push(() => void db.close());
    db.exec('CREATE TABLE t (id INTEGER PRIMARY KEY)');
    const checkpointer = new WalCheckpointer(file, 10);
    await new Promise((r) => setTimeout(r, 100));
    expect(checkpointer.status().runs).toBe(0);
    await checkpointer.close();
    await checkpointer.close(); // twice is harmless
  });
});
