// The quick start's main job: fill a bucket on the local S3 gateway with real files, zip them
// into one archive in S3 with zipS3Keys, download the archive, check it with independent readers
// (Info-ZIP and Python's zipfile) and every member's SHA-256, and print a summary.
//
// Reads S3_ENDPOINT, AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY, AWS_REGION from the environment
// (scripts/quickstart.sh sources them from the local gateway it starts).
import { createHash, randomBytes } from "node:crypto";
import { execFileSync } from "node:child_process";
import { readdirSync, readFileSync, statSync, mkdtempSync, rmSync, createWriteStream } from "node:fs";
import { join } from "node:path";
import { tmpdir } from "node:os";
import { pipeline } from "node:stream/promises";
import {
  S3Client, CreateBucketCommand, PutObjectCommand, GetObjectCommand, HeadBucketCommand,
} from "@aws-sdk/client-s3";
import { zipS3Keys } from "@zipstream/s3";

const endpoint = process.env.S3_ENDPOINT;
if (!endpoint) {
  console.error("S3_ENDPOINT is not set: run scripts/quickstart.sh, or source .local-s3/env first");
  process.exit(2);
}
const client = new S3Client({
  endpoint,
  region: process.env.AWS_REGION ?? "us-east-1",
  forcePathStyle: true,
  // Ceph 16 rejects aws-chunked uploads and has no flexible checksums.
  requestChecksumCalculation: "WHEN_REQUIRED",
  responseChecksumValidation: "WHEN_REQUIRED",
});

const srcBucket = "zipstream-demo-src";
const destBucket = "zipstream-demo-dest";
const prefix = "export/";
const sha256 = (b) => createHash("sha256").update(b).digest("hex");

async function ensureBucket(Bucket) {
  try { await client.send(new HeadBucketCommand({ Bucket })); }
  catch { await client.send(new CreateBucketCommand({ Bucket })); }
}

// Real files from this machine (documentation text and a few binaries), plus random bytes.
function sampleFiles() {
  const files = [];
  const docs = "/usr/share/common-licenses";
  for (const f of readdirSync(docs).slice(0, 12)) {
    const p = join(docs, f);
    if (statSync(p).isFile()) files.push({ key: `docs/licenses/${f}.txt`, body: readFileSync(p) });
  }
  for (const bin of ["/usr/bin/git", "/usr/bin/python3", "/bin/bash", "/usr/bin/unzip"]) {
    try { files.push({ key: `bin/${bin.split("/").pop()}`, body: readFileSync(bin) }); } catch {}
  }
  for (let i = 0; i < 12; i++) files.push({ key: `random/blob-${i}.bin`, body: randomBytes(256 * 1024 + i * 4099) });
  files.push({ key: "photos/été/café ☕.txt", body: Buffer.from("UTF-8 names survive the round trip\n") });
  files.push({ key: "empty/zero-bytes.txt", body: Buffer.alloc(0) });
  files.push({ key: "big/sample-5MiB.bin", body: randomBytes(5 * 1024 * 1024 + 123) });
  return files;
}

const t0 = performance.now();
await ensureBucket(srcBucket);
await ensureBucket(destBucket);
const files = sampleFiles();
await Promise.all(files.map((f) =>
  client.send(new PutObjectCommand({ Bucket: srcBucket, Key: prefix + f.key, Body: f.body }))));
const inputBytes = files.reduce((n, f) => n + f.body.length, 0);
console.log(`filled s3://${srcBucket}/${prefix} with ${files.length} objects (${(inputBytes / 2 ** 20).toFixed(1)} MiB)`);

const destKey = `archives/demo-${Date.now()}.zip`;
const t1 = performance.now();
const result = await zipS3Keys({
  client,
  src: { bucket: srcBucket, prefix },
  dest: { bucket: destBucket, key: destKey, contentDisposition: 'attachment; filename="demo.zip"' },
  method: "deflate",
  partSize: 5 * 1024 * 1024,
});
const zipSeconds = (performance.now() - t1) / 1000;

// Verify: download, then let two readers nobody here wrote check it, and compare every member.
const dir = mkdtempSync(join(tmpdir(), "zipstream-demo-"));
try {
  const zipPath = join(dir, "demo.zip");
  const obj = await client.send(new GetObjectCommand({ Bucket: destBucket, Key: destKey }));
  await pipeline(obj.Body, createWriteStream(zipPath));
  execFileSync("unzip", ["-tq", zipPath], { stdio: "pipe" });
  const py = `
import hashlib, json, sys, zipfile
z = zipfile.ZipFile(sys.argv[1])
assert z.testzip() is None
print(json.dumps({i.filename: hashlib.sha256(z.read(i)).hexdigest() for i in z.infolist() if not i.is_dir()}))`;
  const seen = JSON.parse(execFileSync("python3", ["-c", py, zipPath], { encoding: "utf8" }));
  for (const f of files) {
    if (seen[f.key] !== sha256(f.body)) throw new Error(`member ${f.key} does not match its source`);
  }
  if (Object.keys(seen).length !== files.length) throw new Error("unexpected member count");
  console.log([
    "",
    `archive   s3://${result.bucket}/${result.key}`,
    `entries   ${result.entries}`,
    `size      ${result.size} bytes (${(result.size / 2 ** 20).toFixed(1)} MiB; predicted ${result.predictedSize ?? "n/a"})`,
    `parts     ${result.parts}${result.zip64 ? "  (Zip64)" : ""}`,
    `zipped    in ${zipSeconds.toFixed(2)} s (${(inputBytes / 2 ** 20 / zipSeconds).toFixed(1)} MiB/s of input)`,
    `verified  unzip -t, Python zipfile CRCs, SHA-256 of all ${files.length} members`,
    `total     ${((performance.now() - t0) / 1000).toFixed(1)} s`,
  ].join("\n"));
} finally {
  rmSync(dir, { recursive: true, force: true });
}
