/**
 * `@zipstream/testkit`: the S3 server every S3 test suite of this repository runs against.
 *
 * {@link getTestS3} picks the server once per process:
 * 1. `S3_ENDPOINT` (with `AWS_ACCESS_KEY_ID`/`AWS_SECRET_ACCESS_KEY`, optional `AWS_REGION`,
 *    `S3_SECOND_ACCESS_KEY_ID`/`S3_SECOND_SECRET_ACCESS_KEY`) from the environment: any S3
 *    (AWS, MinIO, R2, or the local gateway whose `env` file was sourced). `S3_KIND=ceph` marks
 *    the local Ceph gateway, `S3_KIND=minio` a MinIO server.
 * 2. otherwise MinIO in a container through `@testcontainers/minio`, when a Docker engine answers;
 * 3. otherwise the local Ceph RADOS Gateway, started through `infra/local-s3/start.sh` (default
 *    data directory `<repo>/.local-s3`, or `LOCAL_S3_DIR`), whose `env` file is then read.
 *
 * `TESTKIT_S3=env|minio|ceph` forces one of the three; `TESTKIT_MINIO_IMAGE` picks the MinIO image.
 *
 * Every client it makes is path-style and computes/validates checksums only when an operation
 * requires it (`requestChecksumCalculation`/`responseChecksumValidation: "WHEN_REQUIRED"`):
 * Ceph 16 answers the SDK's default aws-chunked uploads with 411 and has no flexible checksums.
 */
import {
  AbortMultipartUploadCommand,
  CreateBucketCommand,
  DeleteBucketCommand,
  DeleteObjectsCommand,
  GetObjectCommand,
  ListMultipartUploadsCommand,
  ListObjectVersionsCommand,
  S3Client,
  type S3ClientConfig,
} from "@aws-sdk/client-s3";
import { execFile } from "node:child_process";
import { createHash, createHmac, randomBytes } from "node:crypto";
import { createWriteStream } from "node:fs";
import { readFile, rename, rm } from "node:fs/promises";
import { Agent as HttpAgent, request as httpRequest, type IncomingMessage } from "node:http";
import { Agent as HttpsAgent, request as httpsRequest } from "node:https";
import { connect } from "node:net";
import { dirname, resolve } from "node:path";
import { Readable } from "node:stream";
import { pipeline } from "node:stream/promises";
import { fileURLToPath } from "node:url";

export type { S3ClientConfig } from "@aws-sdk/client-s3";

/** Access key pair. */
export interface TestS3Credentials {
  accessKeyId: string;
  secretAccessKey: string;
}

/** One S3 server for tests, with helpers that remember and clean up what they create. */
export interface TestS3 {
  /** Where the server came from: the environment, a MinIO container, or the local Ceph gateway. */
  kind: "env" | "minio" | "ceph";
  /** Base URL, e.g. `http://127.0.0.1:7480`. */
  endpoint: string;
  region: string;
  credentials: TestS3Credentials;
  /** A second user with no rights on the first user's buckets, when the server has one. */
  second?: TestS3Credentials;
  /**
   * A new client for the first user: path-style, this endpoint, checksums only when required,
   * SDK default retries. `opts` override any of these.
   */
  client(opts?: Partial<S3ClientConfig>): S3Client;
  /** A new client for {@link TestS3.second}, or `undefined` when there is no second user. */
  secondClient(): S3Client | undefined;
  /**
   * Creates a bucket with a unique name (`<prefix>-<time>-<random>`, lowercase, at most 63
   * characters) and remembers it for {@link TestS3.cleanup}. Default prefix `zs`.
   */
  newBucket(prefix?: string): Promise<string>;
  /** PutObject for each item, `concurrency` at a time (default 16); the iterable is read lazily. */
  putObjects(
    bucket: string,
    objects: Iterable<{ key: string; body: Uint8Array | string }>,
    concurrency?: number,
  ): Promise<void>;
  /** The whole object in memory: for small objects only. */
  getObjectBytes(bucket: string, key: string): Promise<Buffer>;
  /** Streams the object to `path` (memory stays flat: fine for multi-GiB objects). */
  downloadToFile(bucket: string, key: string, path: string): Promise<void>;
  /** Every in-progress multipart upload in the bucket (all pages), optionally under a prefix. */
  listMultipartUploads(bucket: string, prefix?: string): Promise<{ key: string; uploadId: string }[]>;
  /** Aborts its uploads, deletes every object version and delete marker, then the bucket. */
  emptyAndDeleteBucket(bucket: string): Promise<void>;
  /** {@link TestS3.emptyAndDeleteBucket} for every bucket {@link TestS3.newBucket} created. */
  cleanup(): Promise<void>;
}

