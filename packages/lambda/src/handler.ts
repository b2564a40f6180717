import { setMaxListeners } from "node:events";
import type { S3Client } from "@aws-sdk/client-s3";
import { ZipError, printableName } from "@zipstream/core";
import {
  relativeName,
  S3ZipError,
  zipS3Keys,
  type LeftBehind,
  type S3ObjectRef,
  type S3Source,
  type ZipS3Options,
  type ZipS3Progress,
  type ZipS3Result,
} from "@zipstream/s3";
import { envNumber, getS3Client, passwordSource, readPasswordSecret, type SecretsReader } from "./config.js";
import { CleanupUnfinishedError, invalidEvent, LambdaZipError, type EventIssue } from "./errors.js";
import { createLogger, type Logger } from "./log.js";
import { entryCost, planMemory, type MemoryPlan } from "./memory.js";
import { validateEvent, type EventSourceObject, type ZipEvent } from "./schema.js";

/** The parts of the Lambda context object the handler uses (a subset of `aws-lambda`'s `Context`). */
export interface LambdaContext {
  awsRequestId: string;
  functionName?: string;
  functionVersion?: string;
  invokedFunctionArn?: string;
  /** The function's memory size. The Node runtime passes it as a string. */
  memoryLimitInMB?: string | number;
  getRemainingTimeInMillis?: () => number;
}

/** What a successful invocation returns (JSON). */
export interface ZipJobResult extends ZipS3Result {
  requestId: string;
  durationMs: number;
  /** Uncompressed bytes read from the sources. */
  bytesIn: number;
  /** The buffer sizes used (see the memory formula in the README). */
  memory: { partSize: number; concurrency: number; prefetch: { objects: number; bytes: number }; entryMemory: number };
}

export interface HandlerOptions {
  /** S3 client to use. Default: one built from the environment ({@link getS3Client}). */
  client?: S3Client | (() => S3Client);
  /** Environment to read (`password.env`, margins). Default `process.env`. */
  env?: NodeJS.ProcessEnv;
  /**
   * Least time kept in reserve when the job is stopped for lack of time. The margin is
   * max(this, 5 % of the time remaining at the start). Default: `ZIPSTREAM_SAFETY_MARGIN_MS`, else 10,000 ms.
   */
  safetyMarginMs?: number;
  /** Interval of progress log lines. Default: `ZIPSTREAM_PROGRESS_INTERVAL_MS`, else 30,000 ms. */
  progressIntervalMs?: number;
  /** Log line sink. Default: stdout. */
  write?: (line: string) => void;
  /** Reads Secrets Manager secrets (see `ZIPSTREAM_PASSWORDS`). Default: {@link getSecretsReader} from the environment. */
  secrets?: SecretsReader;
  /** How long a secret read from Secrets Manager is reused. Default: `ZIPSTREAM_SECRET_TTL_MS`, else 300,000 ms. */
  secretTtlMs?: number;
}

const DEFAULT_MARGIN_MS = 10_000;
const MARGIN_SHARE = 0.05;

/** Safety margin for a budget of `remainingMs`: max(minimum, 5 %). */
export function safetyMargin(remainingMs: number, minimumMs = DEFAULT_MARGIN_MS): number {
  return Math.max(minimumMs, Math.ceil(remainingMs * MARGIN_SHARE));
}


