/**
 * Fonds as a client of a remote REGARDS: patch requests composed by an archivist, queued in the
 * outbox (where they wait, reviewable, while no broker is connected), marked SENT when the broker
 * confirms them, and followed through the FeatureRequestEvent answers consumed from
 * `<prefix>.feature-request-events`.
 */
import type { ConsumeMessage } from 'amqplib';
import type { OutboxItem } from '../../../src-shared/api';
import { REGARDS, type ComposedPatch, type ParsedPatchInput, type PatchRequest, type PatchState, type PriorityLevel } from '../../../src-shared/domain/product';
import { FondsError } from '../../../src-shared/errors';
import { AMQP_CHANNEL, type Amqp } from '../amqp';
import type { Verdict } from '../amqp/consumer';
import { bodySha256Of, recordDeadLetter } from '../amqp/dead-letters';
import { composePatch, parsePatchRequest, parseRequestEvent } from '../amqp/regards';
import type { Deps } from '../capability';
import type { OutboxChange } from '../db/outbox';
import { nowIso, type Tx } from '../db/store';
import { isSentPatch } from './answers';
import { getPatchRow, patchKey, rowToPatch, type PatchRow } from './store';

const OUTBOX_PRIORITY: Record<PriorityLevel, number> = { HIGH: 2, NORMAL: 1, LOW: 0 };
/** later states never give way to earlier ones arriving late */
const PROGRESS: Record<PatchState, number> = { QUEUED: 0, CANCELLED: 0, SENT: 1, GRANTED: 2, DENIED: 3, SUCCESS: 3, ERROR: 3 };

