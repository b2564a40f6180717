/**
 * Lambda handlers of a distributed archive (docs/distributed.md), in the same bundle as
 * `handler`: `planHandler` → a Map over `segments` calling `segmentHandler` → `finalizeHandler`,
 * with `abortHandler` on failure. What travels between states is the plan's location and the
 * segment indexes, never the members (a state carries 256 KB at most).
 *
 * Errors are `LambdaZipError`s whose `name` is the stable code, so a state machine's Retry/Catch
 * match on it (`ERR_S3_PLAN_INCOMPLETE`, `ERR_S3_UPLOAD`, `ERR_TIMEOUT`, ...).
 */
import type { S3Client } from "@aws-sdk/client-s3";
import { ZipError, intOption } from "@zipstream/core";
import { abortArchive, finalizeArchive, pendingSegments, planArchive, runSegment, type AbortArchiveResult, type ArchiveResult, type ArchivePlanOptions } from "@zipstream/s3";
import { envNumber, getS3Client, passwordSource, readPasswordSecret, type SecretsReader } from "./config.js";
import { LambdaZipError, invalidEvent, type EventIssue } from "./errors.js";
import { nameMapper, safetyMargin, toSources, type LambdaContext } from "./handler.js";
import { validateEvent } from "./schema.js";

/** `planHandler`'s event: the single-Lambda event, plus where the plan goes and the segment limits. */
export interface PlanEvent {
  plan?: { bucket: string; key: string };
  segment?: { bytes?: number; parts?: number; members?: number };
  [k: string]: unknown;
}

/** What `planHandler` returns: the input of the Map state. */
export interface PlanOutput {
  plan: string;
  /** 0..n-1, for the Map's ItemsPath. */
  segments: number[];
  members: number;
  mode: "copy" | "compress";
  size?: number;
  /** The name of the password's environment variable, handed on to the segments (null: none). */
  passwordEnv: string | null;
}

/** `segmentHandler`'s, `finalizeHandler`'s and `abortHandler`'s event. */
export interface SegmentEvent {
  plan: string;
  segment?: number;
  passwordEnv?: string | null;
}

export interface DistributedHandlerOptions {
  client?: S3Client | (() => S3Client);
  env?: NodeJS.ProcessEnv;
  /** Reads Secrets Manager secrets (see `ZIPSTREAM_PASSWORDS`). Default: from the environment. */
  secrets?: SecretsReader;
}

const clientOf = (o: DistributedHandlerOptions, env: NodeJS.ProcessEnv) => (typeof o.client === "function" ? o.client() : (o.client ?? getS3Client(env)));

function toLambda(cause: unknown): LambdaZipError {
  if (cause instanceof LambdaZipError) return cause;
  if (cause instanceof ZipError) return new LambdaZipError(cause.code, cause.message, { cause, ...(cause.entry !== undefined ? { entry: cause.entry } : {}) });
  if (cause instanceof TypeError) return invalidEvent([{ path: "", message: cause.message }]);
  return new LambdaZipError("ERR_INTERNAL", `Unexpected failure: ${cause instanceof Error ? cause.message : String(cause)}`, { cause });
}

/**
 * The password named by `name`, under the single-Lambda handler's rule: only names configured at
 * deploy time (`ZIPSTREAM_PASSWORDS`) are accepted; a name bound to a Secrets Manager secret is
 * read from it (cached), any other from the environment.
 */
async function passwordFrom(o: DistributedHandlerOptions, env: NodeJS.ProcessEnv, name: string | undefined, issues: EventIssue[]): Promise<string | undefined> {
  if (name === undefined) return undefined;
  const source = passwordSource(name, env);
  if ("problem" in source) {
    issues.push({ path: "passwordEnv", message: source.problem });
    return undefined;
  }
  return "value" in source ? source.value : readPasswordSecret(source.secretId, env, o.secrets);
}