/** Builds a handler; {@link handler} is `createHandler()`. */
export function createHandler(options: HandlerOptions = {}) {
  return async function zipHandler(event: unknown, context: LambdaContext): Promise<ZipJobResult> {
    const started = Date.now();
    const env = options.env ?? process.env;
    const requestId = context?.awsRequestId ?? "unknown";
    const log = createLogger({
      base: { requestId, ...(context?.functionName ? { functionName: context.functionName } : {}) },
      ...(options.write ? { write: options.write } : {}),
    });

    // ---- 1. Validate everything before any S3 call.
    const memoryMB = memoryOf(context, env);
    const { event: ev, issues } = validateEvent(event);
    let plan: MemoryPlan | undefined;
    let password: string | undefined;
    let secretId: string | undefined;
    if (ev) {
      const o = ev.options ?? {};
      const p = planMemory(memoryMB, {
        ...(o.partSize !== undefined ? { partSize: o.partSize } : {}),
        ...(o.concurrency !== undefined ? { concurrency: o.concurrency } : {}),
        ...(o.prefetch !== undefined ? { prefetch: o.prefetch } : {}),
      });
      plan = p.plan;
      issues.push(...p.issues);
      const keysCost = eventKeysCost(ev);
      if (keysCost.bytes > plan.entryMemory) {
        issues.push({
          path: "src",
          message:
            `its ${keysCost.keys} object keys need about ${mib(keysCost.bytes)} MiB of bookkeeping (512 bytes plus key and name each), ` +
            `more than the ${mib(plan.entryMemory)} MiB a ${memoryMB} MB function allows; split the job or raise the memory size`,
        });
      }
      if (o.password) {
        // Only names configured at deploy time: an event must not pick any variable as password.
        const source = passwordSource(o.password.env, env);
        if ("problem" in source) issues.push({ path: "options.password.env", message: source.problem });
        else if ("secretId" in source) secretId = source.secretId;
        else {
          password = source.value;
          log.addSecret(password);
        }
      }
    }
    if (issues.length > 0 || !ev || !plan) {
      const err = invalidEvent(issues);
      log.error("invalid event", { errorCode: err.code, issues, durationMs: Date.now() - started });
      throw err;
    }
    if (secretId !== undefined) {
      // Read at run time (never in the function's configuration), cached between invocations.
      try {
        password = await readPasswordSecret(secretId, env, options.secrets, options.secretTtlMs);
        log.addSecret(password);
      } catch (err) {
        log.error("zip failed", { errorCode: (err as LambdaZipError).code, error: (err as Error).message, durationMs: Date.now() - started });
        throw err;
      }
    }

    // ---- 2. Time budget.
    const controller = new AbortController();
    // The signal reaches every in-flight S3 request (each adds a listener); without this, Node
    // prints a MaxListenersExceededWarning, a non-JSON line in the function's logs.
    setMaxListeners(10_000, controller.signal);
    let timedOut = false;
    let timer: NodeJS.Timeout | undefined;
    const remaining = () => (typeof context.getRemainingTimeInMillis === "function" ? context.getRemainingTimeInMillis() : Infinity);
    const startRemaining = remaining();
    const minMargin = options.safetyMarginMs ?? envNumber(env, "ZIPSTREAM_SAFETY_MARGIN_MS") ?? DEFAULT_MARGIN_MS;
    const margin = Number.isFinite(startRemaining) ? safetyMargin(startRemaining, minMargin) : 0;
    if (Number.isFinite(startRemaining) && startRemaining <= margin) {
      const err = new LambdaZipError(
        "ERR_TIMEOUT",
        `Not started: ${startRemaining} ms left of the function's time, less than the ${margin} ms safety margin`,
      );
      log.error("zip failed", { errorCode: err.code, error: err.message, remainingMs: startRemaining, marginMs: margin, durationMs: Date.now() - started });
      throw err;
    }
    const arm = () => {
      const left = remaining() - margin;
      if (left <= 0) {
        timedOut = true;
        controller.abort(new LambdaZipError("ERR_TIMEOUT", "Lambda time budget exhausted"));
      } else timer = setTimeout(arm, Math.min(left, 60_000));
    };
    if (Number.isFinite(startRemaining)) arm();

    // ---- 3. Run.
    let progress: ZipS3Progress = { entries: 0, bytesIn: 0, bytesOut: 0, partsUploaded: 0, bytesUploaded: 0 };
    const progressEvery = options.progressIntervalMs ?? envNumber(env, "ZIPSTREAM_PROGRESS_INTERVAL_MS") ?? 30_000;
    const ticker = setInterval(() => log.info("progress", progressFields(progress, started)), Math.max(100, progressEvery));
    const o = ev.options ?? {};
    log.info("zip started", {
      sources: countSources(ev),
      dest: { bucket: ev.dest.bucket, key: ev.dest.key },
      method: o.method ?? "store",
      encrypted: password !== undefined,
      memoryLimitInMB: memoryMB,
      partSize: plan.partSize,
      concurrency: plan.concurrency,
      prefetch: plan.prefetch,
      entryMemory: plan.entryMemory,
      remainingMs: Number.isFinite(startRemaining) ? startRemaining : null,
      marginMs: margin,
    });

    const client = typeof options.client === "function" ? options.client() : (options.client ?? getS3Client(env));
    const zipOptions: ZipS3Options = {
      client,
      src: toSources(ev),
      dest: ev.dest,
      partSize: plan.partSize,
      concurrency: plan.concurrency,
      prefetch: plan.prefetch,
      signal: controller.signal,
      onProgress: (p) => {
        progress = p;
      },
      maxEntryMemory: plan.entryMemory,
      ...pick(o, ["method", "level", "equalParts", "assembly", "copyMinSize", "onMissing", "onArchived", "duplicates", "zip64", "allowEmpty", "verify"] as const),
      ...(password !== undefined ? { password } : {}),
    };
    const name = nameMapper(o);
    if (name) zipOptions.name = name;

    const job = zipS3Keys(zipOptions);
    try {
      const result = await raceCleanup(job, controller.signal, margin);
      const durationMs = Date.now() - started;
      const out: ZipJobResult = {
        ...result,
        requestId,
        durationMs,
        bytesIn: progress.bytesIn,
        memory: { partSize: plan.partSize, concurrency: plan.concurrency, prefetch: plan.prefetch, entryMemory: plan.entryMemory },
      };
      log.info("zip complete", {
        bucket: result.bucket,
        key: result.key,
        entries: result.entries,
        bytes: result.size,
        bytesIn: progress.bytesIn,
        parts: result.parts,
        zip64: result.zip64,
        skipped: result.skipped.length,
        assembly: result.assembly,
        bytesCopied: result.bytesCopied,
        bytesRead: result.bytesRead,
        durationMs,
      });
      return out;
    } catch (cause) {
      const err = toLambdaError(cause, timedOut, { margin, progress, memoryMB });
      log.error("zip failed", {
        errorCode: err.code,
        error: err.message,
        ...(err.leftBehind !== undefined ? { leftBehind: err.leftBehind } : {}),
        ...(err.entry !== undefined ? { entry: printableName(err.entry) } : {}),
        ...(cause instanceof ZipError && cause.code !== err.code ? { causeCode: cause.code } : {}),
        ...progressFields(progress, started),
      });
      throw err;
    } finally {
      clearTimeout(timer);
      clearInterval(ticker);
    }
  };
}

