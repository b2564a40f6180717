import { execFile } from "node:child_process";
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import path from "node:path";
import { promisify } from "node:util";
import type { S3Client } from "@aws-sdk/client-s3";
import { verifyZip } from "@zipstream/interop";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { bucketWith, bytes, dropBucket, getBytes, listUploads, s3env, testClient } from "./s3.js";

const exec = promisify(execFile);
const MAIN = path.join(import.meta.dirname, "..", "main.js");

describe.skipIf(s3env === undefined)("example library-call", () => {
  let client: S3Client;
  let bucket: string;
  const objects = { "reports/jan.csv": "a,b\n1,2\n", "reports/2024/big.bin": bytes(700_000, 3), "other.txt": "no" };

  beforeAll(async () => {
    client = testClient();
    bucket = await bucketWith(client, "lib", objects);
  });
  afterAll(async () => {
    await dropBucket(client, bucket);
    client.destroy();
  });

  it("`node main.js` zips the prefix and prints the result", async () => {
    const { stdout } = await exec(process.execPath, [MAIN, bucket, "reports/", "exports/reports.zip"], {
      env: { ...process.env, S3_ENDPOINT: s3env!.S3_ENDPOINT, AWS_ACCESS_KEY_ID: s3env!.AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY: s3env!.AWS_SECRET_ACCESS_KEY, AWS_REGION: s3env!.AWS_REGION ?? "us-east-1" },
    });
    const result = JSON.parse(stdout) as { bucket: string; key: string; entries: number; size: number };
    expect(result).toMatchObject({ bucket, key: "exports/reports.zip", entries: 2 });
    const zip = await getBytes(client, bucket, "exports/reports.zip");
    expect(zip.length).toBe(result.size);
    const dir = await mkdtemp(path.join(tmpdir(), "example-lib-"));
    try {
      await writeFile(path.join(dir, "r.zip"), zip);
      await verifyZip(path.join(dir, "r.zip"), [
        { name: "jan.csv", data: Buffer.from(objects["reports/jan.csv"]) },
        { name: "2024/big.bin", data: objects["reports/2024/big.bin"] },
      ], { readers: ["unzip", "python"] });
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
    expect(await listUploads(client, bucket)).toEqual([]);
  });
});
