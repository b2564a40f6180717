/**
 * Shared plumbing of the reliability suite: the S3 endpoint, clients (direct and through the
 * fault proxy), bucket lifecycle, seeding, archive validation and leftover checks.
 * Verification and cleanup always go through the direct client, never through the proxy.
 */
import { execFile } from "node:child_process";
import { createHash, randomBytes } from "node:crypto";
import { existsSync, readFileSync } from "node:fs";
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import http from "node:http";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import {
  AbortMultipartUploadCommand,
  CreateBucketCommand,
  DeleteBucketCommand,
  DeleteObjectsCommand,
  GetObjectCommand,
  HeadObjectCommand,
  ListMultipartUploadsCommand,
  ListObjectsV2Command,
  PutObjectCommand,
  S3Client,
  type S3ClientConfig,
} from "@aws-sdk/client-s3";

export const REPO_ROOT = fileURLToPath(new URL("../../../", import.meta.url));

export interface S3Env {
  endpoint: string;
  region: string;
  accessKeyId: string;
  secretAccessKey: string;
  second?: { accessKeyId: string; secretAccessKey: string };
}

/**
 * The S3 server of the test run: S3_ENDPOINT and the AWS_* variables (set by scripts/test.sh),
 * else the `env` file the local Ceph gateway writes into <repo>/.local-s3.
 */
