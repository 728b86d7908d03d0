/**
 * Processings, executions and stored data, shaped like IGN Entrepot (seed 002).
 * Execution: CREATED -> WAITING (launched) -> PROGRESS (copying) -> SUCCESS | FAILURE; a FAILURE
 * (failed files, a cancel) goes back to WAITING when retried; a cancel before the start is a FAILURE.
 * Stored data: CREATED -> GENERATING -> GENERATED (every file verified) | UNSTABLE; an update by
 * a later execution makes it GENERATING again.
 */
export const ExecutionStatuses = ['CREATED', 'WAITING', 'PROGRESS', 'SUCCESS', 'FAILURE'] as const;
export type ExecutionStatus = (typeof ExecutionStatuses)[number];

export const executionTransitions: Record<ExecutionStatus, readonly ExecutionStatus[]> = {
  CREATED: ['WAITING'],
  WAITING: ['PROGRESS', 'FAILURE'],
  PROGRESS: ['SUCCESS', 'FAILURE'],
  SUCCESS: [],
  FAILURE: ['WAITING'],
};

export function canExecutionBecome(from: ExecutionStatus, to: ExecutionStatus): boolean {
  return from === to || executionTransitions[from].includes(to);
}

export const StoredDataStatuses = ['CREATED', 'GENERATING', 'GENERATED', 'UNSTABLE', 'DELETED'] as const;
export type StoredDataStatus = (typeof StoredDataStatuses)[number];

export const storedDataTransitions: Record<StoredDataStatus, readonly StoredDataStatus[]> = {
  CREATED: ['GENERATING'],
  GENERATING: ['GENERATED', 'UNSTABLE'],
  GENERATED: ['GENERATING', 'DELETED'],
  UNSTABLE: ['GENERATING', 'DELETED'],
  DELETED: [],
};

export function canStoredDataBecome(from: StoredDataStatus, to: StoredDataStatus): boolean {
  return from === to || storedDataTransitions[from].includes(to);
}

export interface CheckRef {
  _id: string;
  name: string;
  description: string;
}

export interface Processing {
  _id: string;
  name: string;
  description: string;
  priority: 'STANDARD';
  input_types: { upload: string[]; stored_data: string[] };
  output_type: { stored_data: string; storage: string[] };
  parameters: unknown[];
  required_checks: CheckRef[];
}

export interface UploadRef {
  type: 'ARCHIVE';
  name: string;
  status: string;
  srs?: string;
  _id: string;
}

export interface StoredDataRef {
  name: string;
  type: 'ARCHIVE';
  status: StoredDataStatus;
  _id: string;
}

export interface ExecutionFiles {
  total: number;
  pending: number;
  verified: number;
  failed: number;
  bytes: number;
  totalBytes: number;
}

export interface Execution {
  _id: string;
  processing: { name: string; _id: string };
  status: ExecutionStatus;
  creation: string;
  launch?: string;
  start?: string;
  finish?: string;
  inputs: { upload: UploadRef[]; stored_data: StoredDataRef[] };
  output: { stored_data: StoredDataRef };
  parameters: Record<string, unknown>;
  files: ExecutionFiles;
  reason?: string;
}

export interface StoredData {
  _id: string;
  name: string;
  type: 'ARCHIVE';
  status: StoredDataStatus;
  srs?: string;
  description?: string;
  storage: { type: 'S3' | 'FILESYSTEM'; labels: string[] };
  size: number;
  type_infos: { files_number: number };
  tags: Record<string, string>;
  /** true once every file's fixity was verified after the copy */
  verified: boolean;
  creation: string;
  /** the last step of its life (created, generated), titled as Entrepot titles it; metadata edits are not steps */
  last_event?: { title: StoredDataEventTitle; date: string };
  edition?: { from?: string; to?: string };
  extent?: import('geojson').MultiPolygon;
}

/**
 * Entrepot's titles for the steps of a stored data's life. Seed 002 shows a GENERATED stored data,
 * just patched, with `"last_event": { "title": "Génération", ... }`: the generation (an execution
 * writing it, first or later) is the event, its end is not another one, and a PATCH is none.
 */
export const storedDataEventTitles = { created: 'Création', 'status.GENERATING': 'Génération' } as const;
export type StoredDataEventTitle = (typeof storedDataEventTitles)[keyof typeof storedDataEventTitles];

/** What `storedData.patch` may change; the seed's PATCH body sets `edition` and `extent`. */
export const storedDataEditableFields = ['name', 'description', 'tags', 'srs', 'edition', 'extent'] as const satisfies readonly (keyof StoredData)[];

/**
 * What Fonds sets and a patch may not: the rest of a stored data, and the seed's `contact`. A patch
 * naming one is refused rather than half applied, so that sending back a stored data read with GET
 * does not look like it worked.
 */
export const storedDataReadOnlyFields = ['_id', 'type', 'status', 'storage', 'size', 'type_infos', 'verified', 'creation', 'last_event', 'contact'] as const satisfies readonly (
  | keyof StoredData
  | 'contact'
)[];

// every field of StoredData is either editable or read-only: a new field must be put in one list
type Unlisted = Exclude<keyof StoredData, (typeof storedDataEditableFields)[number] | (typeof storedDataReadOnlyFields)[number]>;
export const storedDataFieldsListed: [Unlisted] extends [never] ? true : { unlisted: Unlisted } = true;

export interface StoredFile {
  path: string;
  size: number;
  md5: string;
  sha256: string;
  verifiedAt?: string;
}

export interface ExecutionFile {
  upload: string;
  path: string;
  size: number;
  status: 'pending' | 'verified' | 'failed';
  error?: string;
  replacedMd5?: string;
}
