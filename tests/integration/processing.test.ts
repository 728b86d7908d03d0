import { spawn, spawnSync } from 'node:child_process';
import crypto from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import type { Service } from '../../src-main/service';
import type { Execution } from '../../src-shared/api';
import { startHttpServer } from '../../src-main/transport/http';
import { repoRoot, startService, tempDirs, testHarness, writeTree } from '../helpers/service';

const { cleanups, start: service } = testHarness(afterEach);
const dir = tempDirs(afterEach);
const md5 = (s: string | Buffer) => crypto.createHash('md5').update(s).digest('hex');

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
    expect((fs.readdirSync(path.join(dataDir, 'storage'), { recursive: true }) as string[]).filter((n) => n.includes('.fonds-part'))).toEqual([]);
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
    const error = (await s.call('executions.files', { id: e._id })).items[0].error;
    expect(error).toBe(`big.bin: cannot be written to the storage ${storageDir}: no space left on the device.`);
    expect(e.reason).toMatch(/1 file\(s\) could not be copied and verified/);
    expect(fs.readdirSync(storageDir, { recursive: true }).filter((n) => String(n).includes('.fonds-part'))).toEqual([]);
  });

  it('fails with "permission denied" when the storage folder cannot be written', async () => {
    const tree = dir();
    writeTree(tree, { 'a.txt': 'a', 'sub/b.txt': 'b' });
    const storageDir = path.join(dir(), 'storage');
    fs.mkdirSync(storageDir);
    if (process.getuid?.() !== 0) {
      fs.chmodSync(storageDir, 0o500);
      const { service: s } = await service({ storageDir });
      const u = await s.call('uploads.ingestPaths', { paths: [tree] });
      await s.idle();
      const e = await runExecution(s, [u._id], { name: 'x' });
      expect(e.status).toBe('FAILURE');
      expect((await s.call('executions.files', { id: e._id })).items[0].error).toContain('permission denied');
      return;
    }
    // root is never denied by permission bits: the execution runs as 'nobody', as a desktop user would
    for (const d of [tree, path.join(tree, 'sub'), path.dirname(storageDir)]) fs.chmodSync(d, 0o755);
    fs.chmodSync(storageDir, 0o755); // owned by root: 'nobody' cannot create anything in it
    const dataDir = dir();
    {
      const { service: s } = await startService({ dataDir, storageDir });
      const u = await s.call('uploads.ingestPaths', { paths: [tree] });
      await s.idle();
      const e = await s.call('executions.create', { processing: 'archive-to-archive', inputs: { upload: [u._id] }, output: { stored_data: { name: 'x' } } });
      await s.close();
      spawnSync('chown', ['-R', '65534:65534', dataDir]);
      fs.chmodSync(dataDir, 0o755);
      const child = spawn(process.execPath, ['--import', 'tsx', path.join(repoRoot, 'tests/helpers/execute-child.ts'), dataDir, e._id, JSON.stringify({ storageDir })], {
        cwd: repoRoot,
        uid: 65534,
        gid: 65534,
        env: { ...process.env, HOME: dataDir },
        stdio: ['ignore', 'pipe', 'inherit'],
      });
      let out = '';
      child.stdout!.on('data', (d) => (out += d));
      await new Promise((r) => child.once('exit', r));
      expect(out).toContain('done FAILURE');
      const { service: again, dispose } = await startService({ dataDir, storageDir });
      cleanups.push(dispose);
      const files = await again.call('executions.files', { id: e._id });
      expect(files.items.map((f) => f.error)).toEqual([
        expect.stringMatching(new RegExp(`^a\\.txt: cannot be written to the storage ${storageDir}: permission denied`)),
        expect.stringMatching(new RegExp(`^sub/b\\.txt: cannot be written to the storage ${storageDir}: permission denied`)),
      ]);
      expect((await again.call('storedData.get', { id: e.output.stored_data._id })).status).toBe('UNSTABLE');
    }
  });

  it('fails with "the file system is read-only" on a read-only storage', async () => {
    if (process.getuid?.() !== 0) return;
    const storageDir = mountTmpfs('ro,size=1m');
    if (!storageDir) return;
    const { service: s } = await service({ storageDir });
    const e = await runExecution(s, [await checkedUpload(s, { 'a.txt': 'a' })], { name: 'x' });
    expect(e.status).toBe('FAILURE');
    expect((await s.call('executions.files', { id: e._id })).items[0].error).toContain('the file system is read-only');
  });

  it('keeps the stored version when a new delivery of the same file changed since its check', async () => {
    const { service: s, dataDir } = await service();
    const first = await runExecution(s, [await checkedUpload(s, { 'map.tif': 'v1' })], { name: 'Maps' });
    const sdId = first.output.stored_data._id;
    const root = dir();
    writeTree(root, { 'map.tif': 'v2' });
    const u = await s.call('uploads.ingestPaths', { paths: [root] });
    await s.idle();
    fs.writeFileSync(path.join(root, 'map.tif'), 'v3, after the check');
    const second = await runExecution(s, [u._id], { _id: sdId });
    expect(second.status).toBe('FAILURE');
    expect(fs.readFileSync(path.join(dataDir, 'storage', sdId, 'map.tif'), 'utf8')).toBe('v1');
    expect((await s.call('storedData.files', { id: sdId })).items[0]).toMatchObject({ path: 'map.tif', md5: md5('v1') });
  });

  it('is cancelled while copying: verified files stay, no partial file, and a retry copies the rest', async () => {
    const { service: s, dataDir } = await service({ hashWorkers: 1 });
    const files: Record<string, Buffer> = { 'big.bin': crypto.randomBytes(256 * 1024 * 1024) };
    for (let i = 0; i < 20; i++) files[`small/${i}.txt`] = crypto.randomBytes(100);
    const up = await checkedUpload(s, files);
    const e = await s.call('executions.create', { processing: 'archive-to-archive', inputs: { upload: [up] }, output: { stored_data: { name: 'cancel' } } });
    let asked = false;
    const off = s.subscribe((p) => {
      if (!asked && p.channel === 'progress' && p.progress.objectId === e._id) {
        asked = true;
        void s.call('executions.cancel', { id: e._id });
      }
    });
    await s.call('executions.launch', { id: e._id });
    await s.idle();
    off();
    const cancelled = await s.call('executions.get', { id: e._id });
    expect(cancelled.status).toBe('FAILURE');
    expect(cancelled.reason).toMatch(/^Cancelled by the user/);
    expect(cancelled.files.pending).toBeGreaterThan(0);
    // temporary copies are made at the storage root, beside the stored data folders
    const storage = path.join(dataDir, 'storage');
    expect((fs.readdirSync(storage, { recursive: true }) as string[]).filter((n) => n.includes('.fonds-part'))).toEqual([]);
    await s.call('executions.retryFailed', { id: e._id });
    await s.idle();
    const done = await s.call('executions.get', { id: e._id });
    expect(done.status).toBe('SUCCESS');
    expect(done.files).toMatchObject({ total: 21, verified: 21, failed: 0, pending: 0 });
    const types = (await s.call('executions.timeline', { id: e._id, limit: 100 })).items.map((x) => x.type);
    expect(types).toContain('retry');
  });

  it('resumes after a kill -9 removing only the copy cut short: stored files named like temporary files stay', async () => {
    const dataDir = dir();
    const named = ['.fonds-part-notes.txt', `.fonds-part-${crypto.randomUUID()}`, 'sub/.fonds-part-scan.tif'];
    let executionId: string;
    let sdId: string;
    {
      const { service: s } = await startService({ dataDir });
      const first = await runExecution(s, [await checkedUpload(s, Object.fromEntries(named.map((n) => [n, `delivered as ${n}`])))], { name: 'Notes' });
      expect(first.status).toBe('SUCCESS');
      sdId = first.output.stored_data._id;
      // a second delivery into the same stored data, large enough to be killed while it is copied
      const big = path.join(dir(), 'big.bin');
      fs.writeFileSync(big, '');
      fs.truncateSync(big, 512 * 1024 * 1024);
      const u = await s.call('uploads.ingestPaths', { paths: [big] });
      await s.idle(120_000);
      executionId = (await s.call('executions.create', { processing: 'archive-to-archive', inputs: { upload: [u._id] }, output: { stored_data: { _id: sdId } } }))._id;
      await s.close();
    }
    const child = spawn(process.execPath, ['--import', 'tsx', path.join(repoRoot, 'tests/helpers/execute-child.ts'), dataDir, executionId, '{}'], {
      cwd: repoRoot,
      stdio: ['ignore', 'pipe', 'inherit'],
    });
    let out = '';
    child.stdout!.on('data', (d) => {
      out += d;
      if (/verified \d+/.test(out)) child.kill('SIGKILL'); // its progress while big.bin is on its way
    });
    await new Promise((r) => child.once('exit', r));
    expect(out).not.toContain('done');
    const storage = path.join(dataDir, 'storage');
    const filesIn = () =>
      (fs.readdirSync(storage, { recursive: true, withFileTypes: true }) as fs.Dirent[])
        .filter((e) => e.isFile())
        .map((e) => path.relative(path.join(storage, sdId), path.join(e.parentPath, e.name)))
        .sort();
    // the stored files, and the copy of big.bin cut short
    expect(filesIn().filter((f) => !named.includes(f))).toEqual([expect.stringMatching(/(^|\/)\.fonds-part-/)]);

    const { service: again, dispose } = await startService({ dataDir });
    cleanups.push(dispose);
    await again.idle(120_000);
    expect((await again.call('executions.get', { id: executionId })).status).toBe('SUCCESS');
    const resumed = (await again.call('executions.timeline', { id: executionId, limit: 100 })).items.find((x) => x.type === 'resumed')!;
    expect(resumed.payload).toMatchObject({ temporaryFilesRemoved: 1 });
    const sd = await again.call('storedData.get', { id: sdId });
    expect(sd).toMatchObject({ status: 'GENERATED', verified: true });
    const catalogue = (await again.call('storedData.files', { id: sdId })).items.map((f) => f.path).sort();
    expect(catalogue).toEqual(['big.bin', ...named].sort());
    // what the catalogue lists is on disk, and nothing else is
    for (const n of named) expect(fs.readFileSync(path.join(storage, sdId, n), 'utf8')).toBe(`delivered as ${n}`);
    expect(filesIn()).toEqual(catalogue);
  }, 120_000);

  it('refuses a second execution writing the same stored data at the same time', async () => {
    const { service: s } = await service();
    const first = await runExecution(s, [await checkedUpload(s, { 'a.txt': 'a' })], { name: 'One' });
    const sdId = first.output.stored_data._id;
    const a = await s.call('executions.create', { processing: 'archive-to-archive', inputs: { upload: [await checkedUpload(s, { 'b.bin': crypto.randomBytes(64 * 1024 * 1024) })] }, output: { stored_data: { _id: sdId } } });
    const b = await s.call('executions.create', { processing: 'archive-to-archive', inputs: { upload: [await checkedUpload(s, { 'c.txt': 'c' })] }, output: { stored_data: { _id: sdId } } });
    await s.call('executions.launch', { id: a._id });
    await expect(s.call('executions.launch', { id: b._id })).rejects.toMatchObject({ code: 'CONFLICT', message: expect.stringContaining(`is being written by execution ${a._id}`) });
    await s.idle();
    await s.call('executions.launch', { id: b._id });
    await s.idle();
    expect((await s.call('executions.get', { id: b._id })).status).toBe('SUCCESS');
    expect((await s.call('storedData.get', { id: sdId })).type_infos.files_number).toBe(3);
  });

  it('refuses to update a stored data kept in another storage', async () => {
    const dataDir = dir();
    let sdId: string;
    let up: string;
    {
      const { service: s } = await startService({ dataDir });
      up = await checkedUpload(s, { 'a.txt': 'a' });
      sdId = (await runExecution(s, [up], { name: 'Local' })).output.stored_data._id;
      await s.close();
    }
    const { service: s, dispose } = await startService({ dataDir, storageDir: dir() });
    cleanups.push(dispose);
    await expect(
      s.call('executions.create', { processing: 'archive-to-archive', inputs: { upload: [up] }, output: { stored_data: { _id: sdId } } }),
    ).rejects.toMatchObject({ code: 'CONFLICT', message: expect.stringContaining("Stored data 'Local' is kept in") });
  });

  it('fails a file whose name is taken by a folder of the stored data, naming both', async () => {
    const { service: s } = await service();
    const first = await runExecution(s, [await checkedUpload(s, { 'x/inner.txt': 'folder' })], { name: 'S' });
    const second = await runExecution(s, [await checkedUpload(s, { x: 'a file named x' })], { _id: first.output.stored_data._id });
    expect(second.status).toBe('FAILURE');
    expect((await s.call('executions.files', { id: second._id })).items[0].error).toMatch(/^x: cannot be written to the storage .*: a folder and a file of the stored data have the same name/);
  });
});

