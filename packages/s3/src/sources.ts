import {
  HeadBucketCommand,
  HeadObjectCommand,
  ListObjectsV2Command,
  type S3Client,
} from "@aws-sdk/client-s3";
import { S3ZipError, httpStatus, mapS3Error, s3Code } from "./errors.js";

/** One object to zip, named explicitly. */
export interface S3ObjectRef {
  bucket: string;
  key: string;
  /** Entry name; default: the key. */
  name?: string;
  versionId?: string;
  /** Size in bytes, when known (skips the HeadObject; `etag` should then be given too). */
  size?: number;
  /** ETag, when known: every GET is pinned to it with If-Match. */
  etag?: string;
}

/** Where objects come from: a prefix listing, a key list, or explicit object references. */
export type S3Source =
  | { bucket: string; prefix: string }
  | { bucket: string; keys: Iterable<string> | AsyncIterable<string> }
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
}

export interface ResolveOptions {
  client: S3Client;
  name?: NameFn;
  onMissing: "error" | "skip";
  /** HeadObject requests at once for explicit keys. */
  headConcurrency: number;
  signal?: AbortSignal;
}

export interface Resolved {
  objects: ResolvedObject[];
  /** `s3://bucket/key` of each missing object skipped under onMissing "skip". */
  skipped: string[];
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
  | { kind: "head"; ref: S3ObjectRef; name: string };

/**
 * Resolves every source to objects with known size and ETag, in order: prefix listings
 * (ListObjectsV2, paginated; "folder" markers — keys ending in "/" with no bytes — are left out),
 * then HeadObject for keys whose size or ETag is not given (`headConcurrency` at once).
 * Missing objects fail with ERR_S3_NO_SUCH_KEY before anything is uploaded, or are skipped.
 */
export async function resolveSources(src: S3Source | S3Source[], options: ResolveOptions): Promise<Resolved> {
  const { client, signal } = options;
  const pending: Pending[] = [];
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
          pending.push({
            kind: "listed",
            obj: { bucket, key, name: named(key, bucket, prefix), size, etag: o.ETag ?? "", lastModified: o.LastModified },
          });
        }
        token = page.IsTruncated ? page.NextContinuationToken : undefined;
      } while (token);
    } else if (isObject(source) && "keys" in source && !isIterable(source)) {
      const bucket = checkBucket(source.bucket, "src");
      const keys = source.keys as Iterable<string> | AsyncIterable<string>;
      if (!isIterable(keys)) throw new TypeError("src.keys must be an iterable of strings");
      for await (const key of keys) {
        if (typeof key !== "string" || key === "") throw new TypeError("src.keys must contain non-empty strings");
        pending.push({ kind: "head", ref: { bucket, key }, name: named(key, bucket) });
      }
    } else if (isIterable(source)) {
      for await (const ref of source as AsyncIterable<S3ObjectRef>) {
        if (!isObject(ref)) throw new TypeError("src entries must be objects { bucket, key }");
        checkBucket(ref.bucket, "src[]");
        if (typeof ref.key !== "string" || ref.key === "") throw new TypeError("src[].key must be a non-empty string");
        const name = named(ref.key, ref.bucket, undefined, ref.name);
        if (typeof ref.size === "number" && typeof ref.etag === "string" && ref.etag !== "") {
          pending.push({
            kind: "listed",
            obj: { bucket: ref.bucket, key: ref.key, versionId: ref.versionId, name, size: ref.size, etag: ref.etag },
          });
        } else {
          pending.push({ kind: "head", ref, name });
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
  let next = 0;
  let firstError: unknown;
  const worker = async () => {
    while (firstError === undefined) {
      const i = next++;
      if (i >= pending.length) return;
      const p = pending[i]!;
      if (p.kind === "listed") {
        results[i] = p.obj;
        continue;
      }
      const { bucket, key, versionId } = p.ref;
      try {
        const head = await client.send(new HeadObjectCommand({ Bucket: bucket, Key: key, VersionId: versionId }), {
          abortSignal: signal,
        });
        results[i] = {
          bucket,
          key,
          versionId: versionId ?? undefined,
          name: p.name,
          size: head.ContentLength ?? 0,
          etag: head.ETag ?? "",
          lastModified: head.LastModified,
        };
      } catch (err) {
        // HEAD has no error body: a 404 may mean the bucket is missing; ask the bucket once.
        const status = httpStatus(err);
        const code = s3Code(err);
        if (status === 404 || code === "NotFound" || code === "NoSuchKey") {
          if (!(await checkBucketExists(bucket))) {
            firstError = new S3ZipError("ERR_S3_NO_SUCH_BUCKET", `source bucket "${bucket}" does not exist (key ${key})`, {
              cause: err,
              bucket,
              key,
            });
            return;
          }
          const label = `s3://${bucket}/${key}${versionId ? `?versionId=${versionId}` : ""}`;
          if (options.onMissing === "skip") {
            results[i] = label;
            continue;
          }
          firstError = new S3ZipError("ERR_S3_NO_SUCH_KEY", `source object ${label} does not exist`, { cause: err, bucket, key });
          return;
        }
        firstError = mapS3Error(err, "ERR_S3_READ", { bucket, key, action: "HeadObject" });
        return;
      }
    }
  };
  await Promise.all(Array.from({ length: Math.max(1, options.headConcurrency) }, worker));
  if (firstError !== undefined) throw firstError;
  const objects: ResolvedObject[] = [];
  const skipped: string[] = [];
  for (const r of results) {
    if (typeof r === "string") skipped.push(r);
    else if (r !== undefined) objects.push(r);
  }
  return { objects, skipped };
}
