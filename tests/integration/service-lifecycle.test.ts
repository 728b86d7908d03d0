/** The service's shutdown: one shutdown however many callers ask for it, nothing served after it. */
import fs from 'node:fs';
import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { startService } from '../helpers/service';

const cleanups: Array<() => void | Promise<void>> = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

describe('service shutdown', () => {
  it('makes every caller of close() wait for the same shutdown, and refuses commands after it', async () => {
    const s = await startService({ messageWatch: false, hashWorkers: 1 });
    cleanups.push(s.dispose);
    const lock = path.join(s.dataDir, 'fonds.lock');
    expect(fs.existsSync(lock)).toBe(true);

    // a window closing and a signal at the same moment: the second caller must not go on
    // (and, say, remove the data directory) while the first is still closing the database
    const first = s.service.close();
    const second = s.service.close();
    await second;
    expect(fs.existsSync(lock)).toBe(false);
    await first;

    await expect(s.service.call('uploads.list', {})).rejects.toMatchObject({ code: 'UNAVAILABLE' });
    await expect(s.service.close()).resolves.toBeUndefined();
  });
});

describe('one service per data directory', () => {
  it('refuses a second service on a data directory this process has open, and the first keeps its lock', async () => {
    const s = await startService({ messageWatch: false, hashWorkers: 1 });
    cleanups.push(s.dispose);
    const lock = path.join(s.dataDir, 'fonds.lock');
    const held = fs.readFileSync(lock, 'utf8');
    await expect(startService({ dataDir: s.dataDir, messageWatch: false, hashWorkers: 1 })).rejects.toMatchObject({
      code: 'CONFLICT',
      message: expect.stringContaining(`The data directory ${s.dataDir} is already open in this process`),
    });
    expect(fs.readFileSync(lock, 'utf8')).toBe(held);
    expect((await s.service.call('uploads.list', {})).total).toBe(0);
  });
});
