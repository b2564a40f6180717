/**
 * Bad input to the handler (issue 13): schema bounds from the library, the key cap and the
 * entries' memory, deploy-time password names, the password from Secrets Manager, log redaction
 * by field, and failure reports that say what was left behind.
 */
import { createServer, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import { randomUUID } from "node:crypto";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { AbortMultipartUploadCommand, PutObjectCommand, S3Client as S3, type S3Client } from "@aws-sdk/client-s3";
import { MIN_PREFETCH_BYTES, S3ZipError } from "@zipstream/s3";
import { verifyZip } from "@zipstream/interop";
import { getTestS3, startRewriteProxy, type TestS3 } from "@zipstream/testkit";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { clearSecretCache, createHandler, createLogger, LambdaZipError, MAX_EVENT_KEYS, planMemory, validateEvent, type LambdaContext } from "../src/index.js";
import { toLambdaError } from "../src/handler.js";
import { CleanupUnfinishedError } from "../src/errors.js";

const MiB = 1024 * 1024;
let s3: TestS3;
let client: S3Client;
let bucket: string;
let work: string;

const context = (memory = 512): LambdaContext => {
  const deadline = Date.now() + 300_000;
  return { awsRequestId: randomUUID(), memoryLimitInMB: String(memory), getRemainingTimeInMillis: () => deadline - Date.now() };
};
const ok = () => ({ src: { bucket, keys: ["in/a.txt"] }, dest: { bucket, key: `out/${randomUUID()}.zip` } });

beforeAll(async () => {
  s3 = await getTestS3();
  client = s3.client();
  bucket = await s3.newBucket("lambda-hard");
  await s3.putObjects(bucket, [{ key: "in/a.txt", body: "secret contents\n".repeat(100) }]);
  work = await mkdtemp(join(tmpdir(), "zipstream-lambda-hard-"));
});

afterAll(async () => {
  await s3?.cleanup();
  client?.destroy();
  if (work) await rm(work, { recursive: true, force: true });
});

describe("event bounds come from the library", () => {
  it("prefetch.bytes: 0 fails validation at its path, as the library would refuse it", () => {
    expect(MIN_PREFETCH_BYTES).toBe(1);
    expect(validateEvent({ ...ok(), options: { prefetch: { bytes: 0 } } }).issues).toEqual([
      { path: "options.prefetch.bytes", message: "prefetch.bytes must be an integer from 1 to 10737418240; got 0" },
    ]);
  });

  it("the handler answers prefetch.bytes: 0 with ERR_INVALID_EVENT, not ERR_INTERNAL", async () => {
    const handler = createHandler({ client, write: () => {} });
    const err = await handler({ ...ok(), options: { prefetch: { bytes: 0 } } }, context()).catch((e: unknown) => e);
    expect(err).toMatchObject({ code: "ERR_INVALID_EVENT" });
  });

  it(`refuses an event naming more than ${MAX_EVENT_KEYS} keys`, () => {
    const keys = Array.from({ length: MAX_EVENT_KEYS + 1 }, (_, i) => `k/${i}`);
    const issues = validateEvent({ src: { bucket: "b", keys }, dest: { bucket: "d", key: "x.zip" } }).issues;
    expect(issues).toEqual([{ path: "src", message: expect.stringContaining(`names ${MAX_EVENT_KEYS + 1} object keys, more than the ${MAX_EVENT_KEYS}`) }]);
  });
});

describe("the memory plan counts entries", () => {
  it("gives entries what buffers and the runtime leave, at least 10 % of the memory", () => {
    expect(planMemory(128).plan.entryMemory).toBe(128 * MiB - 64 * MiB - Math.floor(128 * MiB * 0.3));
    expect(planMemory(2048).plan.entryMemory).toBe(2048 * MiB - (64 * 5 + 256) * MiB - Math.floor(2048 * MiB * 0.3));
    // Explicit buffers at 80 % still leave 10 % for entries.
    expect(planMemory(1024, { partSize: 128 * MiB, concurrency: 4, prefetch: { bytes: 169 * MiB } }).plan.entryMemory).toBe(Math.floor(1024 * MiB * 0.1));
  });

  it("refuses, before any S3 call, an event whose keys alone exceed a 128 MB function's entry budget", async () => {
    const keys = Array.from({ length: 60_000 }, (_, i) => `exports/2024/file-${String(i).padStart(6, "0")}.csv`);
    const handler = createHandler({ client, write: () => {} });
    const err = (await handler({ src: { bucket, keys }, dest: { bucket, key: "out/many.zip" } }, context(128)).catch((e: unknown) => e)) as LambdaZipError;
    expect(err.code).toBe("ERR_INVALID_EVENT");
    expect(err.issues).toEqual([{ path: "src", message: expect.stringMatching(/its 60000 object keys need about [\d.]+ MiB .* more than the 25\.6 MiB a 128 MB function allows/) }]);
  });

  it("runs with the plan's entry budget and reports it", async () => {
    const handler = createHandler({ client, write: () => {} });
    const r = await handler(ok(), context(512));
    expect(r.memory.entryMemory).toBeGreaterThan(50 * MiB);
    expect(r.memory.entryMemory).toBe(planMemory(512).plan.entryMemory);
  });
});

describe("password names are configured at deploy time", () => {
  it("refuses a variable that ZIPSTREAM_PASSWORDS does not list, even when it is set", async () => {
    const lines: string[] = [];
    const handler = createHandler({ client, env: { DB_PASSWORD: "hunter2", ZIPSTREAM_PASSWORDS: "ZIP_PW" }, write: (l) => lines.push(l) });
    const err = (await handler({ ...ok(), options: { password: { env: "DB_PASSWORD" } } }, context()).catch((e: unknown) => e)) as LambdaZipError;
    expect(err.code).toBe("ERR_INVALID_EVENT");
    expect(err.issues).toEqual([{ path: "options.password.env", message: '"DB_PASSWORD" is not a password configured for this function (ZIPSTREAM_PASSWORDS allows ZIP_PW)' }]);
    expect(lines.join("")).not.toContain("hunter2");
  });

  it("refuses every name when none is configured", async () => {
    const handler = createHandler({ client, env: { ZIP_PW: "pw" }, write: () => {} });
    const err = (await handler({ ...ok(), options: { password: { env: "ZIP_PW" } } }, context()).catch((e: unknown) => e)) as LambdaZipError;
    expect(err.issues).toEqual([{ path: "options.password.env", message: expect.stringContaining("(ZIPSTREAM_PASSWORDS is empty)") }]);
  });

  it("accepts a configured name and encrypts with its value", async () => {
    const handler = createHandler({ client, env: { ZIP_PW: "correct horse", ZIPSTREAM_PASSWORDS: "OTHER, ZIP_PW" }, write: () => {} });
    const ev = ok();
    const r = await handler({ ...ev, options: { password: { env: "ZIP_PW" } } }, context());
    expect(r.entries).toBe(1);
    const file = join(work, "configured.zip");
    await s3.downloadToFile(bucket, ev.dest.key, file);
    await verifyZip(file, [{ name: "in/a.txt", data: Buffer.from("secret contents\n".repeat(100)) }], { readers: ["7z"], password: "correct horse" });
  });
});

describe("the archive password from Secrets Manager (recorded responses: a local HTTP server answers as Secrets Manager does)", () => {
  let server: Server;
  let endpoint: string;
  const calls: { target: string; body: { SecretId?: string } }[] = [];
  const ARN = "arn:aws:secretsmanager:us-east-1:123456789012:secret:zipstream-password-AbCdEf";
  const SECRET = "s3cr3t from secrets manager";

  beforeAll(async () => {
    // The response shapes of GetSecretValue (awsJson1_1) as documented in the Secrets Manager API reference.
    server = createServer((req, res) => {
      let text = "";
      req.on("data", (c: Buffer) => (text += c.toString("utf8")));
      req.on("end", () => {
        const body = JSON.parse(text || "{}") as { SecretId?: string };
        calls.push({ target: String(req.headers["x-amz-target"]), body });
        if (body.SecretId === ARN) {
          res.writeHead(200, { "content-type": "application/x-amz-json-1.1" });
          res.end(JSON.stringify({ ARN, Name: "zipstream-password", VersionId: "EXAMPLE1-90ab-cdef-fedc-ba987SECRET1", SecretString: SECRET, VersionStages: ["AWSCURRENT"], CreatedDate: 1.523477145713e9 }));
        } else {
          res.writeHead(400, { "content-type": "application/x-amz-json-1.1", "x-amzn-errortype": "ResourceNotFoundException" });
          res.end(JSON.stringify({ __type: "ResourceNotFoundException", message: "Secrets Manager can't find the specified secret." }));
        }
      });
    });
    await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
    endpoint = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  });
  afterAll(() => new Promise<void>((r) => server.close(() => r())));

  const env = (secretId: string) => ({
    ZIPSTREAM_PASSWORDS: `ZIPSTREAM_PASSWORD=${secretId}`,
    AWS_ENDPOINT_URL_SECRETS_MANAGER: endpoint,
    AWS_REGION: "us-east-1",
  });

  it("reads it at run time, once for warm invocations, and never logs it", async () => {
    clearSecretCache();
    calls.length = 0;
    const lines: string[] = [];
    const handler = createHandler({ client, env: env(ARN), write: (l) => lines.push(l) });
    const first = ok();
    await handler({ ...first, options: { password: { env: "ZIPSTREAM_PASSWORD" } } }, context());
    await handler({ ...ok(), options: { password: { env: "ZIPSTREAM_PASSWORD" } } }, context());
    expect(calls).toEqual([{ target: "secretsmanager.GetSecretValue", body: { SecretId: ARN } }]);
    expect(lines.join("")).not.toContain(SECRET);
    const file = join(work, "secret.zip");
    await s3.downloadToFile(bucket, first.dest.key, file);
    await verifyZip(file, [{ name: "in/a.txt", data: Buffer.from("secret contents\n".repeat(100)) }], { readers: ["7z"], password: SECRET });
  });

  it("a secret that cannot be read fails with ERR_PASSWORD_SECRET before anything is written", async () => {
    clearSecretCache();
    const handler = createHandler({ client, env: env("arn:aws:secretsmanager:us-east-1:123456789012:secret:gone-XyZ123"), write: () => {} });
    const ev = ok();
    const err = await handler({ ...ev, options: { password: { env: "ZIPSTREAM_PASSWORD" } } }, context()).catch((e: unknown) => e);
    expect(err).toMatchObject({ code: "ERR_PASSWORD_SECRET", name: "ERR_PASSWORD_SECRET" });
    expect((err as Error).message).toContain("can't find the specified secret");
    await expect(s3.getObjectBytes(bucket, ev.dest.key)).rejects.toThrow();
    expect(await s3.listMultipartUploads(bucket)).toEqual([]);
  });
});

describe("log redaction by field", () => {
  it("a one-letter password leaves other text intact and redacts the fields that hold it", () => {
    const lines: string[] = [];
    const log = createLogger({ base: { requestId: "r-1" }, write: (l) => lines.push(l), level: "INFO" });
    log.addSecret("a");
    log.info("zip started", { dest: { bucket: "data", key: "a" }, encrypted: true, password: "a", sse: { customerKey: "QUJD" } });
    const line = JSON.parse(lines[0]!) as Record<string, unknown>;
    expect(line).toMatchObject({
      level: "INFO",
      requestId: "r-1",
      msg: "zip started",
      dest: { bucket: "data", key: "[REDACTED]" },
      encrypted: true,
      password: "[REDACTED]",
      sse: { customerKey: "[REDACTED]" },
    });
    expect(typeof line.timestamp).toBe("string");
    expect(Number.isNaN(Date.parse(line.timestamp as string))).toBe(false);
  });
});

describe("a timed-out job whose abort is denied (AccessDenied on AbortMultipartUpload answered by a proxy, as a role without the permission gets it)", () => {
  it("reports ERR_TIMEOUT naming the upload left behind, with leftBehind, and the upload is really there", async () => {
    const size = 6 * MiB;
    const body = Buffer.alloc(size, 7);
    const put = await client.send(new PutObjectCommand({ Bucket: bucket, Key: "in/big.bin", Body: body, ContentLength: body.length }));
    const denied = Buffer.from('<?xml version="1.0" encoding="UTF-8"?><Error><Code>AccessDenied</Code><Message>Access Denied</Message></Error>');
    const proxy = await startRewriteProxy(
      s3.endpoint,
      () => undefined,
      (req) => (req.method === "DELETE" && req.url.includes("uploadId=") ? { status: 403, headers: { "content-type": "application/xml" }, body: denied } : undefined),
    );
    const viaProxy = new S3({
      endpoint: proxy.endpoint,
      region: s3.region,
      credentials: s3.credentials,
      forcePathStyle: true,
      requestChecksumCalculation: "WHEN_REQUIRED",
      responseChecksumValidation: "WHEN_REQUIRED",
    });
    try {
      const handler = createHandler({ client: viaProxy, safetyMarginMs: 1000, write: () => {} });
      // The budget fires after about 5 s, with the upload created and its parts going (1.2 GB
      // through the buffering proxy cannot be done by then).
      const deadline = Date.now() + 6000;
      const refs = Array.from({ length: 200 }, (_, i) => ({ bucket, key: "in/big.bin", name: `copy-${i}.bin`, size, etag: put.ETag! }));
      const key = `out/${randomUUID()}.zip`;
      const err = (await handler(
        { src: refs, dest: { bucket, key }, options: { assembly: "stream", partSize: 5 * MiB, concurrency: 2, prefetch: { objects: 2, bytes: 12 * MiB } } },
        { awsRequestId: randomUUID(), memoryLimitInMB: "1024", getRemainingTimeInMillis: () => deadline - Date.now() },
      ).catch((e: unknown) => e)) as LambdaZipError;
      expect(err).toBeInstanceOf(LambdaZipError);
      expect(err.code).toBe("ERR_TIMEOUT");
      expect(proxy.seen.some((r) => r.method === "POST" && r.url.includes("uploads"))).toBe(true);
      const upload = err.leftBehind?.upload;
      expect(upload).toMatchObject({ bucket, key, uploadId: expect.any(String) });
      expect(err.message).toContain(`the multipart upload ${upload!.uploadId} of s3://${bucket}/${key} could not be aborted`);
      expect(err.message).not.toMatch(/nothing was (written|left)/);
      // True: the upload is still there (the proxy kept the abort from the server).
      const open = await s3.listMultipartUploads(bucket, "out/");
      expect(open.map((u) => u.uploadId)).toContain(upload!.uploadId);
      await client.send(new AbortMultipartUploadCommand({ Bucket: bucket, Key: key, UploadId: upload!.uploadId }));
    } finally {
      viaProxy.destroy();
      await proxy.close();
    }
  });
});

describe("failure reports say what was left behind", () => {
  const progress = { entries: 3, bytesIn: 0, bytesOut: 0, partsUploaded: 2, bytesUploaded: 0 };

  it("a timed-out job whose archive could not be deleted says it remains, and carries leftBehind", () => {
    const cause = new S3ZipError("ERR_ABORTED", "upload to s3://out/a.zip aborted, but the archive had been completed and removing it failed: it may remain at dest", {
      bucket: "out",
      key: "a.zip",
      leftBehind: { object: { bucket: "out", key: "a.zip", versionId: "v7" } },
    });
    const err = toLambdaError(cause, true, { margin: 10_000, progress });
    expect(err.code).toBe("ERR_TIMEOUT");
    expect(err.message).not.toMatch(/nothing was (written|left)/);
    expect(err.message).toContain("the archive s3://out/a.zip (version v7) was completed and could not be deleted again: it remains at the destination");
    expect(err.leftBehind).toEqual({ object: { bucket: "out", key: "a.zip", versionId: "v7" } });
    expect(err.toJSON()).toMatchObject({ leftBehind: { object: { key: "a.zip" } } });
  });

  it("a failed abort names the upload left behind", () => {
    const cause = new S3ZipError("ERR_ABORTED", "upload aborted; aborting the multipart upload failed", {
      leftBehind: { upload: { bucket: "out", key: "a.zip", uploadId: "2~abc" } },
    });
    const timedOut = toLambdaError(cause, true, { margin: 10_000, progress });
    expect(timedOut.message).toContain('the multipart upload 2~abc of s3://out/a.zip could not be aborted: it remains until the bucket\'s lifecycle rule or "zipstream cleanup" removes it');
    expect(timedOut.message).not.toContain("nothing was");
    const failed = toLambdaError(new S3ZipError("ERR_S3_UPLOAD", "UploadPart failed", { leftBehind: cause.leftBehind }), false, { margin: 10_000, progress });
    expect(failed.code).toBe("ERR_S3_UPLOAD");
    expect(failed.message).toContain("could not be aborted");
    expect(failed.leftBehind).toEqual(cause.leftBehind);
  });

  it("a job that did not settle after its abort is recognised by its class, not by message text", () => {
    const unfinished = toLambdaError(new CleanupUnfinishedError(), true, { margin: 10_000, progress });
    expect(unfinished.code).toBe("ERR_TIMEOUT");
    expect(unfinished.message).toContain("aborting the multipart upload did not complete in time: an incomplete upload may remain");
    // A timeout error that merely carries the old marker text is an ordinary timeout.
    const lookalike = toLambdaError(new LambdaZipError("ERR_TIMEOUT", "CLEANUP_UNFINISHED"), true, { margin: 10_000, progress });
    expect(lookalike.message).not.toContain("did not complete in time");
    expect(lookalike.message).toContain("it then failed with ERR_TIMEOUT: CLEANUP_UNFINISHED");
  });

  it("a clean abort still says nothing was left; another failure after the deadline is quoted, not assumed clean", () => {
    const clean = toLambdaError(new S3ZipError("ERR_ABORTED", "upload aborted"), true, { margin: 10_000, progress });
    expect(clean.message).toContain("its multipart upload was aborted and nothing was left at the destination");
    const other = toLambdaError(new S3ZipError("ERR_S3_UPLOAD", "CompleteMultipartUpload failed: 500"), true, { margin: 10_000, progress });
    expect(other.message).toContain("it then failed with ERR_S3_UPLOAD: CompleteMultipartUpload failed: 500");
    expect(other.message).not.toContain("nothing was");
  });
});