export function s3Env(): S3Env {
  const env: Record<string, string | undefined> = { ...process.env };
  const file = join(REPO_ROOT, ".local-s3", "env");
  if (!env.S3_ENDPOINT && existsSync(file)) {
    for (const line of readFileSync(file, "utf8").split("\n")) {
      const m = /^(?:export\s+)?([A-Z0-9_]+)=(.*)$/.exec(line.trim());
      if (m) env[m[1]] = m[2].replace(/^["']|["']$/g, "");
    }
  }
  if (!env.S3_ENDPOINT || !env.AWS_ACCESS_KEY_ID || !env.AWS_SECRET_ACCESS_KEY) {
    throw new Error(
      "no S3 server: set S3_ENDPOINT/AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY or start infra/local-s3/start.sh",
    );
  }
  return {
    endpoint: env.S3_ENDPOINT,
    region: env.AWS_REGION ?? "us-east-1",
    accessKeyId: env.AWS_ACCESS_KEY_ID,
    secretAccessKey: env.AWS_SECRET_ACCESS_KEY,
    ...(env.S3_SECOND_ACCESS_KEY_ID && env.S3_SECOND_SECRET_ACCESS_KEY
      ? { second: { accessKeyId: env.S3_SECOND_ACCESS_KEY_ID, secretAccessKey: env.S3_SECOND_SECRET_ACCESS_KEY } }
      : {}),
  };
}

export interface ClientWithAgent {
  client: S3Client;
  /** The agent the client's sockets come from: `agent.sockets` lists sockets in use. */
  agent: http.Agent;
}

/** An S3 client for Ceph RGW (path style, no flexible checksums) with its own keep-alive agent. */
export function makeClient(
  env: S3Env,
  opts: { endpoint?: string; credentials?: { accessKeyId: string; secretAccessKey: string }; maxAttempts?: number } = {},
): ClientWithAgent {
  const agent = new http.Agent({ keepAlive: true, maxSockets: 64 });
  const config: S3ClientConfig = {
    endpoint: opts.endpoint ?? env.endpoint,
    region: env.region,
    forcePathStyle: true,
    credentials: opts.credentials ?? { accessKeyId: env.accessKeyId, secretAccessKey: env.secretAccessKey },
    requestChecksumCalculation: "WHEN_REQUIRED",
    responseChecksumValidation: "WHEN_REQUIRED",
    // A plain options object: the SDK builds its NodeHttpHandler around our agent.
    requestHandler: { httpAgent: agent, connectionTimeout: 10_000, requestTimeout: 60_000 },
    ...(opts.maxAttempts !== undefined ? { maxAttempts: opts.maxAttempts } : {}),
  };
  return { client: new S3Client(config), agent };
}

/** Sockets checked out of the agent (in use); idle keep-alive sockets are not counted. */
export function socketsInUse(agent: http.Agent): number {
  return Object.values(agent.sockets).reduce((n, list) => n + (list?.length ?? 0), 0);
}

/** Waits until `cond` holds, polling; throws with `what` after `ms`. */
export async function waitFor(cond: () => boolean | Promise<boolean>, what: string, ms = 30_000): Promise<void> {
  const end = Date.now() + ms;
  while (!(await cond())) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

export function uniqueBucket(tag: string): string {
  return `rel-${tag}-${Date.now().toString(36)}-${randomBytes(3).toString("hex")}`;
}

export async function createBucket(client: S3Client, bucket: string): Promise<void> {
  await client.send(new CreateBucketCommand({ Bucket: bucket }));
}

/** Aborts every incomplete upload, deletes every object, deletes the bucket. */
export async function destroyBucket(client: S3Client, bucket: string): Promise<void> {
  try {
    for (const u of await listUploads(client, bucket)) {
      await client.send(new AbortMultipartUploadCommand({ Bucket: bucket, Key: u.key, UploadId: u.uploadId }));
    }
    let token: string | undefined;
    do {
      const page = await client.send(new ListObjectsV2Command({ Bucket: bucket, ContinuationToken: token }));
      const keys = (page.Contents ?? []).map((o) => ({ Key: o.Key! }));
      if (keys.length) await client.send(new DeleteObjectsCommand({ Bucket: bucket, Delete: { Objects: keys, Quiet: true } }));
      token = page.NextContinuationToken;
    } while (token);
    await client.send(new DeleteBucketCommand({ Bucket: bucket }));
  } catch (err) {
    console.error(`cleanup of bucket ${bucket} failed:`, err);
  }
}

/** ListMultipartUploads (all pages) under `prefix`. */
export async function listUploads(client: S3Client, bucket: string, prefix?: string) {
  const out: { key: string; uploadId: string }[] = [];
  let keyMarker: string | undefined;
  let idMarker: string | undefined;
  for (;;) {
    const page = await client.send(
      new ListMultipartUploadsCommand({ Bucket: bucket, Prefix: prefix, KeyMarker: keyMarker, UploadIdMarker: idMarker }),
    );
    for (const u of page.Uploads ?? []) out.push({ key: u.Key!, uploadId: u.UploadId! });
    if (!page.IsTruncated) return out;
    keyMarker = page.NextKeyMarker;
    idMarker = page.NextUploadIdMarker;
  }
}

/** True when `bucket/key` exists (HeadObject through the direct client). */
export async function objectExists(client: S3Client, bucket: string, key: string): Promise<boolean> {
  try {
    await client.send(new HeadObjectCommand({ Bucket: bucket, Key: key }));
    return true;
  } catch (err) {
    if ((err as { $metadata?: { httpStatusCode?: number } }).$metadata?.httpStatusCode === 404) return false;
    throw err;
  }
}

/** Deterministic pseudo-random bytes (fast enough for tens of MiB). */
export function patternBytes(size: number, seed: number): Buffer {
  const buf = Buffer.allocUnsafe(size);
  let x = (seed * 2654435761) >>> 0 || 1;
  let i = 0;
  for (; i + 4 <= size; i += 4) {
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    buf.writeUInt32LE(x >>> 0, i);
  }
  for (; i < size; i++) buf[i] = (x >>> (8 * (i & 3))) & 0xff;
  return buf;
}

export const sha256 = (b: Uint8Array) => createHash("sha256").update(b).digest("hex");

export interface Seeded {
  key: string;
  size: number;
  sha256: string;
}

/** Puts objects with `concurrency` PUTs at once; returns their keys, sizes and hashes. */
export async function seedObjects(
  client: S3Client,
  bucket: string,
  specs: { key: string; size: number; seed: number }[],
  concurrency = 32,
): Promise<Seeded[]> {
  const out: Seeded[] = new Array(specs.length);
  let next = 0;
  const worker = async () => {
    while (next < specs.length) {
      const i = next++;
      const s = specs[i];
      const body = patternBytes(s.size, s.seed);
      await client.send(new PutObjectCommand({ Bucket: bucket, Key: s.key, Body: body, ContentLength: s.size }));
      out[i] = { key: s.key, size: s.size, sha256: sha256(body) };
    }
  };
  await Promise.all(Array.from({ length: Math.min(concurrency, specs.length) }, worker));
  return out;
}

/** Downloads `bucket/key` to a temporary file (direct client); returns the path and a remover. */
export async function download(client: S3Client, bucket: string, key: string): Promise<{ path: string; dispose: () => Promise<void> }> {
  const dir = await mkdtemp(join(tmpdir(), "zipstream-rel-"));
  const path = join(dir, "archive.zip");
  const res = await client.send(new GetObjectCommand({ Bucket: bucket, Key: key }));
  await writeFile(path, Buffer.from(await res.Body!.transformToByteArray()));
  return { path, dispose: () => rm(dir, { recursive: true, force: true }) };
}

function run(cmd: string, args: string[], input?: string): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    const child = execFile(cmd, args, { maxBuffer: 256 * 1024 * 1024 }, (err, stdout, stderr) => {
      const code = err ? (typeof (err as { code?: unknown }).code === "number" ? (err as { code: number }).code : 1) : 0;
      resolve({ code, stdout, stderr });
    });
    if (input !== undefined) child.stdin!.end(input);
  });
}

