import { spawnSync } from 'node:child_process';
import crypto from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import type { Service } from '../../src-main/service';
import { startHttpServer } from '../../src-main/transport/http';
import { startService, tempDirs, writeTree } from '../helpers/service';

const cleanups: Array<() => void | Promise<void>> = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});
const dir = tempDirs(afterEach);
const md5 = (s: string | Buffer) => crypto.createHash('md5').update(s).digest('hex');

async function service(overrides = {}): Promise<{ service: Service; dataDir: string }> {
  const s = await startService(overrides);
  cleanups.push(s.dispose);
  return s;
}

/** Ingests a tree and returns the CLOSED upload's id. */
async function checkedUpload(s: Service, files: Record<string, string | Buffer>): Promise<string> {
  const root = dir();
  writeTree(root, files);
  const u = await s.call('uploads.ingestPaths', { paths: [root] });
  await s.idle();
  return u._id;
}

async function runExecution(s: Service, uploads: string[], output: { name: string } | { _id: string }) {
  const e = await s.call('executions.create', {
    processing: 'archive-to-archive',
    inputs: { upload: uploads },
    output: { stored_data: 'name' in output ? { name: output.name, storage_tags: ['ARCHIVE'] } : output },
  });
  expect(e.status).toBe('CREATED');
  await s.call('executions.launch', { id: e._id });
  await s.idle();
  return s.call('executions.get', { id: e._id });
}

