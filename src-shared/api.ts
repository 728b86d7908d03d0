/**
 * The contract. Every command (name, zod input schema, output type) and every pushed event is
 * defined here and nowhere else; the service implements it, the IPC and HTTP transports expose it,
 * the renderer client is typed by it. A command that is not here does not exist.
 *
 * Each capability has its own section below; keep commands named `<capability>.<verb>`.
 */
import { z } from 'zod';
import { storedDataReadOnlyFields, type Execution, type ExecutionFile, type Processing, type StoredData, type StoredFile } from './domain/execution';
import type { Finding, Upload, UploadFile, Progress } from './domain/upload';
import {
  DisseminationStatuses,
  recipientInputSchema,
  type Dissemination,
  type ProductDisseminationStatus,
  type Recipient,
  type RecipientRecord,
} from './domain/dissemination';
import {
  PatchDirections,
  PatchStates,
  featureFileSchema,
  featureUrnSchema,
  patchInputSchema,
  propertiesSchema,
  type AmqpStatus,
  type ComposedPatch,
  type DeadLetter,
  type PatchRequest,
  type Product,
  type ProductSummary,
} from './domain/product';
import { NbOrderStates, NbStatuses, nbPrioritySchema, NB_PRIORITY_DEFAULT, type NbDissemination, type NbLink, type NbOrder, type NbOrderLink, type NbServedDissemination } from './domain/nb';
import { ReportFormats, ReportLangs, reportFiltersSchema, type ReportExport, type ReportPreview } from './domain/report';
import {
  MessageStates,
  MessageStatuses,
  MessageTypes,
  type Message,
  type MessageDetail,
  type MessageFacets,
  type PurgeReport,
  type PurgeRules,
  type RescanSummary,
} from './domain/message';

/** Marks a command: its output type (compile-time only), then its input schema. */
function command<O>() {
  return <I extends z.ZodType>(input: I, summary: string): CommandSpec<I, O> => ({ input, summary }) as CommandSpec<I, O>;
}
export interface CommandSpec<I extends z.ZodType = z.ZodType, O = unknown> {
  input: I;
  summary: string;
  /** phantom: never set at run time */
  readonly __output?: O;
}

const id = z.string().min(1).max(200);
const page = { offset: z.number().int().min(0).default(0), limit: z.number().int().min(1).max(1000).default(100) };
/** A path on the machine that runs the service. NUL bytes are refused here, before any file system call. */
const localPath = z
  .string()
  .min(1)
  .max(4096)
  .refine((p) => !p.includes('\0'), 'path contains a NUL byte');
/** A message id is a folder name of the message directory; the service checks it stays inside. */
const messageId = z
  .string()
  .min(1)
  .max(255)
  .refine((p) => !p.includes('\0'), 'message id contains a NUL byte');
/** An ISO 8601 date or date-time. */
const isoDate = z
  .string()
  .max(40)
  .refine((s) => /^\d{4}-\d{2}-\d{2}/.test(s) && !Number.isNaN(Date.parse(s)), 'not an ISO 8601 date');
const outboxId = z.number().int().min(1);
/** A field the service sets: named in a patch, it is refused (every one of them, each by name), never ignored. */
const readOnly = z.never({ error: 'read-only (Fonds sets it)' }).optional();

export interface Page<T> {
  items: T[];
  total: number;
  offset: number;
}

/** One row of the event log, as pushed to subscribers and returned by timelines. */
export const ObjectKinds = [
  'upload',
  'execution',
  'stored_data',
  'product',
  'patch_request',
  'dissemination',
  'message',
  'job',
  'bag',
  'report',
  'nb_dissemination',
  'nb_order',
] as const;
export type ObjectKind = (typeof ObjectKinds)[number];

export const eventSchema = z.object({
  seq: z.number().int(),
  kind: z.enum(ObjectKinds),
  objectId: z.string(),
  type: z.string(),
  time: z.string(),
  payload: z.record(z.string(), z.unknown()),
});
export type FondsEvent = z.infer<typeof eventSchema>;

/** Transient progress, pushed often and not stored row by row (the latest is kept on the object). */
export const progressEventSchema = z.object({
  kind: z.enum(ObjectKinds),
  objectId: z.string(),
  progress: z.object({
    files: z.number(),
    bytes: z.number(),
    totalFiles: z.number().optional(),
    totalBytes: z.number().optional(),
    rate: z.number().optional(),
    eta: z.number().optional(),
  }),
});
export type ProgressEvent = z.infer<typeof progressEventSchema>;

