#!/usr/bin/env node
// Probe an S3 server for the flexible-checksum and conditional-request features that copy
// assembly (issue 11, sections 2 and 5) relies on, and print one row per check.
//
// usage: node infra/checksum-s3/probe.mjs [--label NAME] [--json FILE]
// env:   S3_CHECKSUM_ENDPOINT, S3_CHECKSUM_ACCESS_KEY_ID, S3_CHECKSUM_SECRET_ACCESS_KEY,
//        S3_CHECKSUM_REGION (what infra/checksum-s3/start.sh writes); when S3_CHECKSUM_ENDPOINT
//        is unset it falls back to S3_ENDPOINT / AWS_* (infra/local-s3's env), so the same probe
//        measures the Ceph 16 gateway.
//
// Each expected value is computed here with zlib.crc32 over the bytes sent, never taken from
// the server. The client keeps the SDK defaults (requestChecksumCalculation and
// responseChecksumValidation "WHEN_SUPPORTED"), as a user's client would. Exit code: 0 when
// every check ran (passed or not), 2 on a setup failure (no bucket, no server).
import { randomBytes, randomUUID } from "node:crypto";
import { writeFileSync } from "node:fs";
import { Readable } from "node:stream";
import { crc32 } from "node:zlib";
import {
  S3Client, CreateBucketCommand, DeleteBucketCommand, PutObjectCommand, HeadObjectCommand,
  GetObjectCommand, DeleteObjectCommand, ListObjectsV2Command, CreateMultipartUploadCommand,
  UploadPartCommand, UploadPartCopyCommand, CompleteMultipartUploadCommand,
  AbortMultipartUploadCommand, ListMultipartUploadsCommand, GetObjectAttributesCommand,
} from "@aws-sdk/client-s3";

const args = process.argv.slice(2);
const opt = (name) => { const i = args.indexOf(name); return i >= 0 ? args[i + 1] : undefined; };
const env = process.env;
const endpoint = env.S3_CHECKSUM_ENDPOINT ?? env.S3_ENDPOINT;
if (!endpoint) { console.error("probe: set S3_CHECKSUM_ENDPOINT (source DIR/env of start.sh)"); process.exit(2); }
const label = opt("--label") ?? env.S3_CHECKSUM_KIND ?? env.S3_KIND ?? endpoint;
const s3 = new S3Client({
  endpoint,
  region: env.S3_CHECKSUM_REGION ?? env.AWS_REGION ?? "us-east-1",
  credentials: {
    accessKeyId: env.S3_CHECKSUM_ACCESS_KEY_ID ?? env.AWS_ACCESS_KEY_ID,
    secretAccessKey: env.S3_CHECKSUM_SECRET_ACCESS_KEY ?? env.AWS_SECRET_ACCESS_KEY,
  },
  forcePathStyle: true,
  maxAttempts: 1, // a probe reports what the server answered, not what a retry hid
});

// The raw response headers of the last request: a server may send a checksum as a header where
// AWS puts it in the XML body (the SDK reads only the body for CopyPartResult).
let lastHeaders = {};
s3.middlewareStack.add((next) => async (args) => {
  const out = await next(args);
  lastHeaders = out.response?.headers ?? {};
  return out;
}, { step: "deserialize", name: "probeRawHeaders" });

const MiB = 1024 * 1024;
/** S3 transports a CRC-32 as the base64 of its 4 big-endian bytes. */
const b64 = (n) => { const b = Buffer.alloc(4); b.writeUInt32BE(n >>> 0); return b.toString("base64"); };
const crcOf = (buf) => b64(crc32(buf));
const describeError = (e) => `${e?.name ?? "Error"} HTTP ${e?.$metadata?.httpStatusCode ?? "?"}: ${String(e?.message ?? e).slice(0, 140)}`;

const rows = [];
/** One row: feature letter, check text, "yes" | "no", what the server answered. */
function record(feature, check, ok, detail) {
  rows.push({ feature, check, result: ok ? "yes" : "no", detail });
}
async function check(feature, name, fn) {
  try {
    const { ok, detail } = await fn();
    record(feature, name, ok, detail);
  } catch (e) {
    record(feature, name, false, describeError(e));
  }
}
async function status(promise) {
  try { const r = await promise; return { status: r.$metadata.httpStatusCode, r }; }
  catch (e) { return { status: e?.$metadata?.httpStatusCode ?? 0, e }; }
}

