import { existsSync } from "node:fs";
import { rm } from "node:fs/promises";
import path from "node:path";
import { ListObjectsV2Command, PutObjectCommand, type S3Client } from "@aws-sdk/client-s3";
import { getTestS3, type TestS3 } from "@zipstream/testkit";
import { tempDir } from "./helpers.js";

/**
 * The S3 suite runs when a gateway is configured: S3_ENDPOINT in the environment (CI's
 * scripts/test.sh exports it) or the local gateway's env file. Otherwise it is reported as
 * skipped, never as passed.
 */
export const s3available =
  Boolean(process.env.S3_ENDPOINT) || existsSync(path.join(import.meta.dirname, "../../../.local-s3/env"));

let server: TestS3 | undefined;

/** The testkit's server (picked once per process). */
export async function testS3(): Promise<TestS3> {
  server ??= await getTestS3();
  return server;
}

/** Environment for a child `zipstream`: the standard AWS variables only, nothing else from the parent's AWS setup. */
export function childEnv(second = false): NodeJS.ProcessEnv {
  const s = server!;
  const creds = second ? s.second : s.credentials;
  if (!creds) throw new Error("the test S3 server has no second user");
  return {
    AWS_ENDPOINT_URL: s.endpoint,
    AWS_ACCESS_KEY_ID: creds.accessKeyId,
    AWS_SECRET_ACCESS_KEY: creds.secretAccessKey,
    AWS_REGION: s.region,
    AWS_PROFILE: undefined,
    AWS_SESSION_TOKEN: undefined,
    AWS_ENDPOINT_URL_S3: undefined,
  };
}

export async function put(client: S3Client, bucket: string, key: string, body: Uint8Array | string): Promise<void> {
  await client.send(new PutObjectCommand({ Bucket: bucket, Key: key, Body: body }));
}

export async function listKeys(client: S3Client, bucket: string): Promise<string[]> {
  const page = await client.send(new ListObjectsV2Command({ Bucket: bucket }));
  return (page.Contents ?? []).map((o) => o.Key!).sort();
}

/** What a describe block of S3 tests works with: the server, a client, its own bucket and a temp dir. */
export interface S3Bench {
  s3: TestS3;
  client: S3Client;
  bucket: string;
  dir: string;
}

/** A fresh bucket (`tag` in its name) holding `objects`, and a temp dir; for a `beforeAll`. */
export async function setUpBucket(tag: string, objects: Record<string, Uint8Array | string> = {}): Promise<S3Bench> {
  const s3 = await testS3();
  const client = s3.client();
  const bucket = await s3.newBucket(tag);
  for (const [k, v] of Object.entries(objects)) await put(client, bucket, k, v);
  return { s3, client, bucket, dir: await tempDir() };
}

/** Removes what {@link setUpBucket} made (whatever of it was made); for an `afterAll`. */
export async function tearDownBucket(b: Partial<S3Bench>): Promise<void> {
  if (b.bucket) await b.s3?.emptyAndDeleteBucket(b.bucket);
  b.client?.destroy();
  if (b.dir) await rm(b.dir, { recursive: true, force: true });
}