function planRef(event: unknown): SegmentEvent {
  const e = event as SegmentEvent | undefined;
  const issues: EventIssue[] = [];
  if (typeof e?.plan !== "string" || !/^s3:\/\/[^/]+\/.+/.test(e.plan)) issues.push({ path: "plan", message: "plan must be s3://bucket/key" });
  try {
    intOption("segment", e?.segment, 0);
  } catch (err) {
    issues.push({ path: "segment", message: (err as Error).message });
  }
  if (e?.passwordEnv !== undefined && e.passwordEnv !== null && typeof e.passwordEnv !== "string") issues.push({ path: "passwordEnv", message: "passwordEnv must be a string" });
  if (issues.length > 0) throw invalidEvent(issues);
  return e!;
}

/** An AbortSignal that fires a safety margin before the function's deadline. */
function deadline(context: LambdaContext | undefined, env: NodeJS.ProcessEnv): { signal: AbortSignal; clear: () => void } {
  const c = new AbortController();
  const left = context?.getRemainingTimeInMillis?.();
  if (left === undefined || !Number.isFinite(left)) return { signal: c.signal, clear: () => undefined };
  // The same margin as the single-job handler, configured the same way.
  const margin = safetyMargin(left, envNumber(env, "ZIPSTREAM_SAFETY_MARGIN_MS"));
  const t = setTimeout(() => c.abort(new LambdaZipError("ERR_TIMEOUT", "Lambda time budget exhausted")), Math.max(0, left - margin));
  return { signal: c.signal, clear: () => clearTimeout(t) };
}

/** Builds the four handlers (the bundle exports them built from the environment). */
export function createDistributedHandlers(options: DistributedHandlerOptions = {}) {
  const envOf = () => options.env ?? process.env;
  return {
    /** Plans the archive; returns `{ plan, segments: [0..n-1], ... }` for the Map. */
    async plan(event: unknown, context?: LambdaContext): Promise<PlanOutput> {
      const env = envOf();
      const { plan, segment, ...rest } = (event ?? {}) as PlanEvent;
      const { event: ev, issues } = validateEvent(rest);
      const passwordEnv = ev?.options?.password?.env;
      const password = await passwordFrom(options, env, passwordEnv, issues);
      if (plan !== undefined && (typeof plan?.bucket !== "string" || typeof plan.key !== "string")) issues.push({ path: "plan", message: "plan must be { bucket, key }" });
      if (issues.length > 0 || !ev) throw invalidEvent(issues);
      const o = ev.options ?? {};
      const d = deadline(context, env);
      try {
        const opts: ArchivePlanOptions = {
          client: clientOf(options, env),
          src: toSources(ev),
          dest: ev.dest,
          plan,
          segment,
          method: o.method,
          level: o.level,
          partSize: o.partSize,
          copyMinSize: o.copyMinSize,
          onMissing: o.onMissing,
          duplicates: o.duplicates,
          zip64: o.zip64,
          allowEmpty: o.allowEmpty,
          password,
          signal: d.signal,
        };
        const name = nameMapper(o);
        if (name) opts.name = name;
        const p = await planArchive(opts);
        return {
          plan: `s3://${p.location.bucket}/${p.location.key}`,
          segments: Array.from({ length: p.segments }, (_, i) => i),
          members: p.members,
          mode: p.mode,
          ...(p.size !== undefined ? { size: p.size } : {}),
          passwordEnv: passwordEnv ?? null,
        };
      } catch (err) {
        throw toLambda(err);
      } finally {
        d.clear();
      }
    },

    /** Runs one segment (idempotent: a retry sends the same parts); returns a small summary. */
    async segment(event: unknown, context?: LambdaContext): Promise<{ segment: number; parts: number; members: number; bytesRead: number; bytesUploaded: number; bytesCopied: number }> {
      const env = envOf();
      const e = planRef(event);
      const issues: EventIssue[] = [];
      if (e.segment === undefined) issues.push({ path: "segment", message: "segment is required" });
      const password = await passwordFrom(options, env, e.passwordEnv ?? undefined, issues);
      if (issues.length > 0) throw invalidEvent(issues);
      const d = deadline(context, env);
      try {
        const r = await runSegment({ client: clientOf(options, env), plan: e.plan, segment: e.segment!, password, signal: d.signal });
        return { segment: r.index, parts: r.parts.length, members: r.crcs.length, bytesRead: r.bytesRead, bytesUploaded: r.bytesUploaded, bytesCopied: r.bytesCopied };
      } catch (err) {
        throw toLambda(d.signal.aborted ? d.signal.reason : err);
      } finally {
        d.clear();
      }
    },

    /** Builds the central directory and completes the archive. */
    async finalize(event: unknown, context?: LambdaContext): Promise<ArchiveResult> {
      const env = envOf();
      const e = planRef(event);
      const d = deadline(context, env);
      try {
        return await finalizeArchive({ client: clientOf(options, env), plan: e.plan, signal: d.signal });
      } catch (err) {
        throw toLambda(d.signal.aborted ? d.signal.reason : err);
      } finally {
        d.clear();
      }
    },

    /** Aborts the upload once and removes the plan's files (a second call does nothing). */
    async abort(event: unknown): Promise<AbortArchiveResult> {
      const e = planRef(event);
      try {
        return await abortArchive({ client: clientOf(options, envOf()), plan: e.plan });
      } catch (err) {
        throw toLambda(err);
      }
    },
  };
}

