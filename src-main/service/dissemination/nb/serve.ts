/**
 * Server side of the NB dissemination contract (seed 004): receive an order, validate it, then a
 * durable job takes it RECEIVED → QUEUED → DOWNLOADING_FROM_REPOSITORY → FIXITY_CHECK →
 * UPLOADING_TO_S3 → DISSEMINATED (or FAILED / REJECTED with a reason), and a signed webhook
 * delivers the link. The status column is the job's checkpoint: a restart resumes at the status
 * reached, and inside a status the per-file marks skip what was done.
 */
import { createHash, createHmac, randomBytes } from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { pipeline } from 'node:stream/promises';
import type { Page } from '../../../../src-shared/api';
import { SIGNATURE_HEADER } from '../../../../src-shared/domain/dissemination';
import type { StoredData, StoredFile } from '../../../../src-shared/domain/execution';
import { canNbBecome, isNbFinal, type NbDissemination, type NbLink, type NbServedDissemination, type NbStatus, type NbWebhookBody } from '../../../../src-shared/domain/nb';
import { FondsError } from '../../../../src-shared/errors';
import type { CallContext, Capability, Deps, Handlers } from '../../capability';
import { PermanentJobError, type JobContext, type JobHandler } from '../../db/jobs';
import { nowIso, timeline, type Tx } from '../../db/store';
import { resolveInside } from '../../paths';
import { S3Storage, s3SettingsFrom, type Storage } from '../../storage';
import { NB_CLIENT_PREFIX, clientById, defaultClient, type NbClient } from './clients';
import type { NbSecrets } from './secrets';
import { TarWriter } from './tar';

export const RECEIVE_JOB = 'nb.receive';
export const DISSEMINATE_JOB = 'nb.disseminate';
export const WEBHOOK_JOB = 'nb.webhook';
const WEBHOOK_ATTEMPTS = 8;

export interface NbNeeds {
  /** processing's storage (the repository) and its `storedData.get` / `storedData.files` commands */
  processing: Capability & { storage: Storage };
}

interface DRow {
  id: string;
  archive_id: string;
  client_id: string;
  contract_id: string;
  object_id: string;
  sum_size: number;
  status: NbStatus;
  priority: number;
  date_created: string;
  updated_at: string;
  reason: string | null;
  link_base: string;
  delivery: 'folder' | 's3';
  package_key: string | null;
  package_name: string | null;
  package_size: number | null;
  package_sha256: string | null;
  link_url: string | null;
  link_expires_at: string | null;
  links_issued: number;
  webhook_state: 'none' | 'pending' | 'sent' | 'failed';
  webhook_attempts: number;
  webhook_error: string | null;
}

interface FRow {
  path: string;
  size: number;
  md5: string;
  sha256: string;
  downloaded: number;
  checked: number;
}

/** 22 base62 characters from 128 random bits, like the seed's "8Z7x1T9rN0Xc2B5Yq4L3zP". */
export function newDisseminationId(): string {
  const alphabet = '0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz';
  let n = BigInt('0x' + randomBytes(16).toString('hex'));
  let s = '';
  for (let i = 0; i < 22; i++) {
    s = alphabet[Number(n % 62n)] + s;
    n /= 62n;
  }
  return s;
}

/** The seed's date format: microseconds and a numeric offset, "2025-09-09T12:34:56.123456+00:00". */
export const nbDate = (d = new Date()): string => d.toISOString().slice(0, 23) + '000+00:00';

export const scopeOf = (ctx: CallContext): string | undefined => (ctx.clientId?.startsWith(NB_CLIENT_PREFIX) ? ctx.clientId.slice(NB_CLIENT_PREFIX.length) : undefined);

export function toWire(r: DRow): NbDissemination {
  return {
    disseminationId: r.id,
    archiveId: r.archive_id,
    clientId: r.client_id,
    contractId: r.contract_id,
    objectId: r.object_id,
    sumSizeInBytes: r.sum_size,
    status: r.status,
    priority: r.priority,
    dateCreated: r.date_created,
    ...((r.status === 'FAILED' || r.status === 'REJECTED') && r.reason ? { reason: r.reason } : {}),
  };
}

