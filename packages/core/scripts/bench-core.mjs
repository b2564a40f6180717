#!/usr/bin/env node
// Quick throughput check of the core encoder against its limits, on an in-memory corpus of
// real files (text from /usr/share, binaries from /usr/lib) of about CORPUS_MB (default 200).
// Reports MB/s of input for: crc32 alone, crc32 + copy (the store limit), zipStream store,
// single-thread zlib deflate level 6, and zipStream deflate level 6 (parallel blocks).
// Usage: node packages/core/scripts/bench-core.mjs [CORPUS_MB]   (needs a build: imports dist/)
import { readdirSync, readFileSync, statSync } from "node:fs";
import { join } from "node:path";
import zlib from "node:zlib";
import { zipStream } from "../dist/index.js";

const target = Number(process.argv[2] ?? 200) * 1e6;

function gather(root, want, pred) {
  const out = [];
  let total = 0;
  const stack = [root];
  while (stack.length > 0 && total < want) {
    const dir = stack.pop();
    let names;
    try {
      names = readdirSync(dir).sort();
    } catch {
      continue;
    }
    for (const n of names) {
      if (total >= want) break;
      const p = join(dir, n);
      let st;
      try {
        st = statSync(p, { throwIfNoEntry: false });
      } catch {
        continue;
      }
      if (!st) continue;
      if (st.isDirectory()) stack.push(p);
      else if (st.isFile() && st.size > 4096 && st.size < 64e6 && pred(n)) {
        try {
          const b = readFileSync(p);
          out.push({ name: p.slice(1), data: b });
          total += b.length;
        } catch {}
      }
    }
  }
  return out;
}

const text = gather("/usr/share", target / 2, (n) => !/\.(gz|xz|bz2|zst|png|jpg|ttf|otf|woff2?)$/.test(n));
const bin = gather("/usr/lib", target / 2, (n) => /\.so|\.a$|^[^.]+$/.test(n));
const files = [...text, ...bin];
const total = files.reduce((s, f) => s + f.data.length, 0);
console.log(`corpus: ${files.length} files, ${(total / 1e6).toFixed(0)} MB (text ${text.length}, binary ${bin.length})`);

async function time(label, fn) {
  const t = performance.now();
  const r = await fn();
  const s = (performance.now() - t) / 1000;
  console.log(`${label.padEnd(34)} ${(total / 1e6 / s).toFixed(0).padStart(6)} MB/s${r ? `  (${r})` : ""}`);
  return total / 1e6 / s;
}

const sink = async (stream) => {
  let n = 0;
  for await (const c of stream) n += c.length;
  return `${(n / 1e6).toFixed(1)} MB out`;
};

await time("crc32", () => {
  for (const f of files) zlib.crc32(f.data);
});
await time("crc32 + copy (store limit)", () => {
  for (const f of files) {
    zlib.crc32(f.data);
    Buffer.from(f.data);
  }
});
await time("zipStream store", () => sink(zipStream(files.map((f) => ({ name: f.name, source: f.data })), { method: "store" })));
const single = await time("zlib deflate level 6, one thread", async () => {
  let n = 0;
  for (const f of files) n += zlib.deflateRawSync(f.data, { level: 6 }).length;
  return `${(n / 1e6).toFixed(1)} MB out`;
});
const par = await time("zipStream deflate level 6", () =>
  sink(zipStream(files.map((f) => ({ name: f.name, source: () => [f.data] })), { method: "deflate", level: 6 })),
);
console.log(`deflate ratio vs single-thread zlib (many members): ${(par / single).toFixed(2)}x`);
// One large member: the block-parallel path (1 MiB blocks on the thread pool).
const joined = Buffer.concat(files.map((f) => f.data));
const singleBig = await time("zlib deflate level 6, one member", async () => {
  const out = [];
  const d = zlib.createDeflateRaw({ level: 6 });
  const done = (async () => {
    for await (const c of d) out.push(c);
  })();
  for (let i = 0; i < joined.length; i += 1 << 20) d.write(joined.subarray(i, i + (1 << 20)));
  d.end();
  await done;
  return `${(out.reduce((s, c) => s + c.length, 0) / 1e6).toFixed(1)} MB out`;
});
const parBig = await time("zipStream deflate, one member", () =>
  sink(zipStream([{ name: "all", source: () => [joined] }], { method: "deflate", level: 6 })),
);
console.log(`deflate ratio vs single-thread zlib (one member): ${(parBig / singleBig).toFixed(2)}x`);
