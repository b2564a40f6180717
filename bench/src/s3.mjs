// `pnpm --filter @zipstream/bench bench:s3` — the S3 pipeline on a real S3 server (S3_ENDPOINT,
// the local Ceph gateway in this repository): zipS3Keys against the archiver + lib-storage
// recipe and against a raw copy (the limit), interleaved, each run in its own process; every
// archive downloaded and every member checked. Then memory scaling: zipS3Keys over archives of
// 100 MB, 1 GB and 5 GB, peak RSS of each.
//
//   node src/s3.mjs [--rounds N] [--skip-scale] [--out results/s3.json]
import { spawnSync, execFileSync } from "node:child_process";
import { createHash, randomFillSync } from "node:crypto";
import { createWriteStream, existsSync, mkdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { loadavg } from "node:os";
import { parseArgs } from "node:util";
import { pipeline } from "node:stream/promises";
import { CreateBucketCommand, GetObjectCommand, HeadBucketCommand, PutObjectCommand, DeleteObjectCommand } from "@aws-sdk/client-s3";
import { makeClient, listAll } from "./s3-runners.mjs";

const here = dirname(fileURLToPath(import.meta.url));
const root = join(here, "..", "..");
const work = join(root, ".tmp", "bench-s3");
mkdirSync(work, { recursive: true });
const { values } = parseArgs({ options: {
  rounds: { type: "string", default: "3" },
  "skip-scale": { type: "boolean", default: false },
  out: { type: "string", default: join(here, "..", "results", "s3.json") },
} });
if (!process.env.S3_ENDPOINT) { console.error("S3_ENDPOINT is not set (source .local-s3/env)"); process.exit(2); }
const client = makeClient();
const MB = 1e6, MiB = 2 ** 20;

async function ensureBucket(Bucket) {
  try { await client.send(new HeadBucketCommand({ Bucket })); } catch { await client.send(new CreateBucketCommand({ Bucket })); }
}
async function putMany(Bucket, items, concurrency = 16) {
  let i = 0;
  await Promise.all(Array.from({ length: concurrency }, async () => {
    while (i < items.length) { const it = items[i++]; await client.send(new PutObjectCommand({ Bucket, Key: it.key, Body: it.body() })); }
  }));
}
let seed = 42;
function gauss() { // Box-Muller over a seeded LCG, so every run builds the same sizes
  const u = () => { seed = (seed * 1103515245 + 12345) >>> 0; return (seed + 1) / 2 ** 32; };
  return Math.sqrt(-2 * Math.log(u())) * Math.cos(2 * Math.PI * u());
}

const BUCKET = "zipstream-bench";
await ensureBucket(BUCKET);
await ensureBucket("zipstream-bench-out");

// a. 5,000 objects of 16 KiB; b. ~1 GiB of N(5 MB, 1 MB) clamped [2 MB, 8 MB], keyed by SHA-256.
async function dataset(prefix, make) {
  const have = await listAll(client, BUCKET, prefix);
  const expectedPath = join(work, `${prefix.replace(/\W/g, "_")}.json`);
  if (existsSync(expectedPath)) {
    const exp = JSON.parse(readFileSync(expectedPath, "utf8"));
    if (exp.count === have.length) return exp;
  }
  const items = make();
  const t0 = performance.now();
  await putMany(BUCKET, items);
  const exp = { prefix, count: items.length, bytes: items.reduce((n, x) => n + x.size, 0), hashes: Object.fromEntries(items.map((x) => [x.key.slice(prefix.length), x.sha])) };
  writeFileSync(expectedPath, JSON.stringify(exp));
  console.error(`created ${prefix}: ${items.length} objects, ${(exp.bytes / MiB).toFixed(0)} MiB in ${((performance.now() - t0) / 1000).toFixed(1)} s`);
  return exp;
}
const randomBuf = (n) => { const b = Buffer.allocUnsafe(n); randomFillSync(b); return b; };
const small = await dataset("small/", () => Array.from({ length: 5000 }, (_, i) => {
  const b = randomBuf(16 * 1024);
  return { key: `small/${String(i).padStart(5, "0")}.bin`, size: b.length, sha: createHash("sha256").update(b).digest("hex"), body: () => b };
}));
const sized = await dataset("sha/", () => {
  const items = []; let total = 0;
  while (total < 1024 * MiB) {
    const size = Math.round(Math.min(8 * MB, Math.max(2 * MB, 5 * MB + gauss() * MB)));
    const b = randomBuf(size); const sha = createHash("sha256").update(b).digest("hex");
    items.push({ key: `sha/${sha}`, size, sha, body: () => b }); total += size;
  }
  return items;
});

const py = `
import hashlib, json, sys, zipfile
z = zipfile.ZipFile(sys.argv[1])
print(json.dumps({i.filename: hashlib.sha256(z.read(i)).hexdigest() for i in z.infolist()}))`;
async function validate(runner, destKey, exp) {
  const path = join(work, "check.bin");
  const obj = await client.send(new GetObjectCommand({ Bucket: "zipstream-bench-out", Key: destKey }));
  await pipeline(obj.Body, createWriteStream(path));
  try {
    if (runner === "raw-copy") return; // not an archive; its size is checked by the caller
    execFileSync("unzip", ["-tqq", path], { stdio: "pipe" });
    const seen = JSON.parse(execFileSync("python3", ["-c", py, path], { encoding: "utf8", maxBuffer: 1 << 28 }));
    if (Object.keys(seen).length !== exp.count) throw new Error(`${runner}: ${Object.keys(seen).length} members, expected ${exp.count}`);
    for (const [name, sha] of Object.entries(exp.hashes)) if (seen[name] !== sha) throw new Error(`${runner}: member ${name} is wrong`);
  } finally { rmSync(path, { force: true }); await client.send(new DeleteObjectCommand({ Bucket: "zipstream-bench-out", Key: destKey })); }
}

function runOnce(runner, prefix, method = "store") {
  const destKey = `out/${runner}-${Date.now()}.zip`;
  const p = spawnSync(process.execPath, [join(here, "s3-runners.mjs"), runner, BUCKET, prefix, "zipstream-bench-out", destKey, method], { cwd: here, encoding: "utf8", env: process.env, maxBuffer: 1 << 24 });
  if (p.status !== 0) throw new Error(`${runner} failed: ${p.stderr}`);
  return { destKey, ...JSON.parse(p.stdout.trim().split("\n").pop()) };
}

const runs = [];
const rounds = Number(values.rounds);
for (let r = 0; r < rounds; r++) {
  for (const [set, exp] of [["small", small], ["sha", sized]]) {
    const order = r % 2 ? ["raw-copy", "archiver-lib-storage", "zipstream"] : ["zipstream", "archiver-lib-storage", "raw-copy"];
    for (const runner of order) {
      const res = runOnce(runner, exp.prefix);
      await validate(runner, res.destKey, exp);
      runs.push({ set, round: r, ...res, inputBytes: exp.bytes, objects: exp.count, load1: loadavg()[0] });
      console.error(`round ${r + 1}/${rounds} ${set.padEnd(6)} ${runner.padEnd(22)} ${res.seconds.toFixed(1).padStart(6)} s  ${(exp.count / res.seconds).toFixed(0).padStart(6)} obj/s  ${(exp.bytes / MiB / res.seconds).toFixed(1).padStart(6)} MiB/s  cpu ${res.cpuSeconds.toFixed(1)} s  rss ${res.maxRssMiB.toFixed(0)} MiB  load ${loadavg()[0].toFixed(1)}`);
    }
  }
}

// Memory scaling: 100 MB, 1 GB, 5 GB archives from 100 MB objects.
const scale = [];
if (!values["skip-scale"]) {
  for (const [label, n] of [["100MB", 1], ["1GB", 10], ["5GB", 50]]) {
    const prefix = `scale-${label}/`;
    const have = await listAll(client, BUCKET, prefix);
    if (have.length !== n) {
      const blob = randomBuf(100 * MB);
      await putMany(BUCKET, Array.from({ length: n }, (_, i) => ({ key: `${prefix}${String(i).padStart(3, "0")}.bin`, body: () => blob })), 4);
    }
    const res = runOnce("zipstream", prefix);
    await client.send(new DeleteObjectCommand({ Bucket: "zipstream-bench-out", Key: res.destKey }));
    scale.push({ label, objects: n, ...res });
    console.error(`scale ${label.padEnd(6)} ${res.seconds.toFixed(1)} s  ${(n * 100 * MB / MiB / res.seconds).toFixed(1)} MiB/s  rss ${res.maxRssMiB.toFixed(0)} MiB`);
  }
}

const median = (xs) => { const s = [...xs].sort((a, b) => a - b); const m = s.length >> 1; return s.length % 2 ? s[m] : (s[m - 1] + s[m]) / 2; };
const summary = [];
for (const set of ["small", "sha"]) for (const runner of ["zipstream", "archiver-lib-storage", "raw-copy"]) {
  const rs = runs.filter((x) => x.set === set && x.runner === runner);
  summary.push({ set, runner, runs: rs.length, seconds: median(rs.map((x) => x.seconds)), secondsMin: Math.min(...rs.map((x) => x.seconds)), secondsMax: Math.max(...rs.map((x) => x.seconds)),
    cpuSeconds: median(rs.map((x) => x.cpuSeconds)), maxRssMiB: median(rs.map((x) => x.maxRssMiB)), objects: rs[0].objects, inputBytes: rs[0].inputBytes });
}
mkdirSync(dirname(values.out), { recursive: true });
writeFileSync(values.out, JSON.stringify({ date: new Date().toISOString(), node: process.version, endpoint: "local Ceph RGW", rounds, summary, scale, runs }, null, 2));
console.log(JSON.stringify(summary.map((s) => ({ case: `${s.set}/${s.runner}`, s: s.seconds.toFixed(1), cpu: s.cpuSeconds.toFixed(1), rss: s.maxRssMiB.toFixed(0) }))));
console.log(JSON.stringify(scale.map((s) => ({ scale: s.label, s: s.seconds.toFixed(1), rss: s.maxRssMiB.toFixed(0) }))));