function toServed(r: DRow): NbServedDissemination {
  return {
    ...toWire(r),
    ...(r.reason ? { reason: r.reason } : {}),
    updatedAt: r.updated_at,
    delivery: r.delivery,
    ...(r.package_name && r.package_sha256 ? { package: { fileName: r.package_name, sizeInBytes: r.package_size ?? 0, sha256: r.package_sha256 } } : {}),
    ...(r.link_url && r.link_expires_at ? { link: { url: r.link_url, expiresAt: r.link_expires_at, issued: r.links_issued } } : {}),
    webhook: { state: r.webhook_state, attempts: r.webhook_attempts, ...(r.webhook_error ? { lastError: r.webhook_error } : {}) },
  };
}

/** BagIt manifest paths: CR, LF and % percent-encoded (RFC 8493 §2.1.3). */
const bagPath = (p: string) => p.replace(/%/g, '%25').replace(/\r/g, '%0D').replace(/\n/g, '%0A');

async function mapLimit<T>(items: T[], limit: number, fn: (item: T) => Promise<void>): Promise<void> {
  let next = 0;
  const worker = async () => {
    while (next < items.length) await fn(items[next++]);
  };
  await Promise.all(Array.from({ length: Math.min(limit, items.length) }, worker));
}

export function createServe(deps: Deps, needs: NbNeeds, secrets: NbSecrets) {
  const { store, config, pool } = deps;
  const db = store.db;
  const repository = needs.processing.storage;
  const s3Mode = config.nbS3Bucket !== '';
  const workRoot = path.join(config.dataDir, 'nb', 'work');
  const deliveryDir = config.nbDeliveryDir || path.join(config.dataDir, 'nb', 'deliveries');
  const delivery: S3Storage | undefined = s3Mode ? new S3Storage(s3SettingsFrom(config, { bucket: config.nbS3Bucket, prefix: config.nbS3Prefix })) : undefined;

  const getRow = (id: string): DRow | undefined => db.prepare('SELECT * FROM nb_disseminations WHERE id = ?').get(id) as DRow | undefined;
  const mustRow = (id: string, scope?: string): DRow => {
    const r = getRow(id);
    // another client's dissemination is as unknown as a missing one
    if (!r || (scope !== undefined && r.client_id !== scope)) throw new FondsError('NOT_FOUND', `Dissemination ${id} does not exist.`, { disseminationId: id });
    return r;
  };

  /** Moves a dissemination to a status with its event, in the caller's transaction. Final statuses get a webhook. */
  function setStatus(tx: Tx, id: string, to: NbStatus, payload: Record<string, unknown> = {}, reason?: string): void {
    const r = mustRow(id);
    if (r.status === to) return;
    if (!canNbBecome(r.status, to)) throw new FondsError('CONFLICT', `Dissemination ${id} is ${r.status} and cannot become ${to}.`, { status: r.status });
    tx.db.prepare('UPDATE nb_disseminations SET status = ?, reason = coalesce(?, reason), updated_at = ? WHERE id = ?').run(to, reason ?? null, nowIso(), id);
    tx.event({ kind: 'nb_dissemination', objectId: id, type: `status.${to}`, payload: { from: r.status, to, ...(reason ? { reason } : {}), ...payload } });
    if (isNbFinal(to)) {
      const client = clientById(config, r.client_id);
      if (client?.webhookUrl) {
        tx.db.prepare(`UPDATE nb_disseminations SET webhook_state = 'pending' WHERE id = ?`).run(id);
        tx.enqueue({ kind: WEBHOOK_JOB, payload: { id }, objectKind: 'nb_dissemination', objectId: id, priority: 90, maxAttempts: WEBHOOK_ATTEMPTS });
      }
    }
  }

  const end = (id: string, to: 'FAILED' | 'REJECTED', reason: string) =>
    store.transact((tx) => {
      const r = mustRow(id);
      if (!isNbFinal(r.status)) setStatus(tx, id, to, {}, reason);
    });

  async function storedData(archiveId: string): Promise<StoredData | undefined> {
    try {
      return await needs.processing.handlers['storedData.get']!({ id: archiveId }, { transport: 'internal' });
    } catch (err) {
      if (err instanceof FondsError && err.code === 'NOT_FOUND') return undefined;
      throw err;
    }
  }

  /** Why an archive cannot be disseminated (not preserved), or undefined. */
  const notPreserved = (sd: StoredData): string | undefined => {
    if (sd.status !== 'GENERATED') return `Archive ${sd._id} ('${sd.name}') is not preserved: its stored data is ${sd.status}, not GENERATED.`;
    if (!sd.verified) return `Archive ${sd._id} ('${sd.name}') is not preserved: the fixity of its files has not been verified.`;
    return undefined;
  };

  async function storedFiles(id: string): Promise<StoredFile[]> {
    const handler = needs.processing.handlers['storedData.files']!;
    const out: StoredFile[] = [];
    for (let offset = 0; ; offset += 1000) {
      const page = await handler({ id, offset, limit: 1000 }, { transport: 'internal' });
      out.push(...page.items);
      if (page.items.length < 1000 || out.length >= page.total) return out;
    }
  }

  const linkMargin = () => Math.min(60, Math.floor(config.nbLinkTtlSeconds / 10)) * 1000;

  /** A new link for a disseminated package: presigned (S3) or HMAC-signed (folder mode). */
  async function mintLink(r: DRow, linkBaseUrl?: string): Promise<{ url: string; expiresAt: string }> {
    const ttl = config.nbLinkTtlSeconds;
    const expires = Math.floor(Date.now() / 1000) + ttl;
    if (r.delivery === 's3') {
      if (!delivery) throw new FondsError('UNAVAILABLE', `Dissemination ${r.id} was delivered to S3, but 'nbS3Bucket' is no longer set; no link can be signed.`);
      const url = await delivery.presign(r.package_key!, ttl);
      return { url, expiresAt: new Date(expires * 1000).toISOString() };
    }
    const base = (config.nbPublicUrl || linkBaseUrl || r.link_base).replace(/\/+$/, '');
    const url = `${base}/v1/disseminations/${encodeURIComponent(r.id)}/download?expires=${expires}&signature=${secrets.signLink(r.id, expires)}`;
    return { url, expiresAt: new Date(expires * 1000).toISOString() };
  }

  function recordLink(tx: Tx, id: string, link: { url: string; expiresAt: string }): void {
    tx.db.prepare('UPDATE nb_disseminations SET link_url = ?, link_expires_at = ?, links_issued = links_issued + 1, updated_at = ? WHERE id = ?').run(link.url, link.expiresAt, nowIso(), id);
    tx.event({ kind: 'nb_dissemination', objectId: id, type: 'link.issued', payload: { expiresAt: link.expiresAt, delivery: mustRow(id).delivery } });
  }

  /** The current link while it has more than a margin left, else a new one (recorded). */
  async function currentLink(id: string, linkBaseUrl?: string): Promise<NbLink> {
    let r = mustRow(id);
    const valid = r.link_url && r.link_expires_at && Date.parse(r.link_expires_at) - Date.now() > linkMargin();
    if (!valid) {
      const link = await mintLink(r, linkBaseUrl);
      store.transact((tx) => recordLink(tx, id, link));
      r = mustRow(id);
    }
    return { disseminationId: r.id, url: r.link_url!, expiresAt: r.link_expires_at!, fileName: r.package_name!, sizeInBytes: r.package_size!, sha256: r.package_sha256! };
  }

  // ---- the jobs ----

  const receive: JobHandler<{ id: string }> = {
    async run(ctx) {
      const r = getRow(ctx.payload.id);
      if (!r || r.status !== 'RECEIVED') return;
      if (!clientById(config, r.client_id)) return end(r.id, 'REJECTED', `Client '${r.client_id}' is no longer configured (nbClients).`);
      const sd = await storedData(r.archive_id);
      if (!sd) return end(r.id, 'REJECTED', `Archive ${r.archive_id} does not exist any more.`);
      const why = notPreserved(sd);
      if (why) return end(r.id, 'REJECTED', why);
      store.transact((tx) => {
        setStatus(tx, r.id, 'QUEUED', { priority: r.priority });
        tx.enqueue({ kind: DISSEMINATE_JOB, payload: { id: r.id }, objectKind: 'nb_dissemination', objectId: r.id, priority: r.priority, maxAttempts: 5 });
      });
    },
    failed(ctx, error) {
      end(ctx.payload.id, 'FAILED', error.message);
    },
  };

  const progressOf = (files: FRow[], doneFiles: number, doneBytes: number) => ({
    files: doneFiles,
    bytes: doneBytes,
    totalFiles: files.length,
    totalBytes: files.reduce((a, f) => a + f.size, 0),
  });

  async function download(ctx: JobContext<{ id: string }>, r: DRow, work: string): Promise<void> {
    const files = db.prepare('SELECT * FROM nb_dissemination_files WHERE dissemination_id = ? ORDER BY path').all(r.id) as FRow[];
    const mark = db.prepare('UPDATE nb_dissemination_files SET downloaded = 1 WHERE dissemination_id = ? AND path = ?');
    let doneFiles = files.filter((f) => f.downloaded).length;
    let doneBytes = files.filter((f) => f.downloaded).reduce((a, f) => a + f.size, 0);
    const todo = files.filter((f) => !f.downloaded);
    const done: string[] = [];
    const commit = () => store.transact(() => done.splice(0).forEach((p) => mark.run(r.id, p)));
    await mapLimit(todo, repository.kind === 's3' ? 8 : 4, async (f) => {
      ctx.signal.throwIfAborted();
      const target = resolveInside(work, `data/${f.path}`);
      const part = `${target}.nb-part`;
      await fs.promises.mkdir(path.dirname(target), { recursive: true });
      await fs.promises.rm(part, { force: true });
      const key = `${r.archive_id}/${f.path}`;
      if (repository.kind === 'local') {
        const source = resolveInside(repository.label, key);
        // a hard link is an instant, immutable snapshot (storage replaces files by rename); else a copy
        await fs.promises.link(source, part).catch(() => fs.promises.copyFile(source, part, fs.constants.COPYFILE_FICLONE));
      } else {
        await pipeline(await repository.read(key), fs.createWriteStream(part), { signal: ctx.signal });
      }
      await fs.promises.rename(part, target);
      done.push(f.path);
      doneFiles++;
      doneBytes += f.size;
      ctx.progress(progressOf(files, doneFiles, doneBytes));
      if (done.length >= 256) commit();
    });
    commit();
  }

  /** Re-hashes every downloaded file (MD5 + SHA-256, in the hash workers) against the checksums recorded at storage. */
  async function fixityCheck(ctx: JobContext<{ id: string }>, r: DRow, work: string): Promise<string[]> {
    const files = db.prepare('SELECT * FROM nb_dissemination_files WHERE dissemination_id = ? ORDER BY path').all(r.id) as FRow[];
    const mark = db.prepare('UPDATE nb_dissemination_files SET checked = 1 WHERE dissemination_id = ? AND path = ?');
    const problems: string[] = [];
    const done: string[] = [];
    let doneFiles = files.filter((f) => f.checked).length;
    let doneBytes = files.filter((f) => f.checked).reduce((a, f) => a + f.size, 0);
    const commit = () => store.transact(() => done.splice(0).forEach((p) => mark.run(r.id, p)));
    await mapLimit(
      files.filter((f) => !f.checked),
      pool.size * 2,
      async (f) => {
        const file = resolveInside(work, `data/${f.path}`);
        const h = await pool.hash({ path: file, algorithms: ['md5', 'sha256'], signal: ctx.signal, sizeHint: f.size });
        const bad: string[] = [];
        if (h.size !== f.size) bad.push(`size ${h.size} ≠ recorded ${f.size}`);
        if (h.hashes.md5 !== f.md5) bad.push(`MD5 ${h.hashes.md5} ≠ recorded ${f.md5}`);
        if (h.hashes.sha256 !== f.sha256) bad.push(`SHA-256 ${h.hashes.sha256} ≠ recorded ${f.sha256}`);
        if (bad.length) problems.push(`${f.path}: ${bad.join(', ')}`);
        else done.push(f.path);
        doneFiles++;
        doneBytes += f.size;
        ctx.progress(progressOf(files, doneFiles, doneBytes));
        if (done.length >= 256) commit();
      },
    );
    commit();
    return problems.sort();
  }

  /** Writes the package (a BagIt bag serialized as tar), proves it, and puts it where the link points. */
  async function upload(ctx: JobContext<{ id: string }>, r: DRow, work: string): Promise<{ key: string; name: string; size: number; sha256: string }> {
    const files = db.prepare('SELECT * FROM nb_dissemination_files WHERE dissemination_id = ? ORDER BY path').all(r.id) as FRow[];
    const root = r.object_id.replace(/[\u0000-\u001f\u007f/\\]/g, '_').replace(/^\.+$/, '_') || r.id;
    const name = `${r.id}.tar`;
    const part = path.join(work, `${name}.part`);
    await fs.promises.rm(part, { force: true });
    const out = fs.createWriteStream(part, { flags: 'wx' });
    const closed = new Promise<void>((resolve, reject) => {
      out.once('close', resolve);
      out.once('error', reject);
    });
    const tar = new TarWriter(out);
    const payloadBytes = files.reduce((a, f) => a + f.size, 0);
    const text = (s: string) => Buffer.from(s, 'utf8');
    const tags: Array<[string, Buffer]> = [
      ['bagit.txt', text('BagIt-Version: 1.0\nTag-File-Character-Encoding: UTF-8\n')],
      [
        'bag-info.txt',
        text(
          [
            `Source-Organization: Fonds`,
            `External-Identifier: ${r.archive_id}`,
            `Internal-Sender-Identifier: ${r.id}`,
            `Bagging-Date: ${new Date().toISOString().slice(0, 10)}`,
            `Payload-Oxum: ${payloadBytes}.${files.length}`,
          ].join('\n') + '\n',
        ),
      ],
      ['manifest-md5.txt', text(files.map((f) => `${f.md5}  data/${bagPath(f.path)}\n`).join(''))],
      ['manifest-sha256.txt', text(files.map((f) => `${f.sha256}  data/${bagPath(f.path)}\n`).join(''))],
    ];
    const tagManifest = tags.map(([n, b]) => `${createHash('sha256').update(b).digest('hex')}  ${n}\n`).join('');
    try {
      let bytes = 0;
      let count = 0;
      for (const [n, b] of tags) await tar.addBuffer(`${root}/${n}`, b);
      await tar.addBuffer(`${root}/tagmanifest-sha256.txt`, text(tagManifest));
      for (const f of files) {
        await tar.addFile(`${root}/data/${f.path}`, resolveInside(work, `data/${f.path}`), f.size, {
          signal: ctx.signal,
          onBytes: (n) => {
            bytes += n;
            ctx.progress({ files: count, bytes, totalFiles: files.length, totalBytes: payloadBytes });
          },
        });
        count++;
      }
      await tar.finish();
      out.end();
      await closed;
    } catch (err) {
      out.destroy();
      throw err;
    }
    // the package is hashed in the workers, then proven again where it lands
    const h = await pool.hash({ path: part, algorithms: ['md5', 'sha256'], signal: ctx.signal });
    const fixity = { size: h.size, md5: h.hashes.md5!, sha256: h.hashes.sha256! };
    if (delivery) {
      const key = `${r.id}/${name}`;
      await delivery.put(key, part, fixity, { signal: ctx.signal, name: `dissemination ${r.id} package` });
      await fs.promises.rm(part, { force: true });
      return { key, name, size: fixity.size, sha256: fixity.sha256 };
    }
    await fs.promises.mkdir(deliveryDir, { recursive: true });
    const target = path.join(deliveryDir, name);
    const fd = await fs.promises.open(part, 'r');
    await fd.sync();
    await fd.close();
    await fs.promises.rename(part, target).catch(async (err: NodeJS.ErrnoException) => {
      if (err.code !== 'EXDEV') throw err;
      await fs.promises.copyFile(part, `${target}.part`);
      const v = await pool.hash({ path: `${target}.part`, algorithms: ['sha256'], signal: ctx.signal });
      if (v.hashes.sha256 !== fixity.sha256) throw new Error(`the copy of the package in ${deliveryDir} does not match (SHA-256)`);
      await fs.promises.rename(`${target}.part`, target);
    });
    return { key: name, name, size: fixity.size, sha256: fixity.sha256 };
  }

  const disseminate: JobHandler<{ id: string }> = {
    async run(ctx) {
      const id = ctx.payload.id;
      let r = getRow(id);
      if (!r || isNbFinal(r.status)) return;
      const work = path.join(workRoot, id);
      if (ctx.attempt > 1 || r.status !== 'QUEUED') store.transact((tx) => tx.event({ kind: 'nb_dissemination', objectId: id, type: 'resumed', payload: { status: r!.status, attempt: ctx.attempt } }));

      if (r.status === 'QUEUED') {
        const sd = await storedData(r.archive_id);
        const why = !sd ? `Archive ${r.archive_id} does not exist any more.` : notPreserved(sd);
        if (why) return end(id, 'REJECTED', why);
        const files = await storedFiles(r.archive_id);
        await fs.promises.rm(work, { recursive: true, force: true });
        store.transact((tx) => {
          tx.db.prepare('DELETE FROM nb_dissemination_files WHERE dissemination_id = ?').run(id);
          const ins = tx.db.prepare('INSERT INTO nb_dissemination_files (dissemination_id, path, size, md5, sha256) VALUES (?, ?, ?, ?, ?)');
          for (const f of files) ins.run(id, f.path, f.size, f.md5, f.sha256);
          const sum = files.reduce((a, f) => a + f.size, 0);
          tx.db.prepare('UPDATE nb_disseminations SET sum_size = ? WHERE id = ?').run(sum, id);
          setStatus(tx, id, 'DOWNLOADING_FROM_REPOSITORY', { files: files.length, bytes: sum, repository: repository.label });
        });
        r = mustRow(id);
      }
      if (r.status === 'DOWNLOADING_FROM_REPOSITORY') {
        await download(ctx, r, work);
        store.transact((tx) => setStatus(tx, id, 'FIXITY_CHECK'));
        r = mustRow(id);
      }
      if (r.status === 'FIXITY_CHECK') {
        const problems = await fixityCheck(ctx, r, work);
        if (problems.length) {
          const reason = `Fixity check failed for ${problems.length} file(s): ${problems.slice(0, 5).join('; ')}${problems.length > 5 ? '; …' : ''}`;
          store.transact((tx) => {
            tx.event({ kind: 'nb_dissemination', objectId: id, type: 'fixity.failed', payload: { problems: problems.slice(0, 100), count: problems.length } });
            setStatus(tx, id, 'FAILED', {}, reason);
          });
          await fs.promises.rm(work, { recursive: true, force: true });
          return;
        }
        const n = db.prepare('SELECT count(*) AS files, coalesce(sum(size), 0) AS bytes FROM nb_dissemination_files WHERE dissemination_id = ?').get(id) as { files: number; bytes: number };
        store.transact((tx) => {
          tx.event({ kind: 'nb_dissemination', objectId: id, type: 'fixity.checked', payload: { ...n, algorithms: ['md5', 'sha256'] } });
          setStatus(tx, id, 'UPLOADING_TO_S3', { delivery: delivery ? 's3' : 'folder', destination: delivery ? delivery.label : deliveryDir });
        });
        r = mustRow(id);
      }
      if (r.status === 'UPLOADING_TO_S3') {
        const pkg = await upload(ctx, r, work);
        // where the package went is decided now (the setting may have changed since the order)
        const mode: DRow['delivery'] = delivery ? 's3' : 'folder';
        const withPackage: DRow = { ...r, delivery: mode, package_key: pkg.key, package_name: pkg.name, package_size: pkg.size, package_sha256: pkg.sha256 };
        const link = await mintLink(withPackage);
        store.transact((tx) => {
          tx.db
            .prepare('UPDATE nb_disseminations SET delivery = ?, package_key = ?, package_name = ?, package_size = ?, package_sha256 = ? WHERE id = ?')
            .run(mode, pkg.key, pkg.name, pkg.size, pkg.sha256, id);
          tx.event({ kind: 'nb_dissemination', objectId: id, type: 'package.delivered', payload: { fileName: pkg.name, sizeInBytes: pkg.size, sha256: pkg.sha256, delivery: mode } });
          recordLink(tx, id, link);
          setStatus(tx, id, 'DISSEMINATED');
        });
        await fs.promises.rm(work, { recursive: true, force: true });
      }
    },
    failed(ctx, error) {
      end(ctx.payload.id, 'FAILED', error.message);
      void fs.promises.rm(path.join(workRoot, ctx.payload.id), { recursive: true, force: true });
    },
  };

  const webhook: JobHandler<{ id: string }> = {
    async run(ctx) {
      const r = mustRow(ctx.payload.id);
      const client = clientById(config, r.client_id);
      if (!client?.webhookUrl) {
        db.prepare(`UPDATE nb_disseminations SET webhook_state = 'none' WHERE id = ?`).run(r.id);
        return;
      }
      const body: NbWebhookBody = { ...toWire(r) };
      if (r.status === 'DISSEMINATED') {
        const link = await currentLink(r.id);
        Object.assign(body, { downloadUrl: link.url, downloadUrlExpiresAt: link.expiresAt, fileName: link.fileName, sizeInBytes: link.sizeInBytes, sha256: link.sha256 });
      }
      const text = JSON.stringify(body);
      const attempt = ctx.attempt;
      const fail = (why: string, final: boolean) =>
        store.transact((tx) => {
          tx.db.prepare('UPDATE nb_disseminations SET webhook_attempts = ?, webhook_error = ?, webhook_state = ? WHERE id = ?').run(attempt, why, final ? 'failed' : 'pending', r.id);
          tx.event({ kind: 'nb_dissemination', objectId: r.id, type: 'webhook.failed', payload: { url: client.webhookUrl, attempt, error: why, final } });
        });
      let res: Response;
      try {
        res = await fetch(client.webhookUrl, {
          method: 'POST',
          headers: {
            'content-type': 'application/json',
            [SIGNATURE_HEADER]: signWebhook(client, text),
            'X-Fonds-Dissemination': r.id,
            'X-Fonds-Event': `dissemination.${r.status}`,
          },
          body: text,
          redirect: 'manual',
          signal: AbortSignal.any([ctx.signal, AbortSignal.timeout(30_000)]),
        });
        await res.arrayBuffer().catch(() => undefined);
      } catch (err) {
        if (ctx.signal.aborted) throw err;
        const cause = (err as Error & { cause?: Error }).cause;
        const why = `webhook ${client.webhookUrl} could not be reached: ${cause?.message ?? (err as Error).message}`;
        fail(why, attempt >= WEBHOOK_ATTEMPTS);
        throw new Error(why);
      }
      if (res.status >= 200 && res.status < 300) {
        store.transact((tx) => {
          tx.db.prepare(`UPDATE nb_disseminations SET webhook_state = 'sent', webhook_attempts = ?, webhook_error = NULL WHERE id = ?`).run(attempt, r.id);
          tx.event({ kind: 'nb_dissemination', objectId: r.id, type: 'webhook.sent', payload: { url: client.webhookUrl, attempt, httpStatus: res.status, status: r.status } });
        });
        return;
      }
      const why = `webhook ${client.webhookUrl} answered HTTP ${res.status}`;
      const retry = res.status >= 500 || res.status === 408 || res.status === 429;
      fail(retry ? why : `${why}; not retried`, !retry || attempt >= WEBHOOK_ATTEMPTS);
      if (retry) throw new Error(why);
      throw new PermanentJobError(why);
    },
  };

  // ---- the commands ----

  const handlers: Partial<Handlers> = {
    'nb.disseminations.create': async ({ archiveId, priority, linkBaseUrl }, ctx) => {
      const scope = scopeOf(ctx);
      const client: NbClient | undefined = scope !== undefined ? clientById(config, scope) : defaultClient(config);
      if (!client) throw new FondsError('UNAUTHORIZED', `Client '${scope}' is not configured (nbClients).`);
      const sd = await storedData(archiveId);
      if (!sd) throw new FondsError('NOT_FOUND', `Archive ${archiveId} does not exist (no stored data with this id).`, { archiveId });
      const why = notPreserved(sd);
      if (why) throw new FondsError('CHECK_FAILED', why, { archiveId, status: sd.status, verified: sd.verified });
      const id = newDisseminationId();
      const now = new Date();
      return store.transact((tx) => {
        const active = tx.db
          .prepare(`SELECT id, status FROM nb_disseminations WHERE client_id = ? AND archive_id = ? AND status NOT IN ('DISSEMINATED','FAILED','REJECTED')`)
          .get(client.clientId, archiveId) as { id: string; status: string } | undefined;
        if (active) {
          throw new FondsError('CONFLICT', `Archive ${archiveId} already has a dissemination in progress for client '${client.clientId}': ${active.id} (${active.status}); fetch it instead of posting again.`, {
            disseminationId: active.id,
            status: active.status,
          });
        }
        tx.db
          .prepare(
            `INSERT INTO nb_disseminations (id, archive_id, client_id, contract_id, object_id, sum_size, status, priority, date_created, updated_at, link_base, delivery)
             VALUES (?, ?, ?, ?, ?, ?, 'RECEIVED', ?, ?, ?, ?, ?)`,
          )
          .run(id, archiveId, client.clientId, client.contractId, sd.name, sd.size, priority, nbDate(now), now.toISOString(), linkBaseUrl ?? `http://${config.host}:${config.port}`, s3Mode ? 's3' : 'folder');
        tx.event({ kind: 'nb_dissemination', objectId: id, type: 'status.RECEIVED', payload: { to: 'RECEIVED', archiveId, clientId: client.clientId, priority, transport: ctx.transport } });
        tx.enqueue({ kind: RECEIVE_JOB, payload: { id }, objectKind: 'nb_dissemination', objectId: id, priority: 100, maxAttempts: 5 });
        return toWire(mustRow(id));
      });
    },
    'nb.disseminations.get': ({ id }, ctx) => toWire(mustRow(id, scopeOf(ctx))),
    'nb.disseminations.link': async ({ id, linkBaseUrl }, ctx) => {
      const r = mustRow(id, scopeOf(ctx));
      if (r.status !== 'DISSEMINATED') throw new FondsError('CONFLICT', `Dissemination ${id} is ${r.status}; a link exists once it is DISSEMINATED.`, { status: r.status });
      return currentLink(id, linkBaseUrl);
    },
    'nb.disseminations.download': async ({ id, expires, signature }) => {
      if (!secrets.linkSignatureValid(id, expires, signature)) throw new FondsError('FORBIDDEN', 'This download link is not valid: its signature does not match.');
      if (expires * 1000 <= Date.now()) throw new FondsError('FORBIDDEN', `This download link expired at ${new Date(expires * 1000).toISOString()}; ask for a new one (GET /v1/disseminations/${id}/link).`);
      const r = mustRow(id);
      if (r.status !== 'DISSEMINATED' || r.delivery !== 'folder' || !r.package_key) throw new FondsError('NOT_FOUND', `Dissemination ${id} has no package here.`);
      const file = resolveInside(deliveryDir, r.package_key);
      const st = await fs.promises.stat(file).catch(() => undefined);
      if (!st?.isFile()) throw new FondsError('NOT_FOUND', `The package of dissemination ${id} is no longer in ${deliveryDir}.`);
      return { path: file, fileName: r.package_name!, sizeInBytes: st.size, sha256: r.package_sha256! };
    },
    'nb.disseminations.list': ({ status, clientId, q, offset, limit }, ctx) => {
      const where: string[] = [];
      const args: unknown[] = [];
      const scope = scopeOf(ctx);
      const add = (clause: string, ...values: unknown[]) => {
        where.push(clause);
        args.push(...values);
      };
      if (scope !== undefined) add('client_id = ?', scope);
      if (status) add('status = ?', status);
      if (clientId) add('client_id = ?', clientId);
      if (q) {
        const like = `%${q.replace(/[\\%_]/g, '\\$&')}%`;
        add(`(id LIKE ? ESCAPE '\\' OR archive_id LIKE ? ESCAPE '\\' OR object_id LIKE ? ESCAPE '\\')`, like, like, like);
      }
      const w = where.length ? `WHERE ${where.join(' AND ')}` : '';
      const total = db.prepare(`SELECT count(*) FROM nb_disseminations ${w}`).pluck().get(...args) as number;
      const rows = db.prepare(`SELECT * FROM nb_disseminations ${w} ORDER BY date_created DESC, id LIMIT ? OFFSET ?`).all(...args, limit, offset) as DRow[];
      return { items: rows.map(toServed), total, offset } satisfies Page<NbServedDissemination>;
    },
    'nb.disseminations.timeline': ({ id, offset, limit }, ctx) => {
      mustRow(id, scopeOf(ctx));
      return timeline(db, 'nb_dissemination', id, offset, limit);
    },
  };

  return {
    handlers,
    jobs: { [RECEIVE_JOB]: receive, [DISSEMINATE_JOB]: disseminate, [WEBHOOK_JOB]: webhook } as Record<string, JobHandler<never>>,
    async stop() {
      await delivery?.close?.();
    },
  };
}

/** X-Fonds-Signature: sha256=<hex HMAC-SHA256 of the exact body with the client's webhookSecret>. */
export const signWebhook = (client: Pick<NbClient, 'webhookSecret'>, body: string): string => `sha256=${createHmac('sha256', client.webhookSecret).update(body, 'utf8').digest('hex')}`;
