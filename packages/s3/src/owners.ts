import type { S3Client } from "@aws-sdk/client-s3";

/**
 * The account that must own each bucket a job touches. S3 refuses (403 AccessDenied) any request
 * whose `x-amz-expected-bucket-owner` names another account, so a job cannot read from, or write
 * an archive into, a bucket that was deleted and re-created by someone else under the same name
 * (S3 User Guide, "Verifying bucket ownership with bucket owner condition").
 *
 * - a string: every bucket the job touches (sources, destination, plan documents) must belong to
 *   this account;
 * - a record `{ [bucket]: accountId }`: per bucket, for cross-account jobs; a bucket not in the
 *   record is used without the condition.
 *
 * Copies (`UploadPartCopy`) also send `x-amz-source-expected-bucket-owner` for the bucket copied
 * from. On AWS the value is a 12-digit account ID; other servers use their own owner IDs (Ceph:
 * the owning user's ID).
 */
export type ExpectedBucketOwner = string | Readonly<Record<string, string>>;

/** An owner ID as S3 headers carry it: printable ASCII without spaces (AWS: 12 digits). */
const OWNER_ID = /^[\x21-\x7e]{1,128}$/;

/** Validates an {@link ExpectedBucketOwner} option, or throws a TypeError naming `name`. */
export function validateExpectedBucketOwner(v: unknown, name = "expectedBucketOwner"): void {
  if (v === undefined) return;
  if (typeof v === "string") {
    if (!OWNER_ID.test(v)) throw new TypeError(`${name} must be an account ID (AWS: 12 digits); got ${JSON.stringify(v)}`);
    return;
  }
  if (typeof v !== "object" || v === null || Array.isArray(v)) {
    throw new TypeError(`${name} must be an account ID or a record { bucket: accountId }`);
  }
  for (const [bucket, owner] of Object.entries(v)) {
    if (typeof owner !== "string" || !OWNER_ID.test(owner)) {
      throw new TypeError(`${name}[${JSON.stringify(bucket)}] must be an account ID (AWS: 12 digits); got ${JSON.stringify(owner)}`);
    }
  }
}

/**
 * The text form the CLI (`--expected-bucket-owner`, repeated) and the Lambda
 * (`ZIPSTREAM_EXPECTED_BUCKET_OWNER`, comma-separated) take: one account ID for every bucket, or
 * `BUCKET=ID` items, one per bucket. Not both forms at once (which would apply to a bucket named
 * in neither?), and a bucket named twice must name one owner. A TypeError names `name`.
 */
export function parseExpectedBucketOwner(items: readonly string[], name: string): ExpectedBucketOwner | undefined {
  const list = items.map((t) => t.trim()).filter((t) => t !== "");
  if (list.length === 0) return undefined;
  const pairs = list.filter((t) => t.includes("="));
  let owners: ExpectedBucketOwner;
  if (pairs.length === 0) {
    if (list.length > 1) throw new TypeError(`${name}: give one account ID, or BUCKET=ID per bucket`);
    owners = list[0]!;
  } else {
    if (pairs.length !== list.length) throw new TypeError(`${name}: either one ID for every bucket or BUCKET=ID for each, not both`);
    const map: Record<string, string> = {};
    for (const t of pairs) {
      const eq = t.indexOf("=");
      const [bucket, id] = [t.slice(0, eq).trim(), t.slice(eq + 1).trim()];
      if (bucket === "" || id === "") throw new TypeError(`${name}: ${JSON.stringify(t)} is not BUCKET=ID`);
      if (map[bucket] !== undefined && map[bucket] !== id) throw new TypeError(`${name}: bucket ${bucket} given twice`);
      map[bucket] = id;
    }
    owners = map;
  }
  validateExpectedBucketOwner(owners, name);
  return owners;
}

/** The owner expected for `bucket`, if any. */
export function ownerOf(owners: ExpectedBucketOwner | undefined, bucket: string): string | undefined {
  if (owners === undefined) return undefined;
  if (typeof owners === "string") return owners;
  return Object.prototype.hasOwnProperty.call(owners, bucket) ? owners[bucket] : undefined;
}

/** The bucket of an `x-amz-copy-source` value (`bucket/key?versionId=…`, URL-encoded). */
function copySourceBucket(copySource: string): string {
  const s = copySource.startsWith("/") ? copySource.slice(1) : copySource;
  const slash = s.indexOf("/");
  return decodeURIComponent(slash < 0 ? s : s.slice(0, slash));
}

/** What a refused request required of bucket owners, in words, read by `mapS3Error` to say why a 403 may have come. */
export const EXPECTED_OWNER = Symbol("zipstream.expectedBucketOwner");

interface CommandLike {
  input?: { Bucket?: unknown; CopySource?: unknown; ExpectedBucketOwner?: unknown; ExpectedSourceBucketOwner?: unknown };
}

/**
 * The client a job uses: `client` itself without owners, otherwise a view of it whose `send` adds
 * `ExpectedBucketOwner` (and `ExpectedSourceBucketOwner` on copies) to every command that names a
 * bucket. Every request of the package goes through the job's client, so this one place covers
 * List, Head, Get, the multipart calls, Put, Delete and Abort alike, including requests added
 * later. The caller's client is not changed: other jobs sharing it are unaffected. A value the
 * command already carries wins.
 */
export function withExpectedBucketOwner(client: S3Client, owners: ExpectedBucketOwner | undefined): S3Client {
  if (owners === undefined) return client;
  const send = (command: CommandLike, ...rest: unknown[]): Promise<unknown> => {
    const input = command?.input;
    // What the request requires, in words, for the message of a 403 (see mapS3Error).
    const required: string[] = [];
    if (input !== undefined && typeof input.Bucket === "string") {
      input.ExpectedBucketOwner ??= ownerOf(owners, input.Bucket);
      if (input.ExpectedBucketOwner !== undefined) required.push(`bucket "${input.Bucket}" to belong to account ${String(input.ExpectedBucketOwner)}`);
      if (typeof input.CopySource === "string") {
        const from = copySourceBucket(input.CopySource);
        input.ExpectedSourceBucketOwner ??= ownerOf(owners, from);
        if (input.ExpectedSourceBucketOwner !== undefined) required.push(`bucket "${from}" to belong to account ${String(input.ExpectedSourceBucketOwner)}`);
      }
    }
    const sent = (client.send as (...a: unknown[]) => Promise<unknown>).call(client, command, ...rest);
    if (required.length === 0) return sent;
    return sent.catch((err: unknown) => {
      if (typeof err === "object" && err !== null) {
        Object.defineProperty(err, EXPECTED_OWNER, { value: required.join(" and "), configurable: true });
      }
      throw err;
    });
  };
  // A Proxy keeps everything else of the caller's client (config, middleware, destroy, and
  // `instanceof S3Client`, which paginators check) and replaces only `send`.
  return new Proxy(client, {
    get(target, prop, receiver) {
      return prop === "send" ? send : Reflect.get(target, prop, receiver);
    },
  });
}
