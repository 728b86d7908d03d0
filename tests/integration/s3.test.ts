/** S3 storage against a real S3-compatible server (s3rver, see tests/helpers/s3.ts) started by the test. */
import { CreateMultipartUploadCommand, PutObjectCommand, S3Client, UploadPartCommand } from '@aws-sdk/client-s3';
import crypto from 'node:crypto';
import fs from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { S3Storage } from '../../src-main/service/storage/s3';
import { startS3, type S3Server } from '../helpers/s3';
import { startService, tempDirs, waitFor, writeTree } from '../helpers/service';

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
const MiB = 1024 * 1024;

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

function rawClient(): S3Client {
  const raw = new S3Client({ region: 'us-east-1', endpoint: s3.endpoint, forcePathStyle: true, credentials: { accessKeyId: s3.accessKeyId, secretAccessKey: s3.secretAccessKey } });
  cleanups.push(async () => raw.destroy());
  return raw;
}

const keyOf = (st: S3Storage, key: string) => (st as unknown as { keyOf(k: string): string }).keyOf(key);
const digest = (alg: string, data: Buffer, enc: 'hex' | 'base64' = 'hex') => crypto.createHash(alg).update(data).digest(enc);

function file(bytes: number): { path: string; data: Buffer; fixity: { size: number; md5: string; sha256: string } } {
  const data = crypto.randomBytes(bytes);
  const p = path.join(dir(), 'f.bin');
  fs.writeFileSync(p, data);
  return { path: p, data, fixity: { size: bytes, md5: digest('md5', data), sha256: digest('sha256', data) } };
}

async function readBack(st: S3Storage, key: string): Promise<Buffer> {
  const chunks: Buffer[] = [];
  for await (const c of await st.read(key)) chunks.push(c as Buffer);
  return Buffer.concat(chunks);
}

