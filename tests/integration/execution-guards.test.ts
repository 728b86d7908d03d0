/**
 * What an execution protects: a retry never puts an older delivery over a file a newer execution
 * stored since, and an upload is not checked again while an execution reads it.
 */
import Database from 'better-sqlite3';
import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import type { Service } from '../../src-main/service';
import { sparseFile, startService, tempDirs, testHarness, waitFor, writeTree } from '../helpers/service';

const { cleanups, start: service } = testHarness(afterEach);
const dir = tempDirs(afterEach);
const md5 = (s: string | Buffer) => crypto.createHash('md5').update(s).digest('hex');

/** Ingests the files of `root` and returns the CLOSED upload's id. */
async function ingest(s: Service, root: string): Promise<string> {
  const u = await s.call('uploads.ingestPaths', { paths: [root] });
  await s.idle();
  expect((await s.call('uploads.get', { id: u._id })).status).toBe('CLOSED');
  return u._id;
}

async function delivery(s: Service, files: Record<string, string | Buffer>): Promise<{ root: string; upload: string }> {
  const root = dir();
  writeTree(root, files);
  return { root, upload: await ingest(s, root) };
}

function create(s: Service, upload: string, output: { name: string } | { _id: string }) {
  return s.call('executions.create', {
    processing: 'archive-to-archive',
    inputs: { upload: [upload] },
    output: { stored_data: 'name' in output ? { name: output.name, storage_tags: ['ARCHIVE'] } : output },
  });
}

async function run(s: Service, upload: string, output: { name: string } | { _id: string }) {
  const e = await create(s, upload, output);
  await s.call('executions.launch', { id: e._id });
  await s.idle();
  return s.call('executions.get', { id: e._id });
}

/** A delivery whose file `rel` is changed after its check: the execution from it fails that file. */
async function failingOn(s: Service, files: Record<string, string>, rel: string, output: { name: string } | { _id: string }) {
  const { root, upload } = await delivery(s, files);
  fs.writeFileSync(path.join(root, rel), 'changed after the check');
  const e = await run(s, upload, output);
  expect(e.status).toBe('FAILURE');
  expect((await s.call('executions.files', { id: e._id, status: 'failed' })).items.map((f) => f.path)).toEqual([rel]);
  return { e, restore: () => fs.writeFileSync(path.join(root, rel), files[rel]) };
}

const storedMd5 = async (s: Service, sdId: string) => new Map((await s.call('storedData.files', { id: sdId, limit: 100 })).items.map((f) => [f.path, f.md5]));

