/**
 * The delivery job `dissemination.deliver`: one per dissemination, durable, retried with backoff,
 * resumed after a restart. By recipient kind:
 * - amqp: the notifier message goes to the outbox (channel 'amqp'); `dissemination.sent` is written
 *   when the broker confirms it (see `onAmqpSent`), and it waits in the outbox while no broker is there;
 * - webhook: a signed POST; 5xx, 408, 429 and network errors are retried up to the recipient's maxAttempts;
 * - folder and s3: the product's stored files are copied with the storage implementations
 *   (`storage/`: each copy proven at the destination), then `feature.json` and `manifest-sha256.txt`.
 *   Files proven before a restart are checked again at the destination and skipped, or copied
 *   again when damaged there.
 */
import { createHash, createHmac, randomUUID } from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { pipeline } from 'node:stream/promises';
import type { OutboxItem } from '../../../src-shared/api';
import {
  DISSEMINATION_DESTINATION_DAMAGED,
  DisseminationEventTypes,
  SIGNATURE_HEADER,
  type DisseminationMessage,
  type FixityOutcome,
  type RecipientSettings,
} from '../../../src-shared/domain/dissemination';
import type { StoredFile } from '../../../src-shared/domain/execution';
import { FEATURE_URN, REGARDS, type Product } from '../../../src-shared/domain/product';
import { FondsError } from '../../../src-shared/errors';
import { AMQP_CHANNEL } from '../amqp';
import type { Deps } from '../capability';
import { PermanentJobError, type JobContext, type JobHandler } from '../db/jobs';
import type { OutboxChange } from '../db/outbox';
import { nowIso, type Tx } from '../db/store';
import { resolveInside } from '../paths';
import { LocalStorage, S3Storage, type Fixity, type Storage } from '../storage';
import { base, getDisseminationRow, getRecipientRow, markSent, productOrUndefined, settingsOf, type DisseminationRow } from './records';

export const DELIVER_JOB = 'dissemination.deliver';

export interface DeliverPayload {
  disseminationId: string;
  /** the job's max_attempts, so that a failure knows whether it is the last */
  maxAttempts: number;
}

/** Attempts of a folder or S3 delivery before it is FAILED (a webhook uses its recipient's maxAttempts). */
export const COPY_ATTEMPTS = 5;

export interface DeliveryContext {
  deps: Deps;
  /** the stored data's storage (processing's) */
  storage: Storage;
  /** every stored file of a stored data (processing's `storedData.files`) */
  storedFiles(storedDataId: string): Promise<StoredFile[]>;
  /** declares an AMQP recipient's exchange and queue when the broker is connected */
  declare(settings: Extract<RecipientSettings, { kind: 'amqp' }>): Promise<void>;
}

/** The folder a product's files go to at a folder or S3 recipient: its URN, portable (':' is not). */
export const productFolder = (urn: string) => urn.replace(/[^A-Za-z0-9._-]/g, '_');

/** The product as REGARDS' RabbitMQSender notifier plugin sends it: {payload: feature, metadata}. */
export function disseminationMessage(product: Product, d: Pick<DisseminationRow, 'request_date'>, sessionOwner: string): DisseminationMessage {
  const entityType = (FEATURE_URN.exec(product.urn)?.[1] ?? 'DATA') as DisseminationMessage['payload']['entityType'];
  return {
    payload: {
      type: 'Feature',
      id: product.providerId,
      urn: product.urn,
      entityType,
      geometry: null,
      properties: product.properties,
      files: product.files,
      last: true,
    },
    metadata: { action: 'NOTIFIED', sessionOwner, session: d.request_date.slice(0, 10) },
  };
}

/**
 * What a folder or S3 delivery writes itself at the root of the product's folder. The layout
 * (`<product folder>/<path>` beside them) is documented and read by recipients, so a stored file
 * of that name is refused rather than overwritten or moved (see `reservedCollisions`).
 */
export const DELIVERY_FILES = ['feature.json', 'manifest-sha256.txt'] as const;

/**
 * The stored files a folder or S3 delivery cannot write without losing one: named like one of
 * DELIVERY_FILES, or under a folder so named, at the root. Compared without case: a recipient's
 * share (SMB, macOS, Windows) or a copy of the bucket on one may not tell `Feature.json` apart.
 */
