/**
 * Products (REGARDS "features") and their patch requests, wire-exact with REGARDS rs-fem (seed 001).
 *
 * A patch request travels on the fanout exchange FeatureUpdateRequestEvent with the headers below
 * and a JSON body `{metadata, feature}`; every change of its state is answered on
 * FeatureRequestEvent with `{requestId, type: "PATCH", urn, requestOwner, state, errors}`:
 * DENIED, or GRANTED then SUCCESS or ERROR. The schemas here are the single description of that
 * body: the service parses incoming requests with them and validates the ones Fonds composes.
 */
import { z } from 'zod';
import { daysInMonth } from './calendar';

/** Names fixed by REGARDS: exchanges, virtual host, headers. */
export const REGARDS = {
  /** where patch requests are published (fanout, durable) */
  updateRequestExchange: 'regards.broadcast.fr.cnes.regards.modules.feature.dto.event.in.FeatureUpdateRequestEvent',
  /** where request states are answered (fanout, durable) */
  requestEventExchange: 'regards.broadcast.fr.cnes.regards.modules.feature.dto.event.out.FeatureRequestEvent',
  defaultVhost: 'regards.multitenant.manager',
  headers: {
    tenant: 'regards.tenant',
    requestId: 'regards.request.id',
    requestDate: 'regards.request.date',
    requestOwner: 'regards.request.owner',
    fileUpdateMode: 'regards.request.file_update_mode',
  },
  maxRequestIdLength: 36,
  maxRequestOwnerLength: 128,
} as const;

export const PriorityLevels = ['HIGH', 'NORMAL', 'LOW'] as const;
export type PriorityLevel = (typeof PriorityLevels)[number];

/** REGARDS' default when the header is absent is APPEND. */
export const FileUpdateModes = ['APPEND', 'REPLACE'] as const;
export type FileUpdateMode = (typeof FileUpdateModes)[number];

/** The states REGARDS answers with. */
export const RequestStates = ['DENIED', 'GRANTED', 'SUCCESS', 'ERROR'] as const;
export type RequestState = (typeof RequestStates)[number];

/**
 * A patch request Fonds sends goes QUEUED (in the outbox) -> SENT (the broker confirmed it) ->
 * then the remote states. CANCELLED when the archivist cancelled it in the outbox.
 */
export const PatchStates = ['QUEUED', 'SENT', ...RequestStates, 'CANCELLED'] as const;
export type PatchState = (typeof PatchStates)[number];

/** `received`: Fonds is the catalogue; `sent`: Fonds is the client of a remote REGARDS. */
export const PatchDirections = ['received', 'sent'] as const;
export type PatchDirection = (typeof PatchDirections)[number];

/** REGARDS data types of a feature file. */
export const DataTypes = ['RAWDATA', 'QUICKLOOK_SD', 'QUICKLOOK_MD', 'QUICKLOOK_HD', 'DOCUMENT', 'THUMBNAIL', 'OTHER', 'AIP', 'DESCRIPTION'] as const;
export type DataType = (typeof DataTypes)[number];

/** Checksum algorithms REGARDS handles (Java MessageDigest names). */
export const ChecksumAlgorithms = ['MD5', 'SHA-1', 'SHA-256', 'SHA-384', 'SHA-512'] as const;

/** URN:FEATURE:<DATA|DATASET|COLLECTION>:<tenant>:<uuid>:V<version> */
export const FEATURE_URN = /^URN:FEATURE:(DATA|DATASET|COLLECTION):([^:\s]{1,128}):([0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}):V([1-9]\d{0,2})$/;

/** The URN of a data product of a tenant. */
export function productUrn(tenant: string, uuid: string, version = 1): string {
  return `URN:FEATURE:DATA:${tenant}:${uuid}:V${version}`;
}

/** Properties nested deeper than this are refused (they would only exhaust the stack). */
export const MAX_PROPERTY_DEPTH = 64;

