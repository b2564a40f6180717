/**
 * Process exit codes of the `zipstream` binary. Stable: scripts may branch on them.
 * Documented in the README and in `zipstream --help`.
 */
export const EXIT = {
  /** Everything succeeded. */
  OK: 0,
  /** Any failure not covered below (network, upload, S3 server error, a failed batch). */
  OTHER: 1,
  /** Bad command line, bad flag value, unreadable jobs file or password source. */
  USAGE: 2,
  /** A source key, bucket, prefix or local path does not exist (or matched nothing). */
  SOURCE_NOT_FOUND: 3,
  /** The credentials are not allowed to read a source or write the destination. */
  ACCESS_DENIED: 4,
  /**
   * The destination is invalid: bad key, missing bucket, a local path that is a directory, one of
   * the sources or inside one, not writable, or an existing non-ZIP file without `--force`.
   */
  INVALID_DEST: 5,
  /** Interrupted by SIGINT/SIGTERM or aborted; nothing was left behind. */
  ABORTED: 6,
  /** The sources cannot form a valid archive (bad or duplicate names, Zip64 needed but refused). */
  INVALID_INPUT: 7,
  /** A source object changed while it was being read. */
  SOURCE_CHANGED: 8,
  /** `zipstream verify` found a problem in the archive (the report lists each with its code). */
  VERIFY_FAILED: 9,
} as const;

export type ExitCode = (typeof EXIT)[keyof typeof EXIT];

/** Help-text table of the exit codes. */
export const EXIT_CODES_HELP = `Exit codes:
  0  success
  1  other failure (network, S3 server error, upload failed; a batch with failed jobs)
  2  usage error (bad arguments or flag values, unreadable --jobs or password file)
  3  source not found (missing key, bucket, prefix with no object, local path)
  4  access denied
  5  invalid destination (bad key, missing destination bucket, a directory, a source or a path
     inside one, an existing file that is not a ZIP without --force, unwritable path)
  6  aborted (SIGINT/SIGTERM); the multipart upload is aborted, no output is left
  7  invalid archive input (bad or duplicate entry names, Zip64 needed with --zip64 never)
  8  a source object changed while it was read
  9  verify: the archive has a problem (each is listed with its code)`;

/** Thrown for command-line problems; maps to exit code 2. */
export class UsageError extends Error {
  constructor(message: string) {
    super(message);
    this.name = "UsageError";
  }
}

interface CodedError {
  code?: unknown;
  cause?: unknown;
  bucket?: unknown;
  name?: unknown;
}

/**
 * Maps any failure to an exit code. ZipError codes (core's and `ERR_S3_*`) decide; Node's errno
 * codes (ENOENT, EACCES) cover local paths. `destBucket` tells a missing destination bucket
 * (invalid destination) from a missing source bucket (source not found).
 */
export function exitCodeFor(err: unknown, context: { destBucket?: string; localDest?: string } = {}): ExitCode {
  if (err instanceof UsageError) return EXIT.USAGE;
  const e = (err ?? {}) as CodedError;
  switch (e.code) {
    case "ERR_ABORTED":
      return EXIT.ABORTED;
    case "ERR_S3_NO_SUCH_KEY":
    case "ERR_S3_EMPTY_SOURCE":
      return EXIT.SOURCE_NOT_FOUND;
    case "ERR_S3_NO_SUCH_BUCKET":
      return context.destBucket !== undefined && e.bucket === context.destBucket
        ? EXIT.INVALID_DEST
        : EXIT.SOURCE_NOT_FOUND;
    case "ERR_S3_ACCESS_DENIED":
      return EXIT.ACCESS_DENIED;
    case "ERR_S3_INVALID_DEST":
    case "ERR_LOCAL_DEST":
      return EXIT.INVALID_DEST;
    case "ERR_S3_SOURCE_CHANGED":
      return EXIT.SOURCE_CHANGED;
    case "ERR_INVALID_NAME":
    case "ERR_DUPLICATE_NAME":
    case "ERR_ZIP64_REQUIRED":
    case "ERR_INVALID_ENTRY":
      return EXIT.INVALID_INPUT;
    case "ERR_LOCAL_SOURCE_MISSING":
    case "ENOENT":
      return EXIT.SOURCE_NOT_FOUND;
    case "EACCES":
    case "EPERM":
      return EXIT.ACCESS_DENIED;
    case "ERR_SOURCE":
      // A local source failed to open: classify by the original errno.
      if (e.cause !== undefined) {
        const inner = exitCodeFor(e.cause, context);
        if (inner !== EXIT.OTHER) return inner;
      }
      return EXIT.OTHER;
  }
  if (e.name === "AbortError") return EXIT.ABORTED;
  return EXIT.OTHER;
}
