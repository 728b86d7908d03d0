/**
 * Dissemination: products sent to recipients and followed until acknowledged (REGARDS notifier and
 * ingest semantics, seed 000), and the National Library of Norway's dissemination contract (seed 004).
 *
 * This file is the contract shared by the dissemination capability (which writes the events) and
 * the reports capability (which reads them): the event types and payloads below are the single
 * source of truth for a report, so change them only together with `reports/`.
 */
import { z } from 'zod';

/** Names fixed by REGARDS. */
export const DISSEMINATION_AMQP = {
  /** where external systems (or another REGARDS) acknowledge a dissemination: headers regards.tenant; body {urn, recipientLabel} */
  ackExchange: 'regards.broadcast.fr.cnes.regards.modules.ingest.dto.request.event.DisseminationAckEvent',
} as const;

export const RecipientKinds = ['amqp', 'webhook', 's3', 'folder'] as const;
export type RecipientKind = (typeof RecipientKinds)[number];

/**
 * One (product, recipient) dissemination:
 * PENDING (requested, not yet delivered; retried on failure) → WAITING_ACK (delivered, ackRequired and
 * no ack yet: REGARDS' "En attente de retour de notification") → DONE (acknowledged, or delivered
 * without ackRequired: then ackDate = requestDate). FAILED when the delivery gave up (the last error
 * is kept; a retry makes it PENDING again).
 */
export const DisseminationStatuses = ['PENDING', 'WAITING_ACK', 'DONE', 'FAILED'] as const;
export type DisseminationStatus = (typeof DisseminationStatuses)[number];

/** A product's dissemination status over all its recipients (REGARDS: NONE / PENDING / DONE, plus waiting for the return). */
export const ProductDisseminationStatuses = ['NONE', 'PENDING', 'WAITING_ACK', 'DONE'] as const;
export type ProductDisseminationStatus = (typeof ProductDisseminationStatuses)[number];

/** How an acknowledgement arrived. `auto`: the recipient requires none (ackDate = requestDate). */
export const AckSources = ['amqp', 'patch', 'webhook', 'manual', 'auto'] as const;
export type AckSource = (typeof AckSources)[number];

/** Outcome of the fixity check at the destination (folder and S3 recipients copy files). */
export const FixityOutcomes = ['verified', 'failed', 'not-applicable'] as const;
export type FixityOutcome = (typeof FixityOutcomes)[number];

/**
 * Events of kind `dissemination`, objectId = the dissemination id. Every payload carries `urn`,
 * `recipientLabel` and `tenant`, so a report needs no other table.
 */
export const DisseminationEventTypes = {
  /** payload: urn, recipientLabel, tenant, productName, blocking, ackRequired, recipientKind */
  requested: 'dissemination.requested',
  /** payload: urn, recipientLabel, tenant, attempt, bytes, files, fixity (FixityOutcome) */
  sent: 'dissemination.sent',
  /** payload: urn, recipientLabel, tenant, attempt, error, final (true: FAILED, no more automatic retry) */
  failed: 'dissemination.failed',
  /** payload: urn, recipientLabel, tenant, attempt (the archivist or the retry policy queued it again) */
  retried: 'dissemination.retried',
  /** payload: urn, recipientLabel, tenant, via (AckSource), and the message or request id when there is one */
  acknowledged: 'dissemination.acknowledged',
} as const;

/**
 * An acknowledgement that matched no dissemination (unknown urn or recipient, nothing waiting, bad
 * signature): logged, shown on the dissemination screen, never fatal. Kind `dissemination`, objectId
 * `.unmatched-acks`; payload: urn, recipientLabel, tenant (as received, '' when absent), via, reason,
 * and the message or request id when there is one. Not one of DisseminationEventTypes: a report skips it.
 */
export const DISSEMINATION_UNMATCHED = { objectId: '.unmatched-acks', type: 'dissemination.ack-unmatched' } as const;

/**
 * A folder or S3 recipient whose copy, delivered before a restart or a retry, no longer matched its
 * checksums when checked again at the destination: it is copied again. Kind `dissemination`, objectId =
 * the dissemination id; payload: urn, recipientLabel, tenant, path, reason.
 */
export const DISSEMINATION_DESTINATION_DAMAGED = 'dissemination.destination-damaged';

/** What a secret reads as when a recipient is returned; saving it back unchanged keeps the stored secret. */
export const SECRET_MASK = '********';

