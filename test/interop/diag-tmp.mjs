import { zipStream } from "@zipstream/core";
import { createWriteStream } from "node:fs";
import { pipeline } from "node:stream/promises";
import { randomBytes } from "node:crypto";
const GiB = 1024 ** 3;
function pattern(size, compressible) {
  const block = compressible ? Buffer.from("zipstream interop pattern 0123456789 ".repeat(30_000).slice(0, 1 << 20)) : randomBytes(1 << 20);
  return async function* () { let n = 0; for (let i = 0; n < size; i++) { const k = Math.min(block.length, size - n); const b = Buffer.allocUnsafe(k); block.copy(b, 0, 0, k); b.writeUInt32LE(i, 0); n += k; yield b; } };
}
const small = randomBytes(200_000); const text = Buffer.from("after the big one ".repeat(2_000));
const entries = [
  { name: "before.txt", source: "first member\n" },
  { name: "big-store.bin", source: pattern(4 * GiB + (1 << 20) + 123, false), method: "store" },
  { name: "after/known.bin", source: small, size: small.length, method: "store" },
  { name: "after/unknown.txt", source: async function* () { yield text; }, method: "deflate" },
  { name: "after/dir/", type: "directory" },
  { name: "after/big-deflate.txt", source: pattern(4 * GiB + 777, true), method: "deflate" },
  { name: "last.txt", source: "last member\n" },
];
const z = zipStream(entries);
let out = 0; z.on("data", (b) => { out += b.length; });
const t = setInterval(() => console.log("tick", new Date().toISOString(), out, JSON.stringify(z.stats), z.readableEnded), 20000);
await pipeline(z, createWriteStream("/tmp/hx/diag-big.zip"));
console.log("DONE", out, new Date().toISOString()); clearInterval(t);
