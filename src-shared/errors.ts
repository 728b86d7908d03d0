/**
 * Typed error codes shared by the service, both transports and the renderer.
 * An error is a value: a code a program can branch on, a message a person can act on,
 * and optional details (the file, the rule, the key) for display.
 */
export const ErrorCodes = [
  'INVALID_INPUT', // the input failed its schema; details.issues lists each field
  'NOT_FOUND', // the object named does not exist
  'CONFLICT', // the object is not in a state that allows the action
  'CONFIG_INVALID', // a configuration key has a bad value; details.key names it
  'PATH_OUTSIDE_ROOT', // a path from outside resolved outside its root
  'PATH_INVALID', // a path is absolute, empty, has NUL bytes or over-long names
  'IO_ERROR', // the file system refused (permission, disk full, missing file)
  'CHECK_FAILED', // a required check did not pass; details.check names it
  'UNAUTHORIZED', // missing or wrong bearer token
  'FORBIDDEN', // caller not allowed (wrong Host header, wrong IPC frame)
  'PAYLOAD_TOO_LARGE', // body over the configured limit
  'UNAVAILABLE', // a needed service (broker, S3) is not configured or not reachable
  'CANCELLED', // the user cancelled the work
  'INTERNAL', // a bug: the message says what was being done
] as const;

export type ErrorCode = (typeof ErrorCodes)[number];

export interface ErrorShape {
  code: ErrorCode;
  message: string;
  details?: Record<string, unknown>;
}

export class FondsError extends Error {
  readonly code: ErrorCode;
  readonly details?: Record<string, unknown>;

  constructor(code: ErrorCode, message: string, details?: Record<string, unknown>) {
    super(message);
    this.name = 'FondsError';
    this.code = code;
    this.details = details;
  }

  toJSON(): ErrorShape {
    return { code: this.code, message: this.message, ...(this.details ? { details: this.details } : {}) };
  }
}

export function isErrorShape(value: unknown): value is ErrorShape {
  return (
    typeof value === 'object' &&
    value !== null &&
    typeof (value as ErrorShape).code === 'string' &&
    (ErrorCodes as readonly string[]).includes((value as ErrorShape).code) &&
    typeof (value as ErrorShape).message === 'string'
  );
}

/** Turns anything thrown into an ErrorShape without losing a FondsError's code. */
export function toErrorShape(err: unknown): ErrorShape {
  if (err instanceof FondsError) return err.toJSON();
  if (isErrorShape(err)) return err;
  const message = err instanceof Error ? err.message : String(err);
  return { code: 'INTERNAL', message };
}

/** HTTP status for each code, used by the headless server. */
export const httpStatusOf: Record<ErrorCode, number> = {
  INVALID_INPUT: 400,
  NOT_FOUND: 404,
  CONFLICT: 409,
  CONFIG_INVALID: 500,
  PATH_OUTSIDE_ROOT: 400,
  PATH_INVALID: 400,
  IO_ERROR: 500,
  CHECK_FAILED: 409,
  UNAUTHORIZED: 401,
  FORBIDDEN: 403,
  PAYLOAD_TOO_LARGE: 413,
  UNAVAILABLE: 503,
  CANCELLED: 409,
  INTERNAL: 500,
};