interface ServerInfo {
  kind: TestS3["kind"];
  endpoint: string;
  region: string;
  credentials: TestS3Credentials;
  second?: TestS3Credentials;
}

/** Repository root: this file is `<repo>/test/testkit/src/index.ts`. */
const REPO_ROOT = resolve(dirname(fileURLToPath(import.meta.url)), "../../..");
/** MinIO image for the testcontainers branch; `TESTKIT_MINIO_IMAGE` overrides it. */
const MINIO_IMAGE = process.env.TESTKIT_MINIO_IMAGE || "minio/minio:RELEASE.2025-04-22T22-12-26Z";

let memo: Promise<TestS3> | undefined;

/** The test S3 server of this process (chosen and, if needed, started on first call). */
export function getTestS3(): Promise<TestS3> {
  if (!memo) {
    const p = chooseServer().then(makeTestS3);
    // A failed start is not cached: the next caller tries again.
    p.catch(() => {
      if (memo === p) memo = undefined;
    });
    memo = p;
  }
  return memo;
}

async function chooseServer(): Promise<ServerInfo> {
  const forced = process.env.TESTKIT_S3;
  if (forced !== undefined && !["env", "minio", "ceph"].includes(forced)) {
    throw new TypeError(`TESTKIT_S3 must be "env", "minio" or "ceph", got "${forced}"`);
  }
  if (forced === "env" || (forced === undefined && process.env.S3_ENDPOINT)) return fromEnv(process.env);
  if (forced === "minio" || (forced === undefined && (await dockerAnswers()))) return startMinio();
  return startLocalCeph();
}

/** Reads the server from environment variables (or the parsed `env` file of the local gateway). */
function fromEnv(env: Record<string, string | undefined>): ServerInfo {
  const endpoint = env.S3_ENDPOINT;
  const accessKeyId = env.AWS_ACCESS_KEY_ID;
  const secretAccessKey = env.AWS_SECRET_ACCESS_KEY;
  if (!endpoint || !accessKeyId || !secretAccessKey) {
    throw new Error("testkit: S3_ENDPOINT needs AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY as well");
  }
  const second =
    env.S3_SECOND_ACCESS_KEY_ID && env.S3_SECOND_SECRET_ACCESS_KEY
      ? { accessKeyId: env.S3_SECOND_ACCESS_KEY_ID, secretAccessKey: env.S3_SECOND_SECRET_ACCESS_KEY }
      : undefined;
  const kind = env.S3_KIND === "ceph" ? "ceph" : env.S3_KIND === "minio" ? "minio" : "env";
  return {
    kind,
    endpoint: endpoint.replace(/\/+$/, ""),
    region: env.AWS_REGION || env.AWS_DEFAULT_REGION || "us-east-1",
    credentials: { accessKeyId, secretAccessKey },
    second,
  };
}

