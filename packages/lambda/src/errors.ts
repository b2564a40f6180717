import { ZipError, type ZipErrorCode } from "@zipstream/core";

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

  constructor(code: ZipErrorCode, message: string, options: { cause?: unknown; entry?: string; issues?: EventIssue[] } = {}) {
    super(code, message, options);
    this.name = code;
    if (options.issues !== undefined) this.issues = options.issues;
  }

  /** Plain JSON form, as returned to a caller or written to a log line. */
  toJSON(): { code: string; message: string; entry?: string; issues?: EventIssue[] } {
    return {
      code: this.code,
      message: this.message,
      ...(this.entry !== undefined ? { entry: this.entry } : {}),
      ...(this.issues !== undefined ? { issues: this.issues } : {}),
    };
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