/** The Lambda entry point (`index.handler` in the bundle). */
export const handler = createHandler();

/**
 * Once the signal fires, the job gets until the margin is almost spent (all but 2 s, at least 1 s)
 * to abort its multipart upload and settle; past that we return anyway so the error is reported
 * rather than lost to Lambda's own timeout.
 */
function raceCleanup<T>(job: Promise<T>, signal: AbortSignal, margin: number): Promise<T> {
  return new Promise<T>((resolve, reject) => {
    let grace: NodeJS.Timeout | undefined;
    const onAbort = () => {
      grace = setTimeout(
        () => reject(new CleanupUnfinishedError()),
        Math.max(1000, margin - 2000),
      );
    };
    if (signal.aborted) onAbort();
    else signal.addEventListener("abort", onAbort, { once: true });
    job.then(
      (v) => {
        clearTimeout(grace);
        signal.removeEventListener("abort", onAbort);
        resolve(v);
      },
      (e) => {
        clearTimeout(grace);
        signal.removeEventListener("abort", onAbort);
        reject(e);
      },
    );
  });
}

/** Words for what a failed job left in S3, from the library's `leftBehind` (never guessed). */
function leftBehindText(left: LeftBehind | undefined): string | undefined {
  if (left === undefined || (left.object === undefined && left.upload === undefined)) return undefined;
  const parts: string[] = [];
  if (left.object) {
    const o = left.object;
    parts.push(
      `the archive s3://${o.bucket}/${o.key}${o.versionId ? ` (version ${o.versionId})` : ""} was completed and could not be deleted again: it remains at the destination`,
    );
  }
  if (left.upload) {
    const u = left.upload;
    parts.push(
      `the multipart upload ${u.uploadId} of s3://${u.bucket}/${u.key} could not be aborted: it remains until the bucket's lifecycle rule or "zipstream cleanup" removes it`,
    );
  }
  return parts.join("; ");
}