describe('S3 storage: copy with fixity', () => {
  it('stores a small file in one PUT carrying Content-MD5 and x-amz-checksum-sha256, and proves it by HEAD', async () => {
    const st = storage();
    const f = file(1000);
    const stored = await st.put('a/small.bin', f.path, f.fixity);
    expect(stored).toEqual({ fixity: f.fixity, proof: 'HEAD: size and ETag = MD5' });
    const put = s3.puts.filter((p) => p.key === keyOf(st, 'a/small.bin'));
    expect(put).toHaveLength(1);
    expect(put[0]).toMatchObject({ contentMd5: digest('md5', f.data, 'base64'), checksumSha256: digest('sha256', f.data, 'base64') });
    expect(put[0].contentMd5).toBe(put[0].bodyMd5);
    expect(put[0].checksumSha256).toBe(put[0].bodySha256);
    expect(await st.stat('a/small.bin')).toEqual({ size: 1000 });
  });

  it('stores a large file as a multipart upload, reading it once, each part with its Content-MD5', async () => {
    const st = storage();
    const f = file(12 * MiB + 17);
    let read = 0;
    const stored = await st.put('big.bin', f.path, f.fixity, { onBytes: (n) => (read += n) });
    expect(read).toBe(f.fixity.size);
    expect(stored.proof).toMatch(/^HEAD: size and ETag/);
    const parts = s3.puts.filter((p) => p.key === keyOf(st, 'big.bin'));
    expect(parts.map((p) => p.partNumber).sort()).toEqual([1, 2, 3]);
    for (const p of parts) expect(p.contentMd5).toBe(p.bodyMd5);
    expect(digest('md5', await readBack(st, 'big.bin'))).toBe(f.fixity.md5);
    expect(s3.incompleteUploads()).toEqual([]);
  });

  it('with s3VerifyReread, proves the copy by reading it back whole', async () => {
    const st = storage({ verifyReread: true });
    const f = file(6 * MiB);
    expect((await st.put('reread.bin', f.path, f.fixity)).proof).toBe('read back whole, SHA-256 equal');
  });

  it('detects an object corrupted after the copy', async () => {
    const st = storage();
    const f = file(4096);
    await st.put('c.bin', f.path, f.fixity);
    await rawClient().send(new PutObjectCommand({ Bucket: s3.bucket, Key: keyOf(st, 'c.bin'), Body: crypto.randomBytes(4096) }));
    const proof = await st.verify('c.bin', f.fixity);
    expect(proof.ok).toBe(false);
    expect(!proof.ok && proof.reason).toMatch(/^c\.bin: stored SHA-256 [0-9a-f]{64} differs from [0-9a-f]{64}/);
  });

  it('says in words when the server received damaged bytes (BadDigest), and stores nothing', async () => {
    const st = storage();
    const f = file(2048);
    s3.rejectNextPuts(1);
    await expect(st.put('damaged.bin', f.path, f.fixity)).rejects.toMatchObject({ code: 'IO_ERROR', message: expect.stringContaining('damaged on the way; nothing was stored') });
    expect(await st.stat('damaged.bin')).toBeUndefined();
  });

  it('never completes the upload of a file that changed since its check, and keeps the older version', async () => {
    const st = storage();
    for (const size of [3000, 11 * MiB]) {
      const v1 = file(size);
      await st.put(`keep-${size}.bin`, v1.path, v1.fixity);
      const v2 = file(size);
      await expect(st.put(`keep-${size}.bin`, v2.path, v1.fixity)).rejects.toMatchObject({
        code: 'CHECK_FAILED',
        details: { failure: 'source-changed' },
        message: expect.stringContaining(`keep-${size}.bin: the delivered file changed since it was checked`),
      });
      expect(digest('md5', await readBack(st, `keep-${size}.bin`))).toBe(v1.fixity.md5);
    }
    await waitFor(() => s3.incompleteUploads(), (u) => u.length === 0);
  });

  it('cancels a multipart upload: nothing under the key, the parts aborted', async () => {
    const st = storage({ queueSize: 1 });
    const f = file(40 * MiB);
    const controller = new AbortController();
    let read = 0;
    const put = st.put('cancelled.bin', f.path, f.fixity, {
      signal: controller.signal,
      onBytes: (n) => {
        read += n;
        if (read > 12 * MiB) controller.abort('test');
      },
    });
    await expect(put).rejects.toMatchObject({ code: 'CANCELLED' });
    expect(await st.stat('cancelled.bin')).toBeUndefined();
    await waitFor(() => s3.incompleteUploads(), (u) => u.length === 0);
  });

  it('sweeps the incomplete multipart uploads a crash left under a stored data', async () => {
    const st = storage();
    const raw = rawClient();
    const { UploadId } = await raw.send(new CreateMultipartUploadCommand({ Bucket: s3.bucket, Key: keyOf(st, 'sd-1/left.bin') }));
    await raw.send(new UploadPartCommand({ Bucket: s3.bucket, Key: keyOf(st, 'sd-1/left.bin'), UploadId, PartNumber: 1, Body: crypto.randomBytes(5 * MiB) }));
    await raw.send(new CreateMultipartUploadCommand({ Bucket: s3.bucket, Key: keyOf(st, 'sd-2/other.bin') }));
    expect(await st.sweep('sd-1')).toBe(1);
    expect(s3.incompleteUploads()).toEqual([keyOf(st, 'sd-2/other.bin')]);
    expect(await st.sweep('sd-2')).toBe(1);
  });

  it('names the file and the reason when the source cannot be read, without crashing', async () => {
    const st = storage();
    const missing = path.join(dir(), 'gone.bin');
    await expect(st.put('gone.bin', missing, { size: 1, md5: 'x', sha256: 'y' })).rejects.toMatchObject({
      code: 'IO_ERROR',
      message: expect.stringMatching(/^gone\.bin: cannot read the delivered file .*gone\.bin: the file does not exist/),
    });
  });

  it('says the storage cannot be reached when nothing listens at the endpoint', async () => {
    const port = await new Promise<number>((resolve) => {
      const srv = net.createServer().listen(0, '127.0.0.1', () => {
        const p = (srv.address() as net.AddressInfo).port;
        srv.close(() => resolve(p));
      });
    });
    const st = storage({ endpoint: `http://127.0.0.1:${port}` });
    const f = file(100);
    await expect(st.put('x.bin', f.path, f.fixity)).rejects.toMatchObject({ code: 'UNAVAILABLE', message: expect.stringContaining('cannot be reached') });
  });

  it('refuses keys that would leave the prefix, and a prefix that is not a relative path', async () => {
    const st = storage();
    const f = file(10);
    await expect(st.put('../escape.bin', f.path, f.fixity)).rejects.toMatchObject({ code: 'PATH_INVALID' });
    await expect(st.put('/abs.bin', f.path, f.fixity)).rejects.toMatchObject({ code: 'PATH_INVALID' });
    await expect(st.put('a/../../b.bin', f.path, f.fixity)).rejects.toMatchObject({ code: 'PATH_INVALID' });
    expect(() => storage({ prefix: 'a/../..' })).toThrow(/s3Prefix/);
  });
});

