/**
 * The invocation event: the JSON-expressible subset of `zipS3Keys` options, validated with zod.
 * Everything is checked before any S3 call, and every problem is reported at once with its path.
 */
import { intOption } from "@zipstream/core";
import { MAX_PART_SIZE, MIN_PART_SIZE, MIN_PREFETCH_BYTES, MIN_PREFETCH_OBJECTS } from "@zipstream/s3/limits";
import { z } from "zod";
import { invalidEvent, type EventIssue } from "./errors.js";

const MiB = 1024 * 1024;
const GiB = 1024 * MiB;
// The library's own bounds, so the schema cannot accept what zipS3Keys then refuses.
export { MIN_PART_SIZE, MAX_PART_SIZE };
/**
 * Most object keys one event may name (`keys` entries plus object references). An event of
 * 100,000 short keys is already about 5 MB of JSON, near Lambda's 6 MB synchronous payload
 * limit; the memory plan may allow fewer (see `planMemory`).
 */
export const MAX_EVENT_KEYS = 100_000;

const nonEmpty = (what: string) => z.string({ error: `${what} must be a string` }).min(1, { error: `${what} must not be empty` });
/** S3 object keys are at most 1,024 bytes of UTF-8. */
const key = (what: string) =>
  nonEmpty(what).refine((k) => Buffer.byteLength(k, "utf8") <= 1024, { error: `${what} is longer than 1024 bytes` });
const bucket = nonEmpty("bucket").refine((b) => !b.includes("/"), { error: "bucket must not contain '/'" });

/** `{ bucket, prefix }`, `{ bucket, keys }` or one object `{ bucket, key, name?, versionId? }`. */
const sourceObject = z
  .strictObject({
    bucket,
    prefix: z.string({ error: "prefix must be a string" }).optional(),
    keys: z.array(key("key"), { error: "keys must be an array of strings" }).optional(),
    key: key("key").optional(),
    name: nonEmpty("name").optional(),
    versionId: nonEmpty("versionId").optional(),
    size: z.number().int().nonnegative().optional(),
    etag: nonEmpty("etag").optional(),
  })
  .superRefine((s, ctx) => {
    const forms = (["prefix", "keys", "key"] as const).filter((f) => s[f] !== undefined);
    if (forms.length !== 1) {
      ctx.addIssue({
        code: "custom",
        message:
          forms.length === 0
            ? "a source needs exactly one of 'prefix', 'keys' or 'key'"
            : `a source needs exactly one of 'prefix', 'keys' or 'key', not ${forms.map((f) => `'${f}'`).join(" and ")}`,
      });
    }
    if (s.key === undefined) {
      for (const f of ["name", "versionId", "size", "etag"] as const) {
        if (s[f] !== undefined) ctx.addIssue({ code: "custom", path: [f], message: `'${f}' is only allowed with 'key'` });
      }
    }
  });

const objectRef = sourceObject.superRefine((s, ctx) => {
  // Without any form the base check has already said so; here only a valid non-ref form is wrong.
  if (s.key === undefined && (s.prefix !== undefined || s.keys !== undefined)) {
    ctx.addIssue({ code: "custom", message: "a list of object references holds { bucket, key } only; put prefix and keys sources directly in src" });
  }
});
const sourceItem = z.union([sourceObject, z.array(objectRef, { error: "expected a source object or an array of { bucket, key }" })]);
const src = z.union([sourceObject, z.array(sourceItem).min(1, { error: "src must not be an empty list" })]);

const tagOrMeta = z.record(z.string(), z.string({ error: "values must be strings" }));
const dest = z.strictObject({
  bucket,
  key: key("dest.key"),
  contentType: nonEmpty("contentType").optional(),
  contentDisposition: nonEmpty("contentDisposition").optional(),
  cacheControl: nonEmpty("cacheControl").optional(),
  storageClass: nonEmpty("storageClass").optional(),
  serverSideEncryption: nonEmpty("serverSideEncryption").optional(),
  sseKmsKeyId: nonEmpty("sseKmsKeyId").optional(),
  metadata: tagOrMeta.optional(),
  tags: tagOrMeta.optional(),
});

