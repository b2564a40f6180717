import { execFile } from "node:child_process";
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import path from "node:path";
import { promisify } from "node:util";
import type { S3Client } from "@aws-sdk/client-s3";
import { verifyZip } from "@zipstream/interop";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { bucketWith, bytes, dropBucket, getBytes, listUploads, s3available, s3vars, setup, testClient } from "@zipstream/testkit/examples";

const exec = promisify(execFile);
const MAIN = path.join(import.meta.dirname, "..", "main.js");

describe.skipIf(!s3available)("example library-call", () => {
  let client: S3Client;
  let bucket: string;
  const objects = { "reports/jan.csv": "a,b\n1,2\n", "reports/2024/big.bin": bytes(700_000, 3), "other.txt": "no" };

  beforeAll(async () => {
    await setup();
    client = testClient();
    bucket = await bucketWith("lib", objects);
  });
  afterAll(async () => {
    await dropBucket(bucket);
    client.destroy();
  });

  it("`node main.js` zips the prefix and prints the result", async () => {
    const { stdout } = await exec(process.execPath, [MAIN, bucket, "reports/", "exports/reports.zip"], {
      env: { ...process.env, ...s3vars() },
    });
    const result = JSON.parse(stdout) as { bucket: string; key: string; entries: number; size: number };
    expect(result).toMatchObject({ bucket, key: "exports/reports.zip", entries: 2 });
    const zip = await getBytes(bucket, "exports/reports.zip");
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
    expect(await listUploads(bucket)).toEqual([]);
  });
});
