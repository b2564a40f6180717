import {
  HeadBucketCommand,
  HeadObjectCommand,
  ListObjectsV2Command,
  type S3Client,
} from "@aws-sdk/client-s3";
import { intOption, pool } from "@zipstream/core";
import { S3ZipError, httpStatus, mapS3Error, s3Code } from "./errors.js";

/**
 * Server-side encryption with a customer-provided key (SSE-C) of a source: HEAD and GET send
 * `x-amz-server-side-encryption-customer-algorithm: AES256` with the key and its MD5 (the SDK
 * computes both headers from the key). S3 and Ceph refuse to read such an object without it.
 */
export interface SourceSse {
  /** The 256-bit key: 32 bytes, or their base64 (44 characters). Never logged. */
  customerKey: Uint8Array | string;
}

/** SSE-C request fields for reading `o` (none when it has no customer key); the SDK adds the key's MD5. */
export function sseCustomerHeaders(o: { sseCustomerKey?: string }): { SSECustomerAlgorithm?: string; SSECustomerKey?: string } {
  return o.sseCustomerKey === undefined ? {} : { SSECustomerAlgorithm: "AES256", SSECustomerKey: o.sseCustomerKey };
}

/** Memory counted per source object by `maxEntryMemory`, besides its key and name (about 0.5 KB: the resolved object, its entry and central-directory record). */
export const ENTRY_MEMORY_BYTES = 512;

/** One object to zip, named explicitly. */
export interface S3ObjectRef {
  bucket: string;
  key: string;
  /** Entry name; default: the key. */
  name?: string;
  versionId?: string;
  /**
   * Size in bytes, when known (skips the HeadObject; `etag` should then be given too). Checked
   * against the object's real size (Content-Length / Content-Range total) when it is read:
   * a mismatch fails with ERR_SIZE_MISMATCH rather than writing a truncated member.
   */
  size?: number;
  /** ETag, when known: every GET is pinned to it with If-Match. */
  etag?: string;
  /** SSE-C key of this object; default: the job's `sse` option. */
  sse?: SourceSse;
}

/** Where objects come from: a prefix listing, a key list, or explicit object references. */
export type S3Source =
  | { bucket: string; prefix: string; sse?: SourceSse }
  | { bucket: string; keys: Iterable<string> | AsyncIterable<string>; sse?: SourceSse }
  | Iterable<S3ObjectRef>
  | AsyncIterable<S3ObjectRef>;

/** Maps a key to an entry name. */
export type NameFn = (key: string, src: { bucket: string; key: string; prefix?: string }) => string;

/** An object whose size and ETag are known, ready to be read. */
export interface ResolvedObject {
  bucket: string;
  key: string;
  versionId?: string;
  name: string;
  size: number;
  etag: string;
  lastModified?: Date;
  /** The SSE-C key (base64 of 32 bytes) every HEAD and GET of this object sends. */
  sseCustomerKey?: string;
}

export interface ResolveOptions {
  client: S3Client;
  name?: NameFn;
  onMissing: "error" | "skip";
  /** An archived, unrestored source: "error" (ERR_S3_ARCHIVED) or "skip" (listed in `skipped`). Default "error". */
  onArchived?: "error" | "skip";
  /** SSE-C key for sources that do not give their own. */
  sse?: SourceSse;
  /** Most source objects; more fail with ERR_S3_TOO_MANY_ENTRIES while listing. */
  maxEntries?: number;
  /** Most bytes of per-object bookkeeping ({@link ENTRY_MEMORY_BYTES} + 2 x (key + name) UTF-16 units each). */
  maxEntryMemory?: number;
  /** HeadObject requests at once for explicit keys. */
  headConcurrency: number;
  signal?: AbortSignal;
}

export interface Resolved {
  objects: ResolvedObject[];
  /** `s3://bucket/key` of each object skipped: missing under onMissing "skip", archived under onArchived "skip". */
  skipped: string[];
}

/**
 * The SSE-C key of `sse` as base64 (the SDK sends a 32-byte key's base64 as-is and derives the
 * key-MD5 header from it), or a TypeError naming `where`.
 */
