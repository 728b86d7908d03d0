/**
 * REGARDS message codecs (seed 001): reading a FeatureUpdateRequestEvent off the wire, writing the
 * FeatureRequestEvent answers, composing the patch requests Fonds sends, and reading the answers
 * to those. Pure: no broker, no database. Every problem of a request is collected, each naming
 * its header or body field, so that a DENIED answer lists them all.
 */
import { createHash, randomUUID } from 'node:crypto';
import type { z } from 'zod';
import {
  FileUpdateModes,
  PriorityLevels,
  REGARDS,
  RequestStates,
  parseIsoDateTime,
  patchBodySchema,
  putJsonKey,
  type ComposedPatch,
  type FeatureFile,
  type FileUpdateMode,
  type ParsedPatchInput,
  type PriorityLevel,
  type RequestState,
  type StorageMetadata,
} from '../../../src-shared/domain/product';

/** What the codecs need of a delivered AMQP message (amqplib's ConsumeMessage fits). */
export interface WireMessage {
  content: Buffer;
  properties: {
    headers?: Record<string, unknown>;
    contentType?: string;
    contentEncoding?: string;
    priority?: number;
  };
}

/** A patch request that can be processed. */
export interface PatchRequestMessage {
  requestId: string;
  tenant: string;
  owner: string;
  /** the raw header, when there was one */
  requestDate?: string;
  /** when to process it: the header's date, or undefined for now */
  runAt?: Date;
  fileUpdateMode: FileUpdateMode;
  /** the header was present (APPEND is REGARDS' default otherwise) */
  fileUpdateModeGiven: boolean;
  priority: PriorityLevel;
  storages: StorageMetadata[];
  acknowledgedRecipient?: string;
  urn: string;
  properties?: Record<string, unknown>;
  files?: FeatureFile[];
  /** SHA-256 of the body, to tell a resent request from another one reusing its id */
  bodySha256: string;
  /** the body as the UTF-8 text it was read from */
  bodyText: string;
}

export type ParsedPatchRequest =
  | { kind: 'valid'; request: PatchRequestMessage }
  /** answerable: the request id could be read */
  | { kind: 'denied'; requestId: string; tenant?: string; owner?: string; urn?: string; priority: PriorityLevel; bodySha256: string; errors: string[] }
  /** no request id: nobody to answer; dead-lettered */
  | { kind: 'unreadable'; reason: string; bodySha256: string };

export interface CodecOptions {
  /** the tenants this catalogue knows */
  tenants: readonly string[];
  maxBytes: number;
}

const sha256 = (b: Buffer) => createHash('sha256').update(b).digest('hex');

/** Strict UTF-8 (a decoder is stateless between whole-buffer decodes: one serves every message). */
const utf8 = new TextDecoder('utf-8', { fatal: true });
/** Decodes strict UTF-8; throws on bytes that are not. */
export const decodeUtf8 = (bytes: Uint8Array): string => utf8.decode(bytes);

function typeName(v: unknown): string {
  if (v === null) return 'null';
  if (Buffer.isBuffer(v)) return 'bytes';
  if (Array.isArray(v)) return 'a list';
  if (typeof v === 'object') return 'a table';
  return `a ${typeof v}`;
}

/**
 * A header as a string. AMQP clients send strings as long strings; some send them as byte arrays,
 * read here as UTF-8. Anything else is the wrong type.
 */
function headerString(headers: Record<string, unknown>, name: string): { value?: string; problem?: string; present: boolean } {
  if (!Object.prototype.hasOwnProperty.call(headers, name)) return { present: false };
  const v = headers[name];
  if (typeof v === 'string') return { value: v, present: true };
  if (Buffer.isBuffer(v)) {
    try {
      return { value: decodeUtf8(v), present: true };
    } catch {
      return { problem: `${name}: bytes that are not UTF-8 text`, present: true };
    }
  }
  return { problem: `${name}: must be a string, not ${typeName(v)}`, present: true };
}

