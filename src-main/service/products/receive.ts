/**
 * Fonds as the catalogue: patch requests consumed from `<prefix>.feature-update-requests`, a
 * window at a time. For each request, in one transaction with the rest of its window: the
 * request row, its event, its answers in the outbox (DENIED, or GRANTED then SUCCESS / ERROR),
 * and the patched product, or a durable job for a request dated in the future. Messages are
 * acknowledged only after that commit (see amqp/consumer.ts).
 *
 * One event per request and transaction: a request granted and applied at once records GRANTED
 * and its outcome in a single `received.SUCCESS` (or `received.ERROR`) event whose `states` lists
 * both and which says what changed in the product (`changed`, the files before and after), while
 * the wire still carries one answer per state, as seed 001 requires. A delayed request has its
 * `received.GRANTED` event when it arrives and its outcome event when its job runs.
 *
 * A request settled in the transaction that received it (DENIED, or GRANTED and applied) owes
 * its answers: they are a function of its row (`owedAnswers`), so they go to the outbox as owed
 * messages (`OwedSource` in db/outbox.ts) with no row of their own unless they have to wait; the
 * row's rowid orders them. Answers of delayed requests, of duplicates and of jobs are outbox rows.
 */
import type { ConsumeMessage } from 'amqplib';
import {
  MAX_PROPERTY_DEPTH,
  jsonDepth,
  patchBodySchema,
  type FeatureFile,
  type FileUpdateMode,
  type PriorityLevel,
  type RequestState,
} from '../../../src-shared/domain/product';
import { FondsError } from '../../../src-shared/errors';
import { AMQP_CHANNEL, type Amqp } from '../amqp';
import type { Verdict } from '../amqp/consumer';
import { bodySha256Of, recordDeadLetter } from '../amqp/dead-letters';
import { jsonSafe, parsePatchRequest, requestEvent, type PatchRequestMessage, type RequestEventMessage } from '../amqp/regards';
import type { Deps } from '../capability';
import type { JobHandler } from '../db/jobs';
import type { OwedSource } from '../db/outbox';
import { nowIso, type NewOutboxMessage, type Owed, type Tx } from '../db/store';
import { mergeFiles, mergeProperties } from './merge';
import { patchKey, type PatchRow, type ProductRow } from './store';

export const PATCH_JOB = 'products.patch';
/** The owed messages of received requests (their answers): `outbox.owed.products.answers` in settings. */
export const ANSWERS_SOURCE = 'products.answers';

/** A product whose properties would grow past this is not patched (ERROR). */
const MAX_PRODUCT_BYTES = 16 * 1024 * 1024;
const RANK: Record<PriorityLevel, number> = { HIGH: 0, NORMAL: 1, LOW: 2 };
/** job priority: higher runs first */
export const JOB_PRIORITY: Record<PriorityLevel, number> = { HIGH: 2, NORMAL: 1, LOW: 0 };

/** What a patch changed in its product, as its outcome event tells it. */
interface Change {
  changed: string[];
  fileUpdateMode?: FileUpdateMode;
  filesBefore?: number;
  filesAfter?: number;
}

/** A granted patch's outcome: SUCCESS with what changed, or ERROR with the reasons (nothing changed). */
type Outcome = { state: 'SUCCESS'; errors: []; change: Change } | { state: 'ERROR'; errors: string[]; change?: undefined };

/** What a granted request changes. */
interface Patch {
  key: string;
  requestId: string;
  tenant: string;
  owner: string;
  urn: string;
  properties?: Record<string, unknown>;
  files?: FeatureFile[];
  fileUpdateMode: FileUpdateMode;
  acknowledgedRecipient?: string;
}

/** What the answers of a request settled as it was received are made of: its row. */
interface OwingRow {
  key: string;
  request_id: string;
  /** '' when the request named none (DENIED) */
  tenant: string;
  /** '' when the request named none (DENIED) */
  owner: string;
  urn: string | null;
  state: RequestState;
  errors: string[];
}

/** An answer as an outbox message; `owedBy`: the row that owes it (see owedAnswers). */
function answerMessage(key: string, m: RequestEventMessage, owedBy?: Owed): NewOutboxMessage {
  const message: NewOutboxMessage = { channel: AMQP_CHANNEL, destination: m.exchange, headers: m.headers, body: m.body, objectKind: 'patch_request', objectId: key };
  if (owedBy) message.owedBy = owedBy;
  return message;
}

