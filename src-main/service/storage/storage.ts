import type { Readable } from 'node:stream';

/** The two checksums Fonds keeps for every stored file. */
export interface Fixity {
  size: number;
  md5: string;
  sha256: string;
}

export interface PutOptions {
  signal?: AbortSignal;
  /** the file's size when known (small files travel in batches through the hash pool) */
  sizeHint?: number;
  /**
   * What the source is known to hold (from its intake check). The copy pass then computes MD5
   * only, which proves the same bytes were read; the SHA-256 is the intake's.
   */
  expected?: Fixity;
  /** bytes read since the last call */
  onBytes?: (n: number) => void;
}

/**
 * Where stored data lives: a local folder (default) or an S3 bucket. Keys are '/'-separated
 * relative paths, validated before use; an implementation never writes outside its root/prefix.
 */
export interface Storage {
  readonly kind: 'local' | 's3';
  /** a label for people: the folder or bucket/prefix */
  readonly label: string;
  /**
   * Copies a local file to `key`, reading each byte once (the same pass hashes it), atomically:
   * nothing appears under `key` unless the whole file was written. Returns what was read (with
   * `opts.expected`, the SHA-256 returned is the expected one when the MD5 matched, '' otherwise).
   */
  put(key: string, source: string, opts?: PutOptions): Promise<Fixity>;
  /** Proves the stored object matches `expected`; resolves with a reason when it does not. */
  verify(key: string, expected: Fixity, opts?: PutOptions): Promise<{ ok: true } | { ok: false; reason: string }>;
  /**
   * Makes the copies made so far durable (local: one `sync` for a batch, instead of an fsync per
   * file); called before their `verified` state is committed.
   */
  flush?(): Promise<void>;
  /** Size of the stored object, or undefined when absent. */
  stat(key: string): Promise<{ size: number } | undefined>;
  read(key: string): Promise<Readable>;
  delete(key: string): Promise<void>;
  /**
   * Removes what a crashed copy left under `prefix` (temporary files). Local only: on S3 an
   * incomplete multipart upload is invisible; a bucket lifecycle rule
   * (AbortIncompleteMultipartUpload) reclaims its parts.
   */
  sweep?(prefix: string): Promise<number>;
  close?(): Promise<void>;
}