const Bucket = `cksum-probe-${randomUUID().slice(0, 8)}`;
try {
  await s3.send(new CreateBucketCommand({ Bucket }));
} catch (e) {
  console.error(`probe: cannot create bucket on ${endpoint}: ${describeError(e)}`);
  process.exit(2);
}

// One source object; its first 5 MiB are copied as a part, so it must be larger than that.
const src = randomBytes(6 * MiB + 4321);
const srcKey = "source.bin";
const range = src.subarray(0, 5 * MiB); // bytes=0-(5 MiB - 1): the smallest legal non-last part
const tail = randomBytes(MiB + 123);
const whole = Buffer.concat([range, tail]);
let srcEtag;

// (a) full-object CRC32 on a single PUT, as the SDK sends it by default.
await check("a", "PutObject, SDK default checksum (Buffer body, x-amz-checksum-crc32 header)", async () => {
  const r = await s3.send(new PutObjectCommand({ Bucket, Key: srcKey, Body: src }));
  srcEtag = r.ETag;
  return { ok: r.ChecksumCRC32 === crcOf(src), detail: `ChecksumCRC32=${r.ChecksumCRC32} expected ${crcOf(src)}` };
});
await check("a", "PutObject, SDK default checksum (stream body, aws-chunked + trailer)", async () => {
  const body = randomBytes(64 * 1024);
  const r = await s3.send(new PutObjectCommand({ Bucket, Key: "chunked.bin", Body: Readable.from([body]), ContentLength: body.length }));
  return { ok: r.ChecksumCRC32 === crcOf(body), detail: `ChecksumCRC32=${r.ChecksumCRC32} expected ${crcOf(body)}` };
});
await check("a", "HeadObject ChecksumMode=ENABLED: ChecksumCRC32 + ChecksumType FULL_OBJECT", async () => {
  const r = await s3.send(new HeadObjectCommand({ Bucket, Key: srcKey, ChecksumMode: "ENABLED" }));
  return {
    ok: r.ChecksumCRC32 === crcOf(src) && r.ChecksumType === "FULL_OBJECT",
    detail: `ChecksumCRC32=${r.ChecksumCRC32} (expected ${crcOf(src)}) ChecksumType=${r.ChecksumType}`,
  };
});
await check("a", "GetObject ChecksumMode=ENABLED: ChecksumCRC32, validated by the SDK", async () => {
  const r = await s3.send(new GetObjectCommand({ Bucket, Key: srcKey, ChecksumMode: "ENABLED" }));
  const got = Buffer.from(await r.Body.transformToByteArray());
  return {
    ok: r.ChecksumCRC32 === crcOf(src) && got.equals(src),
    detail: `ChecksumCRC32=${r.ChecksumCRC32} ChecksumType=${r.ChecksumType} body ${got.equals(src) ? "equal" : "DIFFERENT"}`,
  };
});