export function createClient(deps: Deps, amqp: Amqp) {
  const { store, config } = deps;
  const db = store.db;
  const selectSent = db.prepare(`SELECT * FROM patch_requests WHERE direction = 'sent' AND request_id = ?`);

  /**
   * Is `id` the request id of one of Fonds' patch requests (other than `except`)? As recorded, or
   * as its message waiting in the outbox carries it (an edit may have changed it there).
   */
  function idTaken(tx: Tx, id: string, except?: { key: string; outboxId: number }): boolean {
    const recorded = tx.db.prepare(`SELECT 1 FROM patch_requests WHERE direction = 'sent' AND (key = ? OR request_id = ?) AND key <> ?`).get(patchKey('sent', id), id, except?.key ?? '');
    if (recorded) return true;
    const waiting = tx.db
      .prepare(
        `SELECT 1 FROM outbox WHERE id <> ? AND object_kind = 'patch_request' AND object_id LIKE 'sent:%' AND status IN ('pending', 'sending', 'failed', 'cancelled')
           AND json_extract(headers, '$."regards.request.id"') = ?`,
      )
      .get(except?.outboxId ?? -1, id);
    return !!waiting;
  }

  function compose(input: ParsedPatchInput): ComposedPatch {
    return composePatch(input, { owner: config.regardsRequestOwner, vhost: config.amqpVhost, maxBytes: config.amqpMaxMessageBytes, appId: amqp.appId });
  }

  /** Queues the request in the outbox, exactly as `compose` shows it. */
  function send(input: ParsedPatchInput): PatchRequest {
    const c = compose(input);
    if (c.problems.length) {
      throw new FondsError('INVALID_INPUT', `The patch request would be refused: ${c.problems.join('; ')}`, {
        issues: c.problems.map((p) => ({ field: p.split(':')[0], message: p })),
      });
    }
    const key = patchKey('sent', c.requestId);
    store.transact((tx) => {
      if (idTaken(tx, c.requestId)) {
        throw new FondsError('CONFLICT', `A patch request with id ${c.requestId} was already sent; a request id is used once.`, { requestId: c.requestId });
      }
      const outboxId = tx.outbox({
        channel: AMQP_CHANNEL,
        destination: c.exchange,
        headers: c.headers,
        body: c.body,
        priority: OUTBOX_PRIORITY[input.priority],
        objectKind: 'patch_request',
        objectId: key,
      });
      const t = nowIso();
      tx.db
        .prepare(
          `INSERT INTO patch_requests (key, direction, request_id, tenant, owner, urn, state, errors, priority, file_update_mode, request_date,
                                       acknowledged_recipient, headers, body, outbox_id, created_at, updated_at)
           VALUES (?, 'sent', ?, ?, ?, ?, 'QUEUED', '[]', ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
        )
        .run(
          key,
          c.requestId,
          input.tenant,
          c.headers[REGARDS.headers.requestOwner],
          input.urn,
          input.priority,
          input.fileUpdateMode ?? null,
          input.requestDate ?? null,
          input.acknowledgedRecipient ?? null,
          JSON.stringify(c.headers),
          c.body,
          outboxId,
          t,
          t,
        );
      tx.event({
        kind: 'patch_request',
        objectId: key,
        type: 'sent.QUEUED',
        payload: { requestId: c.requestId, urn: input.urn, tenant: input.tenant, outboxId, broker: amqp.state() },
      });
    });
    return rowToPatch(getPatchRow(db, key)!);
  }

  /**
   * A patch request edited while it waits in the outbox is read back as a catalogue would read it,
   * as `send` does before queuing: an edit that a catalogue would deny (a body that is not the
   * seed's shape, a request id over 36 characters...) or that reuses the request id of another of
   * Fonds' requests (its answers would move the other one) is refused, and nothing is changed.
   */
  function onOutboxChange(tx: Tx, item: OutboxItem, change: OutboxChange): void {
    if (change !== 'edited' || !isSentPatch(item)) return;
    const h = item.headers;
    const tenant = typeof h[REGARDS.headers.tenant] === 'string' ? (h[REGARDS.headers.tenant] as string).trim() : '';
    const back = parsePatchRequest(
      { content: Buffer.from(item.body, 'utf8'), properties: { headers: h, contentType: 'application/json', contentEncoding: 'UTF-8' } },
      { tenants: tenant ? [tenant] : [], maxBytes: config.amqpMaxMessageBytes },
    );
    const problems = back.kind === 'denied' ? back.errors : back.kind === 'unreadable' ? [back.reason] : [];
    if (problems.length) {
      throw new FondsError('INVALID_INPUT', `The edited patch request would be refused: ${problems.join('; ')}; nothing was changed.`, {
        issues: problems.map((p) => ({ field: p.split(':')[0], message: p })),
      });
    }
    if (back.kind !== 'valid') return;
    const id = back.request.requestId;
    if (idTaken(tx, id, { key: item.objectId!, outboxId: item.id })) throw new FondsError('CONFLICT', `regards.request.id: '${id}' is the id of another of Fonds' patch requests; a request id is used once. Nothing was changed.`, { requestId: id });
  }

  /** The broker confirmed an outbox message: if it is a patch request, it is SENT (as it was, edits included). */
  function onSent(item: OutboxItem): void {
    if (!isSentPatch(item)) return;
    store.transact((tx) => {
      const row = getPatchRow(tx.db, item.objectId!);
      if (!row) return;
      const wireId = typeof item.headers[REGARDS.headers.requestId] === 'string' ? (item.headers[REGARDS.headers.requestId] as string) : row.request_id;
      const edited = item.body !== row.body || JSON.stringify(item.headers) !== row.headers;
      const state: PatchState = PROGRESS[row.state] < PROGRESS.SENT ? 'SENT' : row.state;
      tx.db
        .prepare('UPDATE patch_requests SET state = ?, request_id = ?, headers = ?, body = ?, updated_at = ? WHERE key = ?')
        .run(state, wireId, JSON.stringify(item.headers), item.body, nowIso(), row.key);
      tx.event({ kind: 'patch_request', objectId: row.key, type: 'sent.SENT', payload: { requestId: wireId, urn: row.urn, outboxId: item.id, ...(edited ? { edited: true } : {}) } });
    });
  }

  /** Answers from remote catalogues: those to Fonds' requests move them on; others are not Fonds' business. */
  function responseWindow(window: ConsumeMessage[]): Verdict[] {
    const verdicts: Verdict[] = new Array(window.length).fill('ack');
    store.transact((tx) => {
      window.forEach((msg, i) => {
        if (msg.properties.appId === amqp.appId) return; // Fonds' own answers as a catalogue
        const r = parseRequestEvent(msg, config.amqpMaxMessageBytes);
        if (r.kind === 'unreadable') {
          recordDeadLetter(tx, amqp.names.responses, msg, r.reason, r.bodySha256);
          verdicts[i] = { deadLetter: r.reason };
          return;
        }
        const row = selectSent.get(r.requestId) as PatchRow | undefined;
        if (!row) return;
        // one final answer counts: the first (REGARDS sends exactly one)
        const moves = PROGRESS[r.state] > PROGRESS[row.state];
        if (moves) tx.db.prepare('UPDATE patch_requests SET state = ?, errors = ?, updated_at = ? WHERE key = ?').run(r.state, JSON.stringify(r.errors), nowIso(), row.key);
        tx.event({
          kind: 'patch_request',
          objectId: row.key,
          type: `sent.${r.state}`,
          payload: { requestId: r.requestId, urn: r.urn ?? row.urn, ...(r.errors.length ? { errors: r.errors } : {}), ...(moves ? {} : { late: true }) },
        });
      });
    });
    return verdicts;
  }

  function poison(msg: ConsumeMessage, err: Error): void {
    store.transact((tx) => recordDeadLetter(tx, amqp.names.responses, msg, `processing failed twice: ${err.message}`, bodySha256Of(msg.content)));
  }

  return { compose, send, onSent, onOutboxChange, responseWindow, poison };
}
