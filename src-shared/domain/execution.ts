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
  last_event?: { title: string; date: string };
  edition?: { from?: string; to?: string };
  extent?: import('geojson').MultiPolygon;
}

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
