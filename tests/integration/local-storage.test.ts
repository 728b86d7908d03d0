/** The local folder storage on real files: copy with fixity, atomic rename, audit, sweep, refused keys. */
import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { afterAll, afterEach, describe, expect, it } from 'vitest';
import { canExecutionBecome, canStoredDataBecome } from '../../src-shared/domain/execution';
import { HashPool } from '../../src-main/service/fixity/hash-pool';
import { LocalStorage } from '../../src-main/service/storage/local';
import { tempDirs } from '../helpers/util';

const dir = tempDirs(afterEach);
const pool = new HashPool(2);
afterAll(() => pool.close());

function file(data: Buffer): { path: string; fixity: { size: number; md5: string; sha256: string } } {
  const p = path.join(dir(), 'source.bin');
  fs.writeFileSync(p, data);
  return { path: p, fixity: { size: data.length, md5: crypto.createHash('md5').update(data).digest('hex'), sha256: crypto.createHash('sha256').update(data).digest('hex') } };
}

describe('local storage', () => {
  it('copies a file under its key, proves it, and leaves no temporary file', async () => {
    const root = dir();
    const st = new LocalStorage(root, pool, 'batch');
    const f = file(crypto.randomBytes(3 * 1024 * 1024 + 5));
    let read = 0;
    const stored = await st.put('sd/a/b.bin', f.path, f.fixity, { onBytes: (n) => (read += n) });
    expect(stored).toEqual({ fixity: f.fixity, proof: 'copy re-read before its rename, SHA-256 equal' });
    expect(read).toBe(f.fixity.size);
    expect(fs.readFileSync(path.join(root, 'sd/a/b.bin')).equals(fs.readFileSync(f.path))).toBe(true);
    expect(fs.readdirSync(path.join(root, 'sd/a'))).toEqual(['b.bin']);
    expect(fs.readdirSync(root)).toEqual(['sd']);
    await st.flush();
    expect(await st.verify('sd/a/b.bin', f.fixity)).toEqual({ ok: true, proof: 're-read, SHA-256 equal' });
  });

  it('detects a stored file corrupted after the copy', async () => {
    const root = dir();
    const st = new LocalStorage(root, pool);
    const f = file(Buffer.from('the original bytes'));
    await st.put('sd/x.txt', f.path, f.fixity);
    fs.writeFileSync(path.join(root, 'sd/x.txt'), 'the 0riginal bytes');
    const proof = await st.verify('sd/x.txt', f.fixity, { name: 'x.txt' });
    expect(proof.ok).toBe(false);
    expect(!proof.ok && proof.reason).toMatch(/^x\.txt: stored SHA-256 [0-9a-f]{64} differs from [0-9a-f]{64}$/);
    fs.rmSync(path.join(root, 'sd/x.txt'));
    expect(await st.verify('sd/x.txt', f.fixity, { name: 'x.txt' })).toEqual({ ok: false, reason: `x.txt: missing from ${root}` });
  });

  it('stores nothing and keeps the older version when the source differs from its checksums', async () => {
    const root = dir();
    const st = new LocalStorage(root, pool);
    const v1 = file(Buffer.from('version 1'));
    await st.put('sd/doc.txt', v1.path, v1.fixity);
    const v2 = file(Buffer.from('version 2'));
    await expect(st.put('sd/doc.txt', v2.path, v1.fixity, { name: 'doc.txt' })).rejects.toMatchObject({
      code: 'CHECK_FAILED',
      details: { failure: 'source-changed' },
      message: expect.stringMatching(/^doc\.txt: the delivered file changed since it was checked/),
    });
    expect(fs.readFileSync(path.join(root, 'sd/doc.txt'), 'utf8')).toBe('version 1');
    expect(fs.readdirSync(path.join(root, 'sd'))).toEqual(['doc.txt']);
  });

  it('fsyncs each file with durability "file", and is durable after flush with "batch"', async () => {
    for (const durability of ['file', 'batch', 'none'] as const) {
      const root = dir();
      const st = new LocalStorage(root, pool, durability);
      const f = file(crypto.randomBytes(1000));
      await st.put('sd/f.bin', f.path, f.fixity);
      await st.flush();
      expect(fs.statSync(path.join(root, 'sd/f.bin')).size).toBe(1000);
    }
  });

  it('sweeps the temporary files a killed copy left, and only those of that stored data', async () => {
    const root = dir();
    const st = new LocalStorage(root, pool);
    fs.mkdirSync(path.join(root, 'sd/deep'), { recursive: true });
    fs.writeFileSync(path.join(root, `.fonds-part-sd-${crypto.randomUUID()}`), 'half');
    const other = `.fonds-part-other-${crypto.randomUUID()}`;
    fs.writeFileSync(path.join(root, other), 'another execution, still copying');
    fs.writeFileSync(path.join(root, 'sd/keep.txt'), 'kept');
    expect(await st.sweep('sd')).toBe(1);
    expect(fs.readdirSync(root, { recursive: true }).sort()).toEqual([other, 'sd', 'sd/deep', 'sd/keep.txt']);
    expect(await st.sweep('nothing-here')).toBe(0);
  });

  it('never sweeps a stored file, whatever its name: temporary copies live at the root, where no stored file is', async () => {
    const root = dir();
    const st = new LocalStorage(root, pool);
    const names = ['.fonds-part-notes.txt', `.fonds-part-${crypto.randomUUID()}`, `deep/.fonds-part-sd-${crypto.randomUUID()}`];
    for (const n of names) {
      const f = file(Buffer.from(`delivered as ${n}`));
      await st.put(`sd/${n}`, f.path, f.fixity);
    }
    expect(fs.readdirSync(root)).toEqual(['sd']); // no temporary file left beside them either
    expect(await st.sweep('sd')).toBe(0);
    for (const n of names) expect(fs.readFileSync(path.join(root, 'sd', n), 'utf8')).toBe(`delivered as ${n}`);
    // and no key can reach the root's temporary names
    const f = file(Buffer.from('x'));
    await expect(st.put(`.fonds-part-sd-${crypto.randomUUID()}`, f.path, f.fixity)).rejects.toMatchObject({ code: 'PATH_INVALID' });
    await expect(st.put('.fonds-part-sd/x.txt', f.path, f.fixity)).rejects.toMatchObject({ code: 'PATH_INVALID' });
  });

  it('refuses keys that would leave its folder, and makes its folder only when it first copies', async () => {
    const root = path.join(dir(), 'not-yet');
    const st = new LocalStorage(root, pool);
    expect(fs.existsSync(root)).toBe(false);
    const f = file(Buffer.from('x'));
    await expect(st.put('../escape.txt', f.path, f.fixity)).rejects.toMatchObject({ code: 'PATH_INVALID' });
    await expect(st.put('/etc/passwd', f.path, f.fixity)).rejects.toMatchObject({ code: 'PATH_INVALID' });
    await expect(st.put('sd/a\0b', f.path, f.fixity)).rejects.toMatchObject({ code: 'PATH_INVALID' });
    await st.put('sd/ok.txt', f.path, f.fixity);
    expect(fs.existsSync(path.join(root, 'sd/ok.txt'))).toBe(true);
  });

  it('names the delivered file when it cannot be read', async () => {
    const st = new LocalStorage(dir(), pool);
    const gone = path.join(dir(), 'gone.bin');
    await expect(st.put('sd/gone.bin', gone, { size: 1, md5: 'x', sha256: 'y' }, { name: 'gone.bin' })).rejects.toMatchObject({
      code: 'IO_ERROR',
      message: expect.stringMatching(/^gone\.bin: cannot read the delivered file .*gone\.bin: the file does not exist/),
    });
  });
});

describe('execution and stored data state machines', () => {
  it('follow Entrepot: CREATED → WAITING → PROGRESS → SUCCESS | FAILURE, a FAILURE retried', () => {
    expect(canExecutionBecome('CREATED', 'WAITING')).toBe(true);
    expect(canExecutionBecome('CREATED', 'PROGRESS')).toBe(false);
    expect(canExecutionBecome('WAITING', 'FAILURE')).toBe(true);
    expect(canExecutionBecome('PROGRESS', 'SUCCESS')).toBe(true);
    expect(canExecutionBecome('SUCCESS', 'WAITING')).toBe(false);
    expect(canExecutionBecome('FAILURE', 'WAITING')).toBe(true);
    expect(canStoredDataBecome('CREATED', 'GENERATING')).toBe(true);
    expect(canStoredDataBecome('CREATED', 'GENERATED')).toBe(false);
    expect(canStoredDataBecome('GENERATING', 'UNSTABLE')).toBe(true);
    expect(canStoredDataBecome('GENERATED', 'GENERATING')).toBe(true);
    expect(canStoredDataBecome('DELETED', 'GENERATING')).toBe(false);
  });
});