/**
 * The handler's error for a failure of the job. Exported for tests. What is said about the
 * destination comes from the library's error (`leftBehind`, and its message as the cause's),
 * never assumed: a timed-out job whose cleanup failed must not be reported as leaving nothing.
 */
export function toLambdaError(
  cause: unknown,
  timedOut: boolean,
  s: { margin: number; progress: ZipS3Progress; memoryMB?: number },
): LambdaZipError {
  const done = `${s.progress.entries} entries and ${s.progress.partsUploaded} parts were written before stopping`;
  const leftBehind = cause instanceof S3ZipError ? cause.leftBehind : undefined;
  const left = leftBehindText(leftBehind);
  const withLeft = leftBehind !== undefined ? { leftBehind } : {};
  if (cause instanceof CleanupUnfinishedError) {
    return new LambdaZipError(
      "ERR_TIMEOUT",
      `The job could not finish within the function's time budget and was aborted ${s.margin} ms before the deadline, ` +
        `but aborting the multipart upload did not complete in time: an incomplete upload may remain until the bucket's lifecycle rule removes it (${done})`,
    );
  }
  if (timedOut) {
    const what =
      left !== undefined
        ? `stopping it did not leave the destination clean: ${left}`
        : cause instanceof ZipError && cause.code === "ERR_ABORTED"
          ? `its multipart upload was aborted and nothing was left at the destination`
          : `it then failed with ${cause instanceof ZipError ? cause.code : "an error"}: ${cause instanceof Error ? cause.message : String(cause)}`;
    return new LambdaZipError(
      "ERR_TIMEOUT",
      `The job could not finish within the function's time budget: it was aborted ${s.margin} ms before the deadline and ${what} (${done}). ` +
        `Raise the function timeout, or split the job`,
      { cause, ...withLeft },
    );
  }
  if (cause instanceof LambdaZipError) return cause;
  if (cause instanceof ZipError) {
    let message = cause.message;
    if (cause.code === "ERR_S3_TOO_MANY_ENTRIES" && s.memoryMB !== undefined) {
      message += ` (the limit derived from this function's ${s.memoryMB} MB; see the memory plan in the README)`;
    }
    if (left !== undefined && !message.includes(left)) message += ` (${left})`;
    return new LambdaZipError(cause.code, message, { cause, ...withLeft, ...(cause.entry !== undefined ? { entry: cause.entry } : {}) });
  }
  const message = cause instanceof Error ? cause.message : String(cause);
  return new LambdaZipError("ERR_INTERNAL", `Unexpected failure: ${message}`, { cause });
}

const mib = (bytes: number) => (bytes / (1024 * 1024)).toFixed(1);