export function reservedCollisions(files: Pick<StoredFile, 'path'>[]): string[] {
  const reserved = new Set<string>(DELIVERY_FILES);
  return files.filter((f) => reserved.has(f.path.split('/')[0].toLowerCase())).map((f) => f.path);
}

/** The signature of a webhook body: sha256=<hex HMAC-SHA256 with the shared secret>. */
export const signBody = (secret: string, body: string) => `sha256=${createHmac('sha256', secret).update(body, 'utf8').digest('hex')}`;

/** A failure worth another attempt (network, 5xx, destination unreachable, a copy that did not prove equal). */
class RetryableError extends Error {}

function retryable(err: unknown): boolean {
  if (err instanceof RetryableError) return true;
  if (err instanceof PermanentJobError) return false;
  if (err instanceof FondsError) {
    if (err.code === 'IO_ERROR' || err.code === 'UNAVAILABLE') return true;
    return err.code === 'CHECK_FAILED' && err.details?.failure === 'verification';
  }
  return true; // network errors, timeouts
}

const md5sha256 = (b: Buffer): Fixity => ({ size: b.length, md5: createHash('md5').update(b).digest('hex'), sha256: createHash('sha256').update(b).digest('hex') });

export function createDeliverJob(c: DeliveryContext): JobHandler<DeliverPayload> {
  const { deps } = c;
  const { store, config } = deps;
  const db = store.db;
  const tmpRoot = path.join(config.dataDir, 'tmp', 'dissemination');

  async function postWebhook(ctx: JobContext<DeliverPayload>, r: DisseminationRow, s: Extract<RecipientSettings, { kind: 'webhook' }>, body: string): Promise<void> {
    let res: Response;
    try {
      res = await fetch(s.url, {
        method: 'POST',
        headers: {
          'content-type': 'application/json',
          [SIGNATURE_HEADER]: signBody(s.secret, body),
          'X-Fonds-Dissemination': r.id,
          'X-Fonds-Recipient': r.recipient_label,
          'X-Regards-Tenant': r.tenant,
        },
        body,
        redirect: 'manual',
        signal: AbortSignal.any([ctx.signal, AbortSignal.timeout(30_000)]),
      });
    } catch (err) {
      if (ctx.signal.aborted) throw err;
      const cause = (err as Error & { cause?: Error }).cause;
      throw new RetryableError(`webhook ${s.url} could not be reached: ${cause?.message ?? (err as Error).message}`);
    }
    await res.arrayBuffer().catch(() => undefined);
    if (res.status >= 200 && res.status < 300) return;
    const why = `webhook ${s.url} answered HTTP ${res.status}${res.statusText ? ` ${res.statusText}` : ''}`;
    if (res.status >= 500 || res.status === 408 || res.status === 429) throw new RetryableError(why);
    throw new PermanentJobError(`${why}; not retried (a 4xx or a redirect will not change by itself)`);
  }

  /** A local path to read a stored file from: the file itself in local storage, or a temporary copy from S3. */
  async function sourceOf(storedDataId: string, rel: string, tmp: string): Promise<{ file: string; temporary: boolean }> {
    const key = `${storedDataId}/${rel}`;
    if (c.storage.kind === 'local') return { file: resolveInside(c.storage.label, key), temporary: false };
    await fs.promises.mkdir(tmp, { recursive: true });
    const file = path.join(tmp, randomUUID());
    await pipeline(await c.storage.read(key), fs.createWriteStream(file));
    return { file, temporary: true };
  }

  async function copyFiles(ctx: JobContext<DeliverPayload>, r: DisseminationRow, s: Extract<RecipientSettings, { kind: 'folder' | 's3' }>, product: Product, message: DisseminationMessage) {
    let dest: Storage;
    if (s.kind === 'folder') {
      // a network folder that is not mounted must not be created locally: wait for it
      const st = await fs.promises.stat(s.path).catch(() => undefined);
      if (!st?.isDirectory()) throw new RetryableError(`folder ${s.path} does not exist or is not reachable (is it mounted?)`);
      dest = new LocalStorage(s.path, deps.pool, 'file');
    } else {
      dest = new S3Storage({
        endpoint: s.endpoint,
        region: s.region,
        bucket: s.bucket,
        prefix: s.prefix,
        accessKeyId: s.accessKeyId,
        secretAccessKey: s.secretAccessKey,
        forcePathStyle: s.forcePathStyle,
        partSizeMb: config.s3PartSizeMb,
        queueSize: config.s3QueueSize,
        verifyReread: false,
      });
    }
    const tmp = path.join(tmpRoot, r.id);
    try {
      const folder = productFolder(r.urn);
      const files = product.storedDataId ? await c.storedFiles(product.storedDataId) : [];
      // before any copy: a collision would overwrite an archived file and still prove "verified"
      const collisions = reservedCollisions(files);
      if (collisions.length) {
        throw new PermanentJobError(
          `stored data ${product.storedDataId}: ${collisions.map((p) => `'${p}'`).join(', ')} would be overwritten in ${folder}/ at '${r.recipient_label}' ` +
            `by the delivery's own ${DELIVERY_FILES.join(' or ')} (names reserved at the root of a delivered product, in any case); ` +
            `nothing was copied — deliver a stored data with ${collisions.length === 1 ? 'that file' : 'those files'} in a subfolder, or through an AMQP or webhook recipient`,
        );
      }
      const delivered = new Set(db.prepare('SELECT path FROM dissemination_files WHERE dissemination_id = ?').pluck().all(r.id) as string[]);
      const totalBytes = files.reduce((n, f) => n + f.size, 0);
      const insert = db.prepare('INSERT OR REPLACE INTO dissemination_files (dissemination_id, path, size, md5, sha256, delivered_at) VALUES (?, ?, ?, ?, ?, ?)');
      let bytes = 0;
      let done = 0;
      for (const f of files) {
        ctx.signal.throwIfAborted();
        const key = `${folder}/${f.path}`;
        const fixity: Fixity = { size: f.size, md5: f.md5, sha256: f.sha256 };
        if (delivered.has(f.path)) {
          const v = await dest.verify(key, fixity, { signal: ctx.signal, name: f.path });
          if (v.ok) {
            bytes += f.size;
            done++;
            continue;
          }
          store.transact((tx) => {
            tx.db.prepare('DELETE FROM dissemination_files WHERE dissemination_id = ? AND path = ?').run(r.id, f.path);
            tx.event({ kind: 'dissemination', objectId: r.id, type: DISSEMINATION_DESTINATION_DAMAGED, payload: { ...base(r), path: f.path, reason: v.reason } });
          });
        }
        const src = await sourceOf(product.storedDataId!, f.path, tmp);
        try {
          await dest.put(key, src.file, fixity, {
            signal: ctx.signal,
            name: `${r.recipient_label}: ${f.path}`,
            onBytes: (n) => {
              bytes += n;
              ctx.progress({ files: done, bytes, totalFiles: files.length, totalBytes });
            },
          });
        } finally {
          if (src.temporary) await fs.promises.rm(src.file, { force: true });
        }
        await dest.flush?.();
        store.transact((tx) => {
          tx.db.prepare('UPDATE disseminations SET updated_at = ? WHERE id = ?').run(nowIso(), r.id);
          insert.run(r.id, f.path, f.size, f.md5, f.sha256, nowIso());
        });
        done++;
        ctx.progress({ files: done, bytes, totalFiles: files.length, totalBytes });
      }
      // the feature and a manifest of every file, both proven like the data
      await fs.promises.mkdir(tmp, { recursive: true });
      const feature = Buffer.from(JSON.stringify(message, null, 2) + '\n', 'utf8');
      const featureFixity = md5sha256(feature);
      const manifest = Buffer.from(
        [...files.map((f) => `${f.sha256}  ${f.path}`), `${featureFixity.sha256}  feature.json`].join('\n') + '\n',
        'utf8',
      );
      for (const [name, content] of [
        ['feature.json', feature],
        ['manifest-sha256.txt', manifest],
      ] as const) {
        const file = path.join(tmp, name);
        await fs.promises.writeFile(file, content);
        await dest.put(`${folder}/${name}`, file, md5sha256(content), { signal: ctx.signal, name: `${r.recipient_label}: ${name}` });
      }
      await dest.flush?.();
      return { bytes: files.reduce((n, f) => n + f.size, 0), files: files.length, fixity: 'verified' as FixityOutcome };
    } finally {
      await dest.close?.();
      await fs.promises.rm(tmp, { recursive: true, force: true });
    }
  }

  /** A failure: retried (failed + retried events) while attempts remain, or given up (the `failed` hook). */
  function onError(ctx: JobContext<DeliverPayload>, r: DisseminationRow, err: unknown): never {
    const message = err instanceof Error ? err.message : String(err);
    if (retryable(err) && ctx.attempt < ctx.payload.maxAttempts) {
      store.transact((tx) => {
        tx.db.prepare('UPDATE disseminations SET last_error = ?, updated_at = ? WHERE id = ?').run(message, nowIso(), r.id);
        tx.event({ kind: 'dissemination', objectId: r.id, type: DisseminationEventTypes.failed, payload: { ...base(r), attempt: r.attempts, error: message, final: false } });
        tx.event({ kind: 'dissemination', objectId: r.id, type: DisseminationEventTypes.retried, payload: { ...base(r), attempt: r.attempts + 1, by: 'policy' } });
      });
      throw new Error(message);
    }
    throw new PermanentJobError(message);
  }

  return {
    async run(ctx) {
      const id = ctx.payload.disseminationId;
      let r: DisseminationRow;
      try {
        r = getDisseminationRow(db, id);
      } catch {
        return; // gone: nothing to deliver
      }
      if (r.status !== 'PENDING') return; // delivered, acknowledged or given up already (a rerun)
      if (r.recipient_kind === 'amqp' && r.outbox_id) return; // in the outbox already: the relay sends it
      r = store.transact((tx) => {
        tx.db.prepare('UPDATE disseminations SET attempts = attempts + 1, updated_at = ? WHERE id = ?').run(nowIso(), id);
        return getDisseminationRow(tx.db, id);
      });
      try {
        const recipient = getRecipientRow(db, r.recipient_label);
        if (!recipient) throw new PermanentJobError(`recipient '${r.recipient_label}' no longer exists`);
        const product = productOrUndefined(db, r.urn);
        if (!product) throw new PermanentJobError(`product ${r.urn} no longer exists in the catalogue`);
        const settings = settingsOf(recipient);
        const message = disseminationMessage(product, r, config.regardsRequestOwner);
        if (settings.kind === 'amqp') {
          await c.declare(settings).catch(() => undefined); // the relay retries until the exchange exists
          store.transact((tx) => {
            const now = getDisseminationRow(tx.db, id);
            if (now.status !== 'PENDING' || now.outbox_id) return;
            const outboxId = tx.outbox({
              channel: AMQP_CHANNEL,
              destination: settings.exchange,
              headers: { [REGARDS.headers.tenant]: now.tenant, [REGARDS.headers.requestId]: now.id },
              body: JSON.stringify(message),
              objectKind: 'dissemination',
              objectId: now.id,
            });
            tx.db.prepare('UPDATE disseminations SET outbox_id = ?, updated_at = ? WHERE id = ?').run(outboxId, nowIso(), id);
          });
          return;
        }
        if (settings.kind === 'webhook') {
          const body = JSON.stringify(message);
          await postWebhook(ctx, r, settings, body);
          store.transact((tx) => markSent(tx, id, { bytes: Buffer.byteLength(body), files: 0, fixity: 'not-applicable' }));
          return;
        }
        const sent = await copyFiles(ctx, r, settings, product, message);
        store.transact((tx) => markSent(tx, id, sent));
      } catch (err) {
        if (ctx.signal.aborted) throw err;
        onError(ctx, r, err);
      }
    },
    failed(ctx, error) {
      store.transact((tx) => {
        let r: DisseminationRow;
        try {
          r = getDisseminationRow(tx.db, ctx.payload.disseminationId);
        } catch {
          return;
        }
        if (r.status !== 'PENDING') return;
        tx.db.prepare(`UPDATE disseminations SET status = 'FAILED', last_error = ?, updated_at = ? WHERE id = ?`).run(error.message, nowIso(), r.id);
        tx.event({ kind: 'dissemination', objectId: r.id, type: DisseminationEventTypes.failed, payload: { ...base(r), attempt: r.attempts, error: error.message, final: true } });
      });
    },
  };
}

