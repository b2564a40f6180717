/**
 * Runs the deployment bundle (dist-bundle/index.mjs) in its own Node process through
 * scripts/invoke-local.mjs, as the Lambda runtime would, against a real S3 server (the local
 * Ceph gateway in CI): a successful job verified by external readers, a bad event answered
 * before any S3 call, a job stopped by the time budget with its multipart upload aborted, and
 * the logs (JSON lines with the request id, never the password).
 */
import { HeadObjectCommand, PutObjectCommand, type S3Client } from "@aws-sdk/client-s3";
import { getTestS3, type TestS3 } from "@zipstream/testkit";
import { verifyZip, type ExpectedEntry } from "@zipstream/interop";
import { spawn } from "node:child_process";
import { createHash, randomBytes, randomUUID } from "node:crypto";
import { existsSync } from "node:fs";
import { mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { afterAll, beforeAll, describe, expect, it } from "vitest";

const pkg = fileURLToPath(new URL("..", import.meta.url));
const bundle = join(pkg, "dist-bundle", "index.mjs");
const runner = join(pkg, "scripts", "invoke-local.mjs");
const MiB = 1024 * 1024;
const PASSWORD = `pw-${randomUUID()}`;

interface Invocation {
  code: number | null;
  outcome: { result?: Record<string, unknown>; error?: { errorType: string; errorMessage: string; code?: string; issues?: { path: string; message: string }[] } };
  stdout: string;
  stderr: string;
  logs: Record<string, unknown>[];
}

let work: string;
let s3: TestS3;
let client: S3Client;

/** Invokes the bundle in a fresh Node process with a minimal, Lambda-like environment. */
async function invoke(event: unknown, opts: { timeoutMs?: number; memory?: number; requestId?: string; env?: Record<string, string> } = {}): Promise<Invocation> {
  const id = randomUUID();
  const eventFile = join(work, `event-${id}.json`);
  const resultFile = join(work, `result-${id}.json`);
  await writeFile(eventFile, JSON.stringify(event));
  const env: Record<string, string> = {
    PATH: process.env.PATH ?? "/usr/bin:/bin",
    AWS_REGION: s3.region,
    AWS_ACCESS_KEY_ID: s3.credentials.accessKeyId,
    AWS_SECRET_ACCESS_KEY: s3.credentials.secretAccessKey,
    AWS_ENDPOINT_URL: s3.endpoint,
    // Test servers (Ceph, MinIO, local endpoints) have no virtual-host DNS.
    S3_FORCE_PATH_STYLE: "1",
    ZIPSTREAM_TEST_PASSWORD: PASSWORD,
    // Deploy-time list of the password names events may use.
    ZIPSTREAM_PASSWORDS: "ZIPSTREAM_TEST_PASSWORD",
    ...opts.env,
  };
  const args = [
    runner,
    "--bundle", bundle,
    "--memory", String(opts.memory ?? 1024),
    "--timeout-ms", String(opts.timeoutMs ?? 600_000),
    "--request-id", opts.requestId ?? id,
    "--result", resultFile,
    eventFile,
  ];
  const child = spawn(process.execPath, args, { env, stdio: ["ignore", "pipe", "pipe"] });
  let stdout = "";
  let stderr = "";
  child.stdout.on("data", (c: Buffer) => (stdout += c.toString("utf8")));
  child.stderr.on("data", (c: Buffer) => (stderr += c.toString("utf8")));
  const code = await new Promise<number | null>((resolve) => child.on("close", resolve));
  if (!existsSync(resultFile)) throw new Error(`runner produced no result (exit ${code}):\n${stderr}\n${stdout}`);
  const outcome = JSON.parse(await readFile(resultFile, "utf8")) as Invocation["outcome"];
  const lines = stdout.split("\n").filter((l) => l.trim() !== "");
  // Every line the handler writes must be one JSON object.
  const logs = lines.map((l) => {
    try {
      return JSON.parse(l) as Record<string, unknown>;
    } catch {
      throw new Error(`log line is not JSON: ${l}`);
    }
  });
  return { code, outcome, stdout, stderr, logs };
}

const makeBucket = () => s3.newBucket("lambda");

async function put(bucket: string, key: string, body: Uint8Array): Promise<string> {
  const r = await client.send(new PutObjectCommand({ Bucket: bucket, Key: key, Body: body, ContentLength: body.length }));
  return r.ETag!;
}

const openUploads = async (bucket: string) => (await s3.listMultipartUploads(bucket)).length;

const sha = (b: Uint8Array) => createHash("sha256").update(b).digest("hex");

beforeAll(async () => {
  s3 = await getTestS3();
  client = s3.client();
  work = await mkdtemp(join(tmpdir(), "zipstream-lambda-"));
  // Test the bundle as built from the current sources.
  await new Promise<void>((resolve, reject) => {
    const child = spawn(process.execPath, [join(pkg, "scripts", "bundle.mjs")], { stdio: ["ignore", "pipe", "pipe"] });
    let err = "";
    child.stderr.on("data", (c: Buffer) => (err += c.toString()));
    child.on("close", (code) => (code === 0 ? resolve() : reject(new Error(`bundle failed: ${err}`))));
  });
  // Start the S3-free invocations now; their tests await them. (Failures surface there.)
  offline().catch(() => undefined);
});

afterAll(async () => {
  await s3?.cleanup();
  client?.destroy();
  if (work) await rm(work, { recursive: true, force: true });
});

const INLINE = `inline-${randomUUID()}`;
let offlineRuns: Promise<Invocation[]> | undefined;
/**
 * The invocations that must not reach S3, run concurrently (each is a Node process start):
 * the endpoint is a closed port, so any S3 call would end in a network error instead.
 */
function offline(): Promise<Invocation[]> {
  const env = { AWS_ENDPOINT_URL: "http://127.0.0.1:9" };
  offlineRuns ??= Promise.all([
    invoke(
      {
        src: [{ bucket: "b", prefix: "p/", keys: ["k"] }, { bucket: "b", keys: [""] }],
        dest: { bucket: "d" },
        options: { method: "lzma", partSize: 1, password: INLINE, concurrency: 2.5 },
        junk: true,
      },
      { env },
    ),
    invoke(
      { src: { bucket: "b", prefix: "" }, dest: { bucket: "d", key: "k.zip" }, options: { password: { env: "NOT_SET_ANYWHERE" }, partSize: 512 * MiB } },
      { env, memory: 1024 },
    ),
    invoke({ src: { bucket: "b", prefix: "" }, dest: { bucket: "d", key: "k.zip" } }, { timeoutMs: 5_000, env }),
  ]);
  return offlineRuns;
}

describe("bundle in a separate Node process, against S3", () => {
  it("is one self-contained ESM file with a source map", async () => {
    const text = await readFile(bundle, "utf8");
    expect(text).not.toMatch(/from\s*"@aws-sdk\//); // the SDK is inside, not imported
    expect(text).not.toMatch(/from\s*"@zipstream\//);
    expect(text).toContain("sourceMappingURL=index.mjs.map");
    expect(existsSync(`${bundle}.map`)).toBe(true);
  });

  it("zips a prefix plus explicit keys into a multipart archive that external readers verify", async () => {
    const src = await makeBucket();
    const dest = await makeBucket();
    const files: Record<string, Uint8Array> = {
      "exports/a.txt": Buffer.from("hello lambda\n".repeat(1000)),
      "exports/sub/ünïcödé.bin": randomBytes(300_000),
      "exports/empty.txt": new Uint8Array(0),
      "exports/big.bin": randomBytes(12 * MiB),
    };
    for (const [k, v] of Object.entries(files)) await put(src, k, v);
    const extra = randomBytes(1000);
    await put(src, "other/x.dat", extra);

    const requestId = randomUUID();
    const inv = await invoke(
      {
        src: [{ bucket: src, prefix: "exports/" }, { bucket: src, key: "other/x.dat", name: "extra/x.dat" }],
        dest: { bucket: dest, key: "out/archive.zip", contentDisposition: 'attachment; filename="archive.zip"', metadata: { job: "t1" } },
        options: { partSize: 5 * MiB, concurrency: 2 },
      },
      { requestId },
    );
    expect(inv.outcome.error).toBeUndefined();
    expect(inv.code).toBe(0);
    const r = inv.outcome.result!;
    expect(r).toMatchObject({ bucket: dest, key: "out/archive.zip", entries: 5, zip64: false, requestId, skipped: [] });
    expect(r.parts as number).toBeGreaterThanOrEqual(3); // 12 MiB of random data in 5 MiB parts
    expect(r.memory).toEqual({ partSize: 5 * MiB, concurrency: 2, prefetch: { objects: 16, bytes: 128 * MiB }, entryMemory: expect.any(Number) });

    const head = await client.send(new HeadObjectCommand({ Bucket: dest, Key: "out/archive.zip" }));
    expect(head.ContentLength).toBe(r.size);
    expect(head.ContentType).toBe("application/zip");
    expect(head.ContentDisposition).toBe('attachment; filename="archive.zip"');
    expect(head.Metadata).toEqual({ job: "t1" });
    expect(await openUploads(dest)).toBe(0);

    const file = join(work, "archive.zip");
    await s3.downloadToFile(dest, "out/archive.zip", file);
    const expected: ExpectedEntry[] = [
      ...Object.entries(files).map(([k, v]) => ({ name: k.slice("exports/".length), sha256: sha(v), size: v.length })),
      { name: "extra/x.dat", sha256: sha(extra), size: extra.length },
    ];
    await verifyZip(file, expected, { readers: ["unzip", "python"] });

    // Logs: JSON lines with the request id; a start and a completion line with the figures.
    expect(inv.logs.length).toBeGreaterThanOrEqual(2);
    for (const l of inv.logs) {
      expect(l).toMatchObject({ requestId, level: expect.stringMatching(/^(DEBUG|INFO|WARN|ERROR)$/), msg: expect.any(String) });
      expect(Number.isNaN(Date.parse(l.timestamp as string))).toBe(false);
    }
    const done = inv.logs.find((l) => l.msg === "zip complete")!;
    expect(done).toMatchObject({ level: "INFO", entries: 5, bytes: r.size, parts: r.parts, zip64: false, durationMs: expect.any(Number) });
    expect(done.bytesIn).toBe(Object.values(files).reduce((n, v) => n + v.length, 0) + extra.length);
  });

  it("encrypts with a password read from the environment, and never logs it", async () => {
    const src = await makeBucket();
    const data = Buffer.from("confidential ".repeat(5000));
    await put(src, "secret/report.txt", data);
    const inv = await invoke({
      src: { bucket: src, keys: ["secret/report.txt"] },
      dest: { bucket: src, key: "enc.zip" },
      options: { method: "deflate", flatten: true, password: { env: "ZIPSTREAM_TEST_PASSWORD" } },
    });
    expect(inv.outcome.error).toBeUndefined();
    expect(inv.outcome.result).toMatchObject({ entries: 1 });
    expect(inv.logs.find((l) => l.msg === "zip started")).toMatchObject({ encrypted: true });
    expect(inv.stdout + inv.stderr + JSON.stringify(inv.outcome)).not.toContain(PASSWORD);

    const file = join(work, "enc.zip");
    await s3.downloadToFile(src, "enc.zip", file);
    await verifyZip(file, [{ name: "report.txt", sha256: sha(data), size: data.length }], { readers: ["7z", "bsdtar"], password: PASSWORD });
    await expect(verifyZip(file, [{ name: "report.txt", sha256: sha(data) }], { readers: ["7z"], password: "wrong" })).rejects.toThrow();
  });

  it("answers a bad event with every problem listed, before any S3 call", async () => {
    const [inv] = (await offline()) as [Invocation];
    expect(inv.code).toBe(1);
    const e = inv.outcome.error!;
    expect(e).toMatchObject({ errorType: "ERR_INVALID_EVENT", code: "ERR_INVALID_EVENT" });
    expect(e.issues!.map((i) => i.path).sort()).toEqual(
      ["src[0]", "src[1].keys[0]", "dest.key", "options.method", "options.partSize", "options.password", "options.concurrency", "junk"].sort(),
    );
    for (const i of e.issues!) expect(e.errorMessage).toContain(`${i.path}: ${i.message}`);
    const everything = inv.stdout + inv.stderr + JSON.stringify(inv.outcome);
    expect(everything).not.toMatch(/ECONNREFUSED|connect|socket|network/i);
    expect(everything).not.toContain(INLINE);
    const logged = inv.logs.find((l) => l.level === "ERROR")!;
    expect(logged).toMatchObject({ msg: "invalid event", errorCode: "ERR_INVALID_EVENT", issues: e.issues });
  });

  it("refuses an unset password variable, options the memory cannot hold, and a start with too little time", async () => {
    const [, unset, tooLate] = (await offline()) as [Invocation, Invocation, Invocation];
    expect(unset.outcome.error!.code).toBe("ERR_INVALID_EVENT");
    expect(unset.outcome.error!.issues!.map((i) => i.path)).toEqual(["options.partSize", "options.password.env"]);
    expect(tooLate.outcome.error).toMatchObject({ code: "ERR_TIMEOUT", errorMessage: expect.stringMatching(/^Not started/) });
    expect(JSON.stringify(tooLate)).not.toMatch(/ECONNREFUSED/);
  });

  it("stops a job that cannot finish in time, aborting its multipart upload", async () => {
    const src = await makeBucket();
    const dest = await makeBucket();
    const body = randomBytes(16 * MiB);
    const etag = await put(src, "big.bin", body);
    // 300 references to one 16 MiB object: a 4.8 GB archive, far more than the ~10 s left
    // (20 s remaining minus the 10 s minimum safety margin).
    const TIMEOUT_MS = 20_000;
    const refs = Array.from({ length: 300 }, (_, i) => ({ bucket: src, key: "big.bin", name: `copy-${i}.bin`, size: body.length, etag }));
    // Watch the destination while the job runs: the multipart upload must exist at some point.
    let sawUpload = false;
    let running = true;
    const watcher = (async () => {
      while (running) {
        if ((await openUploads(dest)) > 0) sawUpload = true;
        await new Promise((r) => setTimeout(r, 250));
      }
    })();
    const started = Date.now();
    const inv = await invoke(
      { src: refs, dest: { bucket: dest, key: "too-big.zip" }, options: { partSize: 5 * MiB, concurrency: 2, prefetch: { objects: 2, bytes: 16 * MiB } } },
      { timeoutMs: TIMEOUT_MS },
    );
    const elapsed = Date.now() - started;
    running = false;
    await watcher;
    expect(inv.outcome.result).toBeUndefined();
    expect(inv.code).toBe(1);
    expect(inv.outcome.error).toMatchObject({ errorType: "ERR_TIMEOUT", code: "ERR_TIMEOUT" });
    expect(inv.outcome.error!.errorMessage).toMatch(/multipart upload was aborted/);
    // Returned before the (simulated) deadline, so Lambda would not have killed it.
    expect(elapsed).toBeLessThan(TIMEOUT_MS + 5_000);
    const failed = inv.logs.find((l) => l.msg === "zip failed")!;
    expect(failed).toMatchObject({ level: "ERROR", errorCode: "ERR_TIMEOUT" });
    // A multipart upload existed (seen listed, or parts were uploaded into it), and it is gone.
    expect(sawUpload || (failed.parts as number) >= 1).toBe(true);
    expect(inv.stderr).not.toMatch(/MaxListenersExceeded/);
    expect(await openUploads(dest)).toBe(0);
    await expect(client.send(new HeadObjectCommand({ Bucket: dest, Key: "too-big.zip" }))).rejects.toMatchObject({ name: "NotFound" });
  });

});
