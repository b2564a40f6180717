import { existsSync, readFileSync } from "node:fs";
import { randomBytes } from "node:crypto";
import path from "node:path";
import type { Readable } from "node:stream";
import {
  CreateBucketCommand,
  DeleteBucketCommand,
  DeleteObjectsCommand,
  GetObjectCommand,
  ListMultipartUploadsCommand,
  AbortMultipartUploadCommand,
  ListObjectsV2Command,
  PutObjectCommand,
  S3Client,
} from "@aws-sdk/client-s3";

/**
 * The local S3 gateway for these tests: S3_ENDPOINT and credentials from the environment (CI's
 * scripts/test.sh exports them), else the env file infra/local-s3/start.sh writes. Undefined when
 * neither exists: the S3 suite is then reported as skipped, never as passed.
 */
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

export const s3env = loadEnv();

/** Environment for a child `zipstream`: the standard AWS variables, nothing else from the parent's AWS setup. */
export function childEnv(second = false): NodeJS.ProcessEnv {
  const e = s3env!;
  return {
    AWS_ENDPOINT_URL: e.S3_ENDPOINT,
    AWS_ACCESS_KEY_ID: second ? e.S3_SECOND_ACCESS_KEY_ID : e.AWS_ACCESS_KEY_ID,
    AWS_SECRET_ACCESS_KEY: second ? e.S3_SECOND_SECRET_ACCESS_KEY : e.AWS_SECRET_ACCESS_KEY,
    AWS_REGION: e.AWS_REGION ?? "us-east-1",
    AWS_PROFILE: undefined,
    AWS_SESSION_TOKEN: undefined,
    AWS_ENDPOINT_URL_S3: undefined,
  };
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

/** A fresh bucket with a unique name. */
export async function createBucket(client: S3Client, label: string): Promise<string> {
  const bucket = `zs-${label}-${randomBytes(4).toString("hex")}`;
  await client.send(new CreateBucketCommand({ Bucket: bucket }));
  return bucket;
}

/** Aborts uploads, deletes every object, then the bucket. */
export async function dropBucket(client: S3Client, bucket: string): Promise<void> {
  for (const u of (await client.send(new ListMultipartUploadsCommand({ Bucket: bucket }))).Uploads ?? []) {
    await client.send(new AbortMultipartUploadCommand({ Bucket: bucket, Key: u.Key, UploadId: u.UploadId }));
  }
  for (;;) {
    const page = await client.send(new ListObjectsV2Command({ Bucket: bucket }));
    const keys = (page.Contents ?? []).map((o) => ({ Key: o.Key! }));
    if (keys.length === 0) break;
    await client.send(new DeleteObjectsCommand({ Bucket: bucket, Delete: { Objects: keys } }));
  }
  await client.send(new DeleteBucketCommand({ Bucket: bucket }));
}

export async function put(client: S3Client, bucket: string, key: string, body: Uint8Array | string): Promise<void> {
  await client.send(new PutObjectCommand({ Bucket: bucket, Key: key, Body: body }));
}

export async function getBytes(client: S3Client, bucket: string, key: string): Promise<Buffer> {
  const r = await client.send(new GetObjectCommand({ Bucket: bucket, Key: key }));
  const chunks: Buffer[] = [];
  for await (const c of r.Body as Readable) chunks.push(c as Buffer);
  return Buffer.concat(chunks);
}

export async function listKeys(client: S3Client, bucket: string): Promise<string[]> {
  const page = await client.send(new ListObjectsV2Command({ Bucket: bucket }));
  return (page.Contents ?? []).map((o) => o.Key!).sort();
}

export async function listUploads(client: S3Client, bucket: string): Promise<{ key: string; uploadId: string }[]> {
  const r = await client.send(new ListMultipartUploadsCommand({ Bucket: bucket }));
  return (r.Uploads ?? []).map((u) => ({ key: u.Key!, uploadId: u.UploadId! }));
}