/**
 * Writes `key` as an own property of a JSON object built from untrusted input: `__proto__` stays
 * a plain key (as JSON.parse makes it) and never reaches a prototype; other keys are a plain write.
 */
export function putJsonKey(o: Record<string, unknown>, key: string, value: unknown): void {
  if (key === '__proto__') Object.defineProperty(o, key, { value, enumerable: true, writable: true, configurable: true });
  else o[key] = value;
}

/** The deepest nesting of objects and arrays in a JSON value (0 for a scalar); past MAX_PROPERTY_DEPTH it stops counting. */
export function jsonDepth(value: unknown): number {
  // recursion stops one level past the limit, so a hostile depth cannot exhaust the stack; no
  // allocation on the way (it runs on every patch, over the whole product)
  const depth = (v: unknown, d: number): number => {
    if (v === null || typeof v !== 'object') return d;
    let max = d + 1;
    if (max > MAX_PROPERTY_DEPTH) return max;
    if (Array.isArray(v)) {
      for (const child of v) {
        const m = depth(child, d + 1);
        if (m > max && (max = m) > MAX_PROPERTY_DEPTH) return max;
      }
    } else {
      for (const k in v) {
        if (!Object.prototype.hasOwnProperty.call(v, k)) continue;
        const m = depth((v as Record<string, unknown>)[k], d + 1);
        if (m > max && (max = m) > MAX_PROPERTY_DEPTH) return max;
      }
    }
    return max;
  };
  return depth(value, 0);
}

/** A message for a value of the wrong kind, and 'missing' when there is none. */
const expected = (what: string) => ({ error: (issue: { input?: unknown }) => (issue.input === undefined ? 'missing' : what) });
const text = (max: number) => z.string(expected('must be a string')).min(1, 'must not be empty').max(max, `longer than ${max} characters`);

export const featureUrnSchema = z
  .string(expected('must be a string'))
  .max(300, 'longer than 300 characters')
  .regex(FEATURE_URN, 'not a feature URN (URN:FEATURE:DATA:<tenant>:<uuid>:V<n>)');

export const storageMetadataSchema = z.looseObject(
  {
    pluginBusinessId: text(256),
    targetTypes: z.array(z.enum(DataTypes)).max(20).optional(),
    storePath: z.string().max(4096).optional(),
  },
  expected('must be an object'),
);
export type StorageMetadata = z.infer<typeof storageMetadataSchema>;

export const featureFileLocationSchema = z.looseObject(
  {
    /** may be absent for a file still to be stored */
    storage: z.string().max(256).nullish(),
    url: text(8192),
  },
  expected('must be an object'),
);

export const featureFileAttributesSchema = z.looseObject(
  {
    dataType: z.enum(DataTypes, expected(`one of ${DataTypes.join(', ')}`)),
    mimeType: text(255).regex(/^[\w.+-]+\/[\w.+-]+(\s*;.*)?$/, 'not a MIME type (type/subtype)'),
    filename: text(1024),
    filesize: z.number(expected('must be a number')).int('not a whole number').min(0, 'negative').max(Number.MAX_SAFE_INTEGER),
    algorithm: z.string(expected('must be a string')).refine((a) => (ChecksumAlgorithms as readonly string[]).includes(a.toUpperCase()), `one of ${ChecksumAlgorithms.join(', ')}`),
    checksum: text(512),
    crc32: z.string().max(16).nullish(),
  },
  expected('must be an object'),
);

export const featureFileSchema = z.looseObject(
  {
    locations: z.array(featureFileLocationSchema, expected('must be a list')).min(1, 'at least one location').max(100),
    attributes: featureFileAttributesSchema,
  },
  expected('must be an object'),
);
export type FeatureFile = z.infer<typeof featureFileSchema>;

/** A JSON object of properties, not nested past MAX_PROPERTY_DEPTH. */
export const propertiesSchema = z
  .record(z.string(), z.unknown(), expected('must be a JSON object'))
  .refine((p) => jsonDepth(p) <= MAX_PROPERTY_DEPTH, `nested deeper than ${MAX_PROPERTY_DEPTH} levels`);

