import { ZipError, type ZipErrorCode } from "@zipstream/core";
import type { LeftBehind } from "@zipstream/s3";

/** One problem found in an invocation event: where (`path`, e.g. `src[1].keys[3]`) and what. */
export interface EventIssue {
  /** Location in the event, in JavaScript accessor notation (`options.prefetch.bytes`); `""` is the event itself. */
  path: string;
  message: string;
}

/**
 * The error the handler throws. Its `name` is the stable `code` (e.g. `ERR_TIMEOUT`), because the
 * Lambda runtime reports `error.name` as `errorType`, which is what Step Functions `Catch`/`Retry`
 * rules and `Lambda.InvokeCommand` callers match on. `cause` keeps the original failure
 * (an `S3ZipError`, a core `ZipError`, ...), whose code is copied here.
 */
export class LambdaZipError extends ZipError {
  /** For `ERR_INVALID_EVENT`: every problem found, each with its path. */
  readonly issues?: EventIssue[];
  /** What the failed job could not remove from S3 (the library's `S3ZipError.leftBehind`); absent when nothing is left. */
  readonly leftBehind?: LeftBehind;

  constructor(
    code: ZipErrorCode,
    message: string,
    options: { cause?: unknown; entry?: string; issues?: EventIssue[]; leftBehind?: LeftBehind } = {},
  ) {
    super(code, message, { cause: options.cause, entry: options.entry });
    this.name = code;
    if (options.issues !== undefined) this.issues = options.issues;
    if (options.leftBehind !== undefined) this.leftBehind = options.leftBehind;
  }

  /** Plain JSON form, as returned to a caller or written to a log line. */
  toJSON(): { code: string; message: string; entry?: string; issues?: EventIssue[]; leftBehind?: LeftBehind } {
    return {
      code: this.code,
      message: this.message,
      ...(this.entry !== undefined ? { entry: this.entry } : {}),
      ...(this.issues !== undefined ? { issues: this.issues } : {}),
      ...(this.leftBehind !== undefined ? { leftBehind: this.leftBehind } : {}),
    };
  }
}

/**
 * `ERR_TIMEOUT` of a job that did not settle within the grace period after its abort (its
 * multipart upload may not have been aborted). Told apart by class, never by message text.
 */
export class CleanupUnfinishedError extends LambdaZipError {
  constructor() {
    super("ERR_TIMEOUT", "the aborted job did not settle within the cleanup grace period");
  }
}

/** Builds the `ERR_INVALID_EVENT` error: the message lists every issue, one per line. */
export function invalidEvent(issues: EventIssue[]): LambdaZipError {
  const lines = issues.map((i) => `  - ${i.path === "" ? "(event)" : i.path}: ${i.message}`);
  return new LambdaZipError(
    "ERR_INVALID_EVENT",
    `Invalid event (${issues.length} problem${issues.length === 1 ? "" : "s"}):\n${lines.join("\n")}`,
    { issues },
  );
}