let python: Promise<string> | undefined;
/** The real interpreter behind `python3` (a pyenv shim costs seconds per start on a loaded machine). */
function pythonExe(): Promise<string> {
  python ??= run("python3", ["-c", "import sys; print(sys.executable)"]).then((r) =>
    r.code === 0 && r.stdout.trim() ? r.stdout.trim() : "python3",
  );
  return python;
}

const PY_HASH = `
import hashlib, json, sys, zipfile
out = {}
with zipfile.ZipFile(sys.argv[1]) as z:
    bad = z.testzip()
    if bad is not None:
        raise SystemExit("CRC error in " + bad)
    for info in z.infolist():
        h = hashlib.sha256()
        with z.open(info) as f:
            while True:
                b = f.read(1 << 20)
                if not b:
                    break
                h.update(b)
        out[info.filename] = [info.file_size, h.hexdigest()]
json.dump(out, sys.stdout)
`;

/**
 * Reads the archive with Python's zipfile (an external reader): every member's CRC is checked
 * and its SHA-256 returned, keyed by name.
 */
export async function hashMembers(path: string): Promise<Map<string, { size: number; sha256: string }>> {
  const r = await run(await pythonExe(), ["-c", PY_HASH, path]);
  if (r.code !== 0) throw new Error(`python zipfile rejected ${path}: ${r.stderr || r.stdout}`);
  const obj = JSON.parse(r.stdout) as Record<string, [number, string]>;
  return new Map(Object.entries(obj).map(([k, [size, h]]) => [k, { size, sha256: h }]));
}

/** Asserts the archive holds exactly `expected` (name -> content), checked by Python zipfile. */
export async function expectArchive(path: string, expected: Map<string, Seeded>): Promise<void> {
  const got = await hashMembers(path);
  const problems: string[] = [];
  for (const [name, want] of expected) {
    const g = got.get(name);
    if (!g) problems.push(`missing ${name}`);
    else if (g.size !== want.size || g.sha256 !== want.sha256) problems.push(`content differs: ${name}`);
  }
  for (const name of got.keys()) if (!expected.has(name)) problems.push(`unexpected ${name}`);
  if (problems.length) throw new Error(`archive ${path} is wrong: ${problems.slice(0, 10).join("; ")}`);
}

/** Full external-reader checks: Info-ZIP `unzip -t` and 7-Zip `7z t` must both accept the archive. */
export async function externalReadersAccept(path: string): Promise<string[]> {
  const used: string[] = [];
  const unzip = await run("unzip", ["-tqq", path]);
  if (unzip.code !== 0) throw new Error(`unzip -t rejected ${path}: ${unzip.stdout}${unzip.stderr}`);
  used.push("unzip");
  const sz = await run("7z", ["t", "-bd", path]);
  if (sz.code !== 0) throw new Error(`7z t rejected ${path}: ${sz.stdout}${sz.stderr}`);
  used.push("7z");
  return used;
}

/** Seed of this run: RELIABILITY_SEED replays one, else random. Logged by the tests. */
export function runSeed(): number {
  const s = process.env.RELIABILITY_SEED;
  return s ? Number(s) : Math.floor(Math.random() * 2 ** 31);
}

/** SHA-256 of an object's bytes, streamed through the direct client. */
export async function objectDigest(client: S3Client, bucket: string, key: string): Promise<string> {
  const res = await client.send(new GetObjectCommand({ Bucket: bucket, Key: key }));
  const h = createHash("sha256");
  for await (const chunk of res.Body as AsyncIterable<Uint8Array>) h.update(chunk);
  return h.digest("hex");
}