// (b) composite multipart object: per-part CRCs through GetObjectAttributes.
const partA = randomBytes(5 * MiB);
const partB = randomBytes(777_777);
const compKey = "composite.bin";
let compDone = false;
await check("b", "Multipart, ChecksumAlgorithm CRC32, no ChecksumType (AWS: COMPOSITE): UploadPart returns ChecksumCRC32; Complete succeeds", async () => {
  const { UploadId } = await s3.send(new CreateMultipartUploadCommand({ Bucket, Key: compKey, ChecksumAlgorithm: "CRC32" }));
  const parts = [];
  const got = [];
  for (const [i, body] of [partA, partB].entries()) {
    const r = await s3.send(new UploadPartCommand({ Bucket, Key: compKey, UploadId, PartNumber: i + 1, Body: body, ChecksumAlgorithm: "CRC32" }));
    parts.push({ PartNumber: i + 1, ETag: r.ETag, ChecksumCRC32: r.ChecksumCRC32 ?? crcOf(body) });
    got.push(r.ChecksumCRC32 === crcOf(body));
  }
  const c = await s3.send(new CompleteMultipartUploadCommand({ Bucket, Key: compKey, UploadId, MultipartUpload: { Parts: parts } }));
  compDone = true;
  return { ok: got.every(Boolean), detail: `part CRCs match: ${got.join(",")}; Complete ChecksumCRC32=${c.ChecksumCRC32} ChecksumType=${c.ChecksumType}` };
});
await check("b", "HeadObject ChecksumMode=ENABLED on that object: COMPOSITE CRC-of-CRCs \"-2\" (AWS), or FULL_OBJECT whole CRC", async () => {
  if (!compDone) return { ok: false, detail: "no composite object (previous row failed)" };
  const r = await s3.send(new HeadObjectCommand({ Bucket, Key: compKey, ChecksumMode: "ENABLED" }));
  const composite = `${b64(crc32(Buffer.concat([Buffer.from(crcOf(partA), "base64"), Buffer.from(crcOf(partB), "base64")])))}-2`;
  const full = crcOf(Buffer.concat([partA, partB]));
  const kind = r.ChecksumCRC32 === composite ? "= CRC-of-part-CRCs (composite)" : r.ChecksumCRC32 === full ? "= CRC-32 of the whole object" : "matches neither";
  const ok = (r.ChecksumType === "COMPOSITE" && r.ChecksumCRC32 === composite) || (r.ChecksumType === "FULL_OBJECT" && r.ChecksumCRC32 === full);
  return { ok, detail: `ChecksumCRC32=${r.ChecksumCRC32} ${kind} ChecksumType=${r.ChecksumType}` };
});
/** Checks GetObjectAttributes' parts against the bytes sent. */
function partsDetail(r) {
  const ps = r.ObjectParts?.Parts ?? [];
  const want = [partA, partB];
  const ok = ps.length === 2 && ps.every((p, i) => p.PartNumber === i + 1 && p.Size === want[i].length && p.ChecksumCRC32 === crcOf(want[i]));
  return {
    ok,
    detail: `TotalPartsCount=${r.ObjectParts?.TotalPartsCount} Parts=${JSON.stringify(ps.map((p) => [p.PartNumber, p.Size, p.ChecksumCRC32]))} (expected ${crcOf(partA)}, ${crcOf(partB)}) Checksum=${JSON.stringify(r.Checksum)} ObjectSize=${r.ObjectSize}`,
  };
}
await check("b", "GetObjectAttributes ObjectParts alone: per-part ChecksumCRC32 and Size", async () => {
  if (!compDone) return { ok: false, detail: "no composite object (previous row failed)" };
  return partsDetail(await s3.send(new GetObjectAttributesCommand({ Bucket, Key: compKey, ObjectAttributes: ["ObjectParts"] })));
});
await check("b", "GetObjectAttributes ETag,Checksum,ObjectParts,ObjectSize in one request (the SDK joins them with \", \")", async () => {
  if (!compDone) return { ok: false, detail: "no composite object (previous row failed)" };
  return partsDetail(await s3.send(new GetObjectAttributesCommand({ Bucket, Key: compKey, ObjectAttributes: ["ETag", "Checksum", "ObjectParts", "ObjectSize"] })));
});