export const featureMetadataSchema = z.looseObject(
  {
    storages: z.array(storageMetadataSchema, expected('must be a list (it may be empty)')).max(100),
    priority: z.enum(PriorityLevels, expected('one of HIGH, NORMAL, LOW')).default('NORMAL'),
    acknowledgedRecipient: z.string().min(1, 'must not be empty').max(256).nullish(),
  },
  expected('must be an object'),
);

/** The body of a FeatureUpdateRequestEvent. Unknown fields (geometry, model, id…) are tolerated and kept out of the patch. */
export const patchBodySchema = z.object(
  {
    metadata: featureMetadataSchema,
    feature: z.looseObject(
      {
        urn: featureUrnSchema,
        properties: propertiesSchema.nullish(),
        files: z.array(featureFileSchema).max(10_000).nullish(),
      },
      expected('must be an object'),
    ),
  },
  expected('must be a JSON object'),
);
export type PatchBody = z.infer<typeof patchBodySchema>;

/** What an archivist composes: the patch request Fonds sends to a remote REGARDS. */
export const patchInputSchema = z.object({
  // trimmed as a catalogue reads them: ' abc ' would be answered as 'abc' and never matched
  tenant: text(128).trim().pipe(text(128)),
  urn: featureUrnSchema,
  properties: propertiesSchema.optional(),
  files: z.array(featureFileSchema).max(10_000).optional(),
  /** sent as regards.request.file_update_mode; absent = the header is not sent (REGARDS then appends) */
  fileUpdateMode: z.enum(FileUpdateModes).optional(),
  priority: z.enum(PriorityLevels).default('NORMAL'),
  /** ISO 8601; in the future it delays the processing. Absent = the header is not sent (now). */
  requestDate: z
    .string()
    .max(40)
    .refine((s) => isIsoDateTime(s), 'not an ISO 8601 date-time (2019-07-04T01:03:00 or 2019-07-04T01:03:00Z)')
    .optional(),
  acknowledgedRecipient: z.string().min(1).max(256).optional(),
  storages: z.array(storageMetadataSchema).max(100).default([]),
  /** default: the regardsRequestOwner setting */
  requestOwner: text(REGARDS.maxRequestOwnerLength).optional(),
  /** default: a new UUID; give the one `patches.compose` answered to send exactly what was shown */
  requestId: text(REGARDS.maxRequestIdLength).trim().pipe(text(REGARDS.maxRequestIdLength)).optional(),
});
export type PatchInput = z.input<typeof patchInputSchema>;
export type ParsedPatchInput = z.output<typeof patchInputSchema>;

const ISO_DATE_TIME = /^(\d{4})-(\d{2})-(\d{2})(?:[T ](\d{2}):(\d{2})(?::(\d{2})(?:[.,](\d{1,9}))?)?)?(Z|[+-]\d{2}(?::?\d{2})?)?$/;

export function isIsoDateTime(s: string): boolean {
  return parseIsoDateTime(s) !== undefined;
}

/**
 * An ISO 8601 date or date-time as REGARDS reads it: without an offset it is UTC (the seed's
 * `2019-07-04T01:03:00`), fractions past milliseconds are dropped. Undefined when not a date.
 */
export function parseIsoDateTime(s: string): Date | undefined {
  const m = ISO_DATE_TIME.exec(s.trim());
  if (!m) return undefined;
  const [, y, mo, d, h = '00', mi = '00', sec = '00', frac = '', zone] = m;
  let offset = zone ?? 'Z';
  if (offset !== 'Z') offset = offset.length === 3 ? `${offset}:00` : offset.includes(':') ? offset : `${offset.slice(0, 3)}:${offset.slice(3)}`;
  const ms = frac ? `.${frac.slice(0, 3).padEnd(3, '0')}` : '';
  // Date rolls 2019-02-31 over to 2019-03-03 (and 2019-02-29 to March 1st): refuse what does not
  // exist, as REGARDS (java.time) does, rather than run the request on another day than asked
  const [year, month, day] = [Number(y), Number(mo), Number(d)];
  if (month < 1 || month > 12 || day < 1 || day > daysInMonth(year, month)) return undefined;
  if (Number(h) > 23 || Number(mi) > 59 || Number(sec) > 59) return undefined;
  const date = new Date(`${y}-${mo}-${d}T${h}:${mi}:${sec}${ms}${offset}`);
  if (Number.isNaN(date.getTime())) return undefined;
  return date;
}

