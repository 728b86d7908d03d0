import { DeleteObjectCommand, GetObjectCommand, HeadObjectCommand, S3Client } from '@aws-sdk/client-s3';
import { Upload } from '@aws-sdk/lib-storage';
import { createHash } from 'node:crypto';
import fs from 'node:fs';
import { Readable, Transform } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { FondsError } from '../../../src-shared/errors';
import { unsafeRelativePath } from '../paths';
import type { Fixity, PutOptions, Storage } from './storage';

export interface S3Settings {
  endpoint: string;
  region: string;
  bucket: string;
  prefix: string;
  accessKeyId: string;
  secretAccessKey: string;
  forcePathStyle: boolean;
  partSizeMb: number;
  queueSize: number;
  /** verify by reading the whole object back, not only size + checksums */
  verifyReread: boolean;
}

/**
 * Stored data in an S3 bucket (AWS or any S3-compatible server). Each byte of the source is read
 * once: the stream feeds the MD5, SHA-256 and per-part MD5s on its way to a multipart upload, which
 * only exists once completed (an interrupted upload is aborted, never half-visible). Verification
 * checks size, the ETag (single-part: the MD5; multipart: the MD5 of part MD5s) and the SHA-256 kept
 * in the object's metadata; optionally it reads the whole object back.
 */
export class S3Storage implements Storage {
  readonly kind = 's3' as const;
  readonly label: string;
  private readonly client: S3Client;
  private readonly partSize: number;

  constructor(private readonly s: S3Settings) {
    this.label = `s3://${s.bucket}/${s.prefix}`;
    this.partSize = Math.max(5, s.partSizeMb) * 1024 * 1024;
    this.client = new S3Client({
      region: s.region,
      ...(s.endpoint ? { endpoint: s.endpoint } : {}),
      forcePathStyle: s.forcePathStyle,
      credentials: s.accessKeyId ? { accessKeyId: s.accessKeyId, secretAccessKey: s.secretAccessKey } : undefined,
      // only the checksums S3 requires: many S3-compatible servers reject the newer trailing checksums
      requestChecksumCalculation: 'WHEN_REQUIRED',
      responseChecksumValidation: 'WHEN_REQUIRED',
    });
  }

  private keyOf(key: string): string {
    const why = unsafeRelativePath(key);
    if (why) throw new FondsError('PATH_INVALID', `Refused S3 key '${key}': ${why}.`);
    const prefix = this.s.prefix.replace(/^\/+|\/+$/g, '');
    return prefix ? `${prefix}/${key}` : key;
  }

  async put(key: string, source: string, opts: PutOptions = {}): Promise<Fixity> {
    const Key = this.keyOf(key);
    const md5 = createHash('md5');
    const sha256 = opts.expected ? undefined : createHash('sha256');
    const partMd5s: Buffer[] = [];
    let part = createHash('md5');
    let inPart = 0;
    let size = 0;
    const partSize = this.partSize;
    const hashing = new Transform({
      transform(chunk: Buffer, _enc, done) {
        md5.update(chunk);
        sha256?.update(chunk);
        size += chunk.length;
        let offset = 0;
        while (offset < chunk.length) {
          const take = Math.min(partSize - inPart, chunk.length - offset);
          part.update(chunk.subarray(offset, offset + take));
          inPart += take;
          offset += take;
          if (inPart === partSize) {
            partMd5s.push(part.digest());
            part = createHash('md5');
            inPart = 0;
          }
        }
        opts.onBytes?.(chunk.length);
        done(null, chunk);
      },
    });
    const body = fs.createReadStream(source, { highWaterMark: 1024 * 1024 }).pipe(hashing);
    const upload = new Upload({
      client: this.client,
      params: { Bucket: this.s.bucket, Key, Body: body },
      partSize,
      queueSize: this.s.queueSize,
      leavePartsOnError: false,
    });
    const onAbort = () => void upload.abort();
    opts.signal?.addEventListener('abort', onAbort, { once: true });
    try {
      await upload.done();
    } catch (err) {
      if (opts.signal?.aborted) throw new FondsError('CANCELLED', `${key}: upload cancelled.`);
      throw new FondsError('IO_ERROR', `${key}: S3 upload to ${this.label} failed: ${(err as Error).message}`);
    } finally {
      opts.signal?.removeEventListener('abort', onAbort);
    }
    if (inPart > 0 || partMd5s.length === 0) partMd5s.push(part.digest());
    const digest = md5.digest('hex');
    const same = opts.expected && digest === opts.expected.md5 && size === opts.expected.size;
    const fixity = { size, md5: digest, sha256: sha256 ? sha256.digest('hex') : same ? opts.expected!.sha256 : '' };
    this.lastEtags.set(Key, partMd5s.length > 1 ? `${createHash('md5').update(Buffer.concat(partMd5s)).digest('hex')}-${partMd5s.length}` : fixity.md5);
    return fixity;
  }