const NO_ERRORS: readonly string[] = [];

/**
 * The answers a request settled in the transaction that received it owes, from its row alone (so
 * that they are the same when written after a crash): DENIED, or GRANTED then its outcome.
 * `owedBy`: the row's place among the rows that owe answers, when they are owed as it commits.
 */
export function owedAnswers(r: OwingRow, owedBy?: Owed): NewOutboxMessage[] {
  const answer = { requestId: r.request_id, tenant: r.tenant || undefined, urn: r.urn, owner: r.owner || null, state: r.state, errors: r.errors };
  const outcome = answerMessage(r.key, requestEvent(answer), owedBy);
  if (r.state === 'DENIED') return [outcome];
  return [answerMessage(r.key, requestEvent({ ...answer, state: 'GRANTED', errors: NO_ERRORS }), owedBy), outcome];
}

export function createCatalogue(deps: Deps, amqp: Pick<Amqp, 'names' | 'appId'>) {
  const { store, config } = deps;
  const db = store.db;
  /** what a patch reads of its product */
  type ProductState = Pick<ProductRow, 'tenant' | 'properties' | 'files' | 'acknowledged_by'> & { rowid: number };
  // the rowid too: the update finds the row by it, without the URN's index a second time
  const selectProduct = db.prepare('SELECT rowid, tenant, properties, files, acknowledged_by FROM products WHERE urn = ?');
  const selectPatch = db.prepare('SELECT * FROM patch_requests WHERE key = ?');
  // positional parameters, in the order of PatchInsert (binding by name costs a lookup a parameter)
  const insertPatchStmt = db.prepare(
    `INSERT INTO patch_requests (key, direction, request_id, tenant, owner, urn, state, errors, priority, file_update_mode, request_date, run_at,
                                 acknowledged_recipient, headers, body, body_sha256, created_at, updated_at)
     VALUES (?, 'received', ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
  );
  interface PatchInsert {
    key: string;
    requestId: string;
    tenant: string;
    owner: string;
    urn: string | null;
    state: RequestState;
    errors: string[];
    priority: PriorityLevel;
    mode: FileUpdateMode | null;
    requestDate: string | null;
    runAt: string | null;
    recipient: string | null;
    headers: string;
    body: string;
    sha: string;
    now: string;
  }
  /** the row's rowid: it orders the answers the request owes */
  const insertPatch = (r: PatchInsert) =>
    Number(
      insertPatchStmt.run(r.key, r.requestId, r.tenant, r.owner, r.urn, r.state, JSON.stringify(r.errors), r.priority, r.mode, r.requestDate, r.runAt, r.recipient, r.headers, r.body, r.sha, r.now, r.now)
        .lastInsertRowid,
    );
  const updatePatch = db.prepare('UPDATE patch_requests SET state = ?, errors = ?, updated_at = ? WHERE key = ?');
  const updateProduct = db.prepare('UPDATE products SET properties = ?, files = ?, acknowledged_by = ?, updated_at = ? WHERE rowid = ?');

  /** One FeatureRequestEvent per state change, through the outbox, in the caller's transaction. */
  function answer(tx: Tx, key: string, a: { requestId: string; tenant?: string; urn?: string; owner?: string; state: RequestState; errors: readonly string[] }): void {
    tx.outbox(answerMessage(key, requestEvent(a)));
  }

  /**
   * A request settled in the transaction that received it: its row, and the answers that row owes,
   * made from the very values written, given to the outbox as owed by it (`seq`: its rowid).
   */
  function insertSettled(tx: Tx, r: PatchInsert): void {
    const seq = insertPatch(r);
    const row: OwingRow = { key: r.key, request_id: r.requestId, tenant: r.tenant, owner: r.owner, urn: r.urn, state: r.state, errors: r.errors };
    for (const m of owedAnswers(row, { source: ANSWERS_SOURCE, seq })) tx.outbox(m);
  }

  /** The answers owed by received requests, read again from their rows (after a crash): registered by createProducts. */
  const owedAfterStmt = db.prepare(
    `SELECT rowid, key, request_id, tenant, owner, urn, state, errors FROM patch_requests WHERE rowid > ? AND direction = 'received' AND run_at IS NULL ORDER BY rowid`,
  );
  const latestStmt = db.prepare('SELECT max(rowid) FROM patch_requests').pluck();
  const answers: OwedSource = {
    latest: () => (latestStmt.get() as number | null) ?? 0,
    owedAfter: (seq) =>
      (owedAfterStmt.all(seq) as Array<Omit<OwingRow, 'errors'> & { errors: string }>).flatMap((r) => owedAnswers({ ...r, errors: JSON.parse(r.errors) as string[] })),
  };

  type Ref = Pick<PatchRow, 'key' | 'request_id' | 'tenant' | 'owner' | 'urn'>;

  /** An outcome reached (the row says so already): its event. `granted`: GRANTED was reached in the same transaction: the event records both. */
  function record(tx: Tx, row: Pick<Ref, 'key' | 'request_id' | 'urn'>, outcome: Outcome, granted: boolean): void {
    const { state, errors, change } = outcome;
    const payload: Record<string, unknown> = { requestId: row.request_id, urn: row.urn };
    if (granted) payload.states = ['GRANTED', state];
    if (change) Object.assign(payload, change);
    if (errors.length) payload.errors = errors;
    tx.event({ kind: 'patch_request', objectId: row.key, type: `received.${state}`, payload });
  }

  /** A delayed request's outcome, when its job runs (or gives up): its row, its event, its answer. */
  function setState(tx: Tx, row: Ref, outcome: Outcome): void {
    updatePatch.run(outcome.state, JSON.stringify(outcome.errors), nowIso(), row.key);
    record(tx, row, outcome, false);
    answer(tx, row.key, { requestId: row.request_id, tenant: row.tenant, urn: row.urn ?? undefined, owner: row.owner, state: outcome.state, errors: outcome.errors });
  }

  /**
   * Applies a granted patch to its product: SUCCESS with what changed, or ERROR with the reason.
   * The request's own state and event are the caller's to record.
   */
  function apply(tx: Tx, p: Patch, current?: ProductState): Outcome {
    const row = current ?? (selectProduct.get(p.urn) as ProductState | undefined);
    if (!row || row.tenant !== p.tenant) {
      return { state: 'ERROR', errors: [`feature.urn: product ${p.urn} no longer exists in tenant ${p.tenant}`] };
    }
    const { properties, changed } = mergeProperties(JSON.parse(row.properties), p.properties ?? {});
    const propertiesText = JSON.stringify(properties);
    if (propertiesText.length > MAX_PRODUCT_BYTES || jsonDepth(properties) > MAX_PROPERTY_DEPTH) {
      return { state: 'ERROR', errors: [`feature.properties: the patched product would exceed ${MAX_PRODUCT_BYTES} bytes or ${MAX_PROPERTY_DEPTH} levels; nothing was changed`] };
    }
    // files and acknowledgements are read and written again only when the patch touches them
    let filesText = row.files;
    let filesCount: { before: number; after: number } | undefined;
    if (p.files) {
      const before: FeatureFile[] = JSON.parse(row.files);
      const files = mergeFiles(before, p.files, p.fileUpdateMode);
      filesText = JSON.stringify(files);
      filesCount = { before: before.length, after: files.length };
    }
    let acknowledgedText = row.acknowledged_by;
    if (p.acknowledgedRecipient) {
      const acknowledged: string[] = JSON.parse(row.acknowledged_by);
      if (!acknowledged.includes(p.acknowledgedRecipient)) acknowledged.push(p.acknowledgedRecipient);
      acknowledgedText = JSON.stringify(acknowledged);
    }
    updateProduct.run(propertiesText, filesText, acknowledgedText, nowIso(), row.rowid);
    if (p.acknowledgedRecipient) {
      // consumed by the dissemination capability: the recipient acknowledged this product
      tx.event({ kind: 'product', objectId: p.urn, type: 'dissemination.acknowledged', payload: { urn: p.urn, recipientLabel: p.acknowledgedRecipient, requestId: p.requestId } });
    }
    return { state: 'SUCCESS', errors: [], change: { changed, ...(filesCount ? { fileUpdateMode: p.fileUpdateMode, filesBefore: filesCount.before, filesAfter: filesCount.after } : {}) } };
  }

  const patchOf = (key: string, r: PatchRequestMessage): Patch => ({
    key,
    requestId: r.requestId,
    tenant: r.tenant,
    owner: r.owner,
    urn: r.urn,
    ...(r.properties ? { properties: r.properties } : {}),
    ...(r.files ? { files: r.files } : {}),
    fileUpdateMode: r.fileUpdateMode,
    ...(r.acknowledgedRecipient ? { acknowledgedRecipient: r.acknowledgedRecipient } : {}),
  });

  /** One message of a window, inside the window's transaction. */
  function receive(tx: Tx, msg: ConsumeMessage, parsed: ReturnType<typeof parsePatchRequest>, now: Date): Verdict {
    if (parsed.kind === 'unreadable') {
      recordDeadLetter(tx, amqp.names.requests, msg, parsed.reason, parsed.bodySha256);
      return { deadLetter: parsed.reason };
    }
    const requestId = parsed.kind === 'valid' ? parsed.request.requestId : parsed.requestId;
    const bodySha256 = parsed.kind === 'valid' ? parsed.request.bodySha256 : parsed.bodySha256;
    const key = patchKey('received', requestId);
    const seen = selectPatch.get(key) as PatchRow | undefined;
    if (seen) {
      const sameContent = seen.body_sha256 === bodySha256;
      // the same message again after a stop before its ack: its answers are in the outbox, or owed
      // by its row (written again at the start when they were not confirmed)
      if (sameContent && msg.fields.redelivered) return 'ack';
      const errors: string[] = JSON.parse(seen.errors);
      const tenant = parsed.kind === 'valid' ? parsed.request.tenant : parsed.tenant ?? seen.tenant;
      if (sameContent) {
        // sent twice: answered from the stored outcome, never applied twice
        answer(tx, key, { requestId: seen.request_id, tenant, urn: seen.urn ?? undefined, owner: seen.owner, state: seen.state as RequestState, errors });
        tx.event({ kind: 'patch_request', objectId: key, type: 'received.duplicate', payload: { requestId: seen.request_id, sameContent, answered: seen.state } });
      } else {
        const why = [`regards.request.id: '${seen.request_id}' was already used by the request received ${seen.created_at} (${seen.state}); this one was not applied`];
        const urn = parsed.kind === 'valid' ? parsed.request.urn : parsed.urn;
        const owner = parsed.kind === 'valid' ? parsed.request.owner : parsed.owner;
        answer(tx, key, { requestId: seen.request_id, tenant, urn, owner, state: 'DENIED', errors: why });
        tx.event({ kind: 'patch_request', objectId: key, type: 'received.duplicate', payload: { requestId: seen.request_id, sameContent, answered: 'DENIED', errors: why } });
      }
      return 'ack';
    }

    const headers = JSON.stringify(jsonSafe(msg.properties.headers ?? {}));
    const t = nowIso();
    if (parsed.kind === 'denied') {
      insertSettled(tx, {
        key,
        requestId: parsed.requestId,
        tenant: parsed.tenant ?? '',
        owner: parsed.owner ?? '',
        urn: parsed.urn ?? null,
        state: 'DENIED',
        errors: parsed.errors,
        priority: parsed.priority,
        mode: null,
        requestDate: null,
        runAt: null,
        recipient: null,
        headers,
        body: msg.content.subarray(0, 4096).toString('utf8'),
        sha: parsed.bodySha256,
        now: t,
      });
      tx.event({ kind: 'patch_request', objectId: key, type: 'received.DENIED', payload: { requestId: parsed.requestId, urn: parsed.urn ?? null, errors: parsed.errors } });
      return 'ack';
    }

    const r = parsed.request;
    const product = selectProduct.get(r.urn) as ProductState | undefined;
    const refusal = !product
      ? `feature.urn: no product ${r.urn} in this catalogue`
      : product.tenant !== r.tenant
        ? `feature.urn: product ${r.urn} does not belong to tenant ${r.tenant}`
        : undefined;
    const delayed = r.runAt && r.runAt.getTime() > now.getTime() ? r.runAt : undefined;
    const rowOf = (state: RequestState, errors: string[]): PatchInsert => ({
      key,
      requestId: r.requestId,
      tenant: r.tenant,
      owner: r.owner,
      urn: r.urn,
      state,
      errors,
      priority: r.priority,
      mode: r.fileUpdateModeGiven || r.files ? r.fileUpdateMode : null,
      requestDate: r.requestDate ?? null,
      runAt: delayed?.toISOString() ?? null,
      recipient: r.acknowledgedRecipient ?? null,
      headers,
      body: r.bodyText,
      sha: r.bodySha256,
      now: t,
    });
    if (refusal) {
      insertSettled(tx, rowOf('DENIED', [refusal]));
      tx.event({ kind: 'patch_request', objectId: key, type: 'received.DENIED', payload: { requestId: r.requestId, urn: r.urn, errors: [refusal] } });
      return 'ack';
    }
    if (delayed) {
      answer(tx, key, { requestId: r.requestId, tenant: r.tenant, urn: r.urn, owner: r.owner, state: 'GRANTED', errors: [] });
      insertPatch(rowOf('GRANTED', []));
      tx.event({ kind: 'patch_request', objectId: key, type: 'received.GRANTED', payload: { requestId: r.requestId, urn: r.urn, owner: r.owner, priority: r.priority, runAt: delayed.toISOString() } });
      tx.enqueue({ kind: PATCH_JOB, payload: { key }, objectKind: 'patch_request', objectId: key, priority: JOB_PRIORITY[r.priority], runAt: delayed, maxAttempts: 5 });
      return 'ack';
    }
    // applied now: the row is written once, in its final state; one event for GRANTED and the
    // outcome; the two answers are owed by the row
    const outcome = apply(tx, patchOf(key, r), product);
    insertSettled(tx, rowOf(outcome.state, outcome.errors));
    record(tx, { key, request_id: r.requestId, urn: r.urn }, outcome, true);
    return 'ack';
  }

  /**
   * A window of deliveries, committed in one transaction: requests run HIGH first, then NORMAL,
   * then LOW, in arrival order within a level. Messages Fonds published itself are skipped.
   */
  function receiveWindow(window: ConsumeMessage[]): Verdict[] {
    const now = new Date();
    const options = { tenants: config.regardsTenants, maxBytes: config.amqpMaxMessageBytes };
    const items = window.map((msg, i) => {
      const own = msg.properties.appId === amqp.appId;
      const parsed = own ? undefined : parsePatchRequest(msg, options);
      const priority = parsed?.kind === 'valid' ? parsed.request.priority : parsed?.kind === 'denied' ? parsed.priority : 'NORMAL';
      return { i, msg, parsed, rank: RANK[priority] };
    });
    items.sort((a, b) => a.rank - b.rank || a.i - b.i);
    const verdicts: Verdict[] = new Array(window.length).fill('ack');
    store.transact((tx) => {
      for (const it of items) if (it.parsed) verdicts[it.i] = receive(tx, it.msg, it.parsed, now);
    });
    return verdicts;
  }

  /** A message that failed twice: kept for people, then dead-lettered. */
  function poison(msg: ConsumeMessage, err: Error): void {
    store.transact((tx) => recordDeadLetter(tx, amqp.names.requests, msg, `processing failed twice: ${err.message}`, bodySha256Of(msg.content)));
  }

  /** The durable job of a request dated in the future: it runs at that date, HIGH first. */
  const job: JobHandler<{ key: string }> = {
    async run(ctx) {
      store.transact((tx) => {
        const row = selectPatch.get(ctx.payload.key) as PatchRow | undefined;
        if (!row || row.state !== 'GRANTED') return; // done already (a rerun after a crash)
        const body = patchBodySchema.safeParse(JSON.parse(row.body ?? 'null'));
        if (!body.success) throw new FondsError('INTERNAL', `stored body of ${row.key} no longer parses`);
        const f = body.data.feature;
        const outcome = apply(tx, {
          key: row.key,
          requestId: row.request_id,
          tenant: row.tenant,
          owner: row.owner,
          urn: f.urn,
          ...(f.properties ? { properties: f.properties } : {}),
          ...(f.files ? { files: f.files } : {}),
          fileUpdateMode: row.file_update_mode ?? 'APPEND',
          ...(row.acknowledged_recipient ? { acknowledgedRecipient: row.acknowledged_recipient } : {}),
        });
        setState(tx, row, outcome);
      });
    },
    failed(ctx, error) {
      store.transact((tx) => {
        const row = selectPatch.get(ctx.payload.key) as PatchRow | undefined;
        if (row?.state === 'GRANTED') setState(tx, row, { state: 'ERROR', errors: [`processing failed: ${error.message}`] });
      });
    },
  };

  return { receiveWindow, poison, job, answers };
}
