import { parseArgs, type ParseArgsConfig } from "node:util";
import { intOption } from "@zipstream/core";
import { MAX_PART_SIZE, MIN_PART_SIZE } from "@zipstream/s3/limits";
import { UsageError } from "./exit-codes.js";
import { parseDuration, parseSize } from "./units.js";

/** Flags understood by `zipstream` (parsed with `node:util` parseArgs). */
export const OPTIONS = {
  // S3 client
  endpoint: { type: "string" },
  region: { type: "string" },
  profile: { type: "string" },
  "path-style": { type: "boolean" },
  "expected-bucket-owner": { type: "string", multiple: true },
  // encoding
  method: { type: "string" },
  level: { type: "string" },
  zip64: { type: "string" },
  duplicates: { type: "string" },
  "password-env": { type: "string" },
  "password-file": { type: "string" },
  // upload and read tuning
  "part-size": { type: "string" },
  "equal-parts": { type: "boolean" },
  concurrency: { type: "string" },
  "prefetch-objects": { type: "string" },
  "prefetch-bytes": { type: "string" },
  assembly: { type: "string" },
  "copy-min-size": { type: "string" },
  // names and sources
  names: { type: "string" },
  "strip-prefix": { type: "string" },
  "on-missing": { type: "string" },
  "follow-symlinks": { type: "boolean" },
  "allow-outside-symlinks": { type: "boolean" },
  // destination object
  "content-type": { type: "string" },
  "content-disposition": { type: "string" },
  "cache-control": { type: "string" },
  "storage-class": { type: "string" },
  sse: { type: "string" },
  "sse-kms-key-id": { type: "string" },
  metadata: { type: "string", multiple: true },
  tag: { type: "string", multiple: true },
  // modes and output
  manifest: { type: "string" },
  "dry-run": { type: "boolean" },
  force: { type: "boolean" },
  // verify
  expect: { type: "string" },
  deep: { type: "boolean" },
  "local-headers": { type: "string" },
  jobs: { type: "string" },
  parallel: { type: "string" },
  "older-than": { type: "string" },
  // distributed archives (see distributed.ts)
  plan: { type: "string" },
  workers: { type: "string" },
  "keep-plan": { type: "boolean" },
  "segment-size": { type: "string" },
  quiet: { type: "boolean", short: "q" },
  json: { type: "boolean" },
  help: { type: "boolean", short: "h" },
  version: { type: "boolean", short: "V" },
} as const satisfies ParseArgsConfig["options"];

export type RawValues = { [K in keyof typeof OPTIONS]?: (typeof OPTIONS)[K] extends { multiple: true } ? string[] : (typeof OPTIONS)[K]["type"] extends "boolean" ? boolean : string };

/** Flags that make sense inside a `--jobs` entry's `options` (per-archive settings). */
export const JOB_OPTION_NAMES = [
  "method", "level", "zip64", "duplicates", "password-env", "password-file", "part-size",
  "equal-parts", "concurrency", "prefetch-objects", "prefetch-bytes", "assembly", "copy-min-size", "names", "strip-prefix",
  "on-missing", "content-type", "content-disposition", "cache-control", "storage-class", "sse",
  "sse-kms-key-id", "metadata", "tag", "manifest", "follow-symlinks", "allow-outside-symlinks", "force",
] as const;

/** Subcommands of a distributed archive (plan, its segments, finalize, resume, abort). */
export const DISTRIBUTED_COMMANDS = ["plan", "run-segment", "finalize", "resume", "abort"] as const;

export interface CommandLine {
  command: "zip" | "cleanup" | "verify" | (typeof DISTRIBUTED_COMMANDS)[number];
  positionals: string[];
  values: RawValues;
}

/** Parses argv (without node and script). Throws {@link UsageError} on unknown flags. */
export function parseCommandLine(argv: string[]): CommandLine {
  // A password on the command line would land in shell history and `ps`: refuse it loudly.
  for (const a of argv) {
    if (/^--password(=|$)/.test(a) || a === "-P") {
      throw new UsageError(
        "passwords are never accepted on the command line; use --password-env NAME or --password-file FILE",
      );
    }
  }
  let parsed;
  try {
    parsed = parseArgs({ args: argv, options: OPTIONS, allowPositionals: true, strict: true });
  } catch (err) {
    throw new UsageError((err as Error).message.replace(/\. To specify a positional.*$/s, ""));
  }
  const positionals = [...parsed.positionals];
  let command: CommandLine["command"] = "zip";
  if (positionals[0] === "cleanup" || positionals[0] === "verify" || (DISTRIBUTED_COMMANDS as readonly string[]).includes(positionals[0] ?? "")) {
    command = positionals.shift() as CommandLine["command"];
  }
  return { command, positionals, values: parsed.values as RawValues };
}

