// `node src/copy-threshold.mjs` — where copying a member starts to pay: archives of N members of
// one size S, built by copy assembly (every member copied: copyMinSize 5 MiB) and by streaming,
// interleaved, in this process. Reports wall s, client CPU s and bytes uploaded per GiB of input.
// S3_ENDPOINT etc. name the server; BENCH_CHECKSUMS=1 for a server with flexible checksums.
//   node src/copy-threshold.mjs [--sizes 6,8,12,16,24,32] [--count 12] [--rounds 2] [--out FILE]
import { randomFillSync } from "node:crypto";
import { writeFileSync } from "node:fs";
import { parseArgs } from "node:util";
import { CreateBucketCommand, DeleteObjectCommand, HeadBucketCommand, PutObjectCommand } from "@aws-sdk/client-s3";
import { zipS3Keys } from "@zipstream/s3";
import { makeClient } from "./s3-runners.mjs";

const { values } = parseArgs({ options: {
  sizes: { type: "string", default: "6,8,12,16,24,32" },
  count: { type: "string", default: "12" },
  rounds: { type: "string", default: "2" },
  out: { type: "string" },
} });
const MiB = 2 ** 20, GiB = 2 ** 30;
const client = makeClient();
const B = "zipstream-bench-threshold";
try { await client.send(new HeadBucketCommand({ Bucket: B })); } catch { await client.send(new CreateBucketCommand({ Bucket: B })); }
const sizes = values.sizes.split(",").map(Number);
const count = Number(values.count);
for (const s of sizes) {
  const body = Buffer.allocUnsafe(s * MiB); randomFillSync(body);
  for (let i = 0; i < count; i++) await client.send(new PutObjectCommand({ Bucket: B, Key: `s${s}/${i}.bin`, Body: body }));
}
const rows = [];
for (let r = 0; r < Number(values.rounds); r++) {
  for (const s of sizes) {
    for (const assembly of r % 2 ? ["stream", "copy"] : ["copy", "stream"]) {
      const key = `out/${s}-${assembly}.zip`;
      const c0 = process.cpuUsage(), t0 = performance.now();
      const res = await zipS3Keys({ client, src: { bucket: B, prefix: `s${s}/` }, dest: { bucket: B, key }, assembly, copyMinSize: 5 * MiB });
      const wall = (performance.now() - t0) / 1000, cu = process.cpuUsage(c0), cpu = (cu.user + cu.system) / 1e6;
      const gib = (s * MiB * count) / GiB;
      rows.push({ sizeMiB: s, assembly, round: r, wall, cpu, cpuPerGiB: cpu / gib, uploadedPerGiB: res.bytesUploaded / GiB / gib, readPerGiB: res.bytesRead / GiB / gib, copiedPerGiB: res.bytesCopied / GiB / gib, parts: res.parts });
      console.error(`${String(s).padStart(3)} MiB ${assembly.padEnd(6)} ${wall.toFixed(2).padStart(6)} s  cpu ${cpu.toFixed(2)} s (${(cpu / gib).toFixed(2)} s/GiB)  up ${(res.bytesUploaded / MiB).toFixed(0)} MiB  read ${(res.bytesRead / MiB).toFixed(0)} MiB  copied ${(res.bytesCopied / MiB).toFixed(0)} MiB`);
      await client.send(new DeleteObjectCommand({ Bucket: B, Key: key }));
    }
  }
}
if (values.out) writeFileSync(values.out, JSON.stringify({ date: new Date().toISOString(), endpoint: process.env.BENCH_ENDPOINT_LABEL ?? process.env.S3_ENDPOINT, count, rows }, null, 2));