/**
 * Syntax of a `password.env` name. `AWS_*` and `_*` are refused outright: they hold the function's
 * own credentials and runtime settings. Which names may be used at all is decided at deploy time
 * (`ZIPSTREAM_PASSWORDS`, checked by the handler), so an event cannot pick another secret.
 */
const ENV_NAME = /^(?!AWS_|_)[A-Za-z_][A-Za-z0-9_]*$/;
const password = z.custom<{ env: string }>().superRefine((v, ctx) => {
  if (typeof v === "string") {
    // Never echo the value: it may be a real password someone pasted into the event.
    ctx.addIssue({ code: "custom", message: 'inline passwords are not accepted; use { "env": "VAR_NAME" } naming an environment variable (e.g. populated from Secrets Manager)' });
    return;
  }
  if (v === null || typeof v !== "object" || Array.isArray(v)) {
    ctx.addIssue({ code: "custom", message: 'expected { "env": "VAR_NAME" }' });
    return;
  }
  const extra = Object.keys(v).filter((k) => k !== "env");
  if (extra.length > 0) ctx.addIssue({ code: "custom", message: `unknown key${extra.length > 1 ? "s" : ""} ${extra.map((k) => `'${k}'`).join(", ")}; only 'env' is accepted` });
  const env = (v as { env?: unknown }).env;
  if (typeof env !== "string" || !ENV_NAME.test(env)) {
    ctx.addIssue({ code: "custom", path: ["env"], message: "must name an environment variable ([A-Za-z_][A-Za-z0-9_]*, not AWS_* or _*)" });
  }
});

/** An integer option: the range check is the library's one ({@link intOption}), reported as a zod issue. */
const int = (what: string, min: number, max: number) =>
  z.number({ error: `${what} must be a number` }).superRefine((v, ctx) => {
    try {
      intOption(what, v, min, max);
    } catch (err) {
      ctx.addIssue({ code: "custom", message: (err as Error).message });
    }
  });

const options = z.strictObject({
  method: z.enum(["store", "deflate"]).optional(),
  level: int("level", 0, 9).optional(),
  partSize: int("partSize", MIN_PART_SIZE, MAX_PART_SIZE).optional(),
  equalParts: z.boolean().optional(),
  /** How the archive is built: "auto" (default), "copy" (S3 copies large stored members) or "stream". */
  assembly: z.enum(["auto", "stream", "copy"]).optional(),
  copyMinSize: int("copyMinSize", MIN_PART_SIZE, Number.MAX_SAFE_INTEGER).optional(),
  concurrency: int("concurrency", 1, 64).optional(),
  prefetch: z
    .strictObject({
      objects: int("prefetch.objects", MIN_PREFETCH_OBJECTS, 1024).optional(),
      bytes: int("prefetch.bytes", MIN_PREFETCH_BYTES, 10 * GiB).optional(),
    })
    .optional(),
  onMissing: z.enum(["error", "skip"]).optional(),
  onArchived: z.enum(["error", "skip"]).optional(),
  duplicates: z.enum(["error", "rename", "allow"]).optional(),
  zip64: z.enum(["auto", "always", "never"]).optional(),
  allowEmpty: z.boolean().optional(),
  /** Remove this leading string from every key to form the entry name (replaces the default "relative to the prefix"). */
  stripPrefix: z.string().optional(),
  /** Entry name is the key's last path segment. */
  flatten: z.boolean().optional(),
  /** Prepended to every entry name (a folder inside the archive, e.g. "export-2024/"). */
  namePrefix: z.string().optional(),
  password: password.optional(),
  /** After the upload, check the archive's structure with verifyS3Zip; the report is `verify` in the response. */
  verify: z.boolean().optional(),
});

