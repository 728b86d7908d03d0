import crypto from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
// s3rver: an S3-compatible server from npm, started by the test on loopback
import S3rver from 's3rver';

/** What a PUT (object or part) carried and what the server received. */
export interface SeenPut {
  key: string;
  partNumber?: number;
  contentMd5?: string;
  checksumSha256?: string;
  /** base64 MD5 and SHA-256 of the body the server received */
  bodyMd5: string;
  bodySha256: string;
}

export interface S3Server {
  endpoint: string;
  bucket: string;
  accessKeyId: string;
  secretAccessKey: string;
  /** every object PUT and UploadPart the server answered */
  puts: SeenPut[];
  /** answer the next n PUTs (objects or parts) with AWS's BadDigest, as AWS does for a damaged body */
  rejectNextPuts(n: number): void;
  /** multipart uploads started and neither completed nor aborted */
  incompleteUploads(): string[];
  stop(): Promise<void>;
}

/**
 * s3rver 3.7 on 127.0.0.1 and a random port. It stores objects and multipart uploads and computes
 * MD5 ETags, but it ignores Content-MD5 and x-amz-checksum-* headers and does not implement
 * AbortMultipartUpload nor ListMultipartUploads. So a small middleware in front of it (a) records
 * the checksum headers of every PUT with the digests of the body actually received, so tests can
 * prove Fonds sends correct ones, (b) can answer BadDigest like AWS, and (c) implements abort and
 * listing of incomplete multipart uploads over s3rver's own upload folders.
 */
export async function startS3(bucket = 'fonds-test'): Promise<S3Server> {
  const directory = fs.mkdtempSync(path.join(os.tmpdir(), 'fonds-s3-'));
  const server = new S3rver({ address: '127.0.0.1', port: 0, silent: true, directory, configureBuckets: [{ name: bucket }] });
  const uploadsDir = path.join(directory, bucket, '._S3rver_uploads');
  const puts: SeenPut[] = [];
  let reject = 0;
  server.middleware.unshift(async (ctx, next) => {
    const [, b, ...rest] = ctx.path.split('/');
    const key = decodeURIComponent(rest.join('/'));
    if (b === bucket && ctx.method === 'DELETE' && typeof ctx.query.uploadId === 'string') {
      fs.rmSync(path.join(uploadsDir, path.basename(ctx.query.uploadId)), { recursive: true, force: true });
      ctx.status = 204;
      return;
    }
    if (b === bucket && !key && ctx.method === 'GET' && 'uploads' in ctx.query) {
      const prefix = typeof ctx.query.prefix === 'string' ? ctx.query.prefix : '';
      const ids = fs.existsSync(uploadsDir) ? fs.readdirSync(uploadsDir) : [];
      const uploads = ids
        .map((id) => ({ id, key: fs.readFileSync(path.join(uploadsDir, id, 'key'), 'utf8') }))
        .filter((u) => u.key.startsWith(prefix))
        .map((u) => `<Upload><Key>${u.key}</Key><UploadId>${u.id}</UploadId></Upload>`)
        .join('');
      ctx.type = 'application/xml';
      ctx.body = `<?xml version="1.0" encoding="UTF-8"?><ListMultipartUploadsResult><Bucket>${bucket}</Bucket><Prefix>${prefix}</Prefix><IsTruncated>false</IsTruncated>${uploads}</ListMultipartUploadsResult>`;
      return;
    }
    if (b === bucket && key && ctx.method === 'PUT' && !ctx.get('x-amz-copy-source')) {
      if (reject > 0) {
        reject--;
        ctx.req.resume();
        ctx.status = 400;
        ctx.type = 'application/xml';
        ctx.body = `<?xml version="1.0" encoding="UTF-8"?><Error><Code>BadDigest</Code><Message>The Content-MD5 you specified did not match what we received.</Message></Error>`;
        return;
      }
      await next();
      if (ctx.status >= 300) return;
      // what the server stored, read back from s3rver's folders
      const part = ctx.query.partNumber;
      const parts = key.split('/');
      const stored =
        typeof part === 'string'
          ? path.join(uploadsDir, path.basename(String(ctx.query.uploadId)), part)
          : path.join(directory, bucket, ...parts.slice(0, -1), `${parts[parts.length - 1]}._S3rver_object`);
      // s3rver answers once it has read the request, not once its file is written: wait until the
      // file holds every byte received (reading it sooner hashed a part half written, under load)
      const length = Number(ctx.get('content-length'));
      for (const until = Date.now() + 10_000; Number.isFinite(length) && fs.statSync(stored).size < length && Date.now() < until; ) {
        await new Promise((r) => setTimeout(r, 5));
      }
      const body = fs.readFileSync(stored);
      puts.push({
        key,
        ...(typeof part === 'string' ? { partNumber: Number(part) } : {}),
        ...(ctx.get('content-md5') ? { contentMd5: ctx.get('content-md5') } : {}),
        ...(ctx.get('x-amz-checksum-sha256') ? { checksumSha256: ctx.get('x-amz-checksum-sha256') } : {}),
        bodyMd5: crypto.createHash('md5').update(body).digest('base64'),
        bodySha256: crypto.createHash('sha256').update(body).digest('base64'),
      });
      return;
    }
    await next();
  });
  const { port } = (await server.run()) as { port: number };
  return {
    endpoint: `http://127.0.0.1:${port}`,
    bucket,
    accessKeyId: 'S3RVER',
    secretAccessKey: 'S3RVER',
    puts,
    rejectNextPuts: (n) => void (reject = n),
    incompleteUploads: () => (fs.existsSync(uploadsDir) ? fs.readdirSync(uploadsDir).map((id) => fs.readFileSync(path.join(uploadsDir, id, 'key'), 'utf8')) : []),
    async stop() {
      await server.close();
      fs.rmSync(directory, { recursive: true, force: true });
    },
  };
}
