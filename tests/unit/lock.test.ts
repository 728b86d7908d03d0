/** The data-directory lock: one Fonds per data directory, across processes, in one process, across hosts. */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { LOCK_FILE, lockDataDir } from '../../src-main/service/lock';
import { repoRoot, tempDirs } from '../helpers/util';

const dir = tempDirs(afterEach);
const children: ChildProcess[] = [];
afterEach(() => {
  for (const c of children.splice(0)) if (c.exitCode === null) c.kill('SIGKILL');
});

/** A pid no process has any more. */
const deadPid = () => spawnSync(process.execPath, ['-e', '']).pid!;
const lockOf = (d: string) => path.join(d, LOCK_FILE);

/**
 * Each child tries every folder in turn, all children at the same moments (a spin on a shared start
 * time, one folder every 40 ms), and holds what it got until told to exit.
 */
const CHILD = `
const { lockDataDir } = await import(process.env.FONDS_LOCK_MODULE);
const dirs = JSON.parse(process.argv[1]);
const lines = [];
process.stdin.on('data', (d) => lines.push(...String(d).split('\\n').filter(Boolean)));
process.stdout.write('ready\\n');
while (!lines.length) await new Promise((r) => setTimeout(r, 5));
const start = Number(lines.shift());
const got = [];
for (const [i, d] of dirs.entries()) {
  while (Date.now() < start + i * 40) {}
  try {
    lockDataDir(d);
    got.push('GOT');
  } catch (e) {
    got.push('NO ' + e.code);
  }
}
process.stdout.write(JSON.stringify(got) + '\\n');
while (!lines.length) await new Promise((r) => setTimeout(r, 5));
process.exit(0);
`;

async function race(dirs: string[], processes: number): Promise<string[][]> {
  const runs = Array.from({ length: processes }, () => {
    const child = spawn(process.execPath, ['--import', 'tsx', '--input-type=module', '-e', CHILD, JSON.stringify(dirs)], {
      cwd: repoRoot,
      env: { ...process.env, FONDS_LOCK_MODULE: path.join(repoRoot, 'src-main/service/lock.ts') },
      stdio: ['pipe', 'pipe', 'pipe'],
    });
    children.push(child);
    let out = '';
    child.stdout!.on('data', (d) => (out += d));
    child.stderr!.on('data', (d) => (out += d));
    const until = (re: RegExp) =>
      new Promise<string>((resolve, reject) => {
        const check = () => {
          const m = re.exec(out);
          if (m) resolve(m[0]);
          else if (child.exitCode !== null) reject(new Error(`lock child exited: ${out}`));
          else setTimeout(check, 10);
        };
        check();
      });
    return { child, until };
  });
  await Promise.all(runs.map((r) => r.until(/^ready$/m)));
  const start = Date.now() + 300;
  for (const r of runs) r.child.stdin!.write(`${start}\n`);
  const results = await Promise.all(runs.map(async (r) => JSON.parse(await r.until(/^\[.*\]$/m)) as string[]));
  for (const r of runs) r.child.stdin!.write('exit\n');
  await Promise.all(runs.map((r) => (r.child.exitCode !== null ? undefined : new Promise((ok) => r.child.once('exit', ok)))));
  return results;
}

describe('the data-directory lock between processes', () => {
  it('is held by exactly one of several processes starting at once: on a free folder, over a dead process’s lock, over an empty one a power cut left', async () => {
    const free = Array.from({ length: 6 }, () => dir());
    const stale = Array.from({ length: 6 }, () => {
      const d = dir();
      fs.writeFileSync(lockOf(d), JSON.stringify({ pid: deadPid(), host: os.hostname(), since: '2020-01-01T00:00:00.000Z' }));
      return d;
    });
    const empty = Array.from({ length: 6 }, () => {
      const d = dir();
      fs.writeFileSync(lockOf(d), '');
      const old = new Date(Date.now() - 60_000);
      fs.utimesSync(lockOf(d), old, old);
      return d;
    });
    const dirs = [...free, ...stale, ...empty];
    const results = await race(dirs, 4);
    for (const [i, d] of dirs.entries()) {
      const outcomes = results.map((r) => r[i]).sort();
      expect(outcomes, `${d} (${i < 6 ? 'free' : i < 12 ? 'stale' : 'empty'})`).toEqual(['GOT', 'NO CONFLICT', 'NO CONFLICT', 'NO CONFLICT']);
      // the holder's own lock, whole, and nothing else left beside it
      expect(JSON.parse(fs.readFileSync(lockOf(d), 'utf8'))).toMatchObject({ host: os.hostname(), token: expect.any(String) });
      expect(fs.readdirSync(d)).toEqual([LOCK_FILE]);
    }
  }, 60_000);
});

