// Where the store path's time goes (issue 15):
//   node src/store-path.mjs [--rounds N] [--scale X] [--only a,b] [--base DIR] [--warm]
// Runs, interleaved (the order reversed every other round), in their own processes, on the
// encoder corpus and into the counting sink of encoders.mjs: the honest limit (synchronous 1 MiB
// reads into one reused buffer + CRC-32) and variants that each add one cost of a real encoder,
// then zipStream (default thread-pool reads, and `fileIo: "sync"`) with and without declared
// sizes. Prints medians of MiB/s, CPU seconds (all threads) and main-thread CPU seconds, each
// case's ratio to the limit of the same round (wall), the limit's CPU over the case's, and the
// limit's main-thread CPU over the case's (what the wall ratio tends to on an idle machine for a
// case bound by its main thread, when its other threads run on the other core).
//
// The module under test is imported before the timer, as the limit's code is: the import (20-100
// ms on this machine, printed as "import ms") is a fixed cost per process, not throughput.
// `--warm` runs every case once untimed in its process before the timed run: steady state, without
// the JIT's and the allocator's first-run costs (which a one-archive process such as the CLI pays).
// `--base DIR` adds `@base` cases that import a second build of @zipstream/core from DIR (e.g.
// main's, for before/after in the same run). Cases "deflate" and "aes" (store + AES-256) are
// there for before/after of the rest of the encoder; pick them with --only and a --scale of 0.1.
//
//   sync-fresh    synchronous reads into a fresh buffer per read (an encoder hands its chunks on,
//                 so it cannot reuse them): page faults on new memory, GC of the old
//   sync-fresh-256K  the same with reads of at most 256 KiB (what `fileIo: "sync"` does)
//   async-fresh   the same reads on the thread pool, the next one in flight (what zipStream does)
//   async-reuse   thread-pool reads into two reused buffers (not possible for an encoder either)
//   worker        synchronous reads + CRC-32 on a worker thread, buffers transferred to the main
//                 thread (the CRC then runs on the core that read the bytes)
import { spawnSync } from "node:child_process";
import { closeSync, openSync, readFileSync, readSync, read as fsRead, open as fsOpen, close as fsClose } from "node:fs";
import { once } from "node:events";
import { cpus, loadavg } from "node:os";
import { join, dirname } from "node:path";
import { pipeline } from "node:stream/promises";
import { fileURLToPath, pathToFileURL } from "node:url";
import { parseArgs } from "node:util";
import { Worker, isMainThread, parentPort, workerData } from "node:worker_threads";
import zlib from "node:zlib";
import { buildCorpus } from "./corpus.mjs";
import { encoders, sink } from "./encoders.mjs";

const CHUNK = 1 << 20;
const here = dirname(fileURLToPath(import.meta.url));

/** One file's reads: `read(fd, pos)` returns the next chunk (empty at EOF). */
async function readAll(files, read, ws) {
  for (const f of files) {
    const fd = openSync(f.path, "r");
    let crc = 0, pos = 0;
    for (;;) {
      const chunk = await read(fd, pos, f.size);
      if (chunk.length === 0) break;
      pos += chunk.length;
      crc = zlib.crc32(chunk, crc);
      if (!ws.write(chunk)) await once(ws, "drain");
    }
    closeSync(fd);
  }
}

const readAsync = (fd, pos, buf) => new Promise((resolve, reject) => fsRead(fd, buf, 0, CHUNK, pos, (e, n) => (e ? reject(e) : resolve(buf.subarray(0, n)))));

/** zipStream of the corpus with `core` (imported before the timer), store unless `options` say. */
async function zipWith(core, files, { sizes = true, ...options } = {}) {
  const entries = files.map((f) => (sizes ? { name: f.name, path: f.path, size: f.size } : { name: f.name, path: f.path }));
  await pipeline(core.zipStream(entries, { method: "store", level: 6, ...options }), sink("null"));
}