/** Turns zod issues into `field: message` lines, with `body.` paths REGARDS users recognise. */
export function issueLines(issues: readonly z.core.$ZodIssue[], prefix = ''): string[] {
  return issues.map((i) => {
    const field = i.path.length ? i.path.map((p) => (typeof p === 'number' ? `[${p}]` : String(p))).join('.').replace(/\.\[/g, '[') : '(body)';
    let message = i.message;
    if (/received undefined/.test(message)) message = 'missing';
    else if (/^Invalid input: expected (\w+), received (\w+)$/.test(message)) message = message.replace(/^Invalid input: expected (\w+), received (\w+)$/, 'must be $1, not $2');
    return `${prefix}${field}: ${message}`;
  });
}

const ACCEPTED_TYPES = ['application/json', 'text/plain', 'text/json'];
const ACCEPTED_ENCODINGS = ['utf-8', 'utf8'];

/**
 * Reads a FeatureUpdateRequestEvent. Never throws: the result is valid, denied with every reason
 * (when a request id could be read, so there is someone to answer), or unreadable.
 */
export function parsePatchRequest(msg: WireMessage, options: CodecOptions): ParsedPatchRequest {
  const headers = msg.properties.headers ?? {};
  const bodySha256 = sha256(msg.content);
  const errors: string[] = [];
  const H = REGARDS.headers;

  // the request id decides whether anyone can be answered
  const rawId = headers[H.requestId];
  let requestId: string | undefined;
  const id = headerString(headers, H.requestId);
  if (id.value !== undefined) requestId = id.value.trim();
  else if (typeof rawId === 'number' || typeof rawId === 'bigint') {
    requestId = String(rawId);
    errors.push(`${H.requestId}: must be a string, not a number`);
  }
  if (!requestId || requestId.length > 1024) {
    const why = !id.present ? `${H.requestId}: missing` : id.problem ?? (requestId ? `${H.requestId}: longer than 1024 characters` : `${H.requestId}: empty`);
    return { kind: 'unreadable', reason: `${why}; nobody to answer`, bodySha256 };
  }
  if (requestId.length > REGARDS.maxRequestIdLength) errors.push(`${H.requestId}: longer than ${REGARDS.maxRequestIdLength} characters (${requestId.length})`);

  const tenantH = headerString(headers, H.tenant);
  const tenant = tenantH.value?.trim();
  if (!tenantH.present) errors.push(`${H.tenant}: missing`);
  else if (tenantH.problem) errors.push(tenantH.problem);
  else if (!tenant) errors.push(`${H.tenant}: empty`);
  else if (!options.tenants.includes(tenant)) errors.push(`${H.tenant}: '${tenant}' is not a known tenant (known: ${options.tenants.join(', ') || 'none'})`);

  const ownerH = headerString(headers, H.requestOwner);
  const owner = ownerH.value?.trim();
  if (!ownerH.present) errors.push(`${H.requestOwner}: missing`);
  else if (ownerH.problem) errors.push(ownerH.problem);
  else if (!owner) errors.push(`${H.requestOwner}: empty`);
  else if (owner.length > REGARDS.maxRequestOwnerLength) errors.push(`${H.requestOwner}: longer than ${REGARDS.maxRequestOwnerLength} characters (${owner.length})`);

  const dateH = headerString(headers, H.requestDate);
  let runAt: Date | undefined;
  if (dateH.problem) errors.push(dateH.problem);
  else if (dateH.value !== undefined) {
    runAt = parseIsoDateTime(dateH.value);
    if (!runAt) errors.push(`${H.requestDate}: '${dateH.value.slice(0, 60)}' is not an ISO 8601 date`);
  }

  const modeH = headerString(headers, H.fileUpdateMode);
  let fileUpdateMode: FileUpdateMode = 'APPEND';
  if (modeH.problem) errors.push(modeH.problem);
  else if (modeH.value !== undefined) {
    const m = modeH.value.trim().toUpperCase();
    if ((FileUpdateModes as readonly string[]).includes(m)) fileUpdateMode = m as FileUpdateMode;
    else errors.push(`${H.fileUpdateMode}: '${modeH.value.slice(0, 40)}' is neither REPLACE nor APPEND`);
  }

  // the body
  let urn: string | undefined;
  let priority: PriorityLevel = 'NORMAL';
  let body: z.output<typeof patchBodySchema> | undefined;
  let textBody: string | undefined;
  const type = msg.properties.contentType?.split(';')[0].trim().toLowerCase();
  const encoding = msg.properties.contentEncoding?.trim().toLowerCase();
  if (msg.content.length > options.maxBytes) {
    errors.push(`body: ${msg.content.length} bytes, over the limit of ${options.maxBytes} bytes (amqpMaxMessageBytes)`);
  } else if (type && !ACCEPTED_TYPES.includes(type)) {
    errors.push(`content_type: '${msg.properties.contentType}' is not JSON (send application/json)`);
  } else if (encoding && !ACCEPTED_ENCODINGS.includes(encoding)) {
    errors.push(`content_encoding: '${msg.properties.contentEncoding}' is not supported (send UTF-8 JSON)`);
  } else {
    try {
      textBody = decodeUtf8(msg.content);
    } catch {
      errors.push('body: not UTF-8 text');
    }
    let json: unknown;
    let parsedJson = false;
    if (textBody !== undefined) {
      try {
        json = JSON.parse(textBody);
        parsedJson = true;
      } catch (err) {
        errors.push(textBody.trim() ? `body: not JSON (${(err as Error).message})` : 'body: empty');
      }
    }
    if (parsedJson) {
      const feature = (json as { feature?: { urn?: unknown } } | null)?.feature;
      if (feature && typeof feature.urn === 'string') urn = feature.urn.slice(0, 300);
      const p = (json as { metadata?: { priority?: unknown } } | null)?.metadata?.priority;
      if (typeof p === 'string' && (PriorityLevels as readonly string[]).includes(p)) priority = p as PriorityLevel;
      const r = patchBodySchema.safeParse(json);
      if (r.success) body = r.data;
      else errors.push(...issueLines(r.error.issues));
    }
  }

  if (errors.length || !body || !tenant || !owner || textBody === undefined) {
    return {
      kind: 'denied',
      requestId,
      ...(tenant ? { tenant } : {}),
      ...(owner ? { owner } : {}),
      ...(urn ? { urn } : {}),
      priority,
      bodySha256,
      errors: errors.length ? errors : ['body: unreadable'],
    };
  }
  const f = body.feature;
  return {
    kind: 'valid',
    request: {
      requestId,
      tenant,
      owner,
      ...(dateH.value !== undefined ? { requestDate: dateH.value } : {}),
      ...(runAt ? { runAt } : {}),
      fileUpdateMode,
      fileUpdateModeGiven: modeH.value !== undefined,
      priority: body.metadata.priority,
      storages: body.metadata.storages,
      ...(body.metadata.acknowledgedRecipient ? { acknowledgedRecipient: body.metadata.acknowledgedRecipient } : {}),
      urn: f.urn,
      ...(f.properties ? { properties: f.properties } : {}),
      ...(f.files ? { files: f.files } : {}),
      bodySha256,
      bodyText: textBody,
    },
  };
}

/** The answer to a request: one FeatureRequestEvent per state change. */
export interface RequestEventMessage {
  exchange: string;
  headers: Record<string, string>;
  body: string;
}

export function requestEvent(a: { requestId: string; tenant?: string; urn?: string | null; owner?: string | null; state: RequestState; errors: readonly string[] }): RequestEventMessage {
  // written out field by field (no spread): two answers for every request received
  const headers: Record<string, string> = {};
  if (a.tenant) headers[REGARDS.headers.tenant] = a.tenant;
  headers[REGARDS.headers.requestId] = a.requestId;
  return {
    exchange: REGARDS.requestEventExchange,
    headers,
    body: JSON.stringify({ requestId: a.requestId, type: 'PATCH', urn: a.urn ?? null, requestOwner: a.owner ?? null, state: a.state, errors: a.errors }),
  };
}

/** The properties Fonds puts on every message it publishes. */
export const PUBLISH_PROPERTIES = { content_type: 'application/json', content_encoding: 'UTF-8', delivery_mode: 2 } as const;

/**
 * The patch request Fonds sends for what an archivist composed, exactly as it goes on the wire.
 * Its problems are found by reading it back with the parser a catalogue uses (the tenant checked
 * is the one given: the remote catalogue's tenants are not known here).
 */
export function composePatch(input: ParsedPatchInput, ctx: { owner: string; vhost: string; maxBytes: number; appId: string }): ComposedPatch {
  const requestId = input.requestId ?? randomUUID();
  const owner = input.requestOwner ?? ctx.owner;
  const H = REGARDS.headers;
  const headers: Record<string, string> = {
    [H.tenant]: input.tenant,
    [H.requestId]: requestId,
    [H.requestOwner]: owner,
    ...(input.requestDate ? { [H.requestDate]: input.requestDate } : {}),
    ...(input.fileUpdateMode ? { [H.fileUpdateMode]: input.fileUpdateMode } : {}),
  };
  const body = JSON.stringify(
    {
      metadata: {
        storages: input.storages,
        priority: input.priority,
        ...(input.acknowledgedRecipient ? { acknowledgedRecipient: input.acknowledgedRecipient } : {}),
      },
      feature: {
        urn: input.urn,
        ...(input.files ? { files: input.files } : {}),
        ...(input.properties ? { properties: input.properties } : {}),
      },
    },
    null,
    2,
  );
  const properties = { ...PUBLISH_PROPERTIES, app_id: ctx.appId };
  const problems: string[] = [];
  if (!input.properties && !input.files && !input.acknowledgedRecipient) problems.push('feature: nothing to patch (give properties, files or an acknowledged recipient)');
  const back = parsePatchRequest(
    { content: Buffer.from(body, 'utf8'), properties: { headers, contentType: properties.content_type, contentEncoding: properties.content_encoding } },
    { tenants: [input.tenant], maxBytes: ctx.maxBytes },
  );
  if (back.kind === 'denied') problems.push(...back.errors);
  if (back.kind === 'unreadable') problems.push(back.reason);
  return { requestId, vhost: ctx.vhost, exchange: REGARDS.updateRequestExchange, routingKey: '', properties, headers, body, problems };
}

export type ParsedRequestEvent =
  | { kind: 'valid'; requestId: string; state: RequestState; errors: string[]; urn?: string; owner?: string; type?: string }
  | { kind: 'unreadable'; reason: string; bodySha256: string };

/** Reads a FeatureRequestEvent (an answer from a remote catalogue). Never throws. */
export function parseRequestEvent(msg: WireMessage, maxBytes: number): ParsedRequestEvent {
  const bodySha256 = sha256(msg.content);
  if (msg.content.length > maxBytes) return { kind: 'unreadable', reason: `body: ${msg.content.length} bytes, over the limit of ${maxBytes} bytes`, bodySha256 };
  let json: unknown;
  try {
    json = JSON.parse(decodeUtf8(msg.content));
  } catch (err) {
    return { kind: 'unreadable', reason: `body: not UTF-8 JSON (${(err as Error).message})`, bodySha256 };
  }
  if (typeof json !== 'object' || json === null || Array.isArray(json)) return { kind: 'unreadable', reason: 'body: not a JSON object', bodySha256 };
  const o = json as Record<string, unknown>;
  const headerId = headerString(msg.properties.headers ?? {}, REGARDS.headers.requestId).value;
  const requestId = typeof o.requestId === 'string' && o.requestId ? o.requestId : headerId;
  if (!requestId) return { kind: 'unreadable', reason: 'requestId: missing (in the body and in the regards.request.id header)', bodySha256 };
  if (typeof o.state !== 'string' || !(RequestStates as readonly string[]).includes(o.state)) {
    return { kind: 'unreadable', reason: `state: ${JSON.stringify(o.state)?.slice(0, 40)} is not one of ${RequestStates.join(', ')}`, bodySha256 };
  }
  const errors = Array.isArray(o.errors) ? o.errors.map((e) => (typeof e === 'string' ? e : JSON.stringify(e))) : [];
  return {
    kind: 'valid',
    requestId,
    state: o.state as RequestState,
    errors,
    ...(typeof o.urn === 'string' ? { urn: o.urn } : {}),
    ...(typeof o.requestOwner === 'string' ? { owner: o.requestOwner } : {}),
    ...(typeof o.type === 'string' ? { type: o.type } : {}),
  };
}

/** Header values made JSON-safe for storage and display (bytes as UTF-8 or base64, big integers as text). */
export function jsonSafe(value: unknown, depth = 0): unknown {
  if (depth > 20) return '…';
  if (typeof value === 'bigint') return value.toString();
  if (Buffer.isBuffer(value)) {
    try {
      return decodeUtf8(value);
    } catch {
      return { base64: value.toString('base64') };
    }
  }
  if (value instanceof Date) return value.toISOString();
  if (Array.isArray(value)) return value.slice(0, 100).map((v) => jsonSafe(v, depth + 1));
  if (value && typeof value === 'object') {
    const out: Record<string, unknown> = {};
    let n = 0;
    for (const k in value) {
      if (!Object.prototype.hasOwnProperty.call(value, k)) continue;
      if (++n > 200) break;
      putJsonKey(out, k, jsonSafe((value as Record<string, unknown>)[k], depth + 1));
    }
    return out;
  }
  if (typeof value === 'string') return value.length > 4096 ? `${value.slice(0, 4096)}…` : value;
  return value;
}
