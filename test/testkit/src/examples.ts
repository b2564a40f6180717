// Shared S3 setup for the examples' smoke tests: the server from S3_ENDPOINT and the AWS_*
// variables (scripts/test.sh exports them) or the local gateway. Each test gets its own bucket,
// dropped afterwards.
import { existsSync } from "node:fs";
import path from "node:path";
import type { S3Client } from "@aws-sdk/client-s3";
import { getTestS3, type TestS3 } from "./index.js";

/** A gateway is configured; otherwise the smoke test is reported as skipped, never as passed. */
export const s3available =
  Boolean(process.env.S3_ENDPOINT) || existsSync(path.join(import.meta.dirname, "../../../.local-s3/env"));

let s3: TestS3;

export async function setup(): Promise<TestS3> {
  s3 = await getTestS3();
  return s3;
}

export function testClient(): S3Client {
  return s3.client();
}

/** The variables a user sets for the example: S3_ENDPOINT and the standard AWS ones. */
export function s3vars(): Record<string, string> {
  return {
    S3_ENDPOINT: s3.endpoint,
    AWS_ACCESS_KEY_ID: s3.credentials.accessKeyId,
    AWS_SECRET_ACCESS_KEY: s3.credentials.secretAccessKey,
    AWS_REGION: s3.region,
  };
}

/** A fresh bucket holding `objects`. */
export async function bucketWith(label: string, objects: Record<string, Uint8Array | string>): Promise<string> {
  const bucket = await s3.newBucket(`zs-ex-${label}`);
  await s3.putObjects(bucket, Object.entries(objects).map(([key, body]) => ({ key, body })));
  return bucket;
}

export const dropBucket = (bucket: string): Promise<void> => s3.emptyAndDeleteBucket(bucket);
export const getBytes = (bucket: string, key: string): Promise<Buffer> => s3.getObjectBytes(bucket, key);
export const listUploads = async (bucket: string): Promise<string[]> => (await s3.listMultipartUploads(bucket)).map((u) => u.key);

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
