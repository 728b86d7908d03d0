/**
 * Uploads (IGN Entrepot's word for a delivery) and their two required checks.
 * Status flow: OPEN -> CHECKING -> CLOSED, or UNSTABLE when the check run itself could not finish
 * (unreadable file, cancelled). DELETED once its files were removed after a verified execution.
 */
export const UploadStatuses = ['OPEN', 'CHECKING', 'CLOSED', 'UNSTABLE', 'DELETED'] as const;
export type UploadStatus = (typeof UploadStatuses)[number];

export const uploadTransitions: Record<UploadStatus, readonly UploadStatus[]> = {
  OPEN: ['CHECKING', 'DELETED'],
  CHECKING: ['CLOSED', 'UNSTABLE'],
  CLOSED: ['CHECKING', 'DELETED'],
  UNSTABLE: ['CHECKING', 'DELETED'],
  DELETED: [],
};

export function canTransition(from: UploadStatus, to: UploadStatus): boolean {
  return uploadTransitions[from].includes(to);
}

/** The two checks seed 002 requires before archive-to-archive processing. */
export const CheckKinds = ['archive', 'standard'] as const;
export type CheckKind = (typeof CheckKinds)[number];

export const checkNames: Record<CheckKind, { name: string; description: string }> = {
  archive: {
    name: 'Vérification archive',
    description: "Contrôle de l'absence de conflit dans le nommage des fichiers livrés",
  },
  standard: {
    name: 'Vérification standard',
    description: 'La vérification standard contrôle les signatures MD5 fournies',
  },
};

/** Entrepot check-execution statuses. */
export const CheckStatuses = ['WAITING', 'PROGRESS', 'SUCCESS', 'FAILURE'] as const;
export type CheckStatus = (typeof CheckStatuses)[number];

export type Severity = 'error' | 'warning' | 'info';

export interface Finding {
  check: CheckKind;
  path: string;
  rule: string;
  severity: Severity;
  message: string;
}

export interface CheckResult {
  kind: CheckKind;
  status: CheckStatus;
  errors: number;
  warnings: number;
}

export interface Progress {
  files: number;
  bytes: number;
  totalFiles?: number;
  totalBytes?: number;
  /** bytes per second over the last interval */
  rate?: number;
  /** seconds left, when totals are known */
  eta?: number;
}

export interface Upload {
  _id: string;
  name: string;
  description: string;
  type: 'ARCHIVE';
  srs?: string;
  status: UploadStatus;
  /** where the files are read from: dropped paths, or the staging folder for pushed files */
  sources: string[];
  creation: string;
  lastChange: string;
  files: number;
  size: number;
  checks: CheckResult[];
  progress?: Progress;
  /** why the upload is UNSTABLE */
  reason?: string;
  isBag: boolean;
}

export interface UploadFile {
  path: string;
  size: number;
  md5: string;
  sha256: string;
  /** further algorithms named by a bag manifest */
  extra: Record<string, string>;
}
