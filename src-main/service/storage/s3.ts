import {
  AbortMultipartUploadCommand,
  DeleteObjectCommand,
  GetObjectCommand,
  HeadObjectCommand,
  ListMultipartUploadsCommand,
  S3Client,
} from '@aws-sdk/client-s3';
import { Upload } from '@aws-sdk/lib-storage';
import { getSignedUrl } from '@aws-sdk/s3-request-presigner';
import type { BuildHandlerArguments, BuildMiddleware, HandlerExecutionContext, MetadataBearer } from '@smithy/types';
import { createHash, type Hash } from 'node:crypto';
import fs from 'node:fs';
import { pipeline, Transform, type Readable } from 'node:stream';
import { FondsError } from '../../../src-shared/errors';
import { ioMessage } from '../fixity/hash-pool';
import { unsafeRelativePath } from '../paths';
import type { Fixity, PutOptions, Storage, Stored, Verification } from './storage';

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

/** The checksums of one upload, computed by the stream on its way, read by the request middleware. */
interface Digests {
  /** MD5 of each complete part, in order (the ETag of a multipart object is the MD5 of these) */
  parts: Buffer[];
  md5?: Buffer;
  sha256?: Buffer;
}

/**
 * Stored data in an S3 bucket (AWS or any S3-compatible server). Each source byte is read once: the
 * stream hashes it (MD5, SHA-256, the MD5 of each part) on its way to `@aws-sdk/lib-storage`, which
 * sends one PUT or a multipart upload (`s3PartSizeMb`, `s3QueueSize` parts at once).
 * - Every PUT and part carries `Content-MD5` (and a single PUT `x-amz-checksum-sha256`): a server
 *   that checks them (AWS, MinIO, Ceph...) refuses bytes damaged on the way.
 * - The stream compares the file with its intake checksums before it ends: a changed source makes
 *   the upload fail, so it is never completed and an older version under the key stays.
 * - An interrupted upload is aborted, never completed: nothing half-written becomes visible.
 * - After the upload: HEAD (size; the server's SHA-256 when it keeps one; the ETag, which is the
 *   MD5, or the MD5 of the part MD5s + "-N"); when none of these proves the content, or with
 *   `s3VerifyReread`, the object is read back whole and its SHA-256 compared.
 */
export class S3Storage implements Storage {
  readonly kind = 's3' as const;
  readonly label: string;
  readonly verification: string;
  readonly parallelFiles = 16;
  private readonly client: S3Client;
  private readonly partSize: number;
  private readonly prefix: string;
  private readonly digests = new Map<string, Digests>();

  constructor(private readonly s: S3Settings) {
    this.prefix = s.prefix.replace(/^\/+|\/+$/g, '');
    const why = this.prefix ? unsafeRelativePath(this.prefix) : undefined;
    if (why) throw new FondsError('CONFIG_INVALID', `setting 's3Prefix' (FONDS_S3_PREFIX) '${s.prefix}' cannot be used: ${why}.`, { key: 's3Prefix' });
    this.label = `s3://${s.bucket}${this.prefix ? '/' + this.prefix : ''}`;
    this.verification = s.verifyReread ? 'object read back whole, SHA-256 equal' : 'HEAD: size, and the checksum or ETag the server computed';
    this.partSize = Math.max(5, s.partSizeMb) * 1024 * 1024;
    this.client = new S3Client({
      region: s.region,
      ...(s.endpoint ? { endpoint: s.endpoint } : {}),
      forcePathStyle: s.forcePathStyle,
      credentials: s.accessKeyId ? { accessKeyId: s.accessKeyId, secretAccessKey: s.secretAccessKey } : undefined,
      // no trailing (aws-chunked) checksums: many S3-compatible servers reject them; Fonds sends its
      // own Content-MD5 and SHA-256 headers instead (below)
      requestChecksumCalculation: 'WHEN_REQUIRED',
      responseChecksumValidation: 'WHEN_REQUIRED',
    });
    this.client.middlewareStack.add(this.checksumHeaders(), { step: 'build', name: 'fondsChecksumHeaders' });
  }

  /** Adds Content-MD5 (and x-amz-checksum-sha256 on a single PUT) from the digests the stream computed. */
  private checksumHeaders(): BuildMiddleware<object, MetadataBearer> {
    return (next, context: HandlerExecutionContext) => async (args: BuildHandlerArguments<object>) => {
      const command = context.commandName;
      const input = args.input as { Key?: string; PartNumber?: number };
      const request = args.request as { headers?: Record<string, string>; body?: unknown };
      if ((command === 'PutObjectCommand' || command === 'UploadPartCommand') && request.headers && input.Key && request.body instanceof Uint8Array) {
        const d = this.digests.get(input.Key);
        const md5 = command === 'UploadPartCommand' ? d?.parts[(input.PartNumber ?? 0) - 1] : d?.md5;
        request.headers['content-md5'] = (md5 ?? createHash('md5').update(request.body).digest()).toString('base64');
        if (command === 'PutObjectCommand') {
          request.headers['x-amz-checksum-sha256'] = (d?.sha256 ?? createHash('sha256').update(request.body).digest()).toString('base64');
        }
      }
      return next(args);
    };
  }