// (c) + (d): the copy-assembly upload, FULL_OBJECT.
const fullKey = "full.bin";
let fullId;
let fullParts = [];
let copyHeader;
await check("c", "CreateMultipartUpload ChecksumAlgorithm=CRC32 ChecksumType=FULL_OBJECT", async () => {
  const r = await s3.send(new CreateMultipartUploadCommand({ Bucket, Key: fullKey, ChecksumAlgorithm: "CRC32", ChecksumType: "FULL_OBJECT" }));
  fullId = r.UploadId;
  // Accepted is what matters; AWS also echoes both headers, so say when one is missing.
  return { ok: Boolean(fullId), detail: `accepted; echoed ChecksumAlgorithm=${r.ChecksumAlgorithm} ChecksumType=${r.ChecksumType ?? "(not echoed)"}` };
});
await check("c", "UploadPartCopy CopySourceRange (FULL_OBJECT upload): CopyPartResult.ChecksumCRC32 of the range", async () => {
  if (!fullId) return { ok: false, detail: "no upload (previous row failed)" };
  const r = await s3.send(new UploadPartCopyCommand({
    Bucket, Key: fullKey, UploadId: fullId, PartNumber: 1,
    CopySource: `${Bucket}/${srcKey}`, CopySourceRange: `bytes=0-${range.length - 1}`, CopySourceIfMatch: srcEtag,
  }));
  const header = lastHeaders["x-amz-checksum-crc32"];
  fullParts[0] = { PartNumber: 1, ETag: r.CopyPartResult?.ETag, ChecksumCRC32: r.CopyPartResult?.ChecksumCRC32 ?? header };
  copyHeader = { header, type: lastHeaders["x-amz-checksum-type"] };
  return { ok: r.CopyPartResult?.ChecksumCRC32 === crcOf(range), detail: `CopyPartResult.ChecksumCRC32=${r.CopyPartResult?.ChecksumCRC32} expected ${crcOf(range)}` };
});
await check("c", "UploadPartCopy (FULL_OBJECT upload): range CRC as response header x-amz-checksum-crc32 (not AWS's wire format)", async () => {
  if (!copyHeader) return { ok: false, detail: "no copy (previous row failed)" };
  return { ok: copyHeader.header === crcOf(range), detail: `x-amz-checksum-crc32=${copyHeader.header} x-amz-checksum-type=${copyHeader.type} expected ${crcOf(range)}` };
});
await check("c", "UploadPart (FULL_OBJECT upload): returns ChecksumCRC32", async () => {
  if (!fullId) return { ok: false, detail: "no upload (previous row failed)" };
  const r = await s3.send(new UploadPartCommand({ Bucket, Key: fullKey, UploadId: fullId, PartNumber: 2, Body: tail, ChecksumAlgorithm: "CRC32" }));
  fullParts[1] = { PartNumber: 2, ETag: r.ETag, ChecksumCRC32: r.ChecksumCRC32 };
  return { ok: r.ChecksumCRC32 === crcOf(tail), detail: `ChecksumCRC32=${r.ChecksumCRC32} expected ${crcOf(tail)}` };
});
await check("c", "UploadPartCopy CopySourceRange (COMPOSITE upload): CopyPartResult.ChecksumCRC32", async () => {
  const key = "composite-copy.bin";
  const { UploadId } = await s3.send(new CreateMultipartUploadCommand({ Bucket, Key: key, ChecksumAlgorithm: "CRC32" }));
  try {
    const part = src.subarray(1000, 1000 + 5 * MiB);
    const r = await s3.send(new UploadPartCopyCommand({
      Bucket, Key: key, UploadId, PartNumber: 1, CopySource: `${Bucket}/${srcKey}`, CopySourceRange: `bytes=1000-${1000 + part.length - 1}`,
    }));
    return { ok: r.CopyPartResult?.ChecksumCRC32 === crcOf(part), detail: `CopyPartResult.ChecksumCRC32=${r.CopyPartResult?.ChecksumCRC32} x-amz-checksum-crc32 header=${lastHeaders["x-amz-checksum-crc32"]} expected ${crcOf(part)}` };
  } finally {
    await s3.send(new AbortMultipartUploadCommand({ Bucket, Key: key, UploadId })).catch(() => {});
  }
});

const parts = () => fullParts.map((p, i) => ({ PartNumber: i + 1, ETag: p?.ETag, ChecksumCRC32: p?.ChecksumCRC32 }));
await check("d", "CompleteMultipartUpload FULL_OBJECT with a wrong ChecksumCRC32 is rejected", async () => {
  if (!fullId || fullParts.length !== 2 || !fullParts.every((p) => p?.ETag)) return { ok: false, detail: "no parts (rows c failed)" };
  const wrong = b64(crc32(whole) ^ 1);
  const { status: st, e, r } = await status(s3.send(new CompleteMultipartUploadCommand({
    Bucket, Key: fullKey, UploadId: fullId, ChecksumType: "FULL_OBJECT", ChecksumCRC32: wrong, MultipartUpload: { Parts: parts() },
  })));
  if (r) { fullId = undefined; return { ok: false, detail: `accepted (HTTP ${st}) ChecksumCRC32=${r.ChecksumCRC32} ChecksumType=${r.ChecksumType}` }; }
  return { ok: st >= 400 && st < 500, detail: describeError(e) };
});
await check("d", "CompleteMultipartUpload FULL_OBJECT with the right ChecksumCRC32 (same upload, retried) succeeds", async () => {
  if (!fullId) return { ok: false, detail: "no open upload (previous row completed or failed)" };
  const r = await s3.send(new CompleteMultipartUploadCommand({
    Bucket, Key: fullKey, UploadId: fullId, ChecksumType: "FULL_OBJECT", ChecksumCRC32: crcOf(whole), MultipartUpload: { Parts: parts() },
  }));
  fullId = undefined;
  return { ok: r.ChecksumCRC32 === crcOf(whole), detail: `ChecksumCRC32=${r.ChecksumCRC32} (expected ${crcOf(whole)}) ChecksumType=${r.ChecksumType}` };
});
await check("d", "HeadObject ChecksumMode=ENABLED on the FULL_OBJECT multipart object", async () => {
  const r = await s3.send(new HeadObjectCommand({ Bucket, Key: fullKey, ChecksumMode: "ENABLED" }));
  const okLen = r.ContentLength === whole.length;
  return { ok: okLen && r.ChecksumCRC32 === crcOf(whole) && r.ChecksumType === "FULL_OBJECT", detail: `ChecksumCRC32=${r.ChecksumCRC32} (expected ${crcOf(whole)}) ChecksumType=${r.ChecksumType} size ${r.ContentLength}` };
});

