/**
 * Structured logs: one JSON object per line on stdout, the shape CloudWatch Logs Insights indexes
 * without configuration (`timestamp`, `level`, `requestId`, `msg`, then fields). Written with
 * `process.stdout.write` rather than `console.log`, which the Lambda runtime would prefix with
 * tab-separated text in its default log format.
 */

export type LogLevel = "DEBUG" | "INFO" | "WARN" | "ERROR";
const ORDER: Record<LogLevel, number> = { DEBUG: 10, INFO: 20, WARN: 30, ERROR: 40 };

export interface Logger {
  debug(msg: string, fields?: Record<string, unknown>): void;
  info(msg: string, fields?: Record<string, unknown>): void;
  warn(msg: string, fields?: Record<string, unknown>): void;
  error(msg: string, fields?: Record<string, unknown>): void;
  /**
   * Registers a secret: a later field whose whole value equals it is written as `[REDACTED]`.
   * Substrings are left alone on purpose: replacing every occurrence of a short password inside
   * other text garbled the logs and, by where the marks fell, revealed the password.
   */
  addSecret(secret: string): void;
}

export interface LoggerOptions {
  /** Fields on every line (requestId, functionName...). */
  base?: Record<string, unknown>;
  /** Lowest level written. Default: `AWS_LAMBDA_LOG_LEVEL` (Lambda's advanced logging controls), else INFO. */
  level?: LogLevel;
  /** Where lines go. Default `process.stdout.write`. */
  write?: (line: string) => void;
}

export function createLogger(options: LoggerOptions = {}): Logger {
  const envLevel = (process.env.AWS_LAMBDA_LOG_LEVEL ?? "").toUpperCase();
  const min = ORDER[options.level ?? (envLevel in ORDER ? (envLevel as LogLevel) : "INFO")];
  const write = options.write ?? ((line: string) => void process.stdout.write(line));
  const secrets = new Set<string>();
  // Redaction by field: a field named like a secret, or whose value is a registered secret, is
  // replaced whole; nothing else in the line is touched.
  const replacer = (key: string, value: unknown): unknown => {
    if (value === undefined || value === null) return value;
    if (SECRET_FIELD.test(key) && typeof value !== "boolean") return REDACTED;
    if (typeof value === "string" && secrets.has(value)) return REDACTED;
    if (typeof value === "bigint") return value.toString();
    if (value instanceof Error) return { name: value.name, message: value.message };
    return value;
  };
  const emit = (level: LogLevel, msg: string, fields?: Record<string, unknown>) => {
    if (ORDER[level] < min) return;
    write(JSON.stringify({ timestamp: new Date().toISOString(), level, ...options.base, msg, ...fields }, replacer) + "\n");
  };
  return {
    debug: (m, f) => emit("DEBUG", m, f),
    info: (m, f) => emit("INFO", m, f),
    warn: (m, f) => emit("WARN", m, f),
    error: (m, f) => emit("ERROR", m, f),
    addSecret: (s) => {
      if (s.length > 0) secrets.add(s);
    },
  };
}

const REDACTED = "[REDACTED]";
/**
 * Field names whose values are never written (any depth): passwords, secrets, SSE-C keys,
 * credentials. `encrypted: true` stays readable (booleans are kept).
 */
const SECRET_FIELD = /password|passphrase|secret|customerkey|credential|authorization|token/i;