  /** a single PUT holds the file; a multipart upload holds the part being read and those in flight */
  memoryFor(size: number): number {
    return size <= this.partSize ? size : (this.s.queueSize + 1) * this.partSize;
  }

  private keyOf(key: string): string {
    const why = unsafeRelativePath(key);
    if (why) throw new FondsError('PATH_INVALID', `Refused S3 key '${key}': ${why}.`, { key });
    return this.prefix ? `${this.prefix}/${key}` : key;
  }

  async put(key: string, source: string, expected: Fixity, opts: PutOptions = {}): Promise<Stored> {
    const name = opts.name ?? key;
    const Key = this.keyOf(key);
    opts.signal?.throwIfAborted();
    const md5 = createHash('md5');
    const sha256 = createHash('sha256');
    const digests: Digests = { parts: [] };
    let part: Hash = createHash('md5');
    let inPart = 0;
    let size = 0;
    const partSize = this.partSize;
    let changed: FondsError | undefined;
    const hashing = new Transform({
      transform(chunk: Buffer, _enc, done) {
        md5.update(chunk);
        sha256.update(chunk);
        size += chunk.length;
        for (let offset = 0; offset < chunk.length; ) {
          const take = Math.min(partSize - inPart, chunk.length - offset);
          part.update(chunk.subarray(offset, offset + take));
          inPart += take;
          offset += take;
          if (inPart === partSize) {
            digests.parts.push(part.digest());
            part = createHash('md5');
            inPart = 0;
          }
        }
        opts.onBytes?.(chunk.length);
        done(null, chunk);
      },
      flush(done) {
        if (inPart > 0 || digests.parts.length === 0) digests.parts.push(part.digest());
        digests.md5 = md5.digest();
        digests.sha256 = sha256.digest();
        const got = { size, md5: digests.md5.toString('hex'), sha256: digests.sha256.toString('hex') };
        // failing here, before the stream ends, keeps the upload from ever being completed
        if (got.size !== expected.size || got.md5 !== expected.md5 || got.sha256 !== expected.sha256) {
          changed = new FondsError(
            'CHECK_FAILED',
            `${name}: the delivered file changed since it was checked (now ${got.size} bytes, SHA-256 ${got.sha256}; checked: ${expected.size} bytes, SHA-256 ${expected.sha256}). Nothing was stored; the source is kept. Check the upload again.`,
            { failure: 'source-changed' },
          );
          done(changed);
        } else done();
      },
    });
    let sourceError: NodeJS.ErrnoException | undefined;
    const file = fs.createReadStream(source, { highWaterMark: 1024 * 1024 });
    file.once('error', (e) => (sourceError ??= e));
    const body = pipeline(file, hashing, () => undefined);
    const upload = new Upload({
      client: this.client,
      params: { Bucket: this.s.bucket, Key, Body: body },
      partSize,
      queueSize: this.s.queueSize,
      leavePartsOnError: false,
    });
    const onAbort = () => void upload.abort();
    opts.signal?.addEventListener('abort', onAbort, { once: true });
    this.digests.set(Key, digests);
    try {
      await upload.done();
    } catch (err) {
      if (opts.signal?.aborted) throw new FondsError('CANCELLED', `${name}: upload to ${this.label} cancelled; nothing was stored.`);
      if (changed) throw changed;
      if (sourceError) {
        throw new FondsError('IO_ERROR', `${name}: cannot read the delivered file ${source}: ${ioMessage('', sourceError.code ?? 'EIO', sourceError.message).replace(/^: /, '')}. Nothing was stored.`, {
          errno: sourceError.code,
          side: 'source',
        });
      }
      throw this.explain(err, name, 'upload');
    } finally {
      opts.signal?.removeEventListener('abort', onAbort);
      this.digests.delete(Key);
      file.destroy();
    }
    const etag = digests.parts.length > 1 ? `${createHash('md5').update(Buffer.concat(digests.parts)).digest('hex')}-${digests.parts.length}` : expected.md5;
    const proof = await this.check(Key, name, expected, etag, opts);
    if (!proof.ok) {
      throw new FondsError('CHECK_FAILED', `${name}: the object in ${this.label} does not match the delivered file after the upload: ${proof.reason}. The source is kept.`, {
        failure: 'verification',
        stored: true,
      });
    }
    return { fixity: expected, proof: proof.proof };
  }