const variants = {
  "limit:read-crc-sync": (files) => encoders["limit:read-crc-sync"](files, "store", "null"),
  async "sync-fresh"(files) {
    const ws = sink("null");
    await readAll(files, (fd, pos) => { const b = Buffer.allocUnsafe(CHUNK); return b.subarray(0, readSync(fd, b, 0, CHUNK, pos)); }, ws);
    ws.end(); await once(ws, "finish");
  },
  async "sync-fresh-256K"(files) {
    const ws = sink("null");
    const step = 256 * 1024;
    await readAll(files, (fd, pos, size) => {
      const len = Math.max(1, Math.min(step, size - pos + 1));
      const b = Buffer.allocUnsafe(len);
      const n = readSync(fd, b, 0, len, pos);
      return n === len ? b : b.subarray(0, n);
    }, ws);
    ws.end(); await once(ws, "finish");
  },
  async "async-fresh"(files) {
    const ws = sink("null");
    await pipelined(files, () => Buffer.allocUnsafe(CHUNK), ws);
    ws.end(); await once(ws, "finish");
  },
  async "async-reuse"(files) {
    const ws = sink("null");
    const bufs = [Buffer.allocUnsafe(CHUNK), Buffer.allocUnsafe(CHUNK)];
    let k = 0;
    await pipelined(files, () => bufs[k++ & 1], ws);
    ws.end(); await once(ws, "finish");
  },
  async worker(files) {
    const ws = sink("null");
    // Credits bound the chunks in flight (4), as the next read in flight bounds the others.
    const credits = new Int32Array(new SharedArrayBuffer(4));
    credits[0] = 4;
    const w = new Worker(fileURLToPath(import.meta.url), { workerData: { files: files.map((f) => f.path), credits } });
    await new Promise((resolve, reject) => {
      w.on("error", reject);
      w.on("message", (m) => {
        if (m === "done") return resolve();
        const give = () => { Atomics.add(credits, 0, 1); Atomics.notify(credits, 0); };
        if (ws.write(Buffer.from(m))) give(); else ws.once("drain", give);
      });
    });
    await w.terminate();
    ws.end(); await once(ws, "finish");
  },
  zipstream: (files, core) => zipWith(core, files),
  "zipstream-nosize": (files, core) => zipWith(core, files, { sizes: false }),
  "zipstream-sync": (files, core) => zipWith(core, files, { fileIo: "sync" }),
  "zipstream-sync-nosize": (files, core) => zipWith(core, files, { sizes: false, fileIo: "sync" }),
  // Not in the default list: the rest of the encoder, for before/after (--only, --base).
  deflate: (files, core) => zipWith(core, files, { method: "deflate" }),
  aes: (files, core) => zipWith(core, files, { password: "benchmark password" }),
};
const DEFAULT_CASES = ["limit:read-crc-sync", "sync-fresh", "sync-fresh-256K", "async-fresh", "async-reuse", "worker", "zipstream", "zipstream-nosize", "zipstream-sync", "zipstream-sync-nosize"];

/** Thread-pool reads with the next read in flight while the current chunk is CRC'd and written. */
async function pipelined(files, buffer, ws) {
  const open = (p) => new Promise((resolve, reject) => fsOpen(p, "r", (e, fd) => (e ? reject(e) : resolve(fd))));
  for (const f of files) {
    const fd = await open(f.path);
    let crc = 0, pos = 0;
    let pending = readAsync(fd, 0, buffer());
    for (;;) {
      const chunk = await pending;
      if (chunk.length === 0) break;
      pos += chunk.length;
      pending = readAsync(fd, pos, buffer());
      crc = zlib.crc32(chunk, crc);
      if (!ws.write(chunk)) await once(ws, "drain");
    }
    await pending;
    fsClose(fd, () => undefined);
  }
}