describe('archive-to-archive into local storage', () => {
  it('copies every file, verifies fixity, and generates the stored data', async () => {
    const { service: s, dataDir } = await service();
    const up = await checkedUpload(s, { 'a.txt': 'alpha', 'sub/b.bin': crypto.randomBytes(3 * 1024 * 1024) });
    const e = await runExecution(s, [up], { name: 'Données départementales' });
    expect(e.status).toBe('SUCCESS');
    expect(e.files).toMatchObject({ total: 2, verified: 2, failed: 0 });
    expect(e.creation <= e.launch! && e.launch! <= e.start! && e.start! <= e.finish!).toBe(true);
    const sd = await s.call('storedData.get', { id: e.output.stored_data._id });
    expect(sd).toMatchObject({ name: 'Données départementales', type: 'ARCHIVE', status: 'GENERATED', verified: true, type_infos: { files_number: 2 }, storage: { type: 'FILESYSTEM' } });
    const stored = path.join(dataDir, 'storage', sd._id, 'a.txt');
    expect(fs.readFileSync(stored, 'utf8')).toBe('alpha');
    const files = await s.call('storedData.files', { id: sd._id });
    expect(files.items.map((f) => [f.path, f.md5])).toEqual([
      ['a.txt', md5('alpha')],
      ['sub/b.bin', expect.stringMatching(/^[0-9a-f]{32}$/)],
    ]);
    const types = (await s.call('executions.timeline', { id: e._id })).items.map((x) => x.type).reverse();
    expect(types).toEqual(['created', 'status.WAITING', 'status.PROGRESS', 'copy.started', 'copy.finished', 'status.SUCCESS']);
    expect(fs.readdirSync(path.join(dataDir, 'storage', sd._id)).filter((n) => n.startsWith('.fonds-part'))).toEqual([]);
  });

  it('overwrites a file already in the stored data and records the replaced checksum', async () => {
    const { service: s } = await service();
    const first = await runExecution(s, [await checkedUpload(s, { 'map.tif': 'v1', 'keep.txt': 'k' })], { name: 'Maps' });
    const sdId = first.output.stored_data._id;
    const second = await runExecution(s, [await checkedUpload(s, { 'map.tif': 'v2' })], { _id: sdId });
    expect(second.status).toBe('SUCCESS');
    const replaced = (await s.call('storedData.timeline', { id: sdId })).items.find((x) => x.type === 'file.replaced')!;
    expect(replaced.payload).toMatchObject({ path: 'map.tif', replacedMd5: md5('v1'), md5: md5('v2') });
    const files = await s.call('storedData.files', { id: sdId });
    expect(files.items.map((f) => [f.path, f.md5])).toEqual([
      ['keep.txt', md5('k')],
      ['map.tif', md5('v2')],
    ]);
  });

  it('refuses to launch when an input has not passed a required check, naming the check', async () => {
    const { service: s } = await service();
    const up = await checkedUpload(s, { 'A.txt': '1', 'a.txt': '2' });
    const e = await s.call('executions.create', { processing: 'archive-to-archive', inputs: { upload: [up] }, output: { stored_data: { name: 'x' } } });
    await expect(s.call('executions.launch', { id: e._id })).rejects.toMatchObject({
      code: 'CHECK_FAILED',
      message: expect.stringContaining('"Vérification archive" (archive: FAILURE)'),
    });
    expect((await s.call('executions.get', { id: e._id })).status).toBe('CREATED');
  });

  it('fails a file whose source changed since the check, keeps the source, and can retry it', async () => {
    const { service: s } = await service();
    const root = dir();
    writeTree(root, { 'a.txt': 'original', 'b.txt': 'b' });
    const u = await s.call('uploads.ingestPaths', { paths: [root] });
    await s.idle();
    fs.writeFileSync(path.join(root, 'a.txt'), 'tampered');
    const e = await runExecution(s, [u._id], { name: 'x' });
    expect(e.status).toBe('FAILURE');
    expect(e.reason).toMatch(/1 file\(s\) could not be copied/);
    const failed = await s.call('executions.files', { id: e._id, status: 'failed' });
    expect(failed.items[0]).toMatchObject({ path: 'a.txt', status: 'failed', error: expect.stringContaining('changed since it was checked') });
    expect(fs.readFileSync(path.join(root, 'a.txt'), 'utf8')).toBe('tampered');
    expect((await s.call('storedData.get', { id: e.output.stored_data._id })).status).toBe('UNSTABLE');
    fs.writeFileSync(path.join(root, 'a.txt'), 'original');
    await s.call('executions.retryFailed', { id: e._id });
    await s.idle();
    expect((await s.call('executions.get', { id: e._id })).status).toBe('SUCCESS');
  });

  /** A small tmpfs (root only): a real full disk or a real read-only file system. */
  function mountTmpfs(options: string): string | undefined {
    const target = fs.mkdtempSync(path.join(os.tmpdir(), 'fonds-mnt-'));
    cleanups.push(() => fs.rmSync(target, { recursive: true, force: true }));
    const r = spawnSync('mount', ['-t', 'tmpfs', '-o', options, 'tmpfs', target]);
    if (r.status !== 0) {
      console.warn(`\n*** tmpfs cannot be mounted here (${String(r.stderr).trim()}); disk-full and read-only cases not run ***\n`);
      return undefined;
    }
    cleanups.push(() => void spawnSync('umount', ['-l', target]));
    return target;
  }

  it('fails with "no space left on the device" when the storage disk is full', async () => {
    const storageDir = mountTmpfs('size=1m');
    if (!storageDir) return;
    const { service: s } = await service({ storageDir });
    const e = await runExecution(s, [await checkedUpload(s, { 'big.bin': crypto.randomBytes(3 * 1024 * 1024) })], { name: 'x' });
    expect(e.status).toBe('FAILURE');
    expect((await s.call('executions.files', { id: e._id })).items[0].error).toContain('no space left on the device');
    expect(fs.readdirSync(storageDir, { recursive: true }).filter((n) => String(n).includes('.fonds-part'))).toEqual([]);
  });

  it('fails with the reason in words when the storage cannot be written', async () => {
    if (process.getuid?.() !== 0) {
      const storageDir = path.join(dir(), 'storage');
      fs.mkdirSync(storageDir);
      fs.chmodSync(storageDir, 0o500);
      const { service: s } = await service({ storageDir });
      const e = await runExecution(s, [await checkedUpload(s, { 'a.txt': 'a' })], { name: 'x' });
      expect(e.status).toBe('FAILURE');
      expect((await s.call('executions.files', { id: e._id })).items[0].error).toContain('permission denied');
      return;
    }
    // root is never denied by permissions: a read-only file system refuses it
    const storageDir = mountTmpfs('ro,size=1m');
    if (!storageDir) return;
    const { service: s } = await service({ storageDir });
    const e = await runExecution(s, [await checkedUpload(s, { 'a.txt': 'a' })], { name: 'x' });
    expect(e.status).toBe('FAILURE');
    expect((await s.call('executions.files', { id: e._id })).items[0].error).toContain('the file system is read-only');
  });
});

