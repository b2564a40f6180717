/**
 * The handler in-process (no bundle), against the same real S3 server: error mapping of
 * zipS3Keys failures, progress lines, and name mapping as data.
 */
import { CreateBucketCommand, DeleteBucketCommand, DeleteObjectsCommand, GetObjectCommand, ListObjectsV2Command, PutObjectCommand, S3Client } from "@aws-sdk/client-s3";
import { isZipError } from "@zipstream/core";
import { readWith } from "@zipstream/interop";
import { randomUUID } from "node:crypto";
import { existsSync, readFileSync } from "node:fs";
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createHandler, LambdaZipError, type LambdaContext } from "../src/index.js";

const root = fileURLToPath(new URL("../../..", import.meta.url));
let client: S3Client;
let bucket: string;
let work: string;

function s3Env(): Record<string, string | undefined> {
  if (process.env.S3_ENDPOINT) return process.env;
  const file = join(root, ".local-s3", "env");
  if (!existsSync(file)) throw new Error("no S3 server: set S3_ENDPOINT and AWS_* credentials, or start infra/local-s3/start.sh");
  const env: Record<string, string> = {};
  for (const m of readFileSync(file, "utf8").matchAll(/^export (\w+)=(.*)$/gm)) env[m[1]!] = m[2]!.replace(/^["']|["']$/g, "");
  return env;
}

const context = (memory = 1024): LambdaContext => {
  const deadline = Date.now() + 300_000;
  return { awsRequestId: randomUUID(), functionName: "in-process", memoryLimitInMB: String(memory), getRemainingTimeInMillis: () => deadline - Date.now() };
};

beforeAll(async () => {
  const env = s3Env();
  client = new S3Client({
    region: env.AWS_REGION ?? "us-east-1",
    endpoint: env.S3_ENDPOINT!,
    forcePathStyle: true,
    credentials: { accessKeyId: env.AWS_ACCESS_KEY_ID!, secretAccessKey: env.AWS_SECRET_ACCESS_KEY! },
    requestChecksumCalculation: "WHEN_REQUIRED",
    responseChecksumValidation: "WHEN_REQUIRED",
  });
  bucket = `lambda-${randomUUID().slice(0, 8)}`;
  await client.send(new CreateBucketCommand({ Bucket: bucket }));
  for (const k of ["data/2024/a.csv", "data/2024/deep/b.csv", "data/2023/c.csv"]) {
    await client.send(new PutObjectCommand({ Bucket: bucket, Key: k, Body: `contents of ${k}\n` }));
  }
  work = await mkdtemp(join(tmpdir(), "zipstream-lambda-h-"));
});

afterAll(async () => {
  try {
    const list = await client.send(new ListObjectsV2Command({ Bucket: bucket }));
    if (list.Contents?.length) await client.send(new DeleteObjectsCommand({ Bucket: bucket, Delete: { Objects: list.Contents.map((o) => ({ Key: o.Key! })) } }));
    await client.send(new DeleteBucketCommand({ Bucket: bucket }));
  } catch {
    // best effort
  }
  client?.destroy();
  if (work) await rm(work, { recursive: true, force: true });
});

describe("handler (in-process)", () => {
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

  it("maps names as data (stripPrefix, flatten, namePrefix) and writes progress lines", async () => {
    const lines: string[] = [];
    const handler = createHandler({ client, write: (l) => lines.push(l), progressIntervalMs: 100 });
    const run = async (options: Record<string, unknown>, key: string) => {
      const res = await handler({ src: { bucket, prefix: "data/" }, dest: { bucket, key }, options: { method: "deflate", ...options } }, context(512));
      const body = await client.send(new GetObjectCommand({ Bucket: bucket, Key: key }));
      const file = join(work, key.replaceAll("/", "_"));
      await writeFile(file, await body.Body!.transformToByteArray());
      const seen = await readWith("python", file);
      return { res, names: seen.entries.map((e) => e.name).sort() };
    };
    const def = await run({}, "out/default.zip");
    expect(def.names).toEqual(["2023/c.csv", "2024/a.csv", "2024/deep/b.csv"]);
    expect(def.res).toMatchObject({ entries: 3, memory: { partSize: 64 * 1024 * 1024, concurrency: 2 } });
    const mapped = await run({ stripPrefix: "data/2024/", namePrefix: "june/" }, "out/mapped.zip");
    expect(mapped.names).toEqual(["june/a.csv", "june/data/2023/c.csv", "june/deep/b.csv"]);
    const flat = await run({ flatten: true }, "out/flat.zip");
    expect(flat.names).toEqual(["a.csv", "b.csv", "c.csv"]);
    const logs = lines.map((l) => JSON.parse(l) as Record<string, unknown>);
    expect(logs.filter((l) => l.msg === "zip complete")).toHaveLength(3);
    for (const l of logs) expect(Object.keys(l).slice(0, 3)).toEqual(["timestamp", "level", "requestId"]);
  });
});