/** True when a Docker engine answers `GET /_ping` within a second (unix socket or tcp DOCKER_HOST). */
function dockerAnswers(): Promise<boolean> {
  const host = process.env.DOCKER_HOST;
  return new Promise<boolean>((done) => {
    const finish = (ok: boolean) => {
      clearTimeout(timer);
      done(ok);
    };
    const timer = setTimeout(() => {
      req?.destroy();
      sock?.destroy();
      done(false);
    }, 1000);
    let req: ReturnType<typeof httpRequest> | undefined;
    let sock: ReturnType<typeof connect> | undefined;
    if (host && /^(tcp|http):\/\//.test(host)) {
      const url = new URL("/_ping", host.replace(/^tcp:/, "http:"));
      req = httpRequest(url, (res) => {
        res.resume();
        finish(res.statusCode === 200);
      });
      req.on("error", () => finish(false));
      req.end();
      return;
    }
    const path = host?.startsWith("unix://") ? host.slice("unix://".length) : "/var/run/docker.sock";
    sock = connect(path);
    let reply = "";
    sock.on("connect", () => sock!.write("GET /_ping HTTP/1.0\r\nHost: docker\r\n\r\n"));
    sock.on("data", (d) => (reply += d.toString("latin1")));
    sock.on("end", () => finish(/^HTTP\/1\.[01] 200/.test(reply)));
    sock.on("error", () => finish(false));
  });
}

/**
 * MinIO in a container (testcontainers' reaper removes it when the process exits).
 * The second user is created with MinIO's own `mc` inside the container and gets no policy,
 * so every request it makes on the first user's buckets is denied. Not exercised on the CI
 * machine (no Docker engine there).
 */
async function startMinio(): Promise<ServerInfo> {
  const { MinioContainer } = await import("@testcontainers/minio");
  const user = "zipstreamminio";
  const password = "zipstreamminio-secret";
  const container = await new MinioContainer(MINIO_IMAGE).withUsername(user).withPassword(password).start();
  const info: ServerInfo = {
    kind: "minio",
    endpoint: container.getConnectionUrl(),
    region: "us-east-1",
    credentials: { accessKeyId: user, secretAccessKey: password },
  };
  const second = { accessKeyId: "zipstreamsecond", secretAccessKey: "zipstreamsecond-secret" };
  const alias = await container.exec(["mc", "alias", "set", "local", "http://127.0.0.1:9000", user, password]);
  const add =
    alias.exitCode === 0
      ? await container.exec(["mc", "admin", "user", "add", "local", second.accessKeyId, second.secretAccessKey])
      : alias;
  if (add.exitCode === 0) info.second = second;
  return info;
}

/** Starts (or finds running) the local Ceph gateway and reads its `env` file. */
async function startLocalCeph(): Promise<ServerInfo> {
  const script = resolve(REPO_ROOT, "infra/local-s3/start.sh");
  const dataDir = process.env.LOCAL_S3_DIR || resolve(REPO_ROOT, ".local-s3");
  await new Promise<void>((ok, fail) => {
    execFile(
      "bash",
      [script, "--data-dir", dataDir],
      { timeout: 300_000, maxBuffer: 16 << 20 },
      (err, _stdout, stderr) => {
        if (err) fail(new Error(`testkit: ${script} failed: ${err.message}\n${stderr.slice(-4000)}`, { cause: err }));
        else ok();
      },
    );
  });
  const info = fromEnv(parseEnvFile(await readFile(resolve(dataDir, "env"), "utf8")));
  return { ...info, kind: "ceph" };
}