/** What a dissemination whose outbox message a person cancelled fails with (its `lastError`). */
export const CANCELLED_IN_OUTBOX = 'cancelled in the outbox';

/**
 * A person cancelled or put back an outbox message (Messages → Outbox). The dissemination it
 * stands for follows, in the same transaction: otherwise a cancelled message would leave it
 * PENDING for good (nothing would send it, and neither retry nor notify takes a PENDING one).
 * - cancelled, while the dissemination waits on it: FAILED with CANCELLED_IN_OUTBOX
 *   (`dissemination.failed`, final): `disseminations.retry` sends a new message, notify takes it again;
 * - retried, while its FAILED dissemination still points at it: PENDING again (`retried` by the
 *   archivist), delivered when the broker confirms it;
 * - retried, when the dissemination no longer points at it (sent again since: another message,
 *   or one to come): refused, as the recipient could get the product twice.
 */
export function onOutboxChange(tx: Tx, item: OutboxItem, change: OutboxChange): void {
  if (item.objectKind !== 'dissemination' || !item.objectId) return;
  const r = tx.db.prepare('SELECT * FROM disseminations WHERE id = ?').get(item.objectId) as DisseminationRow | undefined;
  if (!r) return;
  if (change === 'cancelled') {
    if (r.status !== 'PENDING' || r.outbox_id !== item.id) return; // acknowledged by hand, or an older message
    const now = nowIso();
    tx.db.prepare(`UPDATE disseminations SET status = 'FAILED', last_error = ?, updated_at = ? WHERE id = ?`).run(CANCELLED_IN_OUTBOX, now, r.id);
    tx.event({
      kind: 'dissemination',
      objectId: r.id,
      type: DisseminationEventTypes.failed,
      payload: { ...base(r), attempt: r.attempts, error: CANCELLED_IN_OUTBOX, final: true, outboxId: item.id },
    });
    return;
  }
  if (change !== 'retried') return; // an edit changes nothing of the dissemination
  if (r.outbox_id !== item.id) {
    throw new FondsError(
      'CONFLICT',
      `Outbox message ${item.id} is an earlier message of dissemination ${r.id} (${r.urn} to '${r.recipient_label}'), now ${r.status}${r.outbox_id ? ` with message ${r.outbox_id}` : ''}: ` +
        `sending this one too could deliver the product twice; use the dissemination's own message, or send the dissemination again (disseminations.retry) when it is FAILED.`,
      { disseminationId: r.id, status: r.status, ...(r.outbox_id ? { outboxId: r.outbox_id } : {}) },
    );
  }
  if (r.status !== 'FAILED') return; // still waiting on it (send now), or acknowledged by hand
  try {
    tx.db.prepare(`UPDATE disseminations SET status = 'PENDING', attempts = attempts + 1, last_error = NULL, updated_at = ? WHERE id = ?`).run(nowIso(), r.id);
  } catch (err) {
    if (/UNIQUE/.test((err as Error).message)) {
      throw new FondsError('CONFLICT', `${r.urn} is already being disseminated to '${r.recipient_label}' by another dissemination; outbox message ${item.id} is left as it was.`, { disseminationId: r.id });
    }
    throw err;
  }
  tx.event({ kind: 'dissemination', objectId: r.id, type: DisseminationEventTypes.retried, payload: { ...base(r), attempt: r.attempts + 1, by: 'archivist', outboxId: item.id } });
}

/** The broker confirmed an outbox message: when it is a dissemination's, it is delivered. */
export function onAmqpSent(deps: Deps, item: OutboxItem): void {
  if (item.objectKind !== 'dissemination' || !item.objectId) return;
  deps.store.transact((tx) => {
    const r = tx.db.prepare('SELECT id, outbox_id FROM disseminations WHERE id = ?').get(item.objectId) as { id: string; outbox_id: number | null } | undefined;
    if (!r || r.outbox_id !== item.id) return;
    markSent(tx, r.id, { bytes: Buffer.byteLength(item.body, 'utf8'), files: 0, fixity: 'not-applicable' });
  });
}
