/**
 * kill -9 at random moments: an execution killed again and again ends complete and verified, every
 * file stored once, nothing left half-written, and no file that was verified before a kill copied again.
 */
import { ListObjectsV2Command, S3Client } from '@aws-sdk/client-s3';
import Database from 'better-sqlite3';
import { spawn } from 'node:child_process';
import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { startS3, type S3Server } from '../helpers/s3';
import { repoRoot, startService, tempDirs } from '../helpers/service';

const dir = tempDirs(afterEach);
let s3: S3Server;
beforeAll(async () => {
  s3 = await startS3('fonds-crash');
});
afterAll(async () => {
  await s3?.stop();
});

/**
 * Runs the child; kills it `kill.ms` after it started, or as soon as it reports `kill.files` files
 * done, whichever comes first (undefined: let it finish).
 */
function runChild(dataDir: string, executionId: string, overrides: object, kill: { ms: number; files: number } | undefined): Promise<string> {
  return new Promise((resolve) => {
    const child = spawn(process.execPath, ['--import', 'tsx', path.join(repoRoot, 'tests/helpers/execute-child.ts'), dataDir, executionId, JSON.stringify(overrides)], {
      cwd: repoRoot,
      stdio: ['ignore', 'pipe', 'inherit'],
    });
    let out = '';
    let armed = false;
    let reached = false;
    child.stdout!.on('data', (d) => {
      out += d;
      if (!kill) return;
      if (!armed && out.includes('started')) {
        armed = true;
        setTimeout(() => child.kill('SIGKILL'), kill.ms);
      }
      const files = [...out.matchAll(/verified (\d+)/g)].map((m) => Number(m[1]));
      // past the target, a little later: before or after the next commit
      if (files.length && files[files.length - 1] >= kill.files && !reached) {
        reached = true;
        setTimeout(() => child.kill('SIGKILL'), Math.floor(Math.random() * 250));
      }
    });
    child.once('exit', () => resolve(out));
  });
}

/** The files the execution has verified so far, read from its database as the next start will. */
function verifiedSoFar(dataDir: string, executionId: string): string[] {
  const db = new Database(path.join(dataDir, 'fonds.sqlite'), { readonly: true, fileMustExist: true });
  try {
    return db.prepare(`SELECT path FROM execution_files WHERE execution_id = ? AND status = 'verified'`).pluck().all(executionId) as string[];
  } finally {
    db.close();
  }
}

/** `count` files, a quarter of them large (16 MiB: several S3 parts, seconds of copying in all) among small ones. */
function makeTree(count: number): { tree: string; expected: Map<string, string> } {
  const tree = dir();
  const expected = new Map<string, string>();
  for (let i = 0; i < count; i++) {
    const data = crypto.randomBytes(i % 4 === 0 ? 16 * 1024 * 1024 + i : 48 * 1024 + i);
    const name = `d${i % 4}/f${String(i).padStart(3, '0')}.bin`;
    fs.mkdirSync(path.join(tree, path.dirname(name)), { recursive: true });
    fs.writeFileSync(path.join(tree, name), data);
    expected.set(name, crypto.createHash('md5').update(data).digest('hex'));
  }
  return { tree, expected };
}

async function prepare(tree: string, overrides: object): Promise<{ dataDir: string; executionId: string; storedDataId: string }> {
  const dataDir = dir();
  const { service } = await startService({ dataDir, ...overrides });
  const u = await service.call('uploads.ingestPaths', { paths: [tree] });
  await service.idle();
  const e = await service.call('executions.create', { processing: 'archive-to-archive', inputs: { upload: [u._id] }, output: { stored_data: { name: 'crash' } } });
  await service.close();
  return { dataDir, executionId: e._id, storedDataId: e.output.stored_data._id };
}

/**
 * Kills the child 12 times at random moments, checking after each kill that what was verified
 * before is not copied again (`copiedAgain` tells which files the last run wrote), then lets it end.
 */
async function killRepeatedly(dataDir: string, executionId: string, overrides: object, wroteDuringRun: (before: Set<string>) => Promise<string[]>) {
  const kills: number[] = [];
  let midway = 0;
  let progressed = 0;
  let before = new Set<string>();
  for (let run = 0; run < 12; run++) {
    // a random moment: every fourth run a delay after the start (during the resume itself, or the
    // first copies), the others a little after a few more files are copied (before or after their
    // commit, every 100 ms). Not a larger step: all the files are copied at once, and a run that
    // reaches the end was not killed midway.
    const delay = run % 4 === 0 ? Math.floor(Math.random() * 1200) : 10_000;
    const files = before.size + 1 + Math.floor(Math.random() * 3);
    kills.push(delay);
    const out = await runChild(dataDir, executionId, overrides, { ms: delay, files });
    if (!out.includes('done')) midway++;
    const rewritten = await wroteDuringRun(before);
    expect(rewritten, `run ${run} (killed after ${delay} ms or ${files} files) copied files verified before it`).toEqual([]);
    const now = new Set(verifiedSoFar(dataDir, executionId));
    for (const p of before) expect(now.has(p), `${p} was verified, then lost`).toBe(true);
    if (now.size > before.size) progressed++;
    before = now;
  }
  expect(midway, `kills after ${kills.join(', ')} ms`).toBeGreaterThanOrEqual(6);
  expect(progressed, `kills after ${kills.join(', ')} ms`).toBeGreaterThanOrEqual(1);
  const last = await runChild(dataDir, executionId, overrides, undefined);
  expect(last, `kills after ${kills.join(', ')} ms`).toContain('done SUCCESS');
  expect(await wroteDuringRun(before)).toEqual([]);
}

