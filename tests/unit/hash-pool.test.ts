/** The worker pool's account of a file's state: what fstat said at open and after the last read. */
import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { afterAll, afterEach, describe, expect, it } from 'vitest';
import { HashPool, type HashTask } from '../../src-main/service/fixity/hash-pool';
import { poolCopyFile } from '../../src-main/service/intake';
import { createBag } from '../../src-main/service/intake/bagit';
import { fillInPlace, LATER_AT as LATER, LISTED_AT as LISTED, sparseFile, tempDirs } from '../helpers/util';

const dir = tempDirs(afterEach);
const pool = new HashPool(1);
afterAll(() => pool.close());

/**
 * A sparse file: no disk space, but 512 MiB to read and hash after the first progress report
 * (8 MiB), i.e. hundreds of milliseconds in which the test changes it; the change itself takes
 * microseconds once the report has arrived.
 */
function bigSparseFile(): string {
  return sparseFile(path.join(dir(), 'big.bin'), 512 << 20, LISTED);
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
        fillInPlace(p, 'filled by the copy', LATER);
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
    const big = sparseFile(path.join(src, 'scan.tif'), 512 << 20);
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
            fillInPlace(big, 'filled by the copy', LATER);
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
