// `pnpm bench` — the encoder benchmark: zipStream against archiver, yazl, zip.js, client-zip and
// fflate on one corpus, store and deflate level 6, each run in its own process, runs interleaved
// (round-robin over shuffled encoders), medians with spread. Also the machine's limits.
//
// Sinks: every case writes into an in-process Writable that counts bytes (the encoder's own
// cost); store also runs into a file (what writing to local disk adds). Every archive is checked:
// each encoder first writes its archive to a file once, untimed, which Info-ZIP (`unzip -tqq`,
// 7-Zip with the password for AES) tests and lists; every timed run must then produce exactly
// that many bytes, and file-sink runs are tested again.
//
//   node src/run.mjs [--quick] [--rounds N] [--only a,b] [--scale X] [--merge] [--out results/encoders.json]
import { spawnSync, execFileSync } from "node:child_process";
import { existsSync, mkdirSync, readFileSync, rmSync, writeFileSync, statSync } from "node:fs";
import { join, dirname } from "node:path";
import { fileURLToPath } from "node:url";
import { cpus, loadavg, totalmem } from "node:os";
import { parseArgs } from "node:util";
import { buildCorpus, corpusSummary } from "./corpus.mjs";

const here = dirname(fileURLToPath(import.meta.url));
const root = join(here, "..", "..");
const { values } = parseArgs({ options: {
  quick: { type: "boolean", default: false },
  rounds: { type: "string" },
  only: { type: "string" },
  scale: { type: "string" },
  // Replace only the selected cases in an existing results file (e.g. rerun store after a change
  // to the store path); the file records each case's run date.
  merge: { type: "boolean", default: false },
  out: { type: "string", default: join(here, "..", "results", "encoders.json") },
} });
const rounds = Number(values.rounds ?? (values.quick ? 1 : 5));
const scale = Number(values.scale ?? (values.quick ? 0.1 : 1));
const corpusDir = join(root, ".tmp", `bench-corpus-${scale}`);
const outDir = join(root, ".tmp", "bench-out");
mkdirSync(outDir, { recursive: true });

const manifest = buildCorpus(corpusDir, scale);
const manifestPath = join(corpusDir, "manifest.json");
console.error(`corpus: ${manifest.files.length} files, ${(manifest.bytes / 2 ** 20).toFixed(0)} MiB`, corpusSummary(manifest));

const cases = [];
const libraries = ["zipstream", "archiver", "yazl", "zip.js", "client-zip", "fflate"];
for (const [method, sink] of [["store", "null"], ["store", "file"], ["deflate", "null"]]) {
  for (const e of libraries) {
    if (e === "client-zip" && method === "deflate") continue; // client-zip never compresses
    cases.push({ encoder: e, method, sink });
  }
  if (method === "store") cases.push({ encoder: "limit:read-crc-copy", method, sink }, { encoder: "limit:read-crc-sync", method, sink });
  if (sink === "null") cases.push({ encoder: "zipstream-nosize", method, sink });
  // fileIo "sync" (issue 15): what the CLI uses for a local archive; store only (deflate's cost is
  // the compression on the thread pool, not the reads).
  if (method === "store") cases.push({ encoder: "zipstream-sync", method, sink });
  if (method === "store" && sink === "null") cases.push({ encoder: "zipstream-sync-nosize", method, sink });
}
cases.push({ encoder: "zipstream+aes", method: "store", sink: "null" });
cases.push({ encoder: "limit:crc32", method: "store", sink: "null" }, { encoder: "limit:zlib-1thread", method: "deflate", sink: "null" });
const only = values.only?.split(",");
const selected = only ? cases.filter((c) => only.some((o) => c.encoder === o || `${c.encoder}/${c.method}` === o || `${c.encoder}/${c.method}/${c.sink}` === o)) : cases;
const key = (c) => `${c.encoder}/${c.method}/${c.sink}`;

function shuffle(a, seed) { const r = [...a]; for (let i = r.length - 1; i > 0; i--) { seed = (seed * 1103515245 + 12345) >>> 0; const j = seed % (i + 1); [r[i], r[j]] = [r[j], r[i]]; } return r; }

function verify(c, out) {
  if (c.encoder.startsWith("limit:")) return { ok: true, size: c.encoder.startsWith("limit:read-crc-") ? manifest.bytes : undefined };
  if (c.encoder.endsWith("+aes")) {
    // Info-ZIP cannot decrypt AES; 7-Zip tests every member with the password.
    execFileSync("7z", ["t", "-pbenchmark password", out], { stdio: "pipe", maxBuffer: 1 << 26 });
    return { ok: true, size: statSync(out).size };
  }
  execFileSync("unzip", ["-tqq", out], { stdio: "pipe", maxBuffer: 1 << 26 });
  const listing = execFileSync("unzip", ["-Z1", out], { maxBuffer: 1 << 28 }).toString().split("\n").filter(Boolean);
  if (listing.length !== manifest.files.length) throw new Error(`${c.encoder}: ${listing.length} entries, expected ${manifest.files.length}`);
  return { ok: true, size: statSync(out).size };
}

function runOnce(c, out) {
  const p = spawnSync(process.execPath, [join(here, "encoders.mjs"), c.encoder, c.method, manifestPath, out], { cwd: here, encoding: "utf8", maxBuffer: 1 << 24 });
  if (p.status !== 0) throw new Error(`${key(c)} failed:\n${p.stderr.slice(0, 2000)}`);
  return JSON.parse(p.stdout.trim().split("\n").pop());
}