  async verify(key: string, expected: Fixity, opts: PutOptions = {}): Promise<Verification> {
    return this.check(this.keyOf(key), opts.name ?? key, expected, undefined, opts);
  }

  /**
   * Proves the object under `Key` equals `expected`: HEAD first (size; the server's own full-object
   * SHA-256; an ETag equal to the MD5 or to the multipart ETag our upload must have), else, or with
   * `s3VerifyReread`, a full read-back. An ETag that does not match is no proof of damage (encrypted
   * objects have other ETags): the read-back decides.
   */
  private async check(Key: string, name: string, expected: Fixity, multipartEtag: string | undefined, opts: PutOptions): Promise<Verification> {
    let head;
    try {
      head = await this.client.send(new HeadObjectCommand({ Bucket: this.s.bucket, Key, ChecksumMode: 'ENABLED' }), { abortSignal: opts.signal });
    } catch (err) {
      if (opts.signal?.aborted) throw new FondsError('CANCELLED', `${name}: verification cancelled.`);
      const e = this.explain(err, name, 'HEAD');
      if (e.code === 'NOT_FOUND') return { ok: false, reason: `${name}: missing from ${this.label}` };
      throw e;
    }
    if (head.ContentLength !== expected.size) return { ok: false, reason: `${name}: ${head.ContentLength} bytes stored, ${expected.size} expected` };
    if (!this.s.verifyReread) {
      const serverSha = head.ChecksumSHA256 && !head.ChecksumSHA256.includes('-') ? Buffer.from(head.ChecksumSHA256, 'base64').toString('hex') : undefined;
      if (serverSha === expected.sha256) return { ok: true, proof: 'HEAD: size and the SHA-256 the server computed' };
      if (serverSha) return { ok: false, reason: `${name}: the server's SHA-256 ${serverSha} differs from ${expected.sha256}` };
      const etag = head.ETag?.replace(/"/g, '');
      if (etag === expected.md5) return { ok: true, proof: 'HEAD: size and ETag = MD5' };
      if (multipartEtag && etag === multipartEtag) return { ok: true, proof: 'HEAD: size and ETag = MD5 of the part MD5s' };
    }
    const md5 = createHash('md5');
    const sha = createHash('sha256');
    let got = 0;
    try {
      const res = await this.client.send(new GetObjectCommand({ Bucket: this.s.bucket, Key }), { abortSignal: opts.signal });
      for await (const chunk of res.Body as Readable) {
        md5.update(chunk as Buffer);
        sha.update(chunk as Buffer);
        got += (chunk as Buffer).length;
      }
    } catch (err) {
      if (opts.signal?.aborted) throw new FondsError('CANCELLED', `${name}: verification cancelled.`);
      throw this.explain(err, name, 'read-back');
    }
    const m = md5.digest('hex');
    const s = sha.digest('hex');
    if (got !== expected.size) return { ok: false, reason: `${name}: ${got} bytes read back, ${expected.size} expected` };
    if (s !== expected.sha256) return { ok: false, reason: `${name}: stored SHA-256 ${s} differs from ${expected.sha256} (stored MD5 ${m}, expected ${expected.md5})` };
    return { ok: true, proof: 'read back whole, SHA-256 equal' };
  }

  async stat(key: string): Promise<{ size: number } | undefined> {
    try {
      const head = await this.client.send(new HeadObjectCommand({ Bucket: this.s.bucket, Key: this.keyOf(key) }));
      return { size: head.ContentLength ?? 0 };
    } catch (err) {
      const e = this.explain(err, key, 'HEAD');
      if (e.code === 'NOT_FOUND') return undefined;
      throw e;
    }
  }

  async read(key: string): Promise<Readable> {
    try {
      const res = await this.client.send(new GetObjectCommand({ Bucket: this.s.bucket, Key: this.keyOf(key) }));
      return res.Body as Readable;
    } catch (err) {
      throw this.explain(err, key, 'read');
    }
  }

  /**
   * A presigned GET of the object under `key`, valid `ttlSeconds`: a download link that needs no
   * credentials. `ChecksumMode` makes the download answer the SHA-256 the server kept. Signed here,
   * no request is sent: there is no S3 answer to explain.
   */
  async presign(key: string, ttlSeconds: number): Promise<string> {
    return getSignedUrl(this.client, new GetObjectCommand({ Bucket: this.s.bucket, Key: this.keyOf(key), ChecksumMode: 'ENABLED' }), { expiresIn: ttlSeconds });
  }

  async delete(key: string): Promise<void> {
    try {
      await this.client.send(new DeleteObjectCommand({ Bucket: this.s.bucket, Key: this.keyOf(key) }));
    } catch (err) {
      throw this.explain(err, key, 'delete');
    }
  }

  /**
   * Aborts the incomplete multipart uploads a crash left under `prefix` (they are invisible but
   * keep their parts). A server that cannot list them (s3rver) is left to the bucket's
   * AbortIncompleteMultipartUpload lifecycle rule.
   */
  async sweep(prefix: string): Promise<number> {
    const Prefix = `${this.keyOf(prefix)}/`;
    let aborted = 0;
    let KeyMarker: string | undefined;
    let UploadIdMarker: string | undefined;
    try {
      for (;;) {
        const page = await this.client.send(new ListMultipartUploadsCommand({ Bucket: this.s.bucket, Prefix, KeyMarker, UploadIdMarker }));
        for (const u of page.Uploads ?? []) {
          if (!u.Key?.startsWith(Prefix) || !u.UploadId) continue;
          await this.client.send(new AbortMultipartUploadCommand({ Bucket: this.s.bucket, Key: u.Key, UploadId: u.UploadId }));
          aborted++;
        }
        if (!page.IsTruncated) break;
        KeyMarker = page.NextKeyMarker;
        UploadIdMarker = page.NextUploadIdMarker;
      }
    } catch (err) {
      const name = (err as Error).name;
      if (name === 'NotImplemented' || name === 'MethodNotAllowed' || (err as { $metadata?: { httpStatusCode?: number } }).$metadata?.httpStatusCode === 501) return aborted;
      throw this.explain(err, prefix, 'list incomplete uploads');
    }
    return aborted;
  }

  async close(): Promise<void> {
    this.client.destroy();
  }

  /** An S3 or network error in words, naming the file, the storage and what was being done. */
  private explain(err: unknown, name: string, doing: string): FondsError {
    if (err instanceof FondsError) return err;
    const e = err as Error & { code?: string; $metadata?: { httpStatusCode?: number }; Code?: string };
    const code = e.code ?? e.Code ?? e.name;
    const status = e.$metadata?.httpStatusCode;
    const where = `${this.label}${this.s.endpoint ? ` at ${this.s.endpoint}` : ''}`;
    const network = ['ECONNREFUSED', 'ECONNRESET', 'ENOTFOUND', 'EAI_AGAIN', 'ETIMEDOUT', 'EHOSTUNREACH', 'ENETUNREACH', 'EPIPE', 'TimeoutError'];
    if (network.includes(code) || network.some((n) => e.message?.includes(n))) {
      return new FondsError('UNAVAILABLE', `${name}: the S3 storage ${where} cannot be reached (${code}: ${e.message}); the work waits and is retried.`, { code });
    }
    if (status === 404 || code === 'NotFound' || code === 'NoSuchKey') return new FondsError('NOT_FOUND', `${name}: not found in ${where}.`, { code });
    const words: Record<string, string> = {
      NoSuchBucket: `the bucket '${this.s.bucket}' does not exist at ${this.s.endpoint || 'AWS'} (setting s3Bucket)`,
      AccessDenied: `access denied by ${where} (check s3AccessKeyId, s3SecretAccessKey and the bucket policy)`,
      InvalidAccessKeyId: `the access key is not known to ${where} (setting s3AccessKeyId)`,
      SignatureDoesNotMatch: `the secret key does not match (setting s3SecretAccessKey)`,
      BadDigest: `the server received bytes whose MD5 differs from the Content-MD5 sent: damaged on the way; nothing was stored`,
      InvalidDigest: `the server refused the Content-MD5 sent; nothing was stored`,
      XAmzContentSHA256Mismatch: `the server received bytes whose SHA-256 differs from the one sent: damaged on the way; nothing was stored`,
      EntityTooLarge: `the object is larger than ${where} accepts`,
      QuotaExceeded: `the storage quota of ${where} is exceeded`,
      SlowDown: `${where} asks to slow down`,
      ServiceUnavailable: `${where} is unavailable`,
    };
    const text = words[code] ?? `${code}${status ? ` (HTTP ${status})` : ''}: ${e.message}`;
    const retryable = code === 'SlowDown' || code === 'ServiceUnavailable' || code === 'InternalError' || (status !== undefined && status >= 500);
    return new FondsError(retryable ? 'UNAVAILABLE' : 'IO_ERROR', `${name}: S3 ${doing} to ${where} failed: ${text}.`, { code, ...(status ? { status } : {}) });
  }
}
