/**
 * The handler in-process (no bundle), against the same real S3 server: error mapping of
 * zipS3Keys failures, name mapping as data, log lines.
 */
import type { S3Client } from "@aws-sdk/client-s3";
import { getTestS3, type TestS3 } from "@zipstream/testkit";
import { isZipError } from "@zipstream/core";
import { readWith } from "@zipstream/interop";
import { randomUUID } from "node:crypto";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createHandler, LambdaZipError, type LambdaContext } from "../src/index.js";

let s3: TestS3;
let client: S3Client;
let bucket: string;
let work: string;

const context = (memory = 1024): LambdaContext => {
  const deadline = Date.now() + 300_000;
  return { awsRequestId: randomUUID(), functionName: "in-process", memoryLimitInMB: String(memory), getRemainingTimeInMillis: () => deadline - Date.now() };
};

beforeAll(async () => {
  s3 = await getTestS3();
  client = s3.client();
  bucket = await s3.newBucket("lambda");
  await s3.putObjects(
    bucket,
    ["data/2024/a.csv", "data/2024/deep/b.csv", "data/2023/c.csv"].map((k) => ({ key: k, body: `contents of ${k}\n` })),
  );
  work = await mkdtemp(join(tmpdir(), "zipstream-lambda-h-"));
});

afterAll(async () => {
  await s3?.cleanup();
  client?.destroy();
  if (work) await rm(work, { recursive: true, force: true });
});

describe("handler (in-process)", () => {
  it("copy assembly from the event: S3 copies the large member; a bad assembly is an invalid event", async () => {
    const big = Buffer.alloc(12 * 1024 * 1024 + 7, 3);
    await s3.putObjects(bucket, [{ key: "copy/big.bin", body: big }, { key: "copy/small.txt", body: "small" }]);
    const handler = createHandler({ client, write: () => undefined });
    const res = await handler({ src: { bucket, prefix: "copy/" }, dest: { bucket, key: "out/copy.zip" }, options: { assembly: "copy", copyMinSize: 5 * 1024 * 1024 } }, context());
    expect(res).toMatchObject({ assembly: "copy", entries: 2 });
    expect((res as { bytesCopied: number }).bytesCopied).toBeGreaterThan(5 * 1024 * 1024);
    const file = join(work, "copy.zip");
    await s3.downloadToFile(bucket, "out/copy.zip", file);
    const seen = await readWith("python", file);
    expect(seen.entries.map((e) => e.name).sort()).toEqual(["big.bin", "small.txt"]);
    const bad = await handler({ src: { bucket, prefix: "copy/" }, dest: { bucket, key: "out/x.zip" }, options: { assembly: "teleport" } }, context()).catch((e: unknown) => e);
    expect(isZipError(bad, "ERR_INVALID_EVENT")).toBe(true);
  });

  it("reports a missing key with the S3 error's code as errorType, and logs it as JSON", async () => {
    const lines: string[] = [];
    const handler = createHandler({ client, write: (l) => lines.push(l) });
    const ctx = context();
    const err = await handler({ src: { bucket, keys: ["data/2024/a.csv", "data/nope.csv"] }, dest: { bucket, key: "out/missing.zip" } }, ctx).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(LambdaZipError);
    expect(isZipError(err, "ERR_S3_NO_SUCH_KEY")).toBe(true);
    expect((err as LambdaZipError).name).toBe("ERR_S3_NO_SUCH_KEY");
    expect((err as Error).cause).toBeDefined();
    const logs = lines.map((l) => JSON.parse(l) as Record<string, unknown>);
    expect(logs.at(-1)).toMatchObject({ level: "ERROR", msg: "zip failed", errorCode: "ERR_S3_NO_SUCH_KEY", requestId: ctx.awsRequestId });
  });

  it("maps names as data (stripPrefix, namePrefix) and logs JSON lines", async () => {
    const lines: string[] = [];
    const handler = createHandler({ client, write: (l) => lines.push(l) });
    const run = async (options: Record<string, unknown>, key: string) => {
      const res = await handler({ src: { bucket, prefix: "data/" }, dest: { bucket, key }, options: { method: "deflate", ...options } }, context(512));
      const file = join(work, key.replaceAll("/", "_"));
      await s3.downloadToFile(bucket, key, file);
      const seen = await readWith("yauzl", file);
      return { res, names: seen.entries.map((e) => e.name).sort() };
    };
    const def = await run({}, "out/default.zip");
    expect(def.names).toEqual(["2023/c.csv", "2024/a.csv", "2024/deep/b.csv"]);
    expect(def.res).toMatchObject({ entries: 3, memory: { partSize: 64 * 1024 * 1024, concurrency: 2 } });
    const mapped = await run({ stripPrefix: "data/2024/", namePrefix: "june/" }, "out/mapped.zip");
    expect(mapped.names).toEqual(["june/a.csv", "june/data/2023/c.csv", "june/deep/b.csv"]);
    const logs = lines.map((l) => JSON.parse(l) as Record<string, unknown>);
    expect(logs.filter((l) => l.msg === "zip complete")).toHaveLength(2);
    for (const l of logs) expect(Object.keys(l).slice(0, 3)).toEqual(["timestamp", "level", "requestId"]);
  });
});