async function expectComplete(dataDir: string, executionId: string, overrides: object, expected: Map<string, string>) {
  const { service, dispose } = await startService({ dataDir, ...overrides });
  try {
    const e = await service.call('executions.get', { id: executionId });
    expect(e.status).toBe('SUCCESS');
    expect(e.files).toMatchObject({ total: expected.size, verified: expected.size, failed: 0, pending: 0 });
    const sd = await service.call('storedData.get', { id: e.output.stored_data._id });
    expect(sd).toMatchObject({ status: 'GENERATED', verified: true, type_infos: { files_number: expected.size } });
    const files = await service.call('storedData.files', { id: sd._id, limit: 1000 });
    expect(new Map(files.items.map((f) => [f.path, f.md5]))).toEqual(expected);
  } finally {
    await dispose();
  }
}

describe('an execution killed with SIGKILL at random points', () => {
  it('into local storage: resumes each time, ends complete and verified, nothing duplicated or copied twice', async () => {
    // twice the files of the S3 case: local copies are fast, and 12 kills need somewhere to land
    const { tree, expected } = makeTree(160);
    const { dataDir, executionId, storedDataId } = await prepare(tree, { storageCommitMs: 100 });
    const root = path.join(dataDir, 'storage', storedDataId);
    // a verified file is never rewritten: its inode (the rename of a new copy makes a new one) stays
    const inodes = new Map<string, number>();
    await killRepeatedly(dataDir, executionId, { storageCommitMs: 100 }, async (before) => {
      const rewritten: string[] = [];
      for (const p of before) {
        const ino = fs.statSync(path.join(root, p)).ino;
        if (inodes.has(p) && inodes.get(p) !== ino) rewritten.push(p);
        inodes.set(p, ino);
      }
      for (const p of verifiedSoFar(dataDir, executionId)) if (!inodes.has(p)) inodes.set(p, fs.statSync(path.join(root, p)).ino);
      return rewritten;
    });
    const onDisk = (fs.readdirSync(root, { recursive: true }) as string[]).filter((p) => fs.statSync(path.join(root, p)).isFile()).sort();
    expect(onDisk, 'no temporary file left, no extra file').toEqual([...expected.keys()].sort());
    for (const [p, sum] of expected) expect(crypto.createHash('md5').update(fs.readFileSync(path.join(root, p))).digest('hex')).toBe(sum);
    await expectComplete(dataDir, executionId, {}, expected);
  }, 600_000);

  it('into S3: resumes each time, ends complete and verified, no object or multipart upload left over', async () => {
    const overrides = {
      storage: 's3',
      s3Endpoint: s3.endpoint,
      s3Bucket: s3.bucket,
      s3Prefix: 'crash',
      s3AccessKeyId: s3.accessKeyId,
      s3SecretAccessKey: s3.secretAccessKey,
      s3PartSizeMb: 5,
      s3QueueSize: 2,
      storageCommitMs: 100,
    };
    const { tree, expected } = makeTree(80);
    const { dataDir, executionId, storedDataId } = await prepare(tree, overrides);
    let seen = 0;
    await killRepeatedly(dataDir, executionId, overrides, async (before) => {
      // every PUT the server answered since the last run: none may be of a file verified before
      const puts = s3.puts.slice(seen);
      seen = s3.puts.length;
      return [...new Set(puts.map((p) => p.key.slice(`crash/${storedDataId}/`.length)).filter((p) => before.has(p)))];
    });
    await expectComplete(dataDir, executionId, overrides, expected);
    const client = new S3Client({ region: 'us-east-1', endpoint: s3.endpoint, forcePathStyle: true, credentials: { accessKeyId: s3.accessKeyId, secretAccessKey: s3.secretAccessKey } });
    const listed = await client.send(new ListObjectsV2Command({ Bucket: s3.bucket, Prefix: `crash/${storedDataId}/` }));
    client.destroy();
    expect((listed.Contents ?? []).map((o) => o.Key!.slice(`crash/${storedDataId}/`.length)).sort()).toEqual([...expected.keys()].sort());
    expect(s3.incompleteUploads(), 'incomplete multipart uploads left by the kills were aborted on resume').toEqual([]);
  }, 600_000);
});
