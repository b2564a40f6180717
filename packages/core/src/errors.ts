/**
 * Every error zipstream raises is a {@link ZipError} (or a subclass) with a stable `code`.
 * Codes are part of the public API: match on `err.code`, never on the message.
 * The original failure, when there is one, is kept as `err.cause`.
 */
export type ZipErrorCode =
  /** An entry name is empty, absolute, has a `..` segment or a last `.` segment, a backslash or NUL, or is over 65,535 bytes. */
  | "ERR_INVALID_NAME"
  /** Two entries share a name (as the `collisions` option compares them) and `duplicates` is "error". */
  | "ERR_DUPLICATE_NAME"
  /** An entry is malformed (no source, both source and path, bad type, bad size…), an unsafe symlink, or its mode's type bits contradict its type. */
  | "ERR_INVALID_ENTRY"
  /** A source produced a different number of bytes than the entry's declared `size`. */
  | "ERR_SIZE_MISMATCH"
  /** A source's bytes do not match the entry's declared `crc32`. */
  | "ERR_CRC_MISMATCH"
  /** A source failed while being opened or read (`cause` holds the original error). */
  | "ERR_SOURCE"
  /** A limit needs Zip64 but `zip64` is "never". Raised before any inconsistent byte is written. */
  | "ERR_ZIP64_REQUIRED"
  /** The operation was aborted through an AbortSignal. */
  | "ERR_ABORTED"
  /** The entries iterable itself threw. */
  | "ERR_ENTRIES"
  /** zlib failed while compressing an entry (`cause` holds the zlib error). */
  | "ERR_COMPRESSION"
  /** An unexpected failure inside zipstream (a bug: please report it with `cause`). */
  | "ERR_INTERNAL"
  /** An AES encryptor was used after `final()` (a writer bug, never caused by input). */
  | "ERR_AES_STATE"
  | (string & {});

export interface ZipErrorOptions {
  cause?: unknown;
  /** Name of the entry the error concerns, when there is one. */
  entry?: string;
}

/** Base class of every error zipstream raises. */
export class ZipError extends Error {
  /** Stable, machine-readable error code (see {@link ZipErrorCode}). */
  readonly code: ZipErrorCode;
  /** The entry the error concerns, when there is one. */
  readonly entry?: string;

  constructor(code: ZipErrorCode, message: string, options: ZipErrorOptions = {}) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    this.name = "ZipError";
    this.code = code;
    if (options.entry !== undefined) this.entry = options.entry;
  }
}

/** True when `err` is a ZipError, optionally with the given code. */
export function isZipError(err: unknown, code?: ZipErrorCode): err is ZipError {
  return err instanceof ZipError && (code === undefined || err.code === code);
}
