import type { Readable } from 'node:stream';

/** The two checksums Fonds keeps for every stored file, and its size. */
export interface Fixity {
  size: number;
  md5: string;
  sha256: string;
}

export interface PutOptions {
  signal?: AbortSignal;
  /** the file's size when known (small files travel in batches through the hash pool) */
  sizeHint?: number;
  /** bytes of the source read since the last call (the copy pass only, not the verification) */
  onBytes?: (n: number) => void;
  /** how messages name the file (default: the key) */
  name?: string;
}

/** What `put` proved. */
export interface Stored {
  /** what was read from the source while copying (equal to `expected`) */
  fixity: Fixity;
  /** how the stored copy was proven equal to it, in words: "re-read, SHA-256 equal" */
  proof: string;
}

export type Verification = { ok: true; proof: string } | { ok: false; reason: string };

/**
 * Why `put` refused or failed, in `FondsError.details.failure`:
 * - `source-changed`: the bytes read differ from `expected` (size, MD5 or SHA-256); nothing was
 *   written under the key, an older version there is untouched;
 * - `verification`: the copy did not prove equal; `details.stored` says whether the object under
 *   the key was already replaced by it (S3, once a multipart upload is complete) or not (local:
 *   the copy is verified under its temporary name, before the rename).
 * Other failures are `IO_ERROR` (disk full, permission...), `UNAVAILABLE` (the storage cannot be
 * reached: worth retrying later) or `CANCELLED`; none leaves anything under the key.
 */
export type PutFailure = 'source-changed' | 'verification';

/**
 * Where stored data lives: a local folder (default) or an S3 bucket. Keys are '/'-separated
 * relative paths, validated before use; an implementation never writes outside its root/prefix.
 */
export interface Storage {
  readonly kind: 'local' | 's3';
  /** a label for people: the folder, or s3://bucket/prefix */
  readonly label: string;
  /** how `put` proves a copy, in words, for timelines and the README */
  readonly verification: string;
  /** files worth copying at once (local: the hash pool queues them; S3: each holds connections) */
  readonly parallelFiles: number;
  /** bytes a copy of a file of this size holds in memory at once (S3: its parts in flight) */
  memoryFor?(size: number): number;
  /**
   * Copies a local file to `key` and proves the copy, reading each source byte once (the same pass
   * hashes it, MD5 + SHA-256, and writes it). Atomic: nothing appears under `key` unless the whole
   * file was written and its bytes equal `expected`. See `PutFailure` for what a rejection means.
   */
  put(key: string, source: string, expected: Fixity, opts?: PutOptions): Promise<Stored>;
  /** Proves, later, that the object under `key` still matches `expected` (an audit). */
  verify(key: string, expected: Fixity, opts?: PutOptions): Promise<Verification>;
  /**
   * Makes the copies made so far durable (local: one file-system sync for a batch instead of an
   * fsync per file); awaited before their `verified` state is committed.
   */
  flush?(): Promise<void>;
  /** Size of the stored object, or undefined when absent. */
  stat(key: string): Promise<{ size: number } | undefined>;
  read(key: string): Promise<Readable>;
  delete(key: string): Promise<void>;
  /**
   * Removes what a crashed copy left under `prefix`: temporary files (local), incomplete multipart
   * uploads (S3, where the server lists them). Returns how many.
   */
  sweep?(prefix: string): Promise<number>;
  close?(): Promise<void>;
}