if (!isMainThread) {
  const credits = workerData.credits;
  for (const path of workerData.files) {
    const fd = openSync(path, "r");
    let crc = 0, pos = 0;
    for (;;) {
      while (Atomics.load(credits, 0) <= 0) Atomics.wait(credits, 0, 0);
      const b = new Uint8Array(new ArrayBuffer(CHUNK));
      const n = readSync(fd, b, 0, CHUNK, pos);
      if (n === 0) break;
      pos += n;
      const chunk = b.subarray(0, n);
      crc = zlib.crc32(chunk, crc);
      Atomics.sub(credits, 0, 1);
      parentPort.postMessage(chunk, [b.buffer]);
    }
    closeSync(fd);
  }
  parentPort.postMessage("done");
} else if (process.argv[2] === "--one") {
  const [, , , name, manifestPath, baseDir, warm] = process.argv;
  const { files } = JSON.parse(readFileSync(manifestPath, "utf8"));
  const [variant, build] = name.split("@");
  let core, importMs = 0;
  if (variant.includes("zipstream") || variant === "deflate" || variant === "aes") {
    const i0 = process.hrtime.bigint();
    core = await import(build === "base" ? pathToFileURL(join(baseDir, "dist", "index.js")).href : "@zipstream/core");
    importMs = Number(process.hrtime.bigint() - i0) / 1e6;
  }
  // This thread's CPU time in ns (the first field of schedstat), apart from the thread pool's and V8's.
  const mainCpu = () => Number(readFileSync("/proc/thread-self/schedstat", "utf8").split(" ")[0]) / 1e9;
  if (warm === "warm") await variants[variant](files, core);
  const t0 = process.hrtime.bigint(), c0 = process.cpuUsage(), m0 = mainCpu();
  await variants[variant](files, core);
  const cpu = process.cpuUsage(c0);
  const main = mainCpu() - m0;
  process.stdout.write(JSON.stringify({ seconds: Number(process.hrtime.bigint() - t0) / 1e9, cpuSeconds: (cpu.user + cpu.system) / 1e6, mainSeconds: main, importMs }) + "\n");
} else {
  const { values } = parseArgs({ options: { rounds: { type: "string", default: "5" }, scale: { type: "string", default: "1" }, only: { type: "string" }, base: { type: "string" }, warm: { type: "boolean", default: false } } });
  const manifest = buildCorpus(join(here, "..", "..", ".tmp", `bench-corpus-${values.scale}`), Number(values.scale));
  const manifestPath = join(here, "..", "..", ".tmp", `bench-corpus-${values.scale}`, "manifest.json");
  const picked = values.only?.split(",") ?? DEFAULT_CASES;
  for (const n of picked) if (!(n.split("@")[0] in variants)) throw new Error(`unknown case ${n}`);
  // The limit always runs: every ratio is to the limit of the same round.
  const names = ["limit:read-crc-sync", ...picked.filter((n) => n !== "limit:read-crc-sync")];
  if (values.base !== undefined) names.push(...picked.filter((n) => /zipstream|deflate|aes/.test(n)).map((n) => `${n}@base`));
  const runs = [];
  for (let r = 0; r < Number(values.rounds); r++) {
    for (const name of r % 2 === 0 ? names : [...names].reverse()) {
      const p = spawnSync(process.execPath, [fileURLToPath(import.meta.url), "--one", name, manifestPath, values.base ?? "", values.warm ? "warm" : ""], { encoding: "utf8" });
      if (p.status !== 0) throw new Error(`${name}: ${p.stderr.slice(0, 2000)}`);
      const res = JSON.parse(p.stdout.trim().split("\n").pop());
      runs.push({ name, round: r, mibs: manifest.bytes / 2 ** 20 / res.seconds, cpu: res.cpuSeconds, main: res.mainSeconds, importMs: res.importMs, load1: loadavg()[0] });
    }
  }
  const median = (xs) => { const s = [...xs].sort((a, b) => a - b); const m = s.length >> 1; return s.length % 2 ? s[m] : (s[m - 1] + s[m]) / 2; };
  const limitOf = (r) => runs.find((x) => x.round === r && x.name === "limit:read-crc-sync");
  console.log(`${new Date().toISOString().slice(0, 16)}Z, Node ${process.version}, ${values.rounds} rounds${values.warm ? ", warm" : ""}; ${cpus().length} × ${cpus()[0]?.model}; ${manifest.files.length} files, ${(manifest.bytes / 2 ** 20).toFixed(0)} MiB; load ${median(runs.map((x) => x.load1)).toFixed(1)} (median of 1-min averages)`);
  for (const name of names) {
    const rs = runs.filter((x) => x.name === name);
    const wall = rs.map((x) => x.mibs / limitOf(x.round).mibs);
    const f = (xs, d = 0) => `${median(xs).toFixed(d)} (${Math.min(...xs).toFixed(d)}–${Math.max(...xs).toFixed(d)})`;
    const imp = rs[0].importMs > 0 ? `  import ms ${median(rs.map((x) => x.importMs)).toFixed(0)}` : "";
    console.log(`${name.padEnd(26)} MiB/s ${f(rs.map((x) => x.mibs))}  CPU s ${f(rs.map((x) => x.cpu), 2)}  main s ${median(rs.map((x) => x.main)).toFixed(2)}  ×limit ${f(wall, 2)}  limit CPU / CPU ${(median(rs.map((x) => limitOf(x.round).cpu / x.cpu))).toFixed(2)}  main ${(median(rs.map((x) => limitOf(x.round).main / x.main))).toFixed(2)}${imp}`);
  }
}