export interface Product {
  urn: string;
  tenant: string;
  /** REGARDS' feature id (the provider's own identifier) */
  providerId: string;
  version: number;
  /** the stored data this product publishes, when it came from one */
  storedDataId?: string;
  properties: Record<string, unknown>;
  files: FeatureFile[];
  /** recipients that acknowledged a dissemination of this product, by label */
  acknowledgedBy: string[];
  createdAt: string;
  updatedAt: string;
  patches: { received: number; sent: number };
}

/** A product in a list: everything but its properties and files. */
export interface ProductSummary {
  urn: string;
  tenant: string;
  providerId: string;
  version: number;
  storedDataId?: string;
  files: number;
  createdAt: string;
  updatedAt: string;
  lastPatch?: { requestId: string; direction: PatchDirection; state: PatchState; at: string };
}

export interface PatchRequest {
  requestId: string;
  direction: PatchDirection;
  tenant: string;
  owner: string;
  /** absent when the request could not name one */
  urn?: string;
  state: PatchState;
  /** every reason, REGARDS-style (a DENIED or ERROR answer's `errors`) */
  errors: string[];
  priority: PriorityLevel;
  fileUpdateMode?: FileUpdateMode;
  /** the regards.request.date header, when there was one */
  requestDate?: string;
  acknowledgedRecipient?: string;
  createdAt: string;
  updatedAt: string;
  /** sent requests: the outbox message and its status */
  outboxId?: number;
  outboxStatus?: 'pending' | 'sending' | 'sent' | 'cancelled' | 'failed';
  outboxError?: string;
}

/** Exactly what a patch request puts on the wire. */
export interface ComposedPatch {
  requestId: string;
  vhost: string;
  exchange: string;
  routingKey: string;
  /** the AMQP message properties */
  properties: { content_type: string; content_encoding: string; delivery_mode: number; app_id: string };
  headers: Record<string, string>;
  /** the body, byte for byte (UTF-8) */
  body: string;
  /** why it would be refused; empty when it can be sent */
  problems: string[];
}

export type AmqpState = 'not-configured' | 'connected' | 'connecting' | 'disconnected';

export interface AmqpStatus {
  state: AmqpState;
  /** the broker URL without its password */
  url: string;
  vhost: string;
  lastError?: string;
  /** since when the state holds */
  since: string;
  /** connections opened since the start (1 = never reconnected) */
  connections: number;
  nextAttemptAt?: string;
  /** Fonds consumes patch requests as a catalogue */
  catalogue: boolean;
  tenants: string[];
  requestOwner: string;
  queues: { requests?: string; responses: string; deadLetter: string };
  /** AMQP messages waiting in the outbox */
  outboxWaiting: number;
  deadLetters: number;
  /** what people should know about the broker side (a queue used as an earlier declaration left it) */
  notes?: string[];
}

/** How much of a dead letter's body is kept for people; the whole message stays in the dead-letter queue. */
export const DEAD_LETTER_PREVIEW_BYTES = 64 * 1024;

/**
 * A message that could not be read (no readable request id: nobody to answer), or whose
 * processing failed twice: kept for people, routed to the dead-letter queue.
 */
export interface DeadLetter {
  id: number;
  queue: string;
  receivedAt: string;
  reason: string;
  headers: Record<string, unknown>;
  properties: Record<string, unknown>;
  /** the start of the body (DEAD_LETTER_PREVIEW_BYTES at most) as text (UTF-8, replacement characters where it is not) */
  bodyPreview: string;
  bodyBytes: number;
}
