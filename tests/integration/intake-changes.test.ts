/**
 * A delivery still being copied when it is checked: a file whose bytes change between the walk and
 * its hash, or while it is read, must not pass the check with the hash of half-written bytes.
 */
import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import type { Service } from '../../src-main/service';
import type { HashTask } from '../../src-main/service/fixity/hash-pool';
import { fillInPlace, ingestChecked, LATER_AT as LATER, LISTED_AT as LISTED, sparseFile, testHarness } from '../helpers/service';

const { cleanups, start, delivery } = testHarness(afterEach);
const service = async (): Promise<Service> => (await start({ hashWorkers: 1 })).service;
const ingest = ingestChecked;
const md5 = (s: string | Buffer) => crypto.createHash('md5').update(s).digest('hex');

/** Runs `change` on the file once, just before the pool is asked to hash it (after the walk). */
function beforeHashing(s: Service, name: string, change: (abs: string, task: HashTask) => HashTask | void): () => boolean {
  const pool = s.internals.pool;
  const hash = pool.hash.bind(pool);
  let done = false;
  pool.hash = (t: HashTask) => {
    if (!done && t.path.endsWith(name)) {
      done = true;
      return hash(change(t.path, t) ?? t);
    }
    return hash(t);
  };
  cleanups.push(() => void (pool.hash = hash));
  return () => done;
}

// whole seconds: utimes stores them exactly, so the messages can be spelled out
const SECOND_LATER = LISTED + 1; // less than FAT's 2 s: no window, equality is what counts

describe('a delivery that changes while it is checked', () => {
  it('fails a file rewritten with the same size between the walk and its hash (a copy filling a preallocated file)', async () => {
    const s = await service();
    const content = Buffer.from('the copied bytes, at last');
    const root = delivery({ 'scan.tif': Buffer.alloc(content.length), 'b.txt': 'steady' });
    fs.utimesSync(path.join(root, 'scan.tif'), LISTED, LISTED);
    const changed = beforeHashing(s, 'scan.tif', (abs) => fillInPlace(abs, content, SECOND_LATER));
    const { upload, findings } = await ingest(s, [root]);
    expect(changed()).toBe(true);
    expect(upload.status).toBe('CLOSED');
    expect(upload.checks[1]).toMatchObject({ kind: 'standard', status: 'FAILURE', errors: 1 });
    const f = findings.find((x) => x.rule === 'changed-during-check')!;
    expect(f).toMatchObject({ check: 'standard', path: 'scan.tif', severity: 'error' });
    expect(f.message).toBe(
      'scan.tif: changed while the delivery was being checked (last modified 2024-05-06T07:08:09.000Z when it was listed, 2024-05-06T07:08:10.000Z when it was read); it is still being written or was replaced. Check the upload again once the delivery is complete',
    );
    // no hash of bytes that may be half written: the file is recorded as not checked
    const files = (await s.call('uploads.files', { id: upload._id })).items;
    expect(files.find((x) => x.path === 'scan.tif')).toMatchObject({ size: content.length, md5: '', sha256: '' });
    expect(files.find((x) => x.path === 'b.txt')!.md5).toBe(md5('steady'));
    // once the copy is complete, a recheck lists it again and passes
    await s.call('uploads.recheck', { id: upload._id });
    await s.idle();
    const again = await s.call('uploads.get', { id: upload._id });
    expect(again.checks[1].status).toBe('SUCCESS');
    const rechecked = (await s.call('uploads.files', { id: upload._id })).items;
    expect(rechecked.find((x) => x.path === 'scan.tif')!.md5).toBe(md5(content));
  });

  it('fails a file whose modification time changed while it was being read, and records no hashes for it', async () => {
    const s = await service();
    const root = delivery({ 'a.txt': 'first' });
    // sparse: no disk space, but 512 MiB to read after the first progress report (8 MiB)
    const big = sparseFile(path.join(root, 'big.bin'), 512 << 20, LISTED);
    let touched = false;
    const changed = beforeHashing(s, 'big.bin', (_abs, t) => ({
      ...t,
      onBytes: (n) => {
        t.onBytes?.(n);
        if (touched) return;
        touched = true;
        // the copy tool writes into the preallocated file while Fonds reads it
        fillInPlace(big, 'written meanwhile', LATER);
      },
    }));
    const { upload, findings } = await ingest(s, [root]);
    expect(changed() && touched).toBe(true);
    expect(upload.checks[1]).toMatchObject({ kind: 'standard', status: 'FAILURE', errors: 1 });
    const f = findings.find((x) => x.rule === 'changed-during-check')!;
    expect(f).toMatchObject({ check: 'standard', path: 'big.bin', severity: 'error' });
    expect(f.message).toBe(
      'big.bin: changed while it was being read for the check (last modified 2024-05-06T07:08:09.000Z when it was opened, 2030-01-02T03:04:05.000Z after it was read); the checksums are of bytes that were being written. Check the upload again once the delivery is complete',
    );
    const files = (await s.call('uploads.files', { id: upload._id })).items;
    expect(files.find((x) => x.path === 'big.bin')).toMatchObject({ size: 512 << 20, md5: '', sha256: '' });
    expect(files.find((x) => x.path === 'a.txt')!.md5).toBe(md5('first'));
  });

  it('keeps the size message when the size changed too, and passes a file only touched before the walk', async () => {
    const s = await service();
    const root = delivery({ 'a.txt': 'hello', 'b.txt': 'steady' });
    fs.utimesSync(path.join(root, 'b.txt'), LISTED, LISTED);
    beforeHashing(s, 'a.txt', (abs) => {
      fs.appendFileSync(abs, ' world');
      fs.utimesSync(abs, LATER, LATER);
    });
    const { upload, findings } = await ingest(s, [root]);
    expect(upload.checks[1]).toMatchObject({ status: 'FAILURE', errors: 1 });
    expect(findings.filter((x) => x.rule === 'changed-during-check').map((x) => x.message)).toEqual([
      'a.txt: changed while the delivery was being checked (5 bytes when it was listed, 11 bytes when it was read); it is still being written or was replaced. Check the upload again once the delivery is complete',
    ]);
    const files = (await s.call('uploads.files', { id: upload._id })).items;
    expect(files.find((x) => x.path === 'b.txt')!.md5).toBe(md5('steady'));
  });
});
