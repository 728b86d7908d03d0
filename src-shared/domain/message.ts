/**
 * Medona (NF Z44-022, namespace `org:afnor:medona:1.0`) and SEDA 2.x messages as Maarch RM keeps
 * them in its shared message directory (seed 003), and the purge rules' vocabulary.
 */

/** The Medona namespace, and the SEDA 2.x family (v2.0, v2.1, v2.2 ...). */
export const MEDONA_NAMESPACE = 'org:afnor:medona:1.0';
export const SEDA2_NAMESPACE_PREFIX = 'fr:gouv:culture:archivesdefrance:seda:v2.';

/** Every message type Fonds recognises: the root element's local name. */
export const MessageTypes = [
  'Acknowledgement',
  'ArchiveTransfer',
  'ArchiveTransferReply',
  'ArchiveTransferRequest',
  'ArchiveTransferRequestReply',
  'ArchiveDeliveryRequest',
  'ArchiveDeliveryRequestReply',
  'ArchiveRestitution',
  'ArchiveRestitutionRequest',
  'ArchiveRestitutionRequestReply',
  'ArchiveDestructionRequest',
  'ArchiveDestructionRequestReply',
  'ArchiveDestructionNotification',
  'ArchiveModificationNotification',
  'ArchivalProfileModificationNotification',
  'AuthorizationControlAuthorityRequest',
  'AuthorizationControlAuthorityRequestReply',
  'AuthorizationOriginatingAgencyRequest',
  'AuthorizationOriginatingAgencyRequestReply',
] as const;
export type MessageType = (typeof MessageTypes)[number];

export function isMessageType(value: string): value is MessageType {
  return (MessageTypes as readonly string[]).includes(value);
}

/**
 * Maarch RM's message statuses, always lower-case in Fonds (the seed's table is upper-case, its
 * example lower-case: they are compared case-insensitively and stored lower-case).
 */
export const MessageStatuses = [
  'draft',
  'sent',
  'received',
  'acknowledged',
  'valid',
  'invalid',
  'modified',
  'accepted',
  'rejected',
  'processing',
  'processed',
  'downloaded',
  'error',
] as const;
export type MessageStatus = (typeof MessageStatuses)[number];

export function isMessageStatus(value: string): value is MessageStatus {
  return (MessageStatuses as readonly string[]).includes(value);
}

/**
 * The final statuses of each type (seed 003): a purge rule may only name these, so that no data is
 * destroyed before its business transaction has ended. A type absent here has no final status and
 * can never be purged.
 */
export const finalStatuses: Partial<Record<MessageType, readonly MessageStatus[]>> = {
  ArchiveTransfer: ['rejected', 'invalid', 'processed'],
  ArchiveDeliveryRequestReply: ['rejected', 'received'],
  ArchiveRestitution: ['rejected', 'processed'],
};

/** True when `status` (any case) is a final status of `type`. */
export function isFinalStatus(type: string, status: string | null | undefined): boolean {
  if (!status || !isMessageType(type)) return false;
  return (finalStatuses[type] ?? []).includes(status.toLowerCase() as MessageStatus);
}

/** How well a message on disk was understood. */
export const MessageStates = ['ok', 'unknown', 'unparseable'] as const;
export type MessageState = (typeof MessageStates)[number];

/** Where the indexed status came from. */
export const StatusSources = ['message', 'sidecar', 'review'] as const;
export type StatusSource = (typeof StatusSources)[number];