describe('retrying an older failed execution', () => {
  it('is refused, naming the newer execution and the file, when a newer execution stored that file since', async () => {
    const { service: s, dataDir } = await service();
    const older = await failingOn(s, { 'map.tif': 'v1, the older delivery', 'notes.txt': 'n' }, 'map.tif', { name: 'Maps' });
    const sdId = older.e.output.stored_data._id;
    const newer = await run(s, (await delivery(s, { 'map.tif': 'v2, the newer delivery' })).upload, { _id: sdId });
    expect(newer.status).toBe('SUCCESS');
    older.restore(); // the cause of the failure is fixed: nothing but the newer execution stands in the way

    await expect(s.call('executions.retryFailed', { id: older.e._id })).rejects.toMatchObject({
      code: 'CONFLICT',
      message: expect.stringMatching(new RegExp(`^Execution ${older.e._id} cannot be retried: execution ${newer._id}, launched after it, stored map\\.tif in stored data 'Maps'`)),
      details: { execution: older.e._id, newerExecution: newer._id, storedData: sdId, paths: ['map.tif'], files: 1 },
    });
    await s.idle();
    // nothing changed: the newer version is on disk and in the catalogue, the older execution is as it was
    expect(fs.readFileSync(path.join(dataDir, 'storage', sdId, 'map.tif'), 'utf8')).toBe('v2, the newer delivery');
    expect((await storedMd5(s, sdId)).get('map.tif')).toBe(md5('v2, the newer delivery'));
    const again = await s.call('executions.get', { id: older.e._id });
    expect(again).toMatchObject({ status: 'FAILURE', files: { verified: 1, failed: 1, pending: 0 } });
    expect((await s.call('executions.timeline', { id: older.e._id, limit: 100 })).items.map((x) => x.type)).not.toContain('retry');
    expect(await s.call('storedData.get', { id: sdId })).toMatchObject({ status: 'GENERATED', verified: true });
  });

  it('copies a file again when the newer execution stored other files only', async () => {
    const { service: s, dataDir } = await service();
    const first = await run(s, (await delivery(s, { 'map.tif': 'v0, before both' })).upload, { name: 'Maps' });
    const sdId = first.output.stored_data._id;
    const older = await failingOn(s, { 'map.tif': 'v1, the older delivery' }, 'map.tif', { _id: sdId });
    expect((await run(s, (await delivery(s, { 'other.txt': 'o' })).upload, { _id: sdId })).status).toBe('SUCCESS');
    older.restore();
    await s.call('executions.retryFailed', { id: older.e._id });
    await s.idle();
    expect((await s.call('executions.get', { id: older.e._id })).status).toBe('SUCCESS');
    // the version stored before the older execution ran is replaced by it, as a launch would have
    expect(fs.readFileSync(path.join(dataDir, 'storage', sdId, 'map.tif'), 'utf8')).toBe('v1, the older delivery');
    expect(await storedMd5(s, sdId)).toEqual(new Map([['map.tif', md5('v1, the older delivery')], ['other.txt', md5('o')]]));
  });

  it('copies a file again when the other execution stored it before, even if that one was retried since', async () => {
    const { service: s, dataDir } = await service();
    // the other execution stores map.tif, fails on q.txt; the older one fails on map.tif; the other is retried (q.txt only)
    const other = await failingOn(s, { 'map.tif': 'from the other, first', 'q.txt': 'q' }, 'q.txt', { name: 'Maps' });
    const sdId = other.e.output.stored_data._id;
    const older = await failingOn(s, { 'map.tif': 'from the older, launched after it' }, 'map.tif', { _id: sdId });
    other.restore();
    await s.call('executions.retryFailed', { id: other.e._id });
    await s.idle();
    expect((await s.call('executions.get', { id: other.e._id })).status).toBe('SUCCESS');
    older.restore();
    await s.call('executions.retryFailed', { id: older.e._id });
    await s.idle();
    expect((await s.call('executions.get', { id: older.e._id })).status).toBe('SUCCESS');
    expect(fs.readFileSync(path.join(dataDir, 'storage', sdId, 'map.tif'), 'utf8')).toBe('from the older, launched after it');
  });
});

describe('retrying, on a data directory from before the write order was kept', () => {
  it('is refused over a file a newer execution stored before the upgrade', async () => {
    const dataDir = dir();
    let older: { e: { _id: string }; restore: () => void };
    let newerId: string;
    {
      const { service: s } = await startService({ dataDir });
      older = await failingOn(s, { 'map.tif': 'v1, the older delivery' }, 'map.tif', { name: 'Maps' });
      const sdId = (await s.call('executions.get', { id: older.e._id })).output.stored_data._id;
      newerId = (await run(s, (await delivery(s, { 'map.tif': 'v2, the newer delivery' })).upload, { _id: sdId }))._id;
      await s.close();
    }
    // the schema as it was before processing/002_write_order, with what the runs above did
    const db = new Database(path.join(dataDir, 'fonds.sqlite'));
    db.exec(`ALTER TABLE executions DROP COLUMN launch_seq; ALTER TABLE stored_files DROP COLUMN written_by; ALTER TABLE stored_files DROP COLUMN written_seq;
             DELETE FROM schema_migrations WHERE id = 'processing/002_write_order';`);
    db.close();
    const { service: s, dispose } = await startService({ dataDir });
    cleanups.push(dispose);
    older.restore();
    await expect(s.call('executions.retryFailed', { id: older.e._id })).rejects.toMatchObject({
      code: 'CONFLICT',
      details: { newerExecution: newerId, paths: ['map.tif'] },
    });
  });
});

