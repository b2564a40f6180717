import { createHash, randomBytes } from "node:crypto";
import { createWriteStream, existsSync, readFileSync } from "node:fs";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { Readable } from "node:stream";
import { pipeline } from "node:stream/promises";
import {
  AbortMultipartUploadCommand,
  CreateBucketCommand,
  DeleteBucketCommand,
  DeleteObjectsCommand,
  GetObjectCommand,
  ListMultipartUploadsCommand,
  ListObjectVersionsCommand,
  ListObjectsV2Command,
  PutObjectCommand,
  S3Client,
} from "@aws-sdk/client-s3";

/**
 * Connection to the test S3 server. CI (scripts/test.sh) exports S3_ENDPOINT and credentials;
 * for a local run the env file written by infra/local-s3/start.sh is read as a fallback.
 */
function loadEnv(): Record<string, string | undefined> {
  if (process.env.S3_ENDPOINT) return process.env;
  const file = join(import.meta.dirname, "../../../.local-s3/env");
  if (!existsSync(file)) {
    throw new Error("no S3 server: set S3_ENDPOINT (+ AWS credentials) or run infra/local-s3/start.sh");
  }
  const env: Record<string, string> = {};
  for (const line of readFileSync(file, "utf8").split("\n")) {
    const m = /^export ([A-Z0-9_]+)=(.*)$/.exec(line.trim());
    if (m) env[m[1]!] = m[2]!.replace(/^["']|["']$/g, "");
  }
  return env;
}

const env = loadEnv();

/** The test S3 server's endpoint URL. */
export const s3Endpoint = (): string => env.S3_ENDPOINT ?? "";
/** The S3 connection variables, for child processes. */
export function s3Env(): Record<string, string> {
  const out: Record<string, string> = {};
  for (const k of ["S3_ENDPOINT", "AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_REGION"]) if (env[k]) out[k] = env[k]!;
  return out;
}

/** A client configured the way Ceph RGW 16 needs (path style, no flexible checksums). */
export function makeClient(extra: { accessKeyId?: string; secretAccessKey?: string; endpoint?: string } = {}): S3Client {
  return new S3Client({
    endpoint: extra.endpoint ?? env.S3_ENDPOINT,
    region: env.AWS_REGION ?? "us-east-1",
    forcePathStyle: true,
    requestChecksumCalculation: "WHEN_REQUIRED",
    responseChecksumValidation: "WHEN_REQUIRED",
    credentials: {
      accessKeyId: extra.accessKeyId ?? env.AWS_ACCESS_KEY_ID ?? "",
      secretAccessKey: extra.secretAccessKey ?? env.AWS_SECRET_ACCESS_KEY ?? "",
    },
  });
}

/** Credentials of the server's second user, who has no rights on our buckets. */
export function secondUser(): { accessKeyId: string; secretAccessKey: string } {
  const accessKeyId = env.S3_SECOND_ACCESS_KEY_ID;
  const secretAccessKey = env.S3_SECOND_SECRET_ACCESS_KEY;
  if (!accessKeyId || !secretAccessKey) throw new Error("S3_SECOND_ACCESS_KEY_ID / S3_SECOND_SECRET_ACCESS_KEY are not set");
  return { accessKeyId, secretAccessKey };
}

let counter = 0;
/** A unique bucket name (lowercase, <= 63 chars). */
export function bucketName(tag: string): string {
  return `zs3-${tag}-${process.pid}-${Date.now().toString(36)}-${counter++}`.toLowerCase().slice(0, 63);
}

export async function createBucket(client: S3Client, tag: string): Promise<string> {
  const name = bucketName(tag);
  await client.send(new CreateBucketCommand({ Bucket: name }));
  return name;
}

/** Deletes every object version, delete marker and incomplete upload, then the bucket. */
export async function deleteBucket(client: S3Client, bucket: string): Promise<void> {
  let keyMarker: string | undefined;
  let versionMarker: string | undefined;
  for (;;) {
    const page = await client.send(new ListObjectVersionsCommand({ Bucket: bucket, KeyMarker: keyMarker, VersionIdMarker: versionMarker }));
    const objects = [...(page.Versions ?? []), ...(page.DeleteMarkers ?? [])].map((o) => ({ Key: o.Key!, VersionId: o.VersionId }));
    for (let i = 0; i < objects.length; i += 1000) {
      await client.send(new DeleteObjectsCommand({ Bucket: bucket, Delete: { Objects: objects.slice(i, i + 1000), Quiet: true } }));
    }
    if (!page.IsTruncated) break;
    keyMarker = page.NextKeyMarker;
    versionMarker = page.NextVersionIdMarker;
  }
  const ups = await client.send(new ListMultipartUploadsCommand({ Bucket: bucket }));
  for (const u of ups.Uploads ?? []) {
    await client.send(new AbortMultipartUploadCommand({ Bucket: bucket, Key: u.Key, UploadId: u.UploadId }));
  }
  await client.send(new DeleteBucketCommand({ Bucket: bucket }));
}

export async function put(client: S3Client, bucket: string, key: string, body: Uint8Array | string): Promise<void> {
  const bytes = typeof body === "string" ? Buffer.from(body) : Buffer.from(body.buffer, body.byteOffset, body.byteLength);
  await client.send(new PutObjectCommand({ Bucket: bucket, Key: key, Body: bytes, ContentLength: bytes.length }));
}

/** PUTs many objects with `concurrency` requests at once. */
export async function putMany(
  client: S3Client,
  bucket: string,
  items: { key: string; body: Uint8Array | string }[] | ((i: number) => { key: string; body: Uint8Array | string }),
  count: number,
  concurrency = 64,
): Promise<void> {
  let next = 0;
  const get = typeof items === "function" ? items : (i: number) => items[i]!;
  await Promise.all(
    Array.from({ length: concurrency }, async () => {
      for (;;) {
        const i = next++;
        if (i >= count) return;
        const it = get(i);
        await put(client, bucket, it.key, it.body);
      }
    }),
  );
}

export async function listUploads(client: S3Client, bucket: string): Promise<number> {
  const ups = await client.send(new ListMultipartUploadsCommand({ Bucket: bucket }));
  return (ups.Uploads ?? []).length;
}

export async function objectExists(client: S3Client, bucket: string, key: string): Promise<boolean> {
  const page = await client.send(new ListObjectsV2Command({ Bucket: bucket, Prefix: key }));
  return (page.Contents ?? []).some((o) => o.Key === key);
}

/** Streams an object to a temporary file; returns its path and a cleanup function. */
export async function download(client: S3Client, bucket: string, key: string): Promise<{ path: string; cleanup: () => Promise<void> }> {
  const dir = await mkdtemp(join(tmpdir(), "zs3-"));
  const path = join(dir, "archive.zip");
  const out = await client.send(new GetObjectCommand({ Bucket: bucket, Key: key }));
  await pipeline(out.Body as Readable, createWriteStream(path));
  return { path, cleanup: () => rm(dir, { recursive: true, force: true }) };
}

export function sha256(data: Uint8Array | string): string {
  return createHash("sha256").update(data).digest("hex");
}

export { randomBytes };

/** Deterministic pseudo-random bytes (fast; xorshift), for large generated objects. */
export function patternBytes(size: number, seed: number): Buffer {
  const buf = Buffer.allocUnsafe(size);
  let x = (seed * 2654435761) >>> 0 || 1;
  let i = 0;
  for (; i + 4 <= size; i += 4) {
    x ^= x << 13;
    x >>>= 0;
    x ^= x >>> 17;
    x ^= x << 5;
    x >>>= 0;
    buf.writeUInt32LE(x, i);
  }
  for (; i < size; i++) buf[i] = i & 0xff;
  return buf;
}