describe('the fonds execute command', () => {
  it('copies checked uploads into a new stored data and prints the outcome', async () => {
    const dataDir = dir();
    let up: string;
    {
      const { service: s } = await startService({ dataDir });
      up = await checkedUpload(s, { 'a.txt': 'alpha', 'b/c.txt': 'gamma' });
      await s.close();
    }
    const cli = (args: string[]) =>
      spawnSync(process.execPath, ['--import', 'tsx', path.join(repoRoot, 'src-main/cli/index.ts'), ...args, '--data-dir', dataDir], {
        encoding: 'utf8',
        timeout: 120_000,
        env: { ...process.env, FONDS_DATA_DIR: '' },
      });
    const r = cli(['execute', up, '--name', 'Fonds Dupont']);
    expect(r.stderr).toBe('');
    expect(r.status).toBe(0);
    expect(r.stdout).toMatch(/^execution \S+: SUCCESS, 2\/2 files copied and verified, 0 failed\n/);
    expect(r.stdout).toMatch(/stored data \S+ 'Fonds Dupont': GENERATED, 2 files, 10 bytes, fixity verified, in \//);
    const json = cli(['execute', up, '--name', 'Again', '--json']);
    expect(JSON.parse(json.stdout).execution.status).toBe('SUCCESS');
    const missing = cli(['execute', 'no-such-upload']);
    expect(missing.status).toBe(2);
    expect(missing.stderr).toContain('Upload no-such-upload does not exist');
    expect(cli(['execute']).status).toBe(2);
  });

  it('exits 1 naming the check when an upload did not pass it', async () => {
    const dataDir = dir();
    let up: string;
    {
      const { service: s } = await startService({ dataDir });
      up = await checkedUpload(s, { 'A.txt': '1', 'a.txt': '2' });
      await s.close();
    }
    const r = spawnSync(process.execPath, ['--import', 'tsx', path.join(repoRoot, 'src-main/cli/index.ts'), 'execute', up, '--data-dir', dataDir], { encoding: 'utf8', timeout: 120_000 });
    expect(r.status).toBe(1);
    expect(r.stderr).toContain('has not passed the required check "Vérification archive"');
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

  it('refuses to create an execution from an upload while its files are being deleted', async () => {
    const { service: s } = await service();
    const u = await s.call('uploads.create', { name: 'many pushed' });
    const { Readable } = await import('node:stream');
    for (let i = 0; i < 200; i++) await s.stageFile(u._id, `f${i}.txt`, Readable.from([Buffer.from(`file ${i}`)]));
    await s.call('uploads.close', { id: u._id });
    await s.idle();
    const deleting = s.call('uploads.delete', { id: u._id });
    await new Promise((r) => setImmediate(r)); // the delete is removing the staged files
    await expect(s.call('executions.create', { processing: 'archive-to-archive', inputs: { upload: [u._id] }, output: { stored_data: { name: 'racing' } } })).rejects.toMatchObject({
      code: 'CONFLICT',
      message: expect.stringMatching(/is being deleted/),
    });
    expect((await deleting).status).toBe('DELETED');
  });

  it('is refused after a FAILURE, and never removes files checked in place', async () => {
    const { service: s } = await service();
    const root = dir();
    writeTree(root, { 'a.txt': 'a', 'b.txt': 'b' });
    const u = await s.call('uploads.ingestPaths', { paths: [root] });
    await s.idle();
    fs.writeFileSync(path.join(root, 'b.txt'), 'changed');
    const e = await runExecution(s, [u._id], { name: 'x' });
    expect(e.status).toBe('FAILURE');
    await expect(s.call('uploads.delete', { id: u._id })).rejects.toMatchObject({ code: 'CONFLICT', message: expect.stringContaining(`fed execution ${e._id}, which is FAILURE`) });
    fs.writeFileSync(path.join(root, 'b.txt'), 'b');
    await s.call('executions.retryFailed', { id: e._id });
    await s.idle();
    expect((await s.call('uploads.delete', { id: u._id })).status).toBe('DELETED');
    expect(fs.readdirSync(root).sort()).toEqual(['a.txt', 'b.txt']);
  });

  it('happens by itself after a verified SUCCESS with deleteUploadAfterVerifiedExecution', async () => {
    const { service: s, dataDir } = await service({ deleteUploadAfterVerifiedExecution: true });
    const u = await s.call('uploads.create', { name: 'pushed' });
    const { Readable } = await import('node:stream');
    await s.stageFile(u._id, 'a.txt', Readable.from([Buffer.from('pushed')]));
    await s.call('uploads.close', { id: u._id });
    await s.idle();
    const e = await runExecution(s, [u._id], { name: 'auto' });
    expect(e.status).toBe('SUCCESS');
    expect((await s.call('uploads.get', { id: u._id })).status).toBe('DELETED');
    expect(fs.existsSync(path.join(dataDir, 'staging', u._id))).toBe(false);
    const up = (await s.call('executions.get', { id: e._id })).inputs.upload[0];
    expect(up).toMatchObject({ _id: u._id, status: 'DELETED' });
  });
});

describe('Entrepot-shaped API', () => {
  it("starts a new stored data with the seed's empty tags: storage_tags choose the storage, they are not tags", async () => {
    const { service: s } = await service();
    const srv = await startHttpServer({ service: s, host: '127.0.0.1', port: 0, token: s.token, maxBodyBytes: 1 << 20 });
    cleanups.push(() => srv.close());
    const base = `${srv.url}/api/datastores/default`;
    const h = { authorization: `Bearer ${s.token}`, 'content-type': 'application/json' };
    const up = await checkedUpload(s, { 'a.txt': 'a' });
    // the seed's POST body, word for word
    const body = { processing: 'archive-to-archive', inputs: { upload: [up] }, output: { stored_data: { name: 'Données départementales', storage_tags: ['ARCHIVE'] } } };
    const ex = (await (await fetch(`${base}/processings/executions`, { method: 'POST', headers: h, body: JSON.stringify(body) })).json()) as Execution;
    const sdId = ex.output.stored_data._id;
    expect((await s.call('storedData.get', { id: sdId })).tags).toEqual({});
    await fetch(`${base}/processings/executions/${ex._id}/launch`, { method: 'POST', headers: h });
    await s.idle();
    const sd = (await (await fetch(`${base}/stored_data/${sdId}`, { headers: h })).json()) as { status: string; tags: unknown };
    expect(sd).toMatchObject({ status: 'GENERATED', tags: {} });
    // what was asked of the storage is kept on the timeline
    const created = (await s.call('storedData.timeline', { id: sdId })).items.find((e) => e.type === 'created')!;
    expect(created.payload).toMatchObject({ storageTags: ['ARCHIVE'] });
  });

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
    expect(sd.storage).toMatchObject({ type: 'FILESYSTEM' });
    expect(sd._id).toBe(ex.output.stored_data._id);
    expect((await fetch(`${base}/uploads/${up}`, { method: 'DELETE', headers: h })).status).toBe(204);
    expect((await fetch(`${srv.url}/api/datastores/other/processings`, { headers: h })).status).toBe(404);
    expect((await fetch(`${base}/processings/nothing-like-it`, { headers: h })).status).toBe(404);
    expect((await fetch(`${base}/processings`)).status).toBe(401);

    // uploads: created OPEN, listed
    const createdUpload = await fetch(`${base}/uploads`, { method: 'POST', headers: h, body: JSON.stringify({ name: 'Livraison', description: 'd', type: 'ARCHIVE', srs: 'EPSG:2154' }) });
    expect(createdUpload.status).toBe(201);
    const nu = (await createdUpload.json()) as { _id: string };
    expect(nu).toMatchObject({ name: 'Livraison', type: 'ARCHIVE', status: 'OPEN', srs: 'EPSG:2154' });
    expect((await get('/uploads')).map((x: { _id: string }) => x._id)).toContain(nu._id);
    const paged = await fetch(`${base}/uploads?page=1&limit=1`, { headers: h });
    expect(paged.headers.get('content-range')).toBe('1-1/1');
    expect(await paged.json()).toHaveLength(1);
    const beyond = await fetch(`${base}/uploads?page=2&limit=1`, { headers: h });
    expect(beyond.headers.get('content-range')).toBe('*/1');
    expect(await beyond.json()).toEqual([]);
    expect((await fetch(`${base}/uploads?page=0`, { headers: h })).status).toBe(400);
    expect((await fetch(`${base}/uploads`, { method: 'POST', headers: h, body: JSON.stringify({ name: 'v', type: 'VECTOR' }) })).status).toBe(400);

    // launch refused: 409, the check named
    const bad = await checkedUpload(s, { 'A.txt': '1', 'a.txt': '2' });
    const refused = (await (await fetch(`${base}/processings/executions`, { method: 'POST', headers: h, body: JSON.stringify({ processing: 'archive-to-archive', inputs: { upload: [bad] }, output: { stored_data: { name: 'n' } } }) })).json()) as { _id: string };
    const launch = await fetch(`${base}/processings/executions/${refused._id}/launch`, { method: 'POST', headers: h });
    expect(launch.status).toBe(409);
    expect(JSON.stringify(await launch.json())).toContain('Vérification archive');
    // an upload that fed a non-verified execution cannot be deleted
    const held = await checkedUpload(s, { 'z.txt': 'z' });
    await fetch(`${base}/processings/executions`, { method: 'POST', headers: h, body: JSON.stringify({ processing: 'archive-to-archive', inputs: { upload: [held] }, output: { stored_data: { name: 'h' } } }) });
    expect((await fetch(`${base}/uploads/${held}`, { method: 'DELETE', headers: h })).status).toBe(409);
  });
});
