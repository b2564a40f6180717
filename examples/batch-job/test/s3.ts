// Test-only S3 setup for this example's smoke test: the local gateway from S3_ENDPOINT and the
// AWS_* variables (CI's scripts/test.sh exports them), else the env file written by
// infra/local-s3/start.sh. Each test gets its own bucket, dropped afterwards.
import { existsSync, readFileSync } from "node:fs";
import { randomBytes } from "node:crypto";
import path from "node:path";
import type { Readable } from "node:stream";
import {
  AbortMultipartUploadCommand,
  CreateBucketCommand,
  DeleteBucketCommand,
  DeleteObjectsCommand,
  GetObjectCommand,
  ListMultipartUploadsCommand,
  ListObjectsV2Command,
  PutObjectCommand,
  S3Client,
} from "@aws-sdk/client-s3";

function loadEnv(): Record<string, string | undefined> | undefined {
  if (process.env.S3_ENDPOINT) return process.env;
  const file = path.join(import.meta.dirname, "../../../.local-s3/env");
  if (!existsSync(file)) return undefined;
  const env: Record<string, string> = {};
  for (const line of readFileSync(file, "utf8").split("\n")) {
    const m = /^export ([A-Z0-9_]+)=(.*)$/.exec(line.trim());
    if (m) env[m[1]] = m[2].replace(/^["']|["']$/g, "");
  }
  return env;
}

/** The gateway's settings, or undefined when there is none (the suite is then skipped, not passed). */
export const s3env = loadEnv();

/** Makes the example see the gateway through the same variables a user would set. */
export function exportS3Env(): void {
  const e = s3env!;
  process.env.S3_ENDPOINT = e.S3_ENDPOINT;
  process.env.AWS_ACCESS_KEY_ID = e.AWS_ACCESS_KEY_ID;
  process.env.AWS_SECRET_ACCESS_KEY = e.AWS_SECRET_ACCESS_KEY;
  process.env.AWS_REGION = e.AWS_REGION ?? "us-east-1";
}

export function testClient(): S3Client {
  const e = s3env!;
  return new S3Client({
    endpoint: e.S3_ENDPOINT,
    region: e.AWS_REGION ?? "us-east-1",
    forcePathStyle: true,
    credentials: { accessKeyId: e.AWS_ACCESS_KEY_ID!, secretAccessKey: e.AWS_SECRET_ACCESS_KEY! },
    requestChecksumCalculation: "WHEN_REQUIRED",
    responseChecksumValidation: "WHEN_REQUIRED",
  });
}

/** A fresh bucket holding `objects`. */
export async function bucketWith(client: S3Client, label: string, objects: Record<string, Uint8Array | string>): Promise<string> {
  const bucket = `zs-ex-${label}-${randomBytes(4).toString("hex")}`;
  await client.send(new CreateBucketCommand({ Bucket: bucket }));
  for (const [Key, Body] of Object.entries(objects)) await client.send(new PutObjectCommand({ Bucket: bucket, Key, Body }));
  return bucket;
}

export async function dropBucket(client: S3Client, bucket: string): Promise<void> {
  for (const u of (await client.send(new ListMultipartUploadsCommand({ Bucket: bucket }))).Uploads ?? []) {
    await client.send(new AbortMultipartUploadCommand({ Bucket: bucket, Key: u.Key, UploadId: u.UploadId }));
  }
  for (;;) {
    const keys = ((await client.send(new ListObjectsV2Command({ Bucket: bucket }))).Contents ?? []).map((o) => ({ Key: o.Key! }));
    if (keys.length === 0) break;
    await client.send(new DeleteObjectsCommand({ Bucket: bucket, Delete: { Objects: keys } }));
  }
  await client.send(new DeleteBucketCommand({ Bucket: bucket }));
}

export async function getBytes(client: S3Client, bucket: string, key: string): Promise<Buffer> {
  const r = await client.send(new GetObjectCommand({ Bucket: bucket, Key: key }));
  const chunks: Buffer[] = [];
  for await (const c of r.Body as Readable) chunks.push(c as Buffer);
  return Buffer.concat(chunks);
}

export async function listUploads(client: S3Client, bucket: string): Promise<string[]> {
  return ((await client.send(new ListMultipartUploadsCommand({ Bucket: bucket }))).Uploads ?? []).map((u) => u.Key!);
}

/** Deterministic pseudo-random bytes. */
export function bytes(n: number, seed: number): Uint8Array {
  const out = new Uint8Array(n);
  let x = seed >>> 0 || 1;
  for (let i = 0; i < n; i++) {
    x ^= x << 13;
    x >>>= 0;
    x ^= x >>> 17;
    x ^= x << 5;
    x >>>= 0;
    out[i] = x & 0xff;
  }
  return out;
}