function customerKey(sse: unknown, where: string): string | undefined {
  if (sse === undefined) return undefined;
  const k = isObject(sse) ? sse.customerKey : undefined;
  const bytes = typeof k === "string" && /^[A-Za-z0-9+/]{43}=$/.test(k) ? Buffer.from(k, "base64") : k instanceof Uint8Array ? k : undefined;
  if (bytes === undefined || bytes.length !== 32) {
    throw new TypeError(`${where}.customerKey must be a 32-byte Uint8Array or its base64 (SSE-C uses AES-256 keys)`);
  }
  return Buffer.from(bytes).toString("base64");
}

/**
 * Validates the source options of {@link resolveSources} (`onArchived`, `sse`, `maxEntries`,
 * `maxEntryMemory`), so that a job fails with a TypeError before any request.
 */
export function validateSourceOptions(o: { onArchived?: unknown; sse?: unknown; maxEntries?: unknown; maxEntryMemory?: unknown }): void {
  if (o.onArchived !== undefined && o.onArchived !== "error" && o.onArchived !== "skip") throw new TypeError(`onArchived must be "error" or "skip"`);
  customerKey(o.sse, "sse");
  intOption("maxEntries", o.maxEntries, 1);
  intOption("maxEntryMemory", o.maxEntryMemory, 1);
}

/** Storage classes whose objects must be restored before a GET (S3 API: GetObject, InvalidObjectState). GLACIER_IR reads directly. */
const ARCHIVE_CLASSES = new Set(["GLACIER", "DEEP_ARCHIVE"]);
/** Intelligent-Tiering's opt-in archive tiers (HeadObject `x-amz-archive-status`). */
const ARCHIVE_TIERS = new Set(["ARCHIVE_ACCESS", "DEEP_ARCHIVE_ACCESS"]);

/**
 * Whether a HEAD says the object cannot be read now: an archive class or tier and no finished
 * restore. `x-amz-restore: ongoing-request="false", expiry-date=...` marks a readable restored copy
 * (HeadObject API reference); `ongoing-request="true"` means the restore is still running.
 */
export function isArchived(head: { StorageClass?: string; ArchiveStatus?: string; Restore?: string }): boolean {
  const archived = ARCHIVE_CLASSES.has(head.StorageClass ?? "") || ARCHIVE_TIERS.has(head.ArchiveStatus ?? "");
  return archived && !/ongoing-request\s*=\s*"false"/.test(head.Restore ?? "");
}

function isObject(v: unknown): v is Record<string, unknown> {
  return typeof v === "object" && v !== null;
}

function isIterable(v: unknown): v is Iterable<unknown> | AsyncIterable<unknown> {
  return isObject(v) && (Symbol.iterator in v || Symbol.asyncIterator in v);
}

function checkBucket(bucket: unknown, where: string): string {
  if (typeof bucket !== "string" || bucket === "") throw new TypeError(`${where}.bucket must be a non-empty string`);
  return bucket;
}

/** Default entry name of a listed key: the key relative to the prefix, without a leading "/". */
export function relativeName(key: string, prefix: string): string {
  let rel = key.startsWith(prefix) ? key.slice(prefix.length) : key;
  while (rel.startsWith("/")) rel = rel.slice(1);
  return rel;
}

type Pending =
  | { kind: "listed"; obj: ResolvedObject }
  | { kind: "head"; ref: S3ObjectRef; name: string; key?: string };

/**
 * Resolves every source to objects with known size and ETag, in order: prefix listings
 * (ListObjectsV2, paginated; "folder" markers — keys ending in "/" with no bytes — are left out),
 * then HeadObject for keys whose size or ETag is not given (`headConcurrency` at once).
 * Missing objects fail with ERR_S3_NO_SUCH_KEY before anything is uploaded, or are skipped.
 */
