/** S3 storage against a real S3-compatible server (s3rver) started by the test. */
import { PutObjectCommand, S3Client } from '@aws-sdk/client-s3';
import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { S3Storage } from '../../src-main/service/storage/s3';
import { startS3, type S3Server } from '../helpers/s3';
import { startService, tempDirs, writeTree } from '../helpers/service';

let s3: S3Server;
beforeAll(async () => {
  s3 = await startS3();
});
afterAll(async () => {
  await s3?.stop();
});
const dir = tempDirs(afterEach);
const cleanups: Array<() => Promise<void>> = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

function storage(overrides: Partial<ConstructorParameters<typeof S3Storage>[0]> = {}) {
  const st = new S3Storage({
    endpoint: s3.endpoint,
    region: 'us-east-1',
    bucket: s3.bucket,
    prefix: `run-${crypto.randomUUID()}`,
    accessKeyId: s3.accessKeyId,
    secretAccessKey: s3.secretAccessKey,
    forcePathStyle: true,
    partSizeMb: 5,
    queueSize: 2,
    verifyReread: false,
    ...overrides,
  });
  cleanups.push(() => st.close());
  return st;
}

function file(bytes: number): { path: string; md5: string; sha256: string; size: number } {
  const data = crypto.randomBytes(bytes);
  const p = path.join(dir(), 'f.bin');
  fs.writeFileSync(p, data);
  return { path: p, size: bytes, md5: crypto.createHash('md5').update(data).digest('hex'), sha256: crypto.createHash('sha256').update(data).digest('hex') };
}

describe('S3 storage', () => {
  it('stores a small file in one part and proves it by its MD5 ETag', async () => {
    const st = storage();
    const f = file(1000);
    const got = await st.put('a/small.bin', f.path);
    expect(got).toEqual({ size: f.size, md5: f.md5, sha256: f.sha256 });
    expect(await st.verify('a/small.bin', got)).toEqual({ ok: true });
    expect(await st.stat('a/small.bin')).toEqual({ size: 1000 });
  });

  it('stores a large file in a multipart upload, reading it once, and verifies it (also by full re-read)', async () => {
    const st = storage({ verifyReread: true });
    const f = file(12 * 1024 * 1024 + 17);
    let read = 0;
    const got = await st.put('big.bin', f.path, { onBytes: (n) => (read += n) });
    expect(read).toBe(f.size);
    expect(got.md5).toBe(f.md5);
    expect(await st.verify('big.bin', got)).toEqual({ ok: true });
    const back = crypto.createHash('md5');
    for await (const chunk of await st.read('big.bin')) back.update(chunk as Buffer);
    expect(back.digest('hex')).toBe(f.md5);
  });

  it('detects an object corrupted after the copy', async () => {
    const st = storage();
    const f = file(4096);
    const got = await st.put('c.bin', f.path);
    const raw = new S3Client({ region: 'us-east-1', endpoint: s3.endpoint, forcePathStyle: true, credentials: { accessKeyId: s3.accessKeyId, secretAccessKey: s3.secretAccessKey } });
    const key = (st as unknown as { keyOf(k: string): string }).keyOf('c.bin');
    await raw.send(new PutObjectCommand({ Bucket: s3.bucket, Key: key, Body: crypto.randomBytes(4096) }));
    raw.destroy();
    const proof = await st.verify('c.bin', got);
    expect(proof.ok).toBe(false);
    expect(!proof.ok && proof.reason).toMatch(/c\.bin: stored (ETag|MD5) [0-9a-f]+ differs from/);
  });

  it('cancels a multipart upload and leaves no object behind', async () => {
    const st = storage({ queueSize: 1 });
    const f = file(40 * 1024 * 1024);
    const controller = new AbortController();
    let read = 0;
    const put = st.put('cancelled.bin', f.path, {
      signal: controller.signal,
      onBytes: (n) => {
        read += n;
        if (read > 6 * 1024 * 1024) controller.abort('test');
      },
    });
    await expect(put).rejects.toMatchObject({ code: 'CANCELLED' });
    expect(await st.stat('cancelled.bin')).toBeUndefined();
  });

  it('refuses keys that would leave the prefix', async () => {
    const st = storage();
    const f = file(10);
    await expect(st.put('../escape.bin', f.path)).rejects.toMatchObject({ code: 'PATH_INVALID' });
    await expect(st.put('/abs.bin', f.path)).rejects.toMatchObject({ code: 'PATH_INVALID' });
  });
});

describe('an execution into S3', () => {
  it('generates a verified stored data in the bucket', async () => {
    const { service, dispose } = await startService({
      storage: 's3',
      s3Endpoint: s3.endpoint,
      s3Bucket: s3.bucket,
      s3Prefix: 'exec',
      s3AccessKeyId: s3.accessKeyId,
      s3SecretAccessKey: s3.secretAccessKey,
      s3PartSizeMb: 5,
    });
    cleanups.push(dispose);
    const root = dir();
    writeTree(root, { 'a.txt': 'alpha', 'b/c.bin': crypto.randomBytes(6 * 1024 * 1024) });
    const u = await service.call('uploads.ingestPaths', { paths: [root] });
    await service.idle();
    const e = await service.call('executions.create', { processing: 'archive-to-archive', inputs: { upload: [u._id] }, output: { stored_data: { name: 'To S3' } } });
    await service.call('executions.launch', { id: e._id });
    await service.idle();
    const done = await service.call('executions.get', { id: e._id });
    expect(done.status).toBe('SUCCESS');
    const sd = await service.call('storedData.get', { id: done.output.stored_data._id });
    expect(sd).toMatchObject({ status: 'GENERATED', verified: true, storage: { type: 'S3', labels: [`s3://${s3.bucket}/exec`] }, type_infos: { files_number: 2 } });
    expect((await service.call('app.info', {})).storage).toBe('s3');
  });
});