describe('an execution into S3', () => {
  async function s3Service(overrides = {}) {
    const s = await startService({
      storage: 's3',
      s3Endpoint: s3.endpoint,
      s3Bucket: s3.bucket,
      s3Prefix: `exec-${crypto.randomUUID()}`,
      s3AccessKeyId: s3.accessKeyId,
      s3SecretAccessKey: s3.secretAccessKey,
      s3PartSizeMb: 5,
      s3QueueSize: 1,
      ...overrides,
    });
    cleanups.push(s.dispose);
    return s.service;
  }

  it('generates a verified stored data in the bucket', async () => {
    const service = await s3Service();
    const root = dir();
    writeTree(root, { 'a.txt': 'alpha', 'b/c.bin': crypto.randomBytes(6 * MiB) });
    const u = await service.call('uploads.ingestPaths', { paths: [root] });
    await service.idle();
    const e = await service.call('executions.create', { processing: 'archive-to-archive', inputs: { upload: [u._id] }, output: { stored_data: { name: 'To S3' } } });
    await service.call('executions.launch', { id: e._id });
    await service.idle();
    const done = await service.call('executions.get', { id: e._id });
    expect(done.status).toBe('SUCCESS');
    const sd = await service.call('storedData.get', { id: done.output.stored_data._id });
    expect(sd).toMatchObject({ status: 'GENERATED', verified: true, storage: { type: 'S3' }, type_infos: { files_number: 2 } });
    expect(sd.storage.labels[0]).toMatch(/^s3:\/\/fonds-test\/exec-/);
    const finished = (await service.call('executions.timeline', { id: e._id })).items.find((x) => x.type === 'copy.finished')!;
    expect(finished.payload).toMatchObject({ verified: 2, failed: 0 });
    expect((await service.call('app.info', {})).storage).toBe('s3');
  });

  it('is cancelled mid-file, leaves no partial object, and resumes with a retry', async () => {
    const service = await s3Service();
    const root = dir();
    writeTree(root, { 'small.txt': 'small', 'large.bin': crypto.randomBytes(60 * MiB) });
    const u = await service.call('uploads.ingestPaths', { paths: [root] });
    await service.idle();
    const e = await service.call('executions.create', { processing: 'archive-to-archive', inputs: { upload: [u._id] }, output: { stored_data: { name: 'cancel me' } } });
    let cancelled = false;
    const off = service.subscribe((p) => {
      if (!cancelled && p.channel === 'progress' && p.progress.objectId === e._id && p.progress.progress.bytes >= 0 && p.progress.progress.files >= 1) {
        cancelled = true;
        void service.call('executions.cancel', { id: e._id });
      }
    });
    await service.call('executions.launch', { id: e._id });
    await service.idle();
    off();
    const after = await service.call('executions.get', { id: e._id });
    expect(after.status).toBe('FAILURE');
    expect(after.reason).toMatch(/^Cancelled by the user/);
    expect(after.files.pending).toBeGreaterThan(0);
    expect((await service.call('storedData.get', { id: after.output.stored_data._id })).status).toBe('UNSTABLE');
    await waitFor(() => s3.incompleteUploads(), (x) => x.length === 0);
    await service.call('executions.retryFailed', { id: e._id });
    await service.idle();
    const resumed = await service.call('executions.get', { id: e._id });
    expect(resumed.status).toBe('SUCCESS');
    expect(resumed.files).toMatchObject({ total: 2, verified: 2 });
  });
});