// The reference archive of each encoder and method, written to a file and checked, untimed.
const reference = new Map();
for (const c of selected) {
  const k = `${c.encoder}/${c.method}`;
  if (reference.has(k) || c.encoder === "limit:crc32") continue;
  const out = join(outDir, `${c.encoder.replace(/[:/]/g, "_")}-${c.method}-reference.zip`);
  rmSync(out, { force: true });
  try {
    const res = runOnce({ ...c, sink: "file" }, out);
    const size = verify(c, out).size ?? res.outBytes;
    if (res.outBytes !== size) throw new Error(`${k}: reported ${res.outBytes} bytes, the file has ${size}`);
    reference.set(k, size);
  } catch (err) {
    console.error(String(err));
    reference.set(k, undefined);
  }
  rmSync(out, { force: true });
  console.error(`reference ${k.padEnd(28)} ${reference.get(k) ?? "FAILED"} bytes`);
}

const runs = [];
for (let r = 0; r < rounds; r++) {
  for (const c of shuffle(selected, 1000 + r)) {
    const out = c.sink === "null" ? "null" : join(outDir, `${c.encoder.replace(/[:/]/g, "_")}-${c.method}.zip`);
    if (out !== "null") rmSync(out, { force: true });
    let res;
    try {
      res = runOnce(c, out);
      if (out !== "null") verify(c, out);
      const want = reference.get(`${c.encoder}/${c.method}`);
      if (c.encoder !== "limit:crc32" && res.outBytes !== want) throw new Error(`${key(c)}: wrote ${res.outBytes} bytes, the checked archive has ${want}`);
    } catch (err) {
      console.error(String(err));
      runs.push({ ...c, round: r, error: String(err).slice(0, 2000) });
      continue;
    }
    runs.push({ ...res, sink: c.sink, round: r, load1: loadavg()[0] });
    console.error(`round ${r + 1}/${rounds} ${c.encoder.padEnd(20)} ${c.method.padEnd(7)} ${c.sink.padEnd(4)} ${(res.bytesIn / 2 ** 20 / res.seconds).toFixed(0).padStart(6)} MiB/s  cpu ${res.cpuSeconds.toFixed(2)} s  rss ${res.maxRssMiB.toFixed(0)} MiB  load ${loadavg()[0].toFixed(2)}`);
    if (out !== "null") rmSync(out, { force: true });
  }
}

const median = (xs) => { const s = [...xs].sort((a, b) => a - b); const m = s.length >> 1; return s.length % 2 ? s[m] : (s[m - 1] + s[m]) / 2; };
const summary = selected.map((c) => {
  const rs = runs.filter((x) => key(x) === key(c) && !x.error);
  if (!rs.length) return { ...c, error: runs.find((x) => key(x) === key(c))?.error ?? "no run" };
  const mbs = rs.map((x) => x.bytesIn / 2 ** 20 / x.seconds);
  return { ...c, runs: rs.length, mibPerSec: median(mbs), mibPerSecMin: Math.min(...mbs), mibPerSecMax: Math.max(...mbs),
    cpuSeconds: median(rs.map((x) => x.cpuSeconds)), maxRssMiB: median(rs.map((x) => x.maxRssMiB)), outBytes: rs[0].outBytes,
    // How loaded the machine was (1-minute load average, median over this case's runs).
    load1: median(rs.map((x) => x.load1)) };
});
const now = new Date().toISOString();
for (const s of summary) Object.assign(s, { date: now, corpus: { files: manifest.files.length, bytes: manifest.bytes } });
let merged = { summary, runs };
if (values.merge && existsSync(values.out)) {
  const old = JSON.parse(readFileSync(values.out, "utf8"));
  // Rows keep the corpus they were measured on (the corpus is rebuilt from this machine's files,
  // so it can change between runs); ratios are printed only between rows of the same run.
  if (old.corpus?.bytes !== manifest.bytes) console.error(`--merge: ${values.out} has rows from another corpus (${old.corpus?.files} files, ${old.corpus?.bytes} bytes); each row records its own`);
  const keys = new Set(summary.map(key));
  merged = {
    summary: [...old.summary.map((s) => ({ date: old.date, corpus: { files: old.corpus.files, bytes: old.corpus.bytes }, ...s })).filter((s) => !keys.has(key(s))), ...summary],
    runs: [...old.runs.filter((x) => !keys.has(key(x))), ...runs],
  };
}
const result = {
  date: now, node: process.version, cpus: cpus().length, cpuModel: cpus()[0]?.model, memGiB: Math.round(totalmem() / 2 ** 30),
  corpus: { files: manifest.files.length, bytes: manifest.bytes, kinds: corpusSummary(manifest) }, rounds, ...merged,
};
mkdirSync(dirname(values.out), { recursive: true });
writeFileSync(values.out, JSON.stringify(result, null, 2));
console.log(JSON.stringify(summary.map((s) => ({ case: key(s), MiBps: s.mibPerSec?.toFixed(0), cpu: s.cpuSeconds?.toFixed(2), rss: s.maxRssMiB?.toFixed(0) })), null, 0));