/** Settings of one archive job, validated. */
export interface JobOptions {
  method: "store" | "deflate";
  level?: number;
  zip64?: "auto" | "always" | "never";
  duplicates?: "error" | "rename" | "allow";
  passwordEnv?: string;
  passwordFile?: string;
  partSize?: number;
  equalParts?: boolean;
  concurrency?: number;
  prefetchObjects?: number;
  prefetchBytes?: number;
  /** S3 to S3 only: how the archive is built (zipS3Keys' `assembly`). */
  assembly?: "auto" | "stream" | "copy";
  copyMinSize?: number;
  names: "relative" | "full" | "basename";
  stripPrefix?: string;
  onMissing: "error" | "skip";
  /** Follow symlinks in local directories (default: store them as links). */
  followSymlinks?: boolean;
  /** Store or follow symlinks that lead outside the source tree (default: refused). */
  allowOutsideSymlinks?: boolean;
  /** Replace an existing local destination that is not a ZIP archive. */
  force?: boolean;
  contentType?: string;
  contentDisposition?: string;
  cacheControl?: string;
  storageClass?: string;
  sse?: string;
  sseKmsKeyId?: string;
  metadata?: Record<string, string>;
  tags?: Record<string, string>;
  manifest?: string;
}

function oneOf<T extends string>(flag: string, value: unknown, allowed: readonly T[]): T | undefined {
  if (value === undefined) return undefined;
  if (typeof value !== "string" || !(allowed as readonly string[]).includes(value)) {
    throw new UsageError(`--${flag} must be one of ${allowed.join(", ")} (got ${JSON.stringify(value)})`);
  }
  return value as T;
}

/** The range check is the library's one ({@link intOption}); its TypeError becomes a usage error naming the flag. */
function inRange(flag: string, n: number | undefined, value: unknown, min: number, max: number | undefined, what: string): number {
  try {
    return intOption(`--${flag}`, n ?? NaN, min, max)!;
  } catch (err) {
    throw new UsageError(`${(err as Error).message.replace(/; got .*$/s, "")}${what}; got ${JSON.stringify(value)}`);
  }
}

/** A flag's whole number (digits only, or a number from a jobs file) from `min` to `max`. */
export function integer(flag: string, value: unknown, min: number, max: number): number | undefined {
  if (value === undefined) return undefined;
  const n = typeof value === "number" ? value : typeof value === "string" && /^\d+$/.test(value.trim()) ? Number(value) : NaN;
  return inRange(flag, n, value, min, max, "");
}

/** A flag's size in bytes, with units (16MiB, 64M, 8388608), from `min` to `max`. */
export function size(flag: string, value: unknown, min: number, max?: number): number | undefined {
  if (value === undefined) return undefined;
  const n = typeof value === "number" ? value : typeof value === "string" ? parseSize(value) : undefined;
  return inRange(flag, n, value, min, max, " bytes, a size such as 16MiB, 64M or 8388608");
}

function str(flag: string, value: unknown): string | undefined {
  if (value === undefined) return undefined;
  if (typeof value !== "string" || value === "") throw new UsageError(`--${flag} needs a non-empty value`);
  return value;
}

function bool(flag: string, value: unknown): boolean | undefined {
  if (value === undefined) return undefined;
  if (typeof value !== "boolean") throw new UsageError(`--${flag} is a switch (true or false)`);
  return value;
}

/** Parses repeatable `k=v` pairs (or, from a jobs file, an object). */
function pairs(flag: string, value: unknown): Record<string, string> | undefined {
  if (value === undefined) return undefined;
  const out: Record<string, string> = {};
  if (typeof value === "object" && value !== null && !Array.isArray(value)) {
    for (const [k, v] of Object.entries(value)) {
      if (typeof v !== "string") throw new UsageError(`--${flag}: value of ${k} must be a string`);
      out[k] = v;
    }
    return out;
  }
  const list = Array.isArray(value) ? value : [value];
  for (const item of list) {
    const s = String(item);
    const eq = s.indexOf("=");
    if (eq <= 0) throw new UsageError(`--${flag} takes key=value (got ${JSON.stringify(s)})`);
    out[s.slice(0, eq)] = s.slice(eq + 1);
  }
  return out;
}

