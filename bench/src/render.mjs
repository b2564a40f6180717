// Renders BENCHMARKS.md's tables from bench/results/*.json (written by run.mjs and s3.mjs).
// Prose around the tables lives in BENCHMARKS.md between the markers; only the tables change.
import { existsSync, readFileSync, writeFileSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";

const here = dirname(fileURLToPath(import.meta.url));
const root = join(here, "..", "..");
const read = (f) => (existsSync(join(here, "..", "results", f)) ? JSON.parse(readFileSync(join(here, "..", "results", f), "utf8")) : undefined);
const fmt = (x, d = 0) => (x === undefined ? "–" : x.toFixed(d));

function encoderTables(r) {
  const sinkOf = (s) => s.sink ?? "file"; // results written before sinks existed used files
  const by = (e, m, sink = "null") => r.summary.find((s) => s.encoder === e && s.method === m && sinkOf(s) === sink);
  const lines = [];
  lines.push(`Node ${r.node}, ${r.cpus} × ${r.cpuModel}, ${r.rounds} rounds per case; corpus ${r.corpus.files} files, ${(r.corpus.bytes / 2 ** 20).toFixed(0)} MiB (${Object.entries(r.corpus.kinds).map(([k, v]) => `${k} ${(v.bytes / 2 ** 20).toFixed(0)} MiB`).join(", ")}).`, "");
  const tables = [
    ["store", "null", "Store, into the counting sink (the encoder's own cost)"],
    ["store", "file", "Store, into a file (what writing to local disk adds)"],
    ["deflate", "null", "Deflate, level 6, into the counting sink"],
  ];
  for (const [method, sink, title] of tables) {
    const rows = r.summary.filter((x) => x.method === method && sinkOf(x) === sink && x.encoder !== "limit:crc32" && !x.encoder.endsWith("+aes"));
    if (!rows.length) continue;
    const ours = by("zipstream", method, sink);
    // Store: the honest limit (synchronous reads + CRC-32, issue 15) when measured, else the older
    // pipelined read+crc+copy limit. A ratio is printed only between cases of the same run.
    const ref = method === "store" ? by("limit:read-crc-sync", "store", sink) ?? by("limit:read-crc-copy", "store", sink) : by("limit:zlib-1thread", "deflate", sink);
    const run = (x) => (x?.date ?? r.date).slice(0, 16);
    const sameRun = (a, b) => a && b && run(a) === run(b);
    const archiver = by("archiver", method, sink);
    const when = (rows.find((x) => x.encoder === "zipstream")?.date ?? r.date).slice(0, 16);
    lines.push(`**${title}** (median MiB/s of input, min–max; CPU seconds; peak RSS; cases interleaved in the run of ${when}Z)`, "");
    lines.push("| encoder | MiB/s | spread | CPU s | peak RSS MiB | zipstream is × faster | archive bytes | run |", "|---|---:|---:|---:|---:|---:|---:|---|");
    for (const s of rows) {
      if (s.error) { lines.push(`| ${s.encoder} | failed | | | | | | |`); continue; }
      const ratio = sameRun(ours, s) && ours.mibPerSec ? ours.mibPerSec / s.mibPerSec : undefined;
      lines.push(`| ${s.encoder} | ${fmt(s.mibPerSec)} | ${fmt(s.mibPerSecMin)}–${fmt(s.mibPerSecMax)} | ${fmt(s.cpuSeconds, 2)} | ${fmt(s.maxRssMiB)} | ${s.encoder === "zipstream" ? "–" : fmt(ratio, 2)} | ${s.outBytes ?? "–"} | ${run(s)}Z${s.corpus ? `, ${s.corpus.files} files` : ""}${s.load1 !== undefined ? `, load ${fmt(s.load1, 0)}` : ""} |`);
    }
    const notes = [];
    const nosize = by("zipstream-nosize", method, sink);
    if (sameRun(ours, ref)) notes.push(`zipstream / ${ref.encoder}: **${fmt(ours.mibPerSec / ref.mibPerSec, 2)}×**`);
    if (sameRun(nosize, ref)) notes.push(`zipstream-nosize / ${ref.encoder}: **${fmt(nosize.mibPerSec / ref.mibPerSec, 2)}×**`);
    if (sameRun(ours, archiver)) notes.push(`zipstream / archiver: **${fmt(ours.mibPerSec / archiver.mibPerSec, 2)}×**`);
    if (notes.length) lines.push("", notes.join("; ") + ".");
    lines.push("");
  }
  const aes = by("zipstream+aes", "store");
  const plain = by("zipstream", "store");
  if (aes && plain) {
    // A ratio only between cases of the same run.
    const same = (aes.date ?? r.date) === (plain.date ?? r.date);
    lines.push(`Store + AES-256 (AE-2), counting sink: ${fmt(aes.mibPerSec)} MiB/s (${fmt(aes.mibPerSecMin)}–${fmt(aes.mibPerSecMax)}), CPU ${fmt(aes.cpuSeconds, 2)} s${same ? `: ${fmt(aes.mibPerSec / plain.mibPerSec, 2)}× plain store` : ` (run of ${(aes.date ?? r.date).slice(0, 16)}Z)`}.`, "");
  }
  const crc = by("limit:crc32", "store");
  if (crc) lines.push(`\`zlib.crc32\` alone, data in memory (second pass): ${fmt(crc.mibPerSec)} MiB/s (run of ${(crc.date ?? r.date).slice(0, 16)}Z).`, "");
  return lines.join("\n");
}

function s3Tables(r) {
  const lines = [`Run ${r.date.slice(0, 16)}Z, Node ${r.node}, ${r.endpoint}, ${r.rounds} rounds (medians).`, ""];
  for (const set of ["small", "sha"]) {
    const rows = r.summary.filter((s) => s.set === set);
    const ours = rows.find((s) => s.runner === "zipstream");
    lines.push(set === "small" ? "**a. 5,000 objects of 16 KiB**" : `**b. ${rows[0].objects} objects of N(5 MB, 1 MB), ${(rows[0].inputBytes / 2 ** 30).toFixed(2)} GiB, store**`, "");
    lines.push("| pipeline | wall s | spread s | objects/s | MiB/s | CPU s | CPU s per GiB | peak RSS MiB | zipstream is × faster |", "|---|---:|---:|---:|---:|---:|---:|---:|---:|");
    for (const s of rows) {
      lines.push(`| ${s.runner} | ${fmt(s.seconds, 1)} | ${fmt(s.secondsMin, 1)}–${fmt(s.secondsMax, 1)} | ${fmt(s.objects / s.seconds)} | ${fmt(s.inputBytes / 2 ** 20 / s.seconds, 1)} | ${fmt(s.cpuSeconds, 1)} | ${fmt(s.cpuSeconds / (s.inputBytes / 2 ** 30), 1)} | ${fmt(s.maxRssMiB)} | ${s === ours ? "–" : fmt(s.seconds / ours.seconds, 2)} |`);
    }
    lines.push("");
  }
  if (r.scale?.length) {
    lines.push("**Memory scaling** (zipS3Keys, store, default options)", "", "| archive | wall s | MiB/s | peak RSS MiB |", "|---|---:|---:|---:|");
    for (const s of r.scale) lines.push(`| ${s.label} (${s.objects} × 100 MB) | ${fmt(s.seconds, 1)} | ${fmt(s.objects * 1e8 / 2 ** 20 / s.seconds, 1)} | ${fmt(s.maxRssMiB)} |`);
    lines.push("");
  }
  return lines.join("\n");
}

const path = join(root, "BENCHMARKS.md");
let md = readFileSync(path, "utf8");
const put = (tag, body) => {
  const re = new RegExp(`(<!-- ${tag}:start -->)[\\s\\S]*?(<!-- ${tag}:end -->)`);
  md = md.replace(re, `$1\n${body}\n$2`);
};
const enc = read("encoders.json"); if (enc) put("encoders", encoderTables(enc));
const s3 = read("s3.json"); if (s3) put("s3", s3Tables(s3));
writeFileSync(path, md);
console.log("BENCHMARKS.md updated");
