// `node src/distributed.mjs` — one distributed archive (copy mode) built with 1, 2 and 4 worker
// processes on this machine: wall time of the segments and of the whole job, and per worker the
// segments, part requests (UploadPart + UploadPartCopy) and bytes read, uploaded and copied.
// Each worker is a separate Node process running runSegment (packages/s3/test/fixtures).
//   node src/distributed.mjs [--count 24] [--size-mib 16] [--segment-mib 64] [--workers 1,2,4] [--out FILE]
import { spawn } from "node:child_process";
import { randomFillSync } from "node:crypto";
import { writeFileSync } from "node:fs";
import { fileURLToPath } from "node:url";
import { parseArgs } from "node:util";
import { CreateBucketCommand, DeleteObjectCommand, HeadBucketCommand, PutObjectCommand } from "@aws-sdk/client-s3";
import { finalizeArchive, planArchive } from "@zipstream/s3";
import { makeClient } from "./s3-runners.mjs";

const { values } = parseArgs({ options: {
  count: { type: "string", default: "24" },
  "size-mib": { type: "string", default: "16" },
  "segment-mib": { type: "string", default: "64" },
  workers: { type: "string", default: "1,2,4" },
  out: { type: "string" },
} });
const MiB = 2 ** 20;
const WORKER = fileURLToPath(new URL("../../packages/s3/test/fixtures/segment-worker.mjs", import.meta.url));
const client = makeClient();
const B = "zipstream-bench-distributed";
try { await client.send(new HeadBucketCommand({ Bucket: B })); } catch { await client.send(new CreateBucketCommand({ Bucket: B })); }
const count = Number(values.count), size = Number(values["size-mib"]) * MiB;
const body = Buffer.allocUnsafe(size);
for (let i = 0; i < count; i++) {
  randomFillSync(body);
  await client.send(new PutObjectCommand({ Bucket: B, Key: `in/${String(i).padStart(4, "0")}.bin`, Body: body }));
}
const runOne = (plan, segment) => new Promise((resolve, reject) => {
  const child = spawn(process.execPath, [WORKER, plan, String(segment)], { env: process.env, stdio: ["ignore", "pipe", "ignore"] });
  let out = "";
  child.stdout.on("data", (d) => (out += d));
  child.on("exit", (code) => (code === 0 ? resolve(JSON.parse(out)) : reject(new Error(`segment ${segment} exited ${code}`))));
});
const rows = [];
for (const w of values.workers.split(",").map(Number)) {
  const key = `out/w${w}.zip`;
  const t0 = performance.now();
  const plan = await planArchive({ client, src: { bucket: B, prefix: "in/" }, dest: { bucket: B, key }, copyMinSize: 5 * MiB, segment: { bytes: Number(values["segment-mib"]) * MiB } });
  const tPlan = performance.now();
  const url = `s3://${plan.location.bucket}/${plan.location.key}`;
  let next = 0;
  const perWorker = Array.from({ length: w }, () => ({ segments: 0, partRequests: 0, bytesRead: 0, bytesUploaded: 0, bytesCopied: 0, ms: 0 }));
  await Promise.all(perWorker.map(async (acc) => {
    while (next < plan.segments) {
      const s = await runOne(url, next++);
      acc.segments++; acc.partRequests += s.parts; acc.bytesRead += s.bytesRead; acc.bytesUploaded += s.bytesUploaded; acc.bytesCopied += s.bytesCopied; acc.ms += s.ms;
    }
  }));
  const tSeg = performance.now();
  const res = await finalizeArchive({ client, plan: url });
  const tEnd = performance.now();
  const row = { workers: w, segments: plan.segments, parts: res.parts, archiveMiB: res.size / MiB, planS: (tPlan - t0) / 1000, segmentsS: (tSeg - tPlan) / 1000, finalizeS: (tEnd - tSeg) / 1000, totalS: (tEnd - t0) / 1000, perWorker };
  rows.push(row);
  console.error(`${w} worker(s): ${plan.segments} segments, ${res.parts} parts, ${row.archiveMiB.toFixed(0)} MiB: plan ${row.planS.toFixed(2)} s, segments ${row.segmentsS.toFixed(2)} s, finalize ${row.finalizeS.toFixed(2)} s, total ${row.totalS.toFixed(2)} s`);
  for (const [i, p] of perWorker.entries()) console.error(`   worker ${i}: ${p.segments} segments, ${p.partRequests} part requests, read ${(p.bytesRead / MiB).toFixed(0)} MiB, uploaded ${(p.bytesUploaded / MiB).toFixed(0)} MiB, copied ${(p.bytesCopied / MiB).toFixed(0)} MiB`);
  await client.send(new DeleteObjectCommand({ Bucket: B, Key: key }));
}
if (values.out) writeFileSync(values.out, JSON.stringify({ date: new Date().toISOString(), endpoint: process.env.S3_ENDPOINT, count, sizeMiB: size / MiB, rows }, null, 2));