/** Parses `export NAME=value` lines (no quoting: the values start.sh writes need none). */
export function parseEnvFile(text: string): Record<string, string> {
  const out: Record<string, string> = {};
  for (const line of text.split("\n")) {
    const m = /^\s*(?:export\s+)?([A-Za-z_][A-Za-z0-9_]*)=(.*)$/.exec(line);
    if (m) out[m[1]!] = m[2]!.trim().replace(/^(['"])(.*)\1$/, "$2");
  }
  return out;
}

function makeClient(info: ServerInfo, credentials: TestS3Credentials, opts?: Partial<S3ClientConfig>): S3Client {
  return new S3Client({
    endpoint: info.endpoint,
    region: info.region,
    credentials,
    forcePathStyle: true,
    // Ceph 16 rejects aws-chunked (streaming trailer) bodies with 411 and has no flexible
    // checksums; with these two settings the SDK sends plain bodies of known length.
    requestChecksumCalculation: "WHEN_REQUIRED",
    responseChecksumValidation: "WHEN_REQUIRED",
    ...opts,
  });
}

/** `prefix-<base36 time>-<hex>`: lowercase, DNS-safe, at most 63 characters. */
export function uniqueBucketName(prefix = "zs"): string {
  const clean =
    prefix
      .toLowerCase()
      .replace(/[^a-z0-9-]+/g, "-")
      .replace(/^-+|-+$/g, "")
      .slice(0, 40)
      .replace(/-+$/, "") || "zs";
  const name = `${clean}-${Date.now().toString(36)}-${randomBytes(5).toString("hex")}`;
  return name.length < 3 ? `${name}-zs` : name;
}

function isErrorNamed(err: unknown, ...names: string[]): boolean {
  const e = err as { name?: string; Code?: string } | undefined;
  return !!e && (names.includes(e.name ?? "") || names.includes(e.Code ?? ""));
}

/** S3's URI encoding (SigV4): every byte but the unreserved characters, `/` kept when asked. */
function s3Encode(s: string, keepSlash: boolean): string {
  return encodeURIComponent(s)
    .replace(/[!'()*]/g, (ch) => `%${ch.charCodeAt(0).toString(16).toUpperCase()}`)
    .replace(keepSlash ? /%2F/g : /$^/, "/");
}

const hmac = (key: string | Buffer, data: string) => createHmac("sha256", key).update(data).digest();

/**
 * A minimal PutObject for filling buckets fast: one signed request (SigV4, `UNSIGNED-PAYLOAD`,
 * so the body is not hashed) on a keep-alive agent. The SDK's middleware stack costs several
 * milliseconds of CPU per request, which dominates when a test stores 70,000 small objects on a
 * two-core machine. Retries 5xx and connection resets (3 attempts), like the SDK would.
 */
function makeRawPut(info: ServerInfo) {
  const url = new URL(info.endpoint);
  const secure = url.protocol === "https:";
  const agent = secure
    ? new HttpsAgent({ keepAlive: true, maxSockets: 64 })
    : new HttpAgent({ keepAlive: true, maxSockets: 64 });
  const send = secure ? httpsRequest : httpRequest;
  const { accessKeyId, secretAccessKey } = info.credentials;
  const basePath = url.pathname.replace(/\/+$/, "");
  let signingKey: { day: string; key: Buffer } | undefined;

  const once = (bucket: string, key: string, body: Buffer) =>
    new Promise<void>((ok, fail) => {
      const amzDate = new Date().toISOString().replace(/[-:]|\.\d{3}/g, "");
      const day = amzDate.slice(0, 8);
      if (signingKey?.day !== day) {
        const k = hmac(hmac(hmac(hmac(`AWS4${secretAccessKey}`, day), info.region), "s3"), "aws4_request");
        signingKey = { day, key: k };
      }
      const path = `${basePath}/${s3Encode(bucket, false)}/${s3Encode(key, true)}`;
      const headers: Record<string, string> = {
        host: url.host,
        "x-amz-content-sha256": "UNSIGNED-PAYLOAD",
        "x-amz-date": amzDate,
      };
      const signed = Object.keys(headers).sort();
      // Canonical request: method, URI, query (none), headers (each line ends in \n, so a
      // blank line follows them), signed header names, payload hash.
      const canonical = [
        "PUT",
        path,
        "",
        signed.map((h) => `${h}:${headers[h]}\n`).join(""),
        signed.join(";"),
        "UNSIGNED-PAYLOAD",
      ].join("\n");
      const scope = `${day}/${info.region}/s3/aws4_request`;
      const toSign = `AWS4-HMAC-SHA256\n${amzDate}\n${scope}\n${createHash("sha256").update(canonical).digest("hex")}`;
      const signature = createHmac("sha256", signingKey.key).update(toSign).digest("hex");
      const req = send(
        {
          protocol: url.protocol,
          hostname: url.hostname,
          port: url.port,
          method: "PUT",
          path,
          agent,
          headers: {
            ...headers,
            "content-length": String(body.length),
            authorization: `AWS4-HMAC-SHA256 Credential=${accessKeyId}/${scope}, SignedHeaders=${signed.join(";")}, Signature=${signature}`,
          },
        },
        (res: IncomingMessage) => {
          const chunks: Buffer[] = [];
          res.on("data", (c: Buffer) => chunks.push(c));
          res.on("end", () => {
            if (res.statusCode === 200) return ok();
            const text = Buffer.concat(chunks).toString("utf8");
            const code = /<Code>([^<]*)<\/Code>/.exec(text)?.[1] ?? `HTTP ${res.statusCode}`;
            const err = Object.assign(new Error(`PutObject ${bucket}/${key} failed: ${code}`), {
              name: code,
              $metadata: { httpStatusCode: res.statusCode },
            });
            fail(err);
          });
          res.on("error", fail);
        },
      );
      req.on("error", fail);
      req.end(body);
    });

  const put = async (bucket: string, key: string, body: Uint8Array | string) => {
    const buf = typeof body === "string" ? Buffer.from(body, "utf8") : Buffer.from(body.buffer, body.byteOffset, body.byteLength);
    for (let attempt = 1; ; attempt++) {
      try {
        return await once(bucket, key, buf);
      } catch (err) {
        const status = (err as { $metadata?: { httpStatusCode?: number } }).$metadata?.httpStatusCode;
        const transient = status === undefined ? (err as NodeJS.ErrnoException).code !== undefined : status >= 500;
        if (!transient || attempt >= 3) throw err;
        await new Promise((r) => setTimeout(r, 100 * 2 ** attempt));
      }
    }
  };
  return { put, close: () => agent.destroy() };
}

function makeTestS3(info: ServerInfo): TestS3 {
  const created = new Set<string>();
  // One long-lived client for the helpers; tests get fresh ones from client().
  const admin = makeClient(info, info.credentials);
  const raw = makeRawPut(info);

  const listMultipartUploads = async (bucket: string, prefix?: string) => {
    const out: { key: string; uploadId: string }[] = [];
    let keyMarker: string | undefined;
    let uploadIdMarker: string | undefined;
    for (;;) {
      const page = await admin.send(
        new ListMultipartUploadsCommand({
          Bucket: bucket,
          Prefix: prefix,
          KeyMarker: keyMarker,
          UploadIdMarker: uploadIdMarker,
        }),
      );
      for (const u of page.Uploads ?? []) out.push({ key: u.Key!, uploadId: u.UploadId! });
      if (!page.IsTruncated) return out;
      keyMarker = page.NextKeyMarker;
      uploadIdMarker = page.NextUploadIdMarker;
      if (keyMarker === undefined && uploadIdMarker === undefined) return out;
    }
  };

  const emptyAndDeleteBucket = async (bucket: string) => {
    try {
      for (const u of await listMultipartUploads(bucket)) {
        await admin
          .send(new AbortMultipartUploadCommand({ Bucket: bucket, Key: u.key, UploadId: u.uploadId }))
          .catch((err) => {
            if (!isErrorNamed(err, "NoSuchUpload")) throw err;
          });
      }
      // Versions and delete markers, so that versioned buckets empty too; pages of up to
      // 1000 keys, the DeleteObjects maximum.
      let keyMarker: string | undefined;
      let versionMarker: string | undefined;
      for (;;) {
        const page = await admin.send(
          new ListObjectVersionsCommand({ Bucket: bucket, KeyMarker: keyMarker, VersionIdMarker: versionMarker }),
        );
        const ids = [...(page.Versions ?? []), ...(page.DeleteMarkers ?? [])].map((v) => ({
          Key: v.Key!,
          VersionId: v.VersionId,
        }));
        // RGW deletes the keys of one DeleteObjects request one after another, so several
        // smaller requests at once empty a big bucket several times faster.
        const batches: (typeof ids)[] = [];
        for (let i = 0; i < ids.length; i += 125) batches.push(ids.slice(i, i + 125));
        await Promise.all(
          Array.from({ length: Math.min(8, batches.length) }, async () => {
            for (let batch = batches.shift(); batch; batch = batches.shift()) {
              const res = await admin.send(
                new DeleteObjectsCommand({ Bucket: bucket, Delete: { Objects: batch, Quiet: true } }),
              );
              if (res.Errors && res.Errors.length > 0) {
                const e = res.Errors[0]!;
                throw new Error(`testkit: deleting ${e.Key} from ${bucket} failed: ${e.Code} ${e.Message}`);
              }
            }
          }),
        );
        if (!page.IsTruncated) break;
        keyMarker = page.NextKeyMarker;
        versionMarker = page.NextVersionIdMarker;
      }
      await admin.send(new DeleteBucketCommand({ Bucket: bucket }));
    } catch (err) {
      if (!isErrorNamed(err, "NoSuchBucket")) throw err;
    }
    created.delete(bucket);
  };

  return {
    kind: info.kind,
    endpoint: info.endpoint,
    region: info.region,
    credentials: info.credentials,
    second: info.second,
    client: (opts) => makeClient(info, info.credentials, opts),
    secondClient: () => (info.second ? makeClient(info, info.second) : undefined),

    async newBucket(prefix) {
      const name = uniqueBucketName(prefix);
      await admin.send(new CreateBucketCommand({ Bucket: name }));
      created.add(name);
      return name;
    },

    async putObjects(bucket, objects, concurrency = 16) {
      if (!Number.isInteger(concurrency) || concurrency < 1) {
        throw new TypeError(`concurrency must be a positive integer, got ${concurrency}`);
      }
      const it = objects[Symbol.iterator]();
      let failed = false;
      const worker = async () => {
        // Each worker pulls the next item itself, so the iterable is consumed lazily and
        // at most `concurrency` bodies are in flight.
        while (!failed) {
          const next = it.next();
          if (next.done) return;
          const { key, body } = next.value;
          try {
            await raw.put(bucket, key, body);
          } catch (err) {
            failed = true;
            throw err;
          }
        }
      };
      await Promise.all(Array.from({ length: concurrency }, worker));
    },

    async getObjectBytes(bucket, key) {
      const res = await admin.send(new GetObjectCommand({ Bucket: bucket, Key: key }));
      return Buffer.from(await res.Body!.transformToByteArray());
    },

    async downloadToFile(bucket, key, path) {
      const res = await admin.send(new GetObjectCommand({ Bucket: bucket, Key: key }));
      // Write next to the target and rename, so a failed download leaves no partial file.
      const tmp = `${path}.part-${randomBytes(4).toString("hex")}`;
      try {
        await pipeline(res.Body as Readable, createWriteStream(tmp));
        await rename(tmp, path);
      } catch (err) {
        await rm(tmp, { force: true });
        throw err;
      }
    },

    listMultipartUploads,
    emptyAndDeleteBucket,

    async cleanup() {
      const errors: unknown[] = [];
      for (const bucket of [...created]) {
        try {
          await emptyAndDeleteBucket(bucket);
        } catch (err) {
          errors.push(err);
        }
      }
      if (errors.length > 0) throw new AggregateError(errors, `testkit: cleanup failed for ${errors.length} bucket(s)`);
    },
  };
}

export { startRewriteProxy, type ProxiedResponse, type SeenRequest } from "./rewrite-proxy.js";