/** The header carrying a webhook body's signature: `sha256=<hex HMAC-SHA256 of the raw body with the shared secret>`. */
export const SIGNATURE_HEADER = 'X-Fonds-Signature';

/**
 * What an AMQP or webhook recipient receives, as REGARDS' RabbitMQSender notifier plugin sends it:
 * `{payload: <the product's GeoJSON feature>, metadata: {action: 'NOTIFIED', sessionOwner, session}}`.
 * AMQP headers: regards.tenant, regards.request.id (the dissemination id); content_type application/json.
 */
export interface DisseminationMessage {
  payload: {
    type: 'Feature';
    /** the provider id */
    id: string;
    urn: string;
    entityType: 'DATA' | 'DATASET' | 'COLLECTION';
    geometry: unknown;
    properties: Record<string, unknown>;
    files: unknown[];
    last: boolean;
  };
  metadata: { action: 'NOTIFIED'; sessionOwner: string; session: string };
}

const label = z.string().trim().min(1).max(128);

export const recipientSettingsSchema = z.discriminatedUnion('kind', [
  z.object({
    kind: z.literal('amqp'),
    /** exchange the feature JSON is published to (fanout or direct; declared durable) */
    exchange: z.string().min(1).max(255),
    /** optional queue bound to the exchange, declared durable */
    queue: z.string().max(255).default(''),
    /** routing key for messages the recipient dead-letters */
    deadLetterRoutingKey: z.string().max(255).default(''),
  }),
  z.object({
    kind: z.literal('webhook'),
    url: z.url({ protocol: /^https?$/ }),
    /** shared secret: the body is signed with HMAC-SHA256, header X-Fonds-Signature: sha256=<hex> */
    secret: z.union([z.literal('********'), z.string().min(16).max(512)]),
    maxAttempts: z.number().int().min(1).max(50).default(8),
  }),
  z.object({
    kind: z.literal('s3'),
    endpoint: z.string().max(500).default(''),
    region: z.string().max(64).default('us-east-1'),
    bucket: z.string().min(3).max(63),
    prefix: z.string().max(500).default(''),
    accessKeyId: z.string().max(256).default(''),
    secretAccessKey: z.string().max(256).default(''),
    forcePathStyle: z.boolean().default(true),
  }),
  z.object({
    kind: z.literal('folder'),
    /** absolute path of a local or network folder */
    path: z.string().min(1).max(4096),
  }),
]);
export type RecipientSettings = z.infer<typeof recipientSettingsSchema>;

export const recipientInputSchema = z.object({
  recipientLabel: label,
  description: z.string().max(2000).default(''),
  directNotificationEnabled: z.boolean().default(true),
  ackRequired: z.boolean().default(false),
  blockingRequired: z.boolean().default(false),
  settings: recipientSettingsSchema,
});
export type RecipientInput = z.input<typeof recipientInputSchema>;

export interface Recipient {
  recipientLabel: string;
  description: string;
  kind: RecipientKind;
  directNotificationEnabled: boolean;
  ackRequired: boolean;
  blockingRequired: boolean;
  /** secrets (webhook secret, S3 secret key) are never returned: they read '********' */
  settings: RecipientSettings;
  created: string;
  updated: string;
}

/** REGARDS' record of one recipient on a product: {label, requestDate, ackDate, blocking}. */
export interface RecipientRecord {
  label: string;
  requestDate: string;
  ackDate?: string;
  blocking: boolean;
}

export interface Dissemination {
  _id: string;
  urn: string;
  tenant: string;
  productName: string;
  recipientLabel: string;
  status: DisseminationStatus;
  blocking: boolean;
  ackRequired: boolean;
  requestDate: string;
  sentDate?: string;
  ackDate?: string;
  ackVia?: AckSource;
  attempts: number;
  lastError?: string;
  bytes: number;
  files: number;
  fixity?: FixityOutcome;
}

/**
 * One row of a dissemination report, built from the event log alone. Dates are ISO 8601 (UTC).
 * `status` is the dissemination's status after the last event of the period.
 */
export interface ReportRow {
  urn: string;
  productName: string;
  tenant: string;
  recipientLabel: string;
  requestedAt: string;
  sentAt: string | null;
  acknowledgedAt: string | null;
  /** how the acknowledgement came ('auto': none required, acknowledgedAt = requestedAt); added for reports */
  ackVia: AckSource | null;
  status: DisseminationStatus;
  bytes: number;
  files: number;
  fixity: FixityOutcome | null;
  attempts: number;
  lastError: string | null;
}