/** What the single-Lambda handler returns for a planned archive it could not finish in time. */
export interface ContinueResult {
  status: "continue";
  /** Invoke again with `{ plan }` (this value) until the result has `status: "complete"`. */
  plan: string;
  /** Segments still to run. */
  segmentsLeft: number;
}

/**
 * A planned archive in one function, across as many invocations as it needs: the event is the
 * single-Lambda event plus `plan: { bucket, key }` (first call: plans it), or just
 * `{ plan: "s3://…" }` (a later call). Segments run one after another while the time budget
 * lasts; when it runs low, the function returns `{ status: "continue", plan }` instead of
 * failing with ERR_TIMEOUT (a segment cut by the budget is rerun next time: runs are
 * idempotent). When every segment has run, it finalizes and returns `{ status: "complete", ... }`.
 */
export function createContinuingHandler(options: DistributedHandlerOptions = {}) {
  const h = createDistributedHandlers(options);
  return async (event: unknown, context?: LambdaContext): Promise<ContinueResult | (ArchiveResult & { status: "complete" })> => {
    const env = options.env ?? process.env;
    const e = (event ?? {}) as { plan?: unknown; passwordEnv?: string | null };
    let url: string;
    let passwordEnv = e.passwordEnv ?? undefined;
    if (typeof e.plan === "string") url = planRef(event).plan;
    else {
      const planned = await h.plan(event, context);
      url = planned.plan;
      passwordEnv = planned.passwordEnv ?? undefined;
    }
    const left = () => context?.getRemainingTimeInMillis?.() ?? Infinity;
    const client = clientOf(options, env);
    let pending: number[];
    try {
      pending = await pendingSegments(client, url);
    } catch (err) {
      throw toLambda(err);
    }
    // Stop before a segment when less than twice the longest one so far (or the margin) is left.
    let longest = 0;
    while (pending.length > 0) {
      const budget = left();
      if (Number.isFinite(budget) && budget - safetyMargin(budget) < 2 * longest) return { status: "continue", plan: url, segmentsLeft: pending.length };
      const started = Date.now();
      try {
        await h.segment({ plan: url, segment: pending[0], passwordEnv }, context);
      } catch (err) {
        if (err instanceof LambdaZipError && err.code === "ERR_TIMEOUT") return { status: "continue", plan: url, segmentsLeft: pending.length };
        throw err;
      }
      longest = Math.max(longest, Date.now() - started);
      pending.shift();
    }
    const budget = left();
    if (Number.isFinite(budget) && budget - safetyMargin(budget) < 2 * longest) return { status: "continue", plan: url, segmentsLeft: 0 };
    return { status: "complete", ...(await h.finalize({ plan: url }, context)) };
  };
}

const built = createDistributedHandlers();
/** `index.continuingHandler`: {@link createContinuingHandler} built from the environment. */
export const continuingHandler = createContinuingHandler();
/** Handler names in the bundle: `index.planHandler`, `index.segmentHandler`, `index.finalizeHandler`, `index.abortHandler`. */
export const planHandler = built.plan;
export const segmentHandler = built.segment;
export const finalizeHandler = built.finalize;
export const abortHandler = built.abort;
