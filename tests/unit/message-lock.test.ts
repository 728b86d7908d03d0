/** The message directory lock: atomic creation, waiting, naming the holder, stale takeover, renewal. */
import fs from 'node:fs';
import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { DirectoryLock, LOCK_FILE } from '../../src-main/service/messages/lock';
import { FondsError } from '../../src-shared/errors';
import { tempDirs } from '../helpers/util';

const dir = tempDirs(afterEach);

describe('the message directory lock', () => {
  it('is a file with owner and expiry, removed on release', async () => {
    const d = dir();
    const lock = new DirectoryLock(d, 'Fonds A', 5000);
    const held = await lock.acquire('purge', 0);
    const body = JSON.parse(fs.readFileSync(path.join(d, LOCK_FILE), 'utf8'));
    expect(body).toMatchObject({ owner: 'Fonds A', pid: process.pid, purpose: 'purge' });
    expect(Date.parse(body.expiresAt) - Date.now()).toBeGreaterThan(4000);
    held.assertHeld();
    await held.release();
    expect(fs.existsSync(path.join(d, LOCK_FILE))).toBe(false);
  });

  it('refuses a second holder, naming the first, after waiting', async () => {
    const d = dir();
    const a = await new DirectoryLock(d, 'Fonds A', 5000).acquire('purge', 0);
    const t0 = Date.now();
    const err = await new DirectoryLock(d, 'Fonds B', 5000).acquire('write X', 300).catch((e: unknown) => e);
    expect(Date.now() - t0).toBeGreaterThanOrEqual(290);
    expect(err).toBeInstanceOf(FondsError);
    expect((err as FondsError).code).toBe('CONFLICT');
    expect((err as FondsError).message).toMatch(/is locked by Fonds A on .+ \(process \d+\) for purge since /);
    await a.release();
  });

  it('waits for the holder to release, then takes it', async () => {
    const d = dir();
    const a = await new DirectoryLock(d, 'Fonds A', 5000).acquire('purge', 0);
    setTimeout(() => void a.release(), 200);
    const b = await new DirectoryLock(d, 'Fonds B', 5000).acquire('purge', 5000);
    expect(JSON.parse(fs.readFileSync(path.join(d, LOCK_FILE), 'utf8')).owner).toBe('Fonds B');
    await b.release();
  });

  it('lets only one of many contenders hold it at a time', async () => {
    const d = dir();
    let inside = 0;
    let most = 0;
    await Promise.all(
      Array.from({ length: 8 }, async (_, i) => {
        const held = await new DirectoryLock(d, `Fonds ${i}`, 5000).acquire('purge', 20_000);
        inside++;
        most = Math.max(most, inside);
        await new Promise((r) => setTimeout(r, 20));
        inside--;
        await held.release();
      }),
    );
    expect(most).toBe(1);
  });

  it('takes over a stale lock (its holder died), once, even when several try at once', async () => {
    const d = dir();
    fs.writeFileSync(
      path.join(d, LOCK_FILE),
      JSON.stringify({ token: 'dead', owner: 'Fonds dead', host: 'elsewhere', pid: 1, purpose: 'purge', acquiredAt: '2020-01-01T00:00:00Z', expiresAt: '2020-01-01T00:01:00Z' }),
    );
    let inside = 0;
    let most = 0;
    const owners: string[] = [];
    await Promise.all(
      Array.from({ length: 4 }, async (_, i) => {
        const held = await new DirectoryLock(d, `Fonds ${i}`, 5000).acquire('purge', 20_000);
        inside++;
        most = Math.max(most, inside);
        owners.push(held.holder.owner);
        await new Promise((r) => setTimeout(r, 30));
        inside--;
        await held.release();
      }),
    );
    expect(most).toBe(1);
    expect(owners.sort()).toEqual(['Fonds 0', 'Fonds 1', 'Fonds 2', 'Fonds 3']);
  });

  it('is renewed while held, and knows when it was lost', async () => {
    const d = dir();
    const held = await new DirectoryLock(d, 'Fonds A', 1500).acquire('purge', 0);
    const first = JSON.parse(fs.readFileSync(path.join(d, LOCK_FILE), 'utf8')).expiresAt;
    await new Promise((r) => setTimeout(r, 700));
    const renewed = JSON.parse(fs.readFileSync(path.join(d, LOCK_FILE), 'utf8')).expiresAt;
    expect(Date.parse(renewed)).toBeGreaterThan(Date.parse(first));
    held.assertHeld();
    // someone removed it and another instance took it
    fs.rmSync(path.join(d, LOCK_FILE));
    const other = await new DirectoryLock(d, 'Fonds B', 1500).acquire('purge', 0);
    await new Promise((r) => setTimeout(r, 700));
    expect(() => held.assertHeld()).toThrowError(/The message directory lock was lost \(taken over by Fonds B/);
    await held.release();
    expect(fs.existsSync(path.join(d, LOCK_FILE))).toBe(true); // B's lock is left alone
    await other.release();
  });
});