  /** the ETag each key must have after our own upload (single-part MD5, or multipart MD5-of-MD5s) */
  private readonly lastEtags = new Map<string, string>();

  async verify(key: string, expected: Fixity, opts: PutOptions = {}): Promise<{ ok: true } | { ok: false; reason: string }> {
    const Key = this.keyOf(key);
    let head;
    try {
      head = await this.client.send(new HeadObjectCommand({ Bucket: this.s.bucket, Key }));
    } catch (err) {
      return { ok: false, reason: `${key}: not found in ${this.label} after the copy (${(err as Error).name})` };
    }
    if (head.ContentLength !== expected.size) return { ok: false, reason: `${key}: ${head.ContentLength} bytes stored, ${expected.size} expected` };
    const etag = head.ETag?.replace(/"/g, '');
    const wanted = this.lastEtags.get(Key);
    this.lastEtags.delete(Key);
    // The ETag proves the content when the server computes it the AWS way (MD5, or MD5 of part
    // MD5s + "-N"). Servers that compute it otherwise get the full re-read instead.
    const etagProves = etag !== undefined && (etag === expected.md5 || (wanted !== undefined && etag === wanted));
    if (!etagProves && etag && /^[0-9a-f]{32}$/.test(etag) && !wanted) {
      return { ok: false, reason: `${key}: stored MD5 ${etag} differs from ${expected.md5}` };
    }
    if (this.s.verifyReread || !etagProves) {
      const res = await this.client.send(new GetObjectCommand({ Bucket: this.s.bucket, Key }), { abortSignal: opts.signal });
      const md5 = createHash('md5');
      const sha = createHash('sha256');
      await pipeline(res.Body as Readable, async function (src: AsyncIterable<Buffer>) {
        for await (const chunk of src) {
          md5.update(chunk);
          sha.update(chunk);
          opts.onBytes?.(chunk.length);
        }
      });
      const m = md5.digest('hex');
      const s = sha.digest('hex');
      if (m !== expected.md5) return { ok: false, reason: `${key}: stored MD5 ${m} differs from ${expected.md5}` };
      if (s !== expected.sha256) return { ok: false, reason: `${key}: stored SHA-256 ${s} differs from ${expected.sha256}` };
    }
    return { ok: true };
  }

  async stat(key: string): Promise<{ size: number } | undefined> {
    try {
      const head = await this.client.send(new HeadObjectCommand({ Bucket: this.s.bucket, Key: this.keyOf(key) }));
      return { size: head.ContentLength ?? 0 };
    } catch {
      return undefined;
    }
  }

  async read(key: string): Promise<Readable> {
    const res = await this.client.send(new GetObjectCommand({ Bucket: this.s.bucket, Key: this.keyOf(key) }));
    return res.Body as Readable;
  }

  async delete(key: string): Promise<void> {
    await this.client.send(new DeleteObjectCommand({ Bucket: this.s.bucket, Key: this.keyOf(key) }));
  }

  async close(): Promise<void> {
    this.client.destroy();
  }
}