// (e) conditional requests.
await check("e", "UploadPartCopy x-amz-copy-source-if-match with a wrong ETag -> 412", async () => {
  const key = "ifmatch.bin";
  const { UploadId } = await s3.send(new CreateMultipartUploadCommand({ Bucket, Key: key }));
  try {
    const { status: st, e } = await status(s3.send(new UploadPartCopyCommand({
      Bucket, Key: key, UploadId, PartNumber: 1, CopySource: `${Bucket}/${srcKey}`, CopySourceRange: "bytes=0-1023", CopySourceIfMatch: '"0123456789abcdef0123456789abcdef"',
    })));
    return { ok: st === 412, detail: e ? describeError(e) : `HTTP ${st}: the copy succeeded` };
  } finally {
    await s3.send(new AbortMultipartUploadCommand({ Bucket, Key: key, UploadId })).catch(() => {});
  }
});
await check("e", "PutObject If-None-Match: * -> 412 on an existing key, 200 on a new key", async () => {
  const a = await status(s3.send(new PutObjectCommand({ Bucket, Key: srcKey, Body: "x", IfNoneMatch: "*" })));
  const b = await status(s3.send(new PutObjectCommand({ Bucket, Key: "fresh.txt", Body: "x", IfNoneMatch: "*" })));
  return { ok: a.status === 412 && b.status === 200, detail: `existing: ${a.e ? describeError(a.e) : `HTTP ${a.status} (overwritten)`}; new: HTTP ${b.status}` };
});
await check("e", "CompleteMultipartUpload If-None-Match: * on an existing key -> 412", async () => {
  const key = "fresh.txt"; // exists since the previous row
  const { UploadId } = await s3.send(new CreateMultipartUploadCommand({ Bucket, Key: key }));
  let completed = false;
  try {
    const p = await s3.send(new UploadPartCommand({ Bucket, Key: key, UploadId, PartNumber: 1, Body: "y" }));
    const { status: st, e } = await status(s3.send(new CompleteMultipartUploadCommand({
      Bucket, Key: key, UploadId, IfNoneMatch: "*", MultipartUpload: { Parts: [{ PartNumber: 1, ETag: p.ETag }] },
    })));
    completed = !e;
    return { ok: st === 412, detail: e ? describeError(e) : `HTTP ${st}: completed over the existing object` };
  } finally {
    if (!completed) await s3.send(new AbortMultipartUploadCommand({ Bucket, Key: key, UploadId })).catch(() => {});
  }
});

// Clean up: every object, every upload still open, the bucket.
try {
  if (fullId) await s3.send(new AbortMultipartUploadCommand({ Bucket, Key: fullKey, UploadId: fullId })).catch(() => {});
  const ups = await s3.send(new ListMultipartUploadsCommand({ Bucket })).catch(() => ({}));
  for (const u of ups.Uploads ?? []) await s3.send(new AbortMultipartUploadCommand({ Bucket, Key: u.Key, UploadId: u.UploadId })).catch(() => {});
  const objs = await s3.send(new ListObjectsV2Command({ Bucket }));
  for (const o of objs.Contents ?? []) await s3.send(new DeleteObjectCommand({ Bucket, Key: o.Key }));
  await s3.send(new DeleteBucketCommand({ Bucket }));
} catch (e) {
  console.error(`probe: cleanup of bucket ${Bucket} failed: ${describeError(e)}`);
}

const server = await fetch(endpoint).then((r) => r.headers.get("server")).catch(() => null);
console.log(`# checksum probe: ${label} (${endpoint}${server ? `, Server: ${server}` : ""})`);
console.log("| | check | result | server answered |\n|---|---|---|---|");
for (const r of rows) console.log(`| ${r.feature} | ${r.check} | ${r.result} | ${r.detail.replaceAll("|", "\\|")} |`);
const json = opt("--json");
if (json) writeFileSync(json, JSON.stringify({ label, endpoint, server, rows }, null, 2));