/** kebab-case flag name from a jobs-file key that may be camelCase. */
export function toFlagName(key: string): string {
  return key.replace(/[A-Z]/g, (c) => `-${c.toLowerCase()}`);
}

/**
 * Validates the per-archive settings from flag values (or a jobs-file `options` object already
 * merged over the command-line flags). Every problem is a {@link UsageError} naming the flag.
 */
export function resolveJobOptions(raw: Record<string, unknown>): JobOptions {
  const method = oneOf("method", raw["method"], ["store", "deflate"] as const) ?? "store";
  const level = integer("level", raw["level"], 0, 9);
  if (level !== undefined && method === "store") {
    throw new UsageError("--level only applies to --method deflate");
  }
  const passwordEnv = str("password-env", raw["password-env"]);
  const passwordFile = str("password-file", raw["password-file"]);
  if (passwordEnv !== undefined && passwordFile !== undefined) {
    throw new UsageError("use either --password-env or --password-file, not both");
  }
  // The library's bounds (S3's part limits), from the light entry that does not load the S3 stack.
  const partSize = size("part-size", raw["part-size"], MIN_PART_SIZE, MAX_PART_SIZE);
  return {
    method,
    level,
    zip64: oneOf("zip64", raw["zip64"], ["auto", "always", "never"] as const),
    duplicates: oneOf("duplicates", raw["duplicates"], ["error", "rename", "allow"] as const),
    passwordEnv,
    passwordFile,
    partSize,
    equalParts: bool("equal-parts", raw["equal-parts"]),
    concurrency: integer("concurrency", raw["concurrency"], 1, 64),
    prefetchObjects: integer("prefetch-objects", raw["prefetch-objects"], 1, 1024),
    prefetchBytes: size("prefetch-bytes", raw["prefetch-bytes"], 1),
    assembly: oneOf("assembly", raw["assembly"], ["auto", "stream", "copy"] as const),
    copyMinSize: size("copy-min-size", raw["copy-min-size"], MIN_PART_SIZE),
    names: oneOf("names", raw["names"], ["relative", "full", "basename"] as const) ?? "relative",
    stripPrefix: str("strip-prefix", raw["strip-prefix"]),
    onMissing: oneOf("on-missing", raw["on-missing"], ["error", "skip"] as const) ?? "error",
    followSymlinks: bool("follow-symlinks", raw["follow-symlinks"]),
    allowOutsideSymlinks: bool("allow-outside-symlinks", raw["allow-outside-symlinks"]),
    force: bool("force", raw["force"]),
    contentType: str("content-type", raw["content-type"]),
    contentDisposition: str("content-disposition", raw["content-disposition"]),
    cacheControl: str("cache-control", raw["cache-control"]),
    storageClass: str("storage-class", raw["storage-class"]),
    sse: str("sse", raw["sse"]),
    sseKmsKeyId: str("sse-kms-key-id", raw["sse-kms-key-id"]),
    metadata: pairs("metadata", raw["metadata"]),
    tags: pairs("tag", raw["tag"]),
    manifest: str("manifest", raw["manifest"]),
  };
}

/** Youngest upload `cleanup` aborts without `--force`: younger ones may belong to a job still running. */
export const CLEANUP_MIN_AGE_MS = 60 * 60 * 1000;

/** `--older-than` for `cleanup`, in milliseconds. Below one hour it needs `force` (a dry run does not). */
export function resolveOlderThan(value: string | undefined, force = true): number {
  if (value === undefined) throw new UsageError("cleanup needs --older-than AGE (e.g. 24h, 90m, 7d)");
  const ms = parseDuration(value);
  if (ms === undefined) throw new UsageError(`--older-than must be a duration such as 24h, 90m or 7d (got ${JSON.stringify(value)})`);
  if (ms < CLEANUP_MIN_AGE_MS && !force) {
    throw new UsageError(
      `--older-than ${value} is under 1h: it would abort uploads that may still be running (other jobs, other tools); add --force to do it anyway`,
    );
  }
  return ms;
}

/** `--parallel` for batch mode. */
export function resolveParallel(value: string | undefined): number {
  return integer("parallel", value, 1, 64) ?? 2;
}
