import type { S3Client } from "@aws-sdk/client-s3";
import { intOption, type ZipEntry } from "@zipstream/core";
import { S3ZipError } from "./errors.js";
import { checkClient } from "./multipart.js";
import { MAX_HEAD_CONCURRENCY } from "./limits.js";
import { type ExpectedBucketOwner, validateExpectedBucketOwner, withExpectedBucketOwner } from "./owners.js";
import { Prefetcher, validatePrefetch, type PrefetchOptions } from "./prefetch.js";
import { resolveSources, type NameFn, type ResolvedObject, type S3Source } from "./sources.js";

/**
 * A place in S3 as a command line names it (`s3://bucket/key`). A `key` that is empty or ends in
 * "/" is a prefix; any other key is an object, or, when there is no such object, the prefix
 * `key/` (so `s3://b/photos` means the folder when no object is called `photos`).
 */
export interface S3Location {
  bucket: string;
  key: string;
}

/** Options of {@link resolveLocations}. */
export interface ResolveLocationsOptions {
  client: S3Client;
  /**
   * Entry name of each object. `src.prefix` is the prefix the object was listed under (the
   * location's key, or `key/` for a key that named a folder); it is undefined for an object named
   * directly. Default: the key relative to the prefix, or the whole key for an object named directly.
   * (It may also be called for a key that turns out to have no object.)
   */
  name?: NameFn;
  /**
   * A location that names nothing (no such key and nothing under `key/`, or an empty prefix):
   * "error" fails with ERR_S3_NO_SUCH_KEY (ERR_S3_EMPTY_SOURCE for an empty prefix), "skip" lists it
   * in `skipped`. Default "error". A missing bucket is ERR_S3_NO_SUCH_BUCKET either way.
   */
  onMissing?: "error" | "skip";
  /** HeadObject requests at once for the locations that name objects. Default 16 (1 to 1000). */
  headConcurrency?: number;
  /** The account that must own the buckets, sent on every request; see {@link ExpectedBucketOwner}. Default: none. */
  expectedBucketOwner?: ExpectedBucketOwner;
  signal?: AbortSignal;
}

/** Result of {@link resolveLocations}. */
export interface ResolvedLocations {
  /** Every object found, in the order of the locations (a prefix's objects in listing order). */
  objects: ResolvedObject[];
  /** The locations skipped under `onMissing: "skip"`, as `s3://bucket/key`. */
  skipped: string[];
}

const isPrefix = (l: S3Location) => l.key === "" || l.key.endsWith("/");
const label = (l: S3Location) => `s3://${l.bucket}/${l.key}`;

function validateLocations(locations: readonly S3Location[], o: ResolveLocationsOptions): void {
  checkClient(o?.client);
  if (!Array.isArray(locations)) throw new TypeError("locations must be an array of { bucket, key }");
  for (const l of locations) {
    if (typeof l?.bucket !== "string" || l.bucket === "") throw new TypeError("locations[].bucket must be a non-empty string");
    if (typeof l.key !== "string") throw new TypeError("locations[].key must be a string");
  }
  if (o.onMissing !== undefined && o.onMissing !== "error" && o.onMissing !== "skip") throw new TypeError(`onMissing must be "error" or "skip"`);
  if (o.name !== undefined && typeof o.name !== "function") throw new TypeError("name must be a function (key, src) => string");
  intOption("headConcurrency", o.headConcurrency, 1, MAX_HEAD_CONCURRENCY);
  validateExpectedBucketOwner(o.expectedBucketOwner);
}

/**
 * Resolves command-line style locations to objects with their size, ETag and last-modified time,
 * through the same listing and HEAD code as {@link zipS3Keys} (and so the same error mapping):
 * the objects named directly are HEADed first (`headConcurrency` at once; a 404 on a bucket that
 * does not exist is ERR_S3_NO_SUCH_BUCKET, not a missing key), then the prefixes are listed
 * (ListObjectsV2, paginated, "folder" markers left out). A key with no object is listed as the
 * prefix `key/`. An archived, unrestored object fails with ERR_S3_ARCHIVED.
 *
 * Memory: about 0.5 KB per object found plus its key and name (the result is a list).
 */