/** Object keys the event names and the bookkeeping they cost (see `planMemory`). */
function eventKeysCost(ev: ZipEvent): { keys: number; bytes: number } {
  let keys = 0;
  let bytes = 0;
  for (const item of Array.isArray(ev.src) ? ev.src : [ev.src]) {
    for (const s of Array.isArray(item) ? item : [item]) {
      for (const k of s.keys ?? (s.key !== undefined ? [s.key] : [])) {
        keys++;
        bytes += entryCost(k, s.name ?? k);
      }
    }
  }
  return { keys, bytes };
}

function progressFields(p: ZipS3Progress, started: number) {
  return { entries: p.entries, bytesIn: p.bytesIn, bytes: p.bytesOut, parts: p.partsUploaded, durationMs: Date.now() - started };
}

function memoryOf(context: LambdaContext | undefined, env: NodeJS.ProcessEnv): number {
  const fromContext = Number(context?.memoryLimitInMB);
  if (Number.isFinite(fromContext) && fromContext > 0) return fromContext;
  const fromEnv = Number(env.AWS_LAMBDA_FUNCTION_MEMORY_SIZE);
  return Number.isFinite(fromEnv) && fromEnv > 0 ? fromEnv : 1024;
}

function pick<T extends object, K extends keyof T>(o: T, keys: readonly K[]): Partial<Pick<T, K>> {
  const out: Partial<Pick<T, K>> = {};
  for (const k of keys) if (o[k] !== undefined) out[k] = o[k];
  return out;
}

function countSources(ev: ZipEvent): number {
  return Array.isArray(ev.src) ? ev.src.length : 1;
}

function toRef(s: EventSourceObject): S3ObjectRef {
  const ref: S3ObjectRef = { bucket: s.bucket, key: s.key! };
  if (s.name !== undefined) ref.name = s.name;
  if (s.versionId !== undefined) ref.versionId = s.versionId;
  if (s.size !== undefined) ref.size = s.size;
  if (s.etag !== undefined) ref.etag = s.etag;
  return ref;
}

/**
 * The event's `src` as `zipS3Keys` sources, order kept: prefix and key-list sources pass through,
 * and consecutive single-object references are grouped into one array of refs.
 */
export function toSources(ev: Pick<ZipEvent, "src">): S3Source[] {
  const items = Array.isArray(ev.src) ? ev.src : [ev.src];
  const out: S3Source[] = [];
  let refs: S3ObjectRef[] | undefined;
  const flush = () => {
    if (refs) out.push(refs);
    refs = undefined;
  };
  for (const item of items) {
    if (Array.isArray(item)) {
      flush();
      out.push(item.map(toRef));
    } else if (item.key !== undefined) {
      (refs ??= []).push(toRef(item));
    } else {
      flush();
      if (item.prefix !== undefined) out.push({ bucket: item.bucket, prefix: item.prefix });
      else out.push({ bucket: item.bucket, keys: item.keys ?? [] });
    }
  }
  flush();
  return out;
}

/**
 * Entry-name mapping expressed as data. Undefined when no option is set, so `zipS3Keys`' default
 * (key relative to its source's prefix) applies; otherwise that default, then `stripPrefix`
 * (which, when given, replaces it), `flatten`, and `namePrefix`, in that order.
 */
export function nameMapper(o: { stripPrefix?: string; flatten?: boolean; namePrefix?: string }) {
  if (o.stripPrefix === undefined && !o.flatten && o.namePrefix === undefined) return undefined;
  return (key: string, src: { bucket: string; key: string; prefix?: string }): string => {
    let name = key;
    if (o.stripPrefix !== undefined) {
      if (name.startsWith(o.stripPrefix)) name = name.slice(o.stripPrefix.length);
    } else if (src.prefix !== undefined) {
      name = relativeName(name, src.prefix);
    }
    if (o.flatten) name = name.slice(name.lastIndexOf("/") + 1);
    name = name.replace(/^\/+/, "");
    return (o.namePrefix ?? "") + name;
  };
}

export type { EventIssue };