export async function resolveSources(src: S3Source | S3Source[], options: ResolveOptions): Promise<Resolved> {
  const { client, signal } = options;
  const pending: Pending[] = [];
  const defaultKey = customerKey(options.sse, "sse");
  const maxEntries = options.maxEntries ?? Number.POSITIVE_INFINITY;
  const maxMemory = options.maxEntryMemory ?? Number.POSITIVE_INFINITY;
  let memory = 0;
  /** Counts one more object against the limits before it is kept (so a huge listing stops early). */
  const add = (p: Pending, key: string, name: string, bucket: string) => {
    memory += ENTRY_MEMORY_BYTES + 2 * (key.length + name.length);
    if (pending.length + 1 > maxEntries || memory > maxMemory) {
      const limit =
        pending.length + 1 > maxEntries
          ? `maxEntries (${maxEntries})`
          : `maxEntryMemory (${maxMemory} bytes at ${ENTRY_MEMORY_BYTES} bytes per object plus its key and name)`;
      throw new S3ZipError(
        "ERR_S3_TOO_MANY_ENTRIES",
        `more source objects than ${limit} allows, reached at s3://${bucket}/${key} (object ${pending.length + 1}); nothing was uploaded: split the job or raise the limit`,
        { bucket, key },
      );
    }
    pending.push(p);
  };
  // An array may mix sources and single object references (an array of refs is itself a source).
  const list: S3Source[] = Array.isArray(src)
    ? (src as unknown[]).map((s) => (isObject(s) && ("prefix" in s || "keys" in s || isIterable(s)) ? (s as S3Source) : [s as S3ObjectRef]))
    : [src];

  const named = (key: string, bucket: string, prefix?: string, explicit?: string): string => {
    if (explicit !== undefined) return explicit;
    if (options.name) return options.name(key, { bucket, key, prefix });
    return prefix === undefined ? key : relativeName(key, prefix);
  };

  for (const source of list) {
    if (isObject(source) && "prefix" in source && !isIterable(source)) {
      const bucket = checkBucket(source.bucket, "src");
      const prefix = source.prefix;
      if (typeof prefix !== "string") throw new TypeError("src.prefix must be a string");
      const sourceKey = customerKey(source.sse, "src.sse") ?? defaultKey;
      let token: string | undefined;
      do {
        let page;
        try {
          page = await client.send(new ListObjectsV2Command({ Bucket: bucket, Prefix: prefix, ContinuationToken: token }), {
            abortSignal: signal,
          });
        } catch (err) {
          throw mapS3Error(err, "ERR_S3_READ", { bucket, key: prefix, action: "listing" });
        }
        for (const o of page.Contents ?? []) {
          const key = o.Key ?? "";
          const size = o.Size ?? 0;
          if (key.endsWith("/") && size === 0) continue;
          const name = named(key, bucket, prefix);
          if (ARCHIVE_CLASSES.has(o.StorageClass ?? "")) {
            // Archived, maybe restored: only a HEAD's x-amz-restore tells, so ask before any upload.
            add({ kind: "head", ref: { bucket, key }, name, key: sourceKey }, key, name, bucket);
          } else {
            add({ kind: "listed", obj: { bucket, key, name, size, etag: o.ETag ?? "", lastModified: o.LastModified, sseCustomerKey: sourceKey } }, key, name, bucket);
          }
        }
        token = page.IsTruncated ? page.NextContinuationToken : undefined;
      } while (token);
    } else if (isObject(source) && "keys" in source && !isIterable(source)) {
      const bucket = checkBucket(source.bucket, "src");
      const keys = source.keys as Iterable<string> | AsyncIterable<string>;
      if (!isIterable(keys)) throw new TypeError("src.keys must be an iterable of strings");
      const sourceKey = customerKey(source.sse, "src.sse") ?? defaultKey;
      for await (const key of keys) {
        if (typeof key !== "string" || key === "") throw new TypeError("src.keys must contain non-empty strings");
        const name = named(key, bucket);
        add({ kind: "head", ref: { bucket, key }, name, key: sourceKey }, key, name, bucket);
      }
    } else if (isIterable(source)) {
      for await (const ref of source as AsyncIterable<S3ObjectRef>) {
        if (!isObject(ref)) throw new TypeError("src entries must be objects { bucket, key }");
        checkBucket(ref.bucket, "src[]");
        if (typeof ref.key !== "string" || ref.key === "") throw new TypeError("src[].key must be a non-empty string");
        const name = named(ref.key, ref.bucket, undefined, ref.name);
        const refKey = customerKey(ref.sse, "src[].sse") ?? defaultKey;
        if (typeof ref.size === "number" && typeof ref.etag === "string" && ref.etag !== "") {
          const obj = { bucket: ref.bucket, key: ref.key, versionId: ref.versionId, name, size: ref.size, etag: ref.etag, sseCustomerKey: refKey };
          add({ kind: "listed", obj }, ref.key, name, ref.bucket);
        } else {
          add({ kind: "head", ref, name, key: refKey }, ref.key, name, ref.bucket);
        }
      }
    } else {
      throw new TypeError("src must be { bucket, prefix }, { bucket, keys }, an iterable of { bucket, key }, or an array of those");
    }
  }

  // HEAD the explicit keys, a bounded number at once, keeping the caller's order.
  const bucketExists = new Map<string, Promise<boolean>>();
  const checkBucketExists = (bucket: string): Promise<boolean> => {
    let p = bucketExists.get(bucket);
    if (!p) {
      p = client.send(new HeadBucketCommand({ Bucket: bucket }), { abortSignal: signal }).then(
        () => true,
        (err) => httpStatus(err) !== 404,
      );
      bucketExists.set(bucket, p);
    }
    return p;
  };
  const results: (ResolvedObject | string | undefined)[] = new Array(pending.length);
  const resolveOne = async (p: Pending, i: number): Promise<void> => {
    if (p.kind === "listed") {
      results[i] = p.obj;
      return;
    }
    const { bucket, key, versionId } = p.ref;
    const label = `s3://${bucket}/${key}${versionId ? `?versionId=${versionId}` : ""}`;
    const sse = sseCustomerHeaders({ sseCustomerKey: p.key });
    let head;
    try {
      head = await client.send(new HeadObjectCommand({ Bucket: bucket, Key: key, VersionId: versionId, ...sse }), {
        abortSignal: signal,
      });
    } catch (err) {
      // HEAD has no error body: a 404 may mean the bucket is missing; ask the bucket once.
      const status = httpStatus(err);
      const code = s3Code(err);
      if (status === 404 || code === "NotFound" || code === "NoSuchKey") {
        if (!(await checkBucketExists(bucket))) {
          throw new S3ZipError("ERR_S3_NO_SUCH_BUCKET", `source bucket "${bucket}" does not exist (key ${key})`, {
            cause: err,
            bucket,
            key,
          });
        }
        if (options.onMissing === "skip") {
          results[i] = label;
          return;
        }
        throw new S3ZipError("ERR_S3_NO_SUCH_KEY", `source object ${label} does not exist`, { cause: err, bucket, key });
      }
      if (status === 400) {
        // A HEAD has no error body; its 400 on an existing key is S3's (and Ceph's) answer to a
        // missing or malformed SSE-C key (AWS answers a wrong key with 403).
        throw new S3ZipError(
          "ERR_S3_SSE_C_KEY",
          `HeadObject ${label} answered 400: the object is probably encrypted with a customer-provided key (SSE-C); ` +
            (p.key === undefined ? "give its key as sse: { customerKey }" : "check the sse.customerKey given"),
          { cause: err, bucket, key },
        );
      }
      throw mapS3Error(err, "ERR_S3_READ", { bucket, key, action: "HeadObject" });
    }
    if (isArchived(head)) {
      if (options.onArchived === "skip") {
        results[i] = label;
        return;
      }
      const restoring = /ongoing-request\s*=\s*"true"/.test(head.Restore ?? "");
      throw new S3ZipError(
        "ERR_S3_ARCHIVED",
        `source object ${label} is archived (${head.ArchiveStatus ?? head.StorageClass}) and ${restoring ? "its restore has not finished" : "not restored"}: ` +
          `restore it first, or pass onArchived: "skip"; nothing was uploaded`,
        { bucket, key },
      );
    }
    results[i] = {
      bucket,
      key,
      versionId: versionId ?? undefined,
      name: p.name,
      size: head.ContentLength ?? 0,
      etag: head.ETag ?? "",
      lastModified: head.LastModified,
      sseCustomerKey: p.key,
    };
  };
  // The first failure stops the HEADs not yet sent; the pool settles those in flight before throwing.
  await pool(pending, resolveOne, { concurrency: Math.max(1, options.headConcurrency) });
  const objects: ResolvedObject[] = [];
  const skipped: string[] = [];
  for (const r of results) {
    if (typeof r === "string") skipped.push(r);
    else if (r !== undefined) objects.push(r);
  }
  return { objects, skipped };
}
