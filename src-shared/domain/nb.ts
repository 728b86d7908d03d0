/**
 * The National Library of Norway's dissemination contract (seed 004): field names, statuses and
 * their order are the contract. Fonds serves it (`/v1/disseminations` on the headless server) and
 * orders from such a service (client orders).
 */
import { z } from 'zod';

/** Statusflyt, in the seed's order; the last three are final. */
export const NbStatuses = ['RECEIVED', 'QUEUED', 'DOWNLOADING_FROM_REPOSITORY', 'FIXITY_CHECK', 'UPLOADING_TO_S3', 'DISSEMINATED', 'FAILED', 'REJECTED'] as const;
export type NbStatus = (typeof NbStatuses)[number];

export const NbFinalStatuses: readonly NbStatus[] = ['DISSEMINATED', 'FAILED', 'REJECTED'];
export const isNbFinal = (s: NbStatus): boolean => NbFinalStatuses.includes(s);

/** Where each status may go; FAILED and REJECTED carry a reason. */
export const nbTransitions: Record<NbStatus, readonly NbStatus[]> = {
  RECEIVED: ['QUEUED', 'REJECTED', 'FAILED'],
  QUEUED: ['DOWNLOADING_FROM_REPOSITORY', 'REJECTED', 'FAILED'],
  DOWNLOADING_FROM_REPOSITORY: ['FIXITY_CHECK', 'REJECTED', 'FAILED'],
  FIXITY_CHECK: ['UPLOADING_TO_S3', 'FAILED'],
  UPLOADING_TO_S3: ['DISSEMINATED', 'FAILED'],
  DISSEMINATED: [],
  FAILED: [],
  REJECTED: [],
};

export function canNbBecome(from: NbStatus, to: NbStatus): boolean {
  return from === to || nbTransitions[from].includes(to);
}

/** Priority: integers 0–100, 50 when absent (the seed's example); higher is served first. */
export const NB_PRIORITY_MIN = 0;
export const NB_PRIORITY_MAX = 100;
export const NB_PRIORITY_DEFAULT = 50;
export const nbPrioritySchema = z.number().int().min(NB_PRIORITY_MIN).max(NB_PRIORITY_MAX);

/** The body of POST /v1/disseminations. Unknown fields are refused, naming them. */
export const nbCreateBodySchema = z
  .object({
    archiveId: z.string().min(1).max(200),
    priority: nbPrioritySchema.default(NB_PRIORITY_DEFAULT),
  })
  .strict();

/** A dissemination as the seed's API answers it (201 and 200), exactly these fields. */
export interface NbDissemination {
  disseminationId: string;
  archiveId: string;
  clientId: string;
  contractId: string;
  objectId: string;
  sumSizeInBytes: number;
  status: NbStatus;
  priority: number;
  dateCreated: string;
  /** only when FAILED or REJECTED: why (the seed allows extending the shape) */
  reason?: string;
}

/** A download link: a presigned S3 URL, or a signed expiring link served by Fonds (folder mode). */
export interface NbLink {
  disseminationId: string;
  url: string;
  expiresAt: string;
  /** the package: a BagIt bag serialized as POSIX tar */
  fileName: string;
  sizeInBytes: number;
  sha256: string;
}

/** The webhook body: the dissemination, plus the link when DISSEMINATED. Signed like every Fonds webhook. */
export type NbWebhookBody = NbDissemination & Partial<{ downloadUrl: string; downloadUrlExpiresAt: string; fileName: string; sizeInBytes: number; sha256: string }>;

/** A served dissemination as the UI lists it (server side). */
export interface NbServedDissemination extends NbDissemination {
  updatedAt: string;
  delivery: 'folder' | 's3';
  package?: { fileName: string; sizeInBytes: number; sha256: string };
  link?: { url: string; expiresAt: string; issued: number };
  webhook?: { state: 'none' | 'pending' | 'sent' | 'failed'; attempts: number; lastError?: string };
}

/** Client side: where a Fonds order stands locally. */
export const NbOrderStates = ['SUBMITTING', 'POLLING', 'ENDED', 'ERROR'] as const;
export type NbOrderState = (typeof NbOrderStates)[number];

/** A dissemination Fonds ordered from a remote service. The token is never returned. */
export interface NbOrder {
  id: string;
  baseUrl: string;
  archiveId: string;
  priority: number;
  state: NbOrderState;
  disseminationId?: string;
  /** true when the service answered 409 and the existing dissemination was adopted */
  adopted: boolean;
  /** the service's status: one of NbStatuses, or one a later version of the contract adds (treated as not final) */
  status?: string;
  clientId?: string;
  contractId?: string;
  objectId?: string;
  sumSizeInBytes?: number;
  dateCreated?: string;
  reason?: string;
  /** the last error talking to the service (kept while it is retried) */
  error?: string;
  polls: number;
  nextPollAt?: string;
  link?: { url: string; expiresAt: string; fileName?: string; sizeInBytes?: number; sha256?: string; fetched: number };
  createdAt: string;
  updatedAt: string;
}

/** What `nb.orders.link` gave: the kept link while it is valid, otherwise a new one. */
export interface NbOrderLink {
  url: string;
  expiresAt: string;
  reused: boolean;
}
