// One benchmark run in its own process: `node encoders.mjs <encoder> <store|deflate> <manifest.json> <out.zip>`.
// Prints one JSON line: wall time, CPU seconds (all threads of this process, so the thread pool
// counts), peak RSS, input and output bytes. Timing covers the encoder only; verification of the
// output happens in the parent, outside the timed region.
import { createReadStream, createWriteStream, readFileSync } from "node:fs";
import { Readable, Writable } from "node:stream";
import { pipeline } from "node:stream/promises";
import { once } from "node:events";
import zlib from "node:zlib";

const LEVEL = 6;

export const encoders = {
  async zipstream(files, method, out) {
    const { zipStream } = await import("@zipstream/core");
    const entries = files.map((f) => ({ name: f.name, path: f.path, size: f.size }));
    await pipeline(zipStream(entries, { method, level: LEVEL }), createWriteStream(out, { highWaterMark: 1 << 20 }));
  },
  // Store + AES-256 (WinZip AE-2): the encryption overhead on top of the store path.
  async "zipstream+aes"(files, method, out) {
    const { zipStream } = await import("@zipstream/core");
    const entries = files.map((f) => ({ name: f.name, path: f.path, size: f.size }));
    await pipeline(zipStream(entries, { method, level: LEVEL, password: "benchmark password" }), createWriteStream(out, { highWaterMark: 1 << 20 }));
  },
  async archiver(files, method, out) {
    const { default: archiver } = await import("archiver");
    const archive = archiver("zip", method === "store" ? { store: true } : { zlib: { level: LEVEL } });
    const done = pipeline(archive, createWriteStream(out));
    for (const f of files) archive.file(f.path, { name: f.name });
    await archive.finalize();
    await done;
  },
  async yazl(files, method, out) {
    const { ZipFile } = await import("yazl");
    const zip = new ZipFile();
    const done = pipeline(zip.outputStream, createWriteStream(out));
    for (const f of files) zip.addFile(f.path, f.name, method === "store" ? { compress: false } : { compress: true, compressionLevel: LEVEL });
    zip.end();
    await done;
  },
  async "zip.js"(files, method, out) {
    const { ZipWriter, configure } = await import("@zip.js/zip.js");
    configure({ useWebWorkers: false });
    const writer = new ZipWriter(Writable.toWeb(createWriteStream(out)));
    for (const f of files) {
      await writer.add(f.name, Readable.toWeb(createReadStream(f.path, { highWaterMark: 1 << 20 })), { level: method === "store" ? 0 : LEVEL });
    }
    await writer.close();
  },
  async "client-zip"(files, method, out) {
    if (method !== "store") throw new Error("client-zip does not compress");
    const { makeZip } = await import("client-zip");
    async function* inputs() {
      for (const f of files) yield { name: f.name, input: Readable.toWeb(createReadStream(f.path, { highWaterMark: 1 << 20 })), size: f.size, lastModified: new Date() };
    }
    await pipeline(Readable.fromWeb(makeZip(inputs())), createWriteStream(out));
  },
  async fflate(files, method, out) {
    const { Zip, ZipDeflate, ZipPassThrough } = await import("fflate");
    const ws = createWriteStream(out, { highWaterMark: 1 << 20 });
    let failure;
    const zip = new Zip((err, chunk, final) => {
      if (err) { failure = err; return; }
      ws.write(chunk);
      if (final) ws.end();
    });
    for (const f of files) {
      const e = method === "store" ? new ZipPassThrough(f.name) : new ZipDeflate(f.name, { level: LEVEL });
      zip.add(e);
      let pending = null;
      for await (const c of createReadStream(f.path, { highWaterMark: 1 << 20 })) {
        if (pending) e.push(pending, false);
        pending = c;
        if (ws.writableNeedDrain) await once(ws, "drain");
      }
      e.push(pending ?? new Uint8Array(0), true);
      if (failure) throw failure;
    }
    zip.end();
    await once(ws, "finish");
  },
  // The limits. crc32: zlib.crc32 over the corpus already in memory (no I/O).
  async "limit:crc32"(files) {
    const bufs = files.map((f) => readFileSync(f.path));
    const t0 = process.hrtime.bigint(), c0 = process.cpuUsage();
    let c = 0;
    for (const b of bufs) for (let i = 0; i < b.length; i += 1 << 20) c = zlib.crc32(b.subarray(i, i + (1 << 20)), c);
    return { timed: { ns: Number(process.hrtime.bigint() - t0), cpu: process.cpuUsage(c0) }, crc: c };
  },
  // read + crc32 + copy: what a store encoder cannot beat (the same reads and writes, no headers).
  async "limit:read-crc-copy"(files, _m, out) {
    const ws = createWriteStream(out, { highWaterMark: 1 << 20 });
    for (const f of files) {
      let c = 0;
      for await (const chunk of createReadStream(f.path, { highWaterMark: 1 << 20 })) {
        c = zlib.crc32(chunk, c);
        if (!ws.write(chunk)) await once(ws, "drain");
      }
    }
    ws.end();
    await once(ws, "finish");
  },
  // Single-thread zlib at the same level: one raw deflate stream at a time.
  async "limit:zlib-1thread"(files, _m, out) {
    const ws = createWriteStream(out, { highWaterMark: 1 << 20 });
    const sink = async (src) => { for await (const c of src) if (!ws.write(c)) await once(ws, "drain"); };
    for (const f of files) {
      await pipeline(createReadStream(f.path, { highWaterMark: 1 << 20 }), zlib.createDeflateRaw({ level: LEVEL }), sink);
    }
    ws.end();
    await once(ws, "finish");
  },
};

if (import.meta.url === `file://${process.argv[1]}`) {
  const [name, method, manifestPath, out] = process.argv.slice(2);
  const manifest = JSON.parse(readFileSync(manifestPath, "utf8"));
  const t0 = process.hrtime.bigint();
  const c0 = process.cpuUsage();
  const r = await encoders[name](manifest.files, method, out);
  let ns = Number(process.hrtime.bigint() - t0);
  let cpu = process.cpuUsage(c0);
  if (r?.timed) ({ ns, cpu } = r.timed);
  const res = process.resourceUsage();
  process.stdout.write(JSON.stringify({
    encoder: name, method, seconds: ns / 1e9, cpuSeconds: (cpu.user + cpu.system) / 1e6,
    maxRssMiB: res.maxRSS / 1024, bytesIn: manifest.bytes,
  }) + "\n");
}
