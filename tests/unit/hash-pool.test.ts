/** The worker pool's account of a file's state: what fstat said at open and after the last read. */
import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { afterAll, afterEach, describe, expect, it } from 'vitest';
import { HashPool, type HashTask } from '../../src-main/service/fixity/hash-pool';
import { poolCopyFile } from '../../src-main/service/intake';
import { createBag } from '../../src-main/service/intake/bagit';
import { tempDirs } from '../helpers/util';

const dir = tempDirs(afterEach);
const pool = new HashPool(1);
afterAll(() => pool.close());

const LISTED = 1714979289; // 2024-05-06T07:08:09Z, whole seconds: utimes stores them exactly
const LATER = 1893553445; // 2030-01-02T03:04:05Z

/**
 * A sparse file: no disk space, but 512 MiB to read and hash after the first progress report
 * (8 MiB), i.e. hundreds of milliseconds in which the test changes it; the change itself takes
 * microseconds once the report has arrived.
 */
function bigSparseFile(): string {
  const p = path.join(dir(), 'big.bin');
  const fd = fs.openSync(p, 'w');
  fs.ftruncateSync(fd, 512 << 20);
  fs.closeSync(fd);
  fs.utimesSync(p, LISTED, LISTED);
  return p;
}

describe('the state of the file a hash is of', () => {
  it('returns the size and the modification time (ns) fstat gave at open and after the read', async () => {
    const p = path.join(dir(), 'a.txt');
    fs.writeFileSync(p, 'steady bytes');
    fs.utimesSync(p, LISTED, LISTED);
    const r = await pool.hash({ path: p, algorithms: ['md5'] });
    expect(r.hashes.md5).toBe(crypto.createHash('md5').update('steady bytes').digest('hex'));
    expect(r.opened).toEqual({ size: 12, mtimeNs: BigInt(LISTED) * 1_000_000_000n });
    expect(r.afterRead).toEqual(r.opened);
    expect(r.changedDuringRead).toBe(false);
  });

  it('reports a file whose modification time changed while it was being read (rewritten in place, same size)', async () => {
    const p = bigSparseFile();
    let touched = false;
    const r = await pool.hash({
      path: p,
      algorithms: ['md5'],
      onBytes: () => {
        if (touched) return;
        touched = true;
        // a copy tool filling the preallocated file: same length, new bytes, a new mtime
        const fd = fs.openSync(p, 'r+');
        fs.writeSync(fd, Buffer.from('filled by the copy'), 0, 18, 0);
        fs.closeSync(fd);
        fs.utimesSync(p, LATER, LATER);
      },
    });
    expect(touched).toBe(true);
    expect(r.size).toBe(512 << 20);
    expect(r.opened).toEqual({ size: 512 << 20, mtimeNs: BigInt(LISTED) * 1_000_000_000n });
    expect(r.afterRead).toEqual({ size: 512 << 20, mtimeNs: BigInt(LATER) * 1_000_000_000n });
    expect(r.changedDuringRead).toBe(true);
  });

  it('reports a file that grew while it was being read, even when its mtime is put back', async () => {
    const p = bigSparseFile();
    let grown = false;
    const r = await pool.hash({
      path: p,
      algorithms: ['md5'],
      onBytes: () => {
        if (grown) return;
        grown = true;
        fs.appendFileSync(p, 'more');
        fs.utimesSync(p, LISTED, LISTED);
      },
    });
    expect(grown).toBe(true);
    expect(r.opened.size).toBe(512 << 20);
    expect(r.afterRead).toEqual({ size: (512 << 20) + 4, mtimeNs: BigInt(LISTED) * 1_000_000_000n });
    expect(r.changedDuringRead).toBe(true);
  });

  it('gives the same account for files sent to a worker in a batch, and for a copy', async () => {
    const root = dir();
    const names = ['one', 'two', 'three'];
    for (const n of names) fs.writeFileSync(path.join(root, n), n);
    const results = await Promise.all(names.map((n) => pool.hash({ path: path.join(root, n), algorithms: ['sha256'], sizeHint: n.length })));
    results.forEach((r, i) => {
      const st = fs.statSync(path.join(root, names[i]), { bigint: true });
      expect(r.opened).toEqual({ size: names[i].length, mtimeNs: st.mtimeNs });
      expect(r.changedDuringRead).toBe(false);
    });
    const copy = await pool.hash({ path: path.join(root, 'two'), algorithms: ['md5'], copyTo: path.join(root, 'two.copy'), verifyCopy: true });
    expect(copy).toMatchObject({ size: 3, copySize: 3, changedDuringRead: false, opened: { size: 3 } });
    expect(fs.readFileSync(path.join(root, 'two.copy'), 'utf8')).toBe('two');
  });
});

describe('a bag made from a folder still being written', () => {
  it('is refused, naming the file, and the destination is left as it was', async () => {
    const src = dir();
    fs.writeFileSync(path.join(src, 'a.txt'), 'steady');
    const big = path.join(src, 'scan.tif');
    fs.writeFileSync(big, '');
    fs.truncateSync(big, 512 << 20); // sparse: 512 MiB to read, no disk space
    const dest = path.join(dir(), 'bag');
    let touched = false;
    // the real pool, with the copy tool writing into the file once its reading has started
    const writing = {
      hash: (task: HashTask) =>
        pool.hash({
          ...task,
          onBytes: (n: number) => {
            task.onBytes?.(n);
            if (touched || task.path !== big) return;
            touched = true;
            const fd = fs.openSync(big, 'r+');
            fs.writeSync(fd, Buffer.from('filled by the copy'), 0, 18, 0);
            fs.closeSync(fd);
            fs.utimesSync(big, LATER, LATER);
          },
        }),
    } as unknown as HashPool;
    await expect(createBag(src, dest, { copyFile: poolCopyFile({ pool: writing }) })).rejects.toMatchObject({
      code: 'CONFLICT',
      message: `${big}: changed while it was being copied into the bag (it is still being written); bag the folder again once it is complete.`,
    });
    expect(touched).toBe(true);
    expect(fs.existsSync(dest)).toBe(false);
    // once the copy is done, the same folder bags
    await createBag(src, dest, { copyFile: poolCopyFile({ pool }) });
    expect(fs.readdirSync(dest).sort()).toEqual(['bag-info.txt', 'bagit.txt', 'data', 'manifest-md5.txt', 'manifest-sha512.txt', 'tagmanifest-md5.txt', 'tagmanifest-sha512.txt']);
  });
});
