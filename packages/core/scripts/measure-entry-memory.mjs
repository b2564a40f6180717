#!/usr/bin/env node
// Measures what the writer keeps per entry: streams N tiny entries (names "dir/file-<i>.txt",
// store, empty content) through zipStream, discarding the output, and reports the heap growth
// (after forced GC) while the central directory is held, divided by N.
// Usage: node --expose-gc packages/core/scripts/measure-entry-memory.mjs [N=1000000]
// Needs a build (imports dist/).
import { zipStream } from "../dist/index.js";

const N = Number(process.argv[2] ?? 1_000_000);
if (typeof globalThis.gc !== "function") {
  console.error("run with node --expose-gc");
  process.exit(2);
}
const heap = () => {
  globalThis.gc();
  globalThis.gc();
  const m = process.memoryUsage();
  return m.heapUsed + m.arrayBuffers;
};

// Entries come from a generator, so the input itself is not retained.
function* entries() {
  for (let i = 0; i < N; i++) yield { name: `dir/file-${i}.txt`, source: "", method: "store" };
}

const before = heap();
const z = zipStream(entries(), { method: "store", duplicates: "error" });
let bytesOut = 0;
let atCentral = 0;
let cdBytes = 0;
const t0 = performance.now();
for await (const chunk of z) {
  bytesOut += chunk.length;
  // The central directory is emitted in 1 MiB blocks once every entry is written: measure then.
  if (atCentral === 0 && z.stats.entries === N) atCentral = heap() - before;
  if (z.stats.entries === N) cdBytes += chunk.length;
}
const secs = (performance.now() - t0) / 1000;
const result = {
  entries: N,
  archiveBytes: bytesOut,
  centralDirectoryBytesPerEntry: +(cdBytes / N).toFixed(1),
  heapGrowthBytes: atCentral,
  heapBytesPerEntry: +(atCentral / N).toFixed(1),
  seconds: +secs.toFixed(1),
  entriesPerSecond: Math.round(N / secs),
};
console.log(JSON.stringify(result, null, 2));