/** One message of the directory, as indexed. */
export interface Message {
  /** the folder name in the message directory (Maarch's messageId) */
  id: string;
  state: MessageState;
  /** the root element's local name; set for 'unknown' messages too when one was read */
  type?: string;
  /** 'medona' or 'seda2.x' */
  schema?: string;
  status?: string;
  statusSource?: StatusSource;
  /** ISO 8601, UTC */
  date?: string;
  /** 'message' (the Date element) or 'file' (no usable Date: the message file's modification time) */
  dateSource?: 'message' | 'file';
  /** MessageIdentifier */
  reference?: string;
  /** MessageRequestIdentifier or MessageReceivedIdentifier: the message this one answers */
  requestReference?: string;
  replyCode?: string;
  sender?: string;
  recipient?: string;
  comment?: string;
  format?: 'xml' | 'json';
  /** the message file, relative to the message directory */
  file?: string;
  files: number;
  size: number;
  /** why the message is 'unknown' or 'unparseable', or a note on a parsed one */
  reason?: string;
  /** the newest modification time on disk */
  lastChange: string;
  indexedAt: string;
}

export interface MessageAttachment {
  /** relative to the message directory */
  path: string;
  size: number;
  /** true for `<id>.*` files beside the folder (archives), false inside it */
  beside: boolean;
}

export interface MessageDetail {
  message: Message;
  /** the message file, pretty-printed (XML indented, JSON with 2 spaces); '' when none */
  content: string;
  /** true when the file was too large and only its start is shown */
  truncated: boolean;
  /**
   * set when the whole file is shown as written although it could have been indented (the thread
   * that indents large XML failed or did not answer in time): why
   */
  unformatted?: string;
  attachments: MessageAttachment[];
}

/** One task of removeMessageTask, validated. */
export interface PurgeTask {
  name: string;
  types: MessageType[];
  /** lower-case */
  statuses: MessageStatus[];
  /** the ISO 8601 duration as written */
  delay: string;
}

/** A rule problem, always naming the task and the field. */
export interface PurgeRuleError {
  /** '' for a syntax error before any task could be read */
  task: string;
  field: 'syntax' | 'name' | 'type' | 'status' | 'delay' | 'task';
  message: string;
}

export interface PurgeRules {
  /** where the text came from: the removeMessageTask setting, or the caller */
  source: 'config' | 'input';
  text: string;
  tasks: PurgeTask[];
  errors: PurgeRuleError[];
  /** the purgeSchedule setting ('' = off) */
  schedule: string;
  /** the next scheduled run, when a schedule is on */
  nextRun?: string;
}

export interface PurgeItem {
  id: string;
  type: string;
  status: string;
  date: string;
  task: string;
  /** why it was selected, in words */
  reason: string;
  bytes: number;
  files: number;
  /** true once deleted; false in a dry run or when skipped */
  deleted: boolean;
  /** why a selected message was not deleted after all (changed on disk, lock lost ...) */
  skipped?: string;
}

export interface PurgeReport {
  runId: string;
  dryRun: boolean;
  trigger: 'ui' | 'cli' | 'http' | 'schedule' | 'internal';
  /**
   * dry runs: until when `purge.run({dryRun: false, confirm: runId})` may delete this run's
   * selection (once, each message checked again); nothing outside it is ever deleted that way
   */
  confirmUntil?: string;
  /** real runs confirmed from a dry run: that dry run's runId */
  confirmed?: string;
  /** the moment delays are counted back from */
  now: string;
  startedAt: string;
  finishedAt: string;
  tasks: Array<{ name: string; delay: string; cutoff: string; messages: number; bytes: number }>;
  items: PurgeItem[];
  /** items not listed because of the caller's limit */
  itemsOmitted: number;
  totals: { messages: number; bytes: number; files: number; skipped: number };
}

/** What a rescan of the directory found, compared with the index. */
export interface RescanSummary {
  directory: string;
  /** messages on disk after the scan */
  total: number;
  added: number;
  changed: number;
  removed: number;
  unchanged: number;
  /** of the messages read in this scan */
  unparseable: number;
  unknown: number;
  ms: number;
}

/** Counts for the review screen's filters. */
export interface MessageFacets {
  directory: string;
  total: number;
  watching: boolean;
  types: Array<{ value: string; count: number }>;
  statuses: Array<{ value: string; count: number }>;
  states: Array<{ value: MessageState; count: number }>;
}