export async function resolveLocations(locations: readonly S3Location[], options: ResolveLocationsOptions): Promise<ResolvedLocations> {
  validateLocations(locations, options);
  const { name, signal } = options;
  const client = withExpectedBucketOwner(options.client, options.expectedBucketOwner);
  const onMissing = options.onMissing ?? "error";
  const resolve = (src: S3Source | S3Source[], missing: "error" | "skip") =>
    resolveSources(src, { client, name, signal, onMissing: missing, headConcurrency: options.headConcurrency ?? 16 });

  // Every directly named key in one pass, so their HEADs run concurrently. A missing one comes
  // back in `skipped` and is tried as a prefix below.
  const keyed = locations.filter((l) => !isPrefix(l));
  const heads = keyed.length === 0 ? { objects: [], skipped: [] } : await resolve(keyed.map((l) => [{ bucket: l.bucket, key: l.key }]), "skip");
  let nextHead = 0;

  const out: ResolvedLocations = { objects: [], skipped: [] };
  const listed = async (prefix: string, l: S3Location): Promise<number> => {
    const { objects } = await resolve({ bucket: l.bucket, prefix }, "error");
    out.objects.push(...objects);
    return objects.length;
  };
  for (const l of locations) {
    if (isPrefix(l)) {
      if ((await listed(l.key, l)) > 0) continue;
      if (onMissing === "skip") out.skipped.push(label(l));
      else throw new S3ZipError("ERR_S3_EMPTY_SOURCE", `no object under ${label(l)}`, { bucket: l.bucket, key: l.key });
      continue;
    }
    // resolveSources keeps the order of the keys: the next found object is this location's, or it was skipped.
    const head = heads.objects[nextHead];
    if (head !== undefined && head.bucket === l.bucket && head.key === l.key) {
      nextHead++;
      out.objects.push(head);
      continue;
    }
    if ((await listed(`${l.key}/`, l)) > 0) continue;
    if (onMissing === "skip") out.skipped.push(label(l));
    else throw new S3ZipError("ERR_S3_NO_SUCH_KEY", `source not found: ${label(l)} (no such key, and no object under ${l.key}/)`, { bucket: l.bucket, key: l.key });
  }
  return out;
}

/** Options of {@link s3ZipEntries}. */
export interface S3EntriesOptions {
  client: S3Client;
  /**
   * Read-ahead budget shared by the objects (see {@link PrefetchOptions}; defaults 16 objects,
   * 64 MiB, 8 MiB ranges, 5 resumes). Memory: at most about `bytes` plus one range of bodies.
   */
  prefetch?: PrefetchOptions;
  /** Cancels every GET; a member being read then fails with ERR_ABORTED. */
  signal?: AbortSignal;
  /** The account that must own the buckets, sent on every GET; see {@link ExpectedBucketOwner}. Default: none. */
  expectedBucketOwner?: ExpectedBucketOwner;
}

/** Core entries for S3 objects, and the reader behind them. */
export interface S3Entries {
  /** One entry per object, same order: name, size, mtime (lastModified) and a lazy source. */
  entries: ZipEntry[];
  /** Cancels the GETs still in flight (read-ahead); call it when the archive is finished or failed. */
  close(): void;
  /** Body bytes received so far, resumed ranges included. */
  readonly bytesFetched: number;
  /** Ranged GETs issued to resume a body cut mid-way. */
  readonly resumed: number;
}

/**
 * Core `ZipEntry`s for resolved objects (from {@link resolveLocations}), to mix with other
 * entries in `zipStream`. Nothing is read until an entry's turn comes; from then the objects are
 * read in order, with read-ahead within the `prefetch` budget, by the reader {@link zipS3Keys}
 * uses: every GET pinned to the object's ETag with If-Match (an object replaced mid-run fails
 * with ERR_S3_SOURCE_CHANGED, never a mix of two versions), its size checked against the
 * resolved size (ERR_SIZE_MISMATCH), and a body cut mid-way resumed from the next byte
 * (`prefetch.resumes` times). The encoder reports a failed source as ERR_SOURCE with the
 * S3ZipError as its `cause`.
 *
 * The entries must be consumed in order, once (as `zipStream` does).
 */
export function s3ZipEntries(objects: readonly ResolvedObject[], options: S3EntriesOptions): S3Entries {
  checkClient(options?.client);
  validatePrefetch(options.prefetch);
  validateExpectedBucketOwner(options.expectedBucketOwner);
  const list = [...objects];
  const prefetcher = new Prefetcher(withExpectedBucketOwner(options.client, options.expectedBucketOwner), list, options.prefetch, options.signal);
  return {
    entries: list.map((o, i): ZipEntry => ({ name: o.name, size: o.size, mtime: o.lastModified, source: () => prefetcher.open(i) })),
    close: () => prefetcher.close(),
    get bytesFetched() {
      return prefetcher.bytesFetched;
    },
    get resumed() {
      return prefetcher.resumed;
    },
  };
}