/** Object keys an event names: every `keys` entry and every object reference. */
export function countEventKeys(srcValue: unknown): number {
  const items = Array.isArray(srcValue) ? srcValue : [srcValue];
  let n = 0;
  for (const item of items) {
    if (Array.isArray(item)) n += item.length;
    else if (item !== null && typeof item === "object") {
      const keys = (item as { keys?: unknown }).keys;
      if (Array.isArray(keys)) n += keys.length;
      else if ((item as { key?: unknown }).key !== undefined) n += 1;
    }
  }
  return n;
}

/** zod schema of the event. Exported for tooling (e.g. generating a JSON Schema). */
export const eventSchema = z.strictObject({ src, dest, options: options.optional() }).superRefine((ev, ctx) => {
  const n = countEventKeys(ev.src);
  if (n > MAX_EVENT_KEYS) {
    ctx.addIssue({ code: "custom", path: ["src"], message: `names ${n} object keys, more than the ${MAX_EVENT_KEYS} an event may hold; split the job, or use a prefix source` });
  }
});

/** A source object as accepted in the event. */
export type EventSourceObject = z.infer<typeof sourceObject>;
/** The event, as validated. See the package README for the format. */
export type ZipEvent = z.infer<typeof eventSchema>;
export type ZipEventOptions = NonNullable<ZipEvent["options"]>;

/** `["src", 1, "keys", 3]` → `src[1].keys[3]`. */
export function formatPath(path: readonly PropertyKey[]): string {
  let out = "";
  for (const p of path) {
    if (typeof p === "number") out += `[${p}]`;
    else out += out === "" ? String(p) : `.${String(p)}`;
  }
  return out;
}

interface RawIssue {
  code: string;
  path: PropertyKey[];
  message: string;
  keys?: string[];
  errors?: RawIssue[][];
}

/**
 * Turns zod issues into a flat list. A union reports one issue holding each branch's issues; we
 * keep the branch that fits the input's shape (no type mismatch at its root, fewest issues), so
 * `src[0].keys[2]: must not be empty` is reported rather than "invalid input".
 */
function flatten(issues: readonly RawIssue[], prefix: PropertyKey[], out: EventIssue[]): void {
  for (const issue of issues) {
    const path = [...prefix, ...issue.path];
    if (issue.code === "invalid_union" && issue.errors && issue.errors.length > 0) {
      const ranked = [...issue.errors].sort((a, b) => rank(a) - rank(b));
      flatten(ranked[0]!, path, out);
    } else if (issue.code === "unrecognized_keys" && issue.keys) {
      for (const k of issue.keys) out.push({ path: formatPath([...path, k]), message: "unknown key" });
    } else {
      out.push({ path: formatPath(path), message: issue.message });
    }
  }
}
function rank(branch: RawIssue[]): number {
  const rootTypeMismatch = branch.some((i) => i.path.length === 0 && i.code === "invalid_type");
  return (rootTypeMismatch ? 1_000_000 : 0) + branch.length;
}

/**
 * Validates an event. Returns the typed event, or throws `ERR_INVALID_EVENT` listing every problem.
 * Pure: reads no environment and touches no network.
 */
export function parseEvent(event: unknown): ZipEvent {
  const issues = validateEvent(event);
  if (issues.issues.length > 0) throw invalidEvent(issues.issues);
  return issues.event!;
}

/** Like {@link parseEvent} but returns the issues instead of throwing. */
export function validateEvent(event: unknown): { event?: ZipEvent; issues: EventIssue[] } {
  const r = eventSchema.safeParse(event);
  if (r.success) return { event: r.data, issues: [] };
  const out: EventIssue[] = [];
  flatten(r.error.issues as unknown as RawIssue[], [], out);
  // De-duplicate (a union's branches can report the same problem twice).
  const seen = new Set<string>();
  return { issues: out.filter((i) => (seen.has(i.path + "\0" + i.message) ? false : (seen.add(i.path + "\0" + i.message), true))) };
}