/** What subscribers receive: a stored event, or a transient progress update. */
export type Pushed = { channel: 'event'; event: FondsEvent } | { channel: 'progress'; progress: ProgressEvent };

export interface AppInfo {
  version: string;
  dataDir: string;
  transport: 'ipc' | 'http';
  amqp: 'not-configured' | 'connected' | 'connecting' | 'disconnected';
  storage: 'local' | 's3';
  outboxPending: number;
}

export interface BagValidation {
  path: string;
  valid: boolean;
  errors: Array<{ file: string; rule: string; message: string }>;
  warnings: Array<{ file: string; rule: string; message: string }>;
  payloadFiles: number;
  payloadBytes: number;
  version?: string;
  algorithms: string[];
}

export interface OutboxItem {
  id: number;
  channel: string;
  destination: string;
  headers: Record<string, unknown>;
  body: string;
  status: 'pending' | 'sending' | 'sent' | 'cancelled' | 'failed';
  attempts: number;
  lastError?: string;
  createdAt: string;
  nextAttemptAt: string;
  sentAt?: string;
  objectKind?: string;
  objectId?: string;
}

export const commands = {
  // ---- app --------------------------------------------------------------------------------
  'app.info': command<AppInfo>()(z.object({}), 'Version, data directory and connection states.'),

  // ---- intake: uploads, checks, bags ---------------------------------------------------------
  'uploads.list': command<Page<Upload>>()(z.object({ status: z.string().optional(), ...page }), 'Uploads, newest first.'),
  'uploads.get': command<Upload>()(z.object({ id }), 'One upload with its checks.'),
  'uploads.create': command<Upload>()(
    z.object({ name: z.string().min(1).max(500), description: z.string().max(5000).default(''), srs: z.string().max(100).optional() }),
    'An empty OPEN upload to push files into (HTTP), then close.',
  ),
  'uploads.ingestPaths': command<Upload>()(
    z.object({
      paths: z.array(localPath).min(1).max(10_000),
      name: z.string().min(1).max(500).optional(),
      description: z.string().max(5000).default(''),
    }),
    'An upload of dropped files, folders or bags, read in place, checked at once.',
  ),
  'uploads.close': command<Upload>()(z.object({ id }), 'Close an OPEN upload and run its checks.'),
  'uploads.recheck': command<Upload>()(z.object({ id }), 'Run the checks again.'),
  'uploads.cancel': command<Upload>()(z.object({ id }), 'Stop a running check.'),
  'uploads.files': command<Page<UploadFile>>()(z.object({ id, ...page }), 'The files of an upload with their checksums.'),
  'uploads.findings': command<Page<Finding>>()(
    z.object({ id, check: z.enum(['archive', 'standard']).optional(), ...page }),
    'Per-file check results.',
  ),
  'uploads.timeline': command<Page<FondsEvent>>()(z.object({ id, ...page }), 'Every event of an upload, newest first.'),
  'bags.validate': command<BagValidation>()(z.object({ path: localPath }), 'Validate a BagIt bag (RFC 8493) and report every problem.'),
  'bags.create': command<{ destination: string; files: number; bytes: number }>()(
    z.object({ source: localPath, destination: localPath }),
    'Create a BagIt 1.0 bag (sha512 + md5) from a folder.',
  ),

  // ---- processing: processings, executions, stored data (IGN Entrepot, seed 002) -------------
  'processings.list': command<Processing[]>()(z.object({}), 'The processing catalog.'),
  'processings.get': command<Processing>()(z.object({ id }), 'One processing with its required checks.'),
  'executions.create': command<Execution>()(
    z.object({
      processing: id,
      inputs: z.object({ upload: z.array(id).min(1).max(100) }),
      output: z.object({
        stored_data: z.union([
          z.object({ name: z.string().min(1).max(500), storage_tags: z.array(z.string().max(100)).max(20).default([]) }),
          z.object({ _id: id }),
        ]),
      }),
      parameters: z.record(z.string(), z.unknown()).default({}),
    }),
    'An execution of a processing: uploads in, a new or existing stored data out.',
  ),
  'executions.launch': command<Execution>()(z.object({ id }), 'Launch a CREATED execution (its inputs must have passed the required checks).'),
  'executions.get': command<Execution>()(z.object({ id }), 'One execution.'),
  'executions.list': command<Page<Execution>>()(z.object({ status: z.string().optional(), ...page }), 'Executions, newest first.'),
  'executions.cancel': command<Execution>()(z.object({ id }), 'Stop a waiting or running execution.'),
  'executions.retryFailed': command<Execution>()(z.object({ id }), 'Copy again the files that failed.'),
  'executions.files': command<Page<ExecutionFile>>()(
    z.object({ id, status: z.enum(['pending', 'verified', 'failed']).optional(), ...page }),
    'Per-file outcome of an execution.',
  ),
  'executions.timeline': command<Page<FondsEvent>>()(z.object({ id, ...page }), 'Every event of an execution, newest first.'),
  'storedData.list': command<Page<StoredData>>()(z.object({ status: z.string().optional(), ...page }), 'Stored data, newest first.'),
  'storedData.get': command<StoredData>()(z.object({ id }), 'One stored data.'),
  'storedData.files': command<Page<StoredFile>>()(z.object({ id, ...page }), 'The files of a stored data with their checksums.'),
  'storedData.timeline': command<Page<FondsEvent>>()(z.object({ id, ...page }), 'Every event of a stored data, newest first.'),
  'storedData.patch': command<StoredData>()(
    z.object({
      id,
      name: z.string().min(1).max(500).optional(),
      description: z.string().max(10_000).optional(),
      tags: z.record(z.string().max(200), z.string().max(2000)).optional(),
      srs: z.string().max(100).optional(),
      /** YYYY-MM-DD, checked by validateEdition; a date left out is kept, null removes it, `edition: null` removes both */
      edition: z.object({ from: z.string().max(40).nullable().optional(), to: z.string().max(40).nullable().optional() }).nullable().optional(),
      /** GeoJSON Polygon or MultiPolygon (WGS84, ≤ 5000 positions), or null to remove it; checked by validateExtent */
      extent: z.unknown().optional(),
      ...Object.fromEntries(storedDataReadOnlyFields.map((f) => [f, readOnly])) as Record<(typeof storedDataReadOnlyFields)[number], typeof readOnly>,
    }),
    "Edit a stored data's metadata: name, description, tags, edition dates, GeoJSON extent (seed 002's PATCH); a read-only field is refused.",
  ),
  'uploads.delete': command<Upload>()(
    z.object({ id }),
    "Delete an upload after a verified execution: its staged files are removed; files checked in place are the user's and stay.",
  ),

  // ---- jobs and outbox -----------------------------------------------------------------------
  'outbox.list': command<Page<OutboxItem>>()(
    z.object({ status: z.enum(['pending', 'sending', 'sent', 'cancelled', 'failed']).optional(), ...page }),
    'Messages waiting to be sent, and sent ones.',
  ),

  // ---- messages: Medona directory, purge, outbox review ----
  'messages.list': command<Page<Message>>()(
    z.object({
      type: z.string().max(100).optional(),
      /** a status, or 'none' for messages without one */
      status: z.string().max(50).optional(),
      state: z.enum(MessageStates).optional(),
      from: isoDate.optional(),
      to: isoDate.optional(),
      /** part of the id, reference, sender or recipient */
      q: z.string().max(200).optional(),
      ...page,
    }),
    'Indexed messages of the message directory, newest first, filtered.',
  ),
  'messages.facets': command<MessageFacets>()(z.object({}), 'Counts by type, status and state, for the filters.'),
  'messages.get': command<MessageDetail>()(z.object({ id: messageId }), 'One message: its fields, its content pretty-printed, its attachments.'),
  'messages.timeline': command<Page<FondsEvent>>()(z.object({ id: messageId, ...page }), 'Every event of a message, newest first.'),
  'messages.setStatus': command<Message>()(
    z.object({ id: messageId, status: z.enum(MessageStatuses) }),
    "Set a message's status (kept in the index and in its status sidecar, for the other instances).",
  ),
  'messages.write': command<Message>()(
    z.object({
      /** default: FONDS-<uuid> */
      id: messageId.optional(),
      type: z.enum(MessageTypes),
      format: z.enum(['xml', 'json']).default('xml'),
      /** the whole message; when absent it is generated from the fields below */
      content: z.string().max(10 * 1024 * 1024).optional(),
      reference: z.string().max(500).optional(),
      requestReference: z.string().max(500).optional(),
      sender: z.string().max(500).optional(),
      recipient: z.string().max(500).optional(),
      date: isoDate.optional(),
      comment: z.string().max(5000).optional(),
      status: z.enum(MessageStatuses).optional(),
      attachments: z
        .array(z.object({ name: z.string().min(1).max(1000), content: z.string().max(10 * 1024 * 1024), encoding: z.enum(['utf8', 'base64']).default('utf8') }))
        .max(100)
        .default([]),
    }),
    "Write one of Fonds' own messages into the message directory (<id>/<id>.xml and attachments), under the directory lock.",
  ),
  'messages.rescan': command<RescanSummary>()(z.object({}), 'Reconcile the index with the message directory now.'),
  'purge.rules': command<PurgeRules>()(
    z.object({ text: z.string().max(100_000).optional() }),
    'The removeMessageTask rules, parsed and validated (or the text given, to try a change).',
  ),
  'purge.run': command<PurgeReport>()(
    z.object({
      /** nothing is deleted unless dryRun is false */
      dryRun: z.boolean().default(true),
      /** delete only these (the list a person confirmed); each is checked again */
      ids: z.array(messageId).max(10_000).optional(),
      /** a dry run's runId: delete only what that dry run selected (each checked again, with its `now`) */
      confirm: z.string().min(1).max(100).optional(),
      /** count delays back from this moment (a dry run's), never later than now */
      now: isoDate.optional(),
      /** how many items to list in the report; totals always count all */
      limit: z.number().int().min(0).max(1_000_000).default(100_000),
      waitForLockMs: z.number().int().min(0).max(600_000).default(15_000),
    }),
    'Purge the message directory with removeMessageTask (medona/message/deleteMessageDirectoryPurge), or a dry run.',
  ),
  'outbox.get': command<OutboxItem>()(z.object({ id: outboxId }), 'One outbox message.'),
  'outbox.edit': command<OutboxItem>()(
    z.object({ id: outboxId, headers: z.record(z.string(), z.unknown()).optional(), body: z.string().max(10 * 1024 * 1024).optional() }),
    'Change the headers or body of a message not yet sent.',
  ),
  'outbox.cancel': command<OutboxItem>()(z.object({ id: outboxId }), 'Cancel a message not yet sent.'),
  'outbox.retry': command<OutboxItem>()(z.object({ id: outboxId }), 'Queue a failed, cancelled or waiting message again.'),
  'outbox.sendNow': command<OutboxItem>()(z.object({ id: outboxId }), 'Send a waiting message now (retry, due at once).'),

  // ---- products: REGARDS patch requests ----
  'products.list': command<Page<ProductSummary>>()(
    z.object({ q: z.string().max(500).optional(), tenant: z.string().max(128).optional(), ...page }),
    'Products, most recently changed first; q searches the URN, the provider id and the properties.',
  ),
  'products.get': command<Product>()(z.object({ urn: z.string().min(1).max(300) }), 'One product with its properties and files.'),
  'products.create': command<Product>()(
    z.object({
      /** default: the first of regardsTenants */
      tenant: z.string().min(1).max(128).optional(),
      /** default: URN:FEATURE:DATA:<tenant>:<new uuid>:V1 */
      urn: featureUrnSchema.optional(),
      providerId: z.string().max(500).default(''),
      properties: propertiesSchema.default({}),
      files: z.array(featureFileSchema).max(10_000).default([]),
      /** the stored data this product publishes (kept as given) */
      storedDataId: id.optional(),
    }),
    'Publish a product in the catalogue, so that patch requests can reach it.',
  ),
  'products.timeline': command<Page<FondsEvent>>()(
    z.object({ urn: z.string().min(1).max(300), ...page }),
    'Every event of a product and of the patch requests naming it (received and sent), newest first.',
  ),
  'patches.compose': command<ComposedPatch>()(patchInputSchema, 'The exact message (properties, headers, body) a patch request would send; nothing is sent.'),
  'patches.send': command<PatchRequest>()(
    patchInputSchema,
    'Queue a patch request to a remote REGARDS in the outbox; it goes out (publisher confirm) once the broker is connected.',
  ),
  'patches.list': command<Page<PatchRequest>>()(
    z.object({
      direction: z.enum(PatchDirections).optional(),
      urn: z.string().max(300).optional(),
      state: z.enum(PatchStates).optional(),
      /** part of the request id, URN or owner */
      q: z.string().max(200).optional(),
      ...page,
    }),
    'Patch requests received and sent, newest first.',
  ),
  'amqp.status': command<AmqpStatus>()(z.object({}), 'The broker connection, the queues, and what waits in the outbox.'),
  'amqp.deadLetters': command<Page<DeadLetter>>()(z.object({ ...page }), 'Messages that could not be read (kept in the dead-letter queue), newest first.'),
  // ---- dissemination: recipients, notify, acknowledgements (seed 000) ----
  'recipients.list': command<Recipient[]>()(
    z.object({ directNotificationEnabled: z.boolean().optional() }),
    'Recipients by label; with directNotificationEnabled=true, only those a selection may be notified to.',
  ),
  'recipients.save': command<Recipient>()(recipientInputSchema, 'Create a recipient, or update the one with this recipientLabel (secrets left "********" are kept).'),
  'recipients.delete': command<{ deleted: boolean }>()(
    z.object({ recipientLabel: z.string().min(1).max(128) }),
    'Delete a recipient; refused while a dissemination to it is PENDING or WAITING_ACK.',
  ),
  'disseminations.notify': command<NotifyResult>()(
    z.object({ urns: z.array(z.string().min(1).max(300)).min(1).max(10_000), recipients: z.array(z.string().min(1).max(128)).min(1).max(100) }),
    'Notify a selection of products to recipients (only those with directNotificationEnabled): one dissemination per (product, recipient).',
  ),
  'disseminations.list': command<Page<Dissemination>>()(
    z.object({
      urn: z.string().max(300).optional(),
      recipientLabel: z.string().max(128).optional(),
      status: z.enum(DisseminationStatuses).optional(),
      /** part of the URN, product name or recipient label */
      q: z.string().max(200).optional(),
      ...page,
    }),
    'Disseminations, most recently requested first.',
  ),
  'disseminations.get': command<Dissemination>()(z.object({ id }), 'One dissemination.'),
  'disseminations.timeline': command<Page<FondsEvent>>()(
    z.object({ id: id.optional(), urn: z.string().max(300).optional(), ...page }),
    'Events of one dissemination, or of every dissemination of a product, newest first.',
  ),
  'disseminations.ack': command<Dissemination>()(z.object({ id }), 'Acknowledge a dissemination by hand (the recipient confirmed it another way).'),
  'disseminations.retry': command<Dissemination>()(z.object({ id }), 'Send a FAILED dissemination again.'),
  'products.disseminationStatus': command<ProductDisseminationSummary>()(
    z.object({ urn: z.string().min(1).max(300) }),
    "A product's dissemination status (NONE, PENDING, WAITING_ACK, DONE) and REGARDS' per-recipient records {label, requestDate, ackDate, blocking}.",
  ),
  'disseminations.unmatchedAcks': command<Page<FondsEvent>>()(
    z.object({ ...page }),
    'Acknowledgements that matched no dissemination (unknown urn or recipient, bad signature), newest first.',
  ),
  'disseminations.webhookAck': command<WebhookAckResult>()(
    z.object({ body: z.string().max(65_536), signature: z.string().max(200) }),
    'A signed acknowledgement callback: the raw JSON body {urn, recipientLabel} and its X-Fonds-Signature (sha256=<hex HMAC with the recipient secret>).',
  ),

  // ---- reports: dissemination reports from the event log (CSV, JSON, PDF) ----
  'reports.preview': command<ReportPreview>()(
    z.object({ filters: reportFiltersSchema.prefault({}), limit: z.number().int().min(0).max(1000).default(50) }),
    'The summary of a dissemination report and its first rows (request order), for the report screen.',
  ),
  'reports.export': command<ReportExport>()(
    z.object({
      filters: reportFiltersSchema.prefault({}),
      format: z.enum(ReportFormats),
      /** absolute path of the file to write on the machine that runs Fonds; written atomically */
      path: localPath,
      overwrite: z.boolean().default(false),
      /** CSV: start with a UTF-8 byte order mark for spreadsheets */
      bom: z.boolean().default(false),
      /** PDF: language of titles and labels */
      lang: z.enum(ReportLangs).default('en'),
      /** progress events are pushed as {kind: 'report', objectId: exportId} */
      exportId: z.string().min(1).max(100).optional(),
    }),
    'Write a dissemination report (CSV, JSON or PDF) to a file: a temporary file, then renamed; progress pushed while it runs.',
  ),
  'reports.suggestPath': command<{ dir: string; path: string }>()(
    z.object({ filters: reportFiltersSchema.prefault({}), format: z.enum(ReportFormats) }),
    'Where to save a report by default: ~/Documents/Fonds reports (or <dataDir>/reports) and a file name from the period.',
  ),

  // ---- nb: dissemination orders (seed 004) ----
  'nb.disseminations.create': command<NbDissemination>()(
    z.object({
      archiveId: id,
      priority: nbPrioritySchema.default(NB_PRIORITY_DEFAULT),
      /** the address the client reached the server at: base of the local download links (nbPublicUrl wins) */
      linkBaseUrl: z.string().regex(/^https?:\/\/\S+$/).max(500).optional(),
    }),
    'Serve: receive a dissemination order (POST /v1/disseminations) for the calling client; 404 unknown archive, CHECK_FAILED not preserved, CONFLICT one in progress.',
  ),
  'nb.disseminations.get': command<NbDissemination>()(z.object({ id }), "Serve: one dissemination in the seed's shape (GET /v1/disseminations/{id}); another client's is not found."),
  'nb.disseminations.link': command<NbLink>()(
    z.object({ id, linkBaseUrl: z.string().regex(/^https?:\/\/\S+$/).max(500).optional() }),
    'Serve: the download link of a DISSEMINATED dissemination, the same one until it expires, then a new one.',
  ),
  'nb.disseminations.download': command<{ path: string; fileName: string; sizeInBytes: number; sha256: string }>()(
    z.object({ id, expires: z.number().int().min(0), signature: z.string().min(1).max(200) }),
    'Serve: checks a signed local download link (folder mode) and names the package file to stream.',
  ),
  'nb.disseminations.list': command<Page<NbServedDissemination>>()(
    z.object({ status: z.enum(NbStatuses).optional(), clientId: z.string().max(128).optional(), q: z.string().max(200).optional(), ...page }),
    'Serve: disseminations served to NB clients, newest first (the UI).',
  ),
  'nb.disseminations.timeline': command<Page<FondsEvent>>()(z.object({ id, ...page }), 'Serve: every event of a served dissemination, newest first.'),
  'nb.orders.create': command<NbOrder>()(
    z.object({
      /** the service's address before /v1/disseminations, e.g. https://api.nb.no/dps-submission */
      baseUrl: z.string().regex(/^https?:\/\/[^\s?#]+$/, 'not an http(s) URL without query').max(500),
      /** bearer token for the service; kept sealed, never returned */
      token: z.string().min(1).max(4096),
      archiveId: id,
      priority: nbPrioritySchema.default(NB_PRIORITY_DEFAULT),
    }),
    'Order a dissemination from an NB-style service: POST, or on 409 adopt the existing one; then poll it (exponential backoff, jitter) until final.',
  ),
  'nb.orders.list': command<Page<NbOrder>>()(z.object({ state: z.enum(NbOrderStates).optional(), ...page }), 'Client orders, newest first (no tokens).'),
  'nb.orders.get': command<NbOrder>()(z.object({ id }), 'One client order (no token).'),
  'nb.orders.link': command<NbOrderLink>()(z.object({ id }), "A DISSEMINATED order's download link: the kept one until it expires, else a new one from the service."),
  'nb.orders.timeline': command<Page<FondsEvent>>()(z.object({ id, ...page }), 'Every event of a client order, newest first.'),
} as const;

/** What `disseminations.notify` did: one dissemination per new (product, recipient) pair. */
export interface NotifyResult {
  created: Dissemination[];
  /** pairs not created, each with why (unknown product, recipient not directly notifiable, already active) */
  skipped: Array<{ urn: string; recipientLabel: string; reason: string }>;
}

/** What a signed acknowledgement callback did. */
export interface WebhookAckResult {
  acknowledged: boolean;
  disseminationId?: string;
  /** why nothing was acknowledged (it is logged as an unmatched acknowledgement) */
  reason?: string;
}

export interface ProductDisseminationSummary {
  urn: string;
  status: ProductDisseminationStatus;
  recipients: RecipientRecord[];
}

export type Commands = typeof commands;
export type CommandName = keyof Commands;
export type CommandInput<N extends CommandName> = z.input<Commands[N]['input']>;
export type ParsedInput<N extends CommandName> = z.output<Commands[N]['input']>;
export type CommandOutput<N extends CommandName> = NonNullable<Commands[N]['__output']>;

export const commandNames = Object.keys(commands) as CommandName[];

export function isCommandName(name: unknown): name is CommandName {
  return typeof name === 'string' && Object.prototype.hasOwnProperty.call(commands, name);
}

export type { Message, MessageDetail, MessageFacets, PurgeReport, PurgeRules, RescanSummary } from './domain/message';
export type { AmqpStatus, ComposedPatch, DeadLetter, PatchInput, PatchRequest, Product, ProductSummary } from './domain/product';
export type { Finding, Upload, UploadFile, Progress, Execution, ExecutionFile, Processing, StoredData, StoredFile };
