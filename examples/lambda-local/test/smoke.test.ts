import { spawnSync } from "node:child_process";
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import path from "node:path";
import type { S3Client } from "@aws-sdk/client-s3";
import { verifyZip } from "@zipstream/interop";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { bucketWith, bytes, dropBucket, getBytes, listUploads, s3available, s3vars, setup, testClient } from "@zipstream/testkit/examples";

const MAIN = path.join(import.meta.dirname, "..", "main.js");

/** Runs `node main.js '<event>'` as a user would; returns the JSON log lines and the last line. */
function invoke(event: unknown) {
  const r = spawnSync(process.execPath, [MAIN, JSON.stringify(event)], {
    encoding: "utf8",
    env: {
      ...process.env,
      ...s3vars(),
      AWS_ENDPOINT_URL: undefined,
      MEMORY_MB: "256",
    },
  });
  const lines = r.stdout.trim().split("\n").map((l) => JSON.parse(l) as Record<string, unknown>);
  return { status: r.status, stderr: r.stderr, logs: lines.slice(0, -1), last: lines.at(-1)! };
}

describe.skipIf(!s3available)("example lambda-local", () => {
  let client: S3Client;
  let bucket: string;
  const objects: Record<string, Uint8Array> = {
    "in/a.bin": bytes(300_000, 5),
    "in/b/c.txt": Buffer.from("hello from lambda\n"),
  };

  beforeAll(async () => {
    await setup();
    client = testClient();
    bucket = await bucketWith("lambda", objects);
  });
  afterAll(async () => {
    await dropBucket(bucket);
    client.destroy();
  });

  it("runs the handler with a fake context and writes the archive", async () => {
    const r = invoke({ src: { bucket, prefix: "in/" }, dest: { bucket, key: "out/in.zip" }, options: { method: "deflate" } });
    expect(r.status, r.stderr).toBe(0);
    const result = (r.last as { result: { key: string; entries: number; size: number; requestId: string } }).result;
    expect(result).toMatchObject({ key: "out/in.zip", entries: 2 });
    // Structured logs carry the request id of the fake context.
    expect(r.logs.some((l) => l.requestId === result.requestId)).toBe(true);
    const zip = await getBytes(bucket, "out/in.zip");
    expect(zip.length).toBe(result.size);
    const dir = await mkdtemp(path.join(tmpdir(), "example-lambda-"));
    try {
      await writeFile(path.join(dir, "in.zip"), zip);
      await verifyZip(path.join(dir, "in.zip"), [
        { name: "a.bin", data: objects["in/a.bin"] },
        { name: "b/c.txt", data: objects["in/b/c.txt"] },
      ], { readers: ["unzip", "python"] });
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
    expect(await listUploads(bucket)).toEqual([]);
  });

  it("reports a bad event as the Lambda runtime would, touching nothing", async () => {
    const r = invoke({ src: { bucket }, dest: { bucket: "", key: "" } });
    expect(r.status).toBe(1);
    expect(r.last).toMatchObject({ errorCode: "ERR_INVALID_EVENT" });
    expect(String(r.last.errorMessage)).toMatch(/prefix/);
  });
});