describe('checking an upload again while an execution reads it', () => {
  /**
   * One job at a time: an execution copying a large file (PROGRESS) holds the only job slot, so an
   * execution launched meanwhile stays WAITING, and so does a check started meanwhile. The uploads
   * the test uses are checked before.
   */
  async function occupyJobs(s: Service) {
    const big = sparseFile(path.join(dir(), 'big.bin'), 512 * 1024 * 1024);
    const copying = await ingest(s, big);
    const busy = await create(s, copying, { name: 'Big' });
    await s.call('executions.launch', { id: busy._id });
    await waitFor(() => s.call('executions.get', { id: busy._id }), (e) => e.status === 'PROGRESS');
    return { copying, busy };
  }

  it('is refused while an execution that reads the upload is WAITING or PROGRESS, naming it, and changes nothing', async () => {
    const { service: s } = await service({ jobConcurrency: 1 });
    const { upload } = await delivery(s, { 'a.txt': 'a' });
    const { copying, busy } = await occupyJobs(s);
    const waiting = await create(s, upload, { name: 'Waits' });
    await s.call('executions.launch', { id: waiting._id });
    expect((await s.call('executions.get', { id: waiting._id })).status).toBe('WAITING');
    const before = await s.call('uploads.get', { id: upload });
    const eventsBefore = (await s.call('uploads.timeline', { id: upload, limit: 100 })).total;

    await expect(s.call('uploads.recheck', { id: upload })).rejects.toMatchObject({
      code: 'CONFLICT',
      message: `Upload '${before.name}' is being read by execution ${waiting._id} (WAITING); check it again once that execution has ended, or cancel it first.`,
      details: { upload, execution: waiting._id, status: 'WAITING' },
    });
    await expect(s.call('uploads.recheck', { id: copying })).rejects.toMatchObject({
      code: 'CONFLICT',
      message: expect.stringContaining(`is being read by execution ${busy._id} (PROGRESS)`),
    });
    expect((await s.call('executions.get', { id: waiting._id })).status).toBe('WAITING');
    expect((await s.call('executions.get', { id: busy._id })).status).toBe('PROGRESS');
    expect(await s.call('uploads.get', { id: upload })).toEqual(before);
    expect((await s.call('uploads.timeline', { id: upload, limit: 100 })).total).toBe(eventsBefore);

    await s.idle(120_000);
    expect((await s.call('executions.get', { id: waiting._id })).status).toBe('SUCCESS');
    // once the execution has ended the upload can be checked again
    expect((await s.call('uploads.recheck', { id: upload })).status).toBe('CHECKING');
    await s.idle();
    expect((await s.call('uploads.get', { id: upload })).status).toBe('CLOSED');
  }, 120_000);

  it('is allowed after a failed execution, and that execution is not retried while the check runs', async () => {
    const { service: s } = await service({ jobConcurrency: 1 });
    const root = dir();
    writeTree(root, { 'a.txt': 'a' });
    const upload = await ingest(s, root);
    await occupyJobs(s);
    // no copy can run until the big one is done: cancel the execution before it starts (a FAILURE)
    const e = await create(s, upload, { name: 'Cancelled' });
    await s.call('executions.launch', { id: e._id });
    await s.call('executions.cancel', { id: e._id });
    expect((await s.call('executions.get', { id: e._id })).status).toBe('FAILURE');
    expect((await s.call('uploads.recheck', { id: upload })).status).toBe('CHECKING');
    await expect(s.call('executions.retryFailed', { id: e._id })).rejects.toMatchObject({
      code: 'CONFLICT',
      message: expect.stringContaining(`Upload '${path.basename(root)}' is being checked; retry execution ${e._id} once the check has ended.`),
      details: { upload, execution: e._id },
    });
    expect((await s.call('executions.get', { id: e._id })).status).toBe('FAILURE');
    await s.idle(120_000);
    expect((await s.call('uploads.get', { id: upload })).status).toBe('CLOSED');
    await s.call('executions.retryFailed', { id: e._id });
    await s.idle();
    expect((await s.call('executions.get', { id: e._id })).status).toBe('SUCCESS');
  }, 120_000);
});