describe('deleting an upload', () => {
  it('is refused while the execution it fed is not verified, allowed after, and removes staged files only', async () => {
    const { service: s, dataDir } = await service();
    const u = await s.call('uploads.create', { name: 'pushed' });
    const { Readable } = await import('node:stream');
    await s.stageFile(u._id, 'a.txt', Readable.from([Buffer.from('pushed')]));
    await s.call('uploads.close', { id: u._id });
    await s.idle();
    const e = await s.call('executions.create', { processing: 'archive-to-archive', inputs: { upload: [u._id] }, output: { stored_data: { name: 'x' } } });
    await expect(s.call('uploads.delete', { id: u._id })).rejects.toMatchObject({ code: 'CONFLICT', message: expect.stringContaining('not verified') });
    await s.call('executions.launch', { id: e._id });
    await s.idle();
    const deleted = await s.call('uploads.delete', { id: u._id });
    expect(deleted.status).toBe('DELETED');
    expect(fs.existsSync(path.join(dataDir, 'staging', u._id))).toBe(false);
  });
});

describe('Entrepot-shaped API', () => {
  it('serves processings, executions, stored data and uploads with the seed paths and fields', async () => {
    const { service: s } = await service();
    const srv = await startHttpServer({ service: s, host: '127.0.0.1', port: 0, token: s.token, maxBodyBytes: 1 << 20 });
    cleanups.push(() => srv.close());
    const base = `${srv.url}/api/datastores/default`;
    const h = { authorization: `Bearer ${s.token}`, 'content-type': 'application/json' };
    // eslint-disable-next-line @typescript-eslint/no-explicit-any -- bodies are checked field by field below
    const get = async (p: string): Promise<any> => (await fetch(base + p, { headers: h })).json();
    const processings = await get('/processings');
    expect(processings[0]._id).toBe('archive-to-archive');
    const p = await get('/processings/archive-to-archive');
    expect(p).toMatchObject({ name: "Recopie d'une archive livrée", input_types: { upload: ['ARCHIVE'], stored_data: [] }, output_type: { stored_data: 'ARCHIVE' } });
    expect(p.required_checks.map((c: { name: string }) => c.name)).toEqual(['Vérification archive', 'Vérification standard']);
    const up = await checkedUpload(s, { 'a.txt': 'a' });
    const created = await fetch(`${base}/processings/executions`, {
      method: 'POST',
      headers: h,
      body: JSON.stringify({ processing: 'archive-to-archive', inputs: { upload: [up] }, output: { stored_data: { name: 'Données départementales', storage_tags: ['ARCHIVE'] } } }),
    });
    expect(created.status).toBe(201);
    const ex = await (created.json() as ReturnType<typeof get>);
    expect(ex).toMatchObject({ processing: { name: "Recopie d'une archive livrée", _id: 'archive-to-archive' }, status: 'CREATED', inputs: { upload: [{ type: 'ARCHIVE', status: 'CLOSED', _id: up }], stored_data: [] }, output: { stored_data: { name: 'Données départementales', type: 'ARCHIVE', status: 'CREATED' } }, parameters: {} });
    expect(ex.creation).toMatch(/^\d{4}-\d{2}-\d{2}T/);
    expect((await fetch(`${base}/processings/executions/${ex._id}/launch`, { method: 'POST', headers: h })).status).toBe(200);
    await s.idle();
    expect((await get(`/processings/executions/${ex._id}`)).status).toBe('SUCCESS');
    const sd = await get(`/stored_data/${ex.output.stored_data._id}`);
    expect(sd).toMatchObject({ name: 'Données départementales', type: 'ARCHIVE', status: 'GENERATED', size: 1, type_infos: { files_number: 1 } });
    expect((await fetch(`${base}/uploads/${up}`, { method: 'DELETE', headers: h })).status).toBe(204);
    expect((await fetch(`${srv.url}/api/datastores/other/processings`, { headers: h })).status).toBe(404);
  });
});
