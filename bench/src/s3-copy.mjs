// `node src/s3-copy.mjs` — copy assembly against streaming and the raw copy (issue 11), on the
// S3 server of S3_ENDPOINT, interleaved, each run in its own process, every archive checked.
//   datasets: ~1 GiB of N(5 MB, 1 MB) objects (the public benchmark's distribution) and
//             50 × 100 MB objects (5 GB);
//   reports:  wall s, client CPU s, client CPU s per GiB, bytes read / uploaded / copied by this
//             process, and the gateway's own CPU s (its processes, from /proc), per run.
// BENCH_CHECKSUMS=1 uses the SDK's default checksums (a server that has them: the CRCs then come
// from S3). BENCH_GATEWAY_PIDS="1 2 3" names the gateway's processes (default: .local-s3/run/*.pid).
//   node src/s3-copy.mjs [--rounds N] [--big N100MB] [--out results/s3-copy.json]
import { spawnSync, execFileSync } from "node:child_process";
import { createHash, randomFillSync } from "node:crypto";
import { createWriteStream, existsSync, mkdirSync, readFileSync, readdirSync, rmSync, writeFileSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { parseArgs } from "node:util";
import { pipeline } from "node:stream/promises";
import { CreateBucketCommand, DeleteObjectCommand, GetObjectCommand, HeadBucketCommand, PutObjectCommand } from "@aws-sdk/client-s3";
import { listAll, makeClient } from "./s3-runners.mjs";

const here = dirname(fileURLToPath(import.meta.url));
const root = join(here, "..", "..");
const work = join(root, ".tmp", "bench-s3-copy");
mkdirSync(work, { recursive: true });
const { values } = parseArgs({ options: {
  rounds: { type: "string", default: "1" },
  big: { type: "string", default: "50" },
  sets: { type: "string", default: "normal,big" },
  out: { type: "string", default: join(here, "..", "results", "s3-copy.json") },
} });
if (!process.env.S3_ENDPOINT) { console.error("S3_ENDPOINT is not set"); process.exit(2); }
const client = makeClient();
const MB = 1e6, MiB = 2 ** 20, GiB = 2 ** 30;
const BUCKET = "zipstream-bench-copy", OUT = "zipstream-bench-copy-out";
for (const Bucket of [BUCKET, OUT]) { try { await client.send(new HeadBucketCommand({ Bucket })); } catch { await client.send(new CreateBucketCommand({ Bucket })); } }

let seed = 7;
const rnd = () => { seed = (seed * 1103515245 + 12345) >>> 0; return (seed + 1) / 2 ** 32; };
const gauss = () => Math.sqrt(-2 * Math.log(rnd())) * Math.cos(2 * Math.PI * rnd());
async function dataset(prefix, sizes) {
  const cache = join(work, `${prefix.replace(/\W/g, "_")}.json`);
  const have = await listAll(client, BUCKET, prefix);
  if (existsSync(cache)) { const e = JSON.parse(readFileSync(cache, "utf8")); if (e.count === have.length) return e; }
  const hashes = {}; let i = 0, bytes = 0;
  await Promise.all(Array.from({ length: 4 }, async () => {
    while (i < sizes.length) {
      const n = i++; const b = Buffer.allocUnsafe(sizes[n]); randomFillSync(b);
      const name = `${String(n).padStart(5, "0")}.bin`; hashes[name] = createHash("sha256").update(b).digest("hex"); bytes += b.length;
      await client.send(new PutObjectCommand({ Bucket: BUCKET, Key: prefix + name, Body: b }));
    }
  }));
  const e = { prefix, count: sizes.length, bytes, hashes }; writeFileSync(cache, JSON.stringify(e)); return e;
}
const sets = {};
if (values.sets.includes("normal")) {
  const sizes = []; let t = 0;
  while (t < GiB) { const s = Math.round(Math.min(8 * MB, Math.max(2 * MB, 5 * MB + gauss() * MB))); sizes.push(s); t += s; }
  sets.normal = await dataset("normal/", sizes);
}
if (values.sets.includes("big")) sets.big = await dataset(`big${values.big}/`, Array.from({ length: Number(values.big) }, () => 100 * MB));

// The gateway's processes: their CPU time (utime + stime, clock ticks) from /proc.
const gatewayPids = (process.env.BENCH_GATEWAY_PIDS ?? readdirSync(join(root, ".local-s3", "run")).filter((f) => f.endsWith(".pid")).map((f) => readFileSync(join(root, ".local-s3", "run", f), "utf8").trim()).join(" ")).split(/\s+/).filter(Boolean);
const ticks = Number(execFileSync("getconf", ["CLK_TCK"], { encoding: "utf8" }).trim());
const gatewayCpu = () => gatewayPids.reduce((n, pid) => { try { const f = readFileSync(`/proc/${pid}/stat`, "utf8").split(") ")[1].split(" "); return n + (Number(f[11]) + Number(f[12])) / ticks; } catch { return n; } }, 0);

const py = `
import hashlib, json, sys, zipfile
z = zipfile.ZipFile(sys.argv[1])
print(json.dumps({i.filename: hashlib.sha256(z.read(i)).hexdigest() for i in z.infolist()}))`;
async function check(runner, key, exp, size) {
  const path = join(work, "check.bin");
  const obj = await client.send(new GetObjectCommand({ Bucket: OUT, Key: key }));
  await pipeline(obj.Body, createWriteStream(path));
  try {
    if (runner === "raw-copy") { if (size !== exp.bytes) throw new Error(`raw-copy wrote ${size} of ${exp.bytes} bytes`); return; }
    execFileSync("unzip", ["-tqq", path], { stdio: "pipe" });
    const seen = JSON.parse(execFileSync("python3", ["-c", py, path], { encoding: "utf8", maxBuffer: 1 << 28 }));
    for (const [name, sha] of Object.entries(exp.hashes)) if (seen[name] !== sha) throw new Error(`${runner}: member ${name} is wrong`);
    if (Object.keys(seen).length !== exp.count) throw new Error(`${runner}: ${Object.keys(seen).length} members`);
  } finally { rmSync(path, { force: true }); await client.send(new DeleteObjectCommand({ Bucket: OUT, Key: key })); }
}

const runs = [];
const RUNNERS = ["zipstream-copy", "zipstream", "raw-copy"];
for (let r = 0; r < Number(values.rounds); r++) {
  for (const [set, exp] of Object.entries(sets)) {
    const order = r % 2 ? [...RUNNERS].reverse() : RUNNERS;
    for (const runner of order) {
      const key = `out/${runner}-${Date.now()}.zip`;
      const g0 = gatewayCpu();
      const p = spawnSync(process.execPath, [join(here, "s3-runners.mjs"), runner, BUCKET, exp.prefix, OUT, key, "store"], { cwd: here, encoding: "utf8", env: process.env, maxBuffer: 1 << 24 });
      const gw = gatewayCpu() - g0;
      if (p.status !== 0) throw new Error(`${runner} failed: ${p.stderr}`);
      const res = JSON.parse(p.stdout.trim().split("\n").pop());
      await check(runner, key, exp, res.size);
      const gib = exp.bytes / GiB;
      const row = { set, round: r, runner, objects: exp.count, inputBytes: exp.bytes, ...res, gatewayCpuSeconds: gw, cpuPerGiB: res.cpuSeconds / gib };
      runs.push(row);
      console.error(`${set.padEnd(7)} ${runner.padEnd(15)} ${res.seconds.toFixed(1).padStart(6)} s  ${(exp.bytes / MiB / res.seconds).toFixed(1).padStart(6)} MiB/s  cpu ${res.cpuSeconds.toFixed(2)} s (${row.cpuPerGiB.toFixed(2)} s/GiB)  gateway cpu ${gw.toFixed(1)} s  read ${((res.bytesRead ?? exp.bytes) / MiB).toFixed(0)} MiB  up ${((res.bytesUploaded ?? res.size) / MiB).toFixed(0)} MiB  copied ${((res.bytesCopied ?? 0) / MiB).toFixed(0)} MiB`);
    }
  }
}
mkdirSync(dirname(values.out), { recursive: true });
writeFileSync(values.out, JSON.stringify({ date: new Date().toISOString(), node: process.version, endpoint: process.env.BENCH_ENDPOINT_LABEL ?? "local Ceph RGW 16 (bluestore)", checksums: process.env.BENCH_CHECKSUMS === "1", runs }, null, 2));