describe('the data-directory lock in this process', () => {
  it('refuses a second holder in the same process, and leaves the first one its lock', () => {
    const d = dir();
    const release = lockDataDir(d);
    const before = fs.readFileSync(lockOf(d), 'utf8');
    expect(() => lockDataDir(d)).toThrow(expect.objectContaining({ code: 'CONFLICT', message: expect.stringContaining('already open in this process') }));
    expect(fs.readFileSync(lockOf(d), 'utf8')).toBe(before);
    release();
    expect(fs.existsSync(lockOf(d))).toBe(false);
    lockDataDir(d)();
  });

  it('refuses a lock of a live process, naming it', async () => {
    const d = dir();
    const sleeper = spawn(process.execPath, ['-e', 'setTimeout(() => {}, 60000)']);
    children.push(sleeper);
    fs.writeFileSync(lockOf(d), JSON.stringify({ pid: sleeper.pid, host: os.hostname(), since: '2024-01-01T00:00:00.000Z' }));
    expect(() => lockDataDir(d)).toThrow(expect.objectContaining({ code: 'CONFLICT', message: expect.stringContaining(`Another Fonds (process ${sleeper.pid}, since 2024-01-01T00:00:00.000Z)`) }));
    expect(JSON.parse(fs.readFileSync(lockOf(d), 'utf8')).pid).toBe(sleeper.pid);
  });

  it('never removes the lock of another host: refuses, naming host and pid, and says how to remove it', () => {
    const d = dir();
    const foreign = JSON.stringify({ pid: deadPid(), host: 'archive-pc-2', since: '2024-01-01T00:00:00.000Z' });
    fs.writeFileSync(lockOf(d), foreign);
    let err: Error | undefined;
    try {
      lockDataDir(d);
    } catch (e) {
      err = e as Error;
    }
    expect(err).toMatchObject({ code: 'CONFLICT' });
    expect(err!.message).toContain('locked by Fonds on the computer archive-pc-2 (process');
    expect(err!.message).toContain(`If no Fonds runs on archive-pc-2 with this folder any more, delete ${lockOf(d)} and start again.`);
    expect(fs.readFileSync(lockOf(d), 'utf8')).toBe(foreign);
  });

  it('takes over the lock of a dead process, and one with this pid left by an earlier process (a container restarted)', () => {
    for (const pid of [deadPid(), process.pid]) {
      const d = dir();
      fs.writeFileSync(lockOf(d), JSON.stringify({ pid, host: os.hostname(), since: '2020-01-01T00:00:00.000Z', token: 'of-an-earlier-process' }));
      const release = lockDataDir(d);
      expect(JSON.parse(fs.readFileSync(lockOf(d), 'utf8'))).toMatchObject({ pid: process.pid, host: os.hostname() });
      expect(fs.readdirSync(d)).toEqual([LOCK_FILE]);
      release();
    }
  });

  it('does not take over an empty lock that may be being written; does once it is old (a power cut)', () => {
    const d = dir();
    fs.writeFileSync(lockOf(d), '');
    expect(() => lockDataDir(d)).toThrow(expect.objectContaining({ code: 'CONFLICT', message: expect.stringContaining('is being locked by another process') }));
    expect(fs.readFileSync(lockOf(d), 'utf8')).toBe('');
    const old = new Date(Date.now() - 60_000);
    fs.utimesSync(lockOf(d), old, old);
    const release = lockDataDir(d);
    expect(JSON.parse(fs.readFileSync(lockOf(d), 'utf8')).pid).toBe(process.pid);
    release();
  });
});
