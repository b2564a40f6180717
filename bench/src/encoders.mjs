// One benchmark run in its own process: `node encoders.mjs <encoder> <store|deflate> <manifest.json> <out.zip|null>`.
// Prints one JSON line: wall time, CPU seconds (all threads of this process, so the thread pool
// counts), peak RSS, input and output bytes. Timing covers the encoder only; verification of the
// output happens in the parent, outside the timed region.
//
// The sink: a file path, or `null` for an in-process Writable that counts the bytes and drops
// them (1 MiB highWaterMark, so backpressure works as with a file). Writing 1 GiB into the page
// cache costs this VM more than reading and CRC-ing it, the same for every library, so the file
// sink measures the kernel as much as the encoder; the null sink measures the encoder.
import { closeSync, createReadStream, createWriteStream, existsSync, openSync, readFileSync, readSync, statSync } from "node:fs";
import { open } from "node:fs/promises";
import { Readable, Writable } from "node:stream";
import { pipeline } from "node:stream/promises";
import { once } from "node:events";
import zlib from "node:zlib";

const LEVEL = 6;
let outBytes = 0;

/** The sink every runner writes to (see the header comment). */
export function sink(out) {
  if (out !== "null") return createWriteStream(out, { highWaterMark: 1 << 20 });
  return new Writable({
    highWaterMark: 1 << 20,
    write(chunk, _enc, cb) { outBytes += chunk.length; cb(); },
    writev(chunks, cb) { for (const c of chunks) outBytes += c.chunk.length; cb(); },
  });
}

export const encoders = {
  async zipstream(files, method, out) {
    const { zipStream } = await import("@zipstream/core");
    const entries = files.map((f) => ({ name: f.name, path: f.path, size: f.size }));
    await pipeline(zipStream(entries, { method, level: LEVEL }), sink(out));
  },
  // The same archive with no declared sizes: each file's size comes from the file itself.
  async "zipstream-nosize"(files, method, out) {
    const { zipStream } = await import("@zipstream/core");
    const entries = files.map((f) => ({ name: f.name, path: f.path }));
    await pipeline(zipStream(entries, { method, level: LEVEL }), sink(out));
  },
  // Files read with synchronous opens, reads and closes on the main thread (`fileIo: "sync"`: for
  // one-job processes such as the CLI; it blocks the event loop), with and without declared sizes.
  async "zipstream-sync"(files, method, out) {
    const { zipStream } = await import("@zipstream/core");
    const entries = files.map((f) => ({ name: f.name, path: f.path, size: f.size }));
    await pipeline(zipStream(entries, { method, level: LEVEL, fileIo: "sync" }), sink(out));
  },
  async "zipstream-sync-nosize"(files, method, out) {
    const { zipStream } = await import("@zipstream/core");
    const entries = files.map((f) => ({ name: f.name, path: f.path }));
    await pipeline(zipStream(entries, { method, level: LEVEL, fileIo: "sync" }), sink(out));
  },
  // Store + AES-256 (WinZip AE-2): the encryption overhead on top of the store path.
  async "zipstream+aes"(files, method, out) {
    const { zipStream } = await import("@zipstream/core");
    const entries = files.map((f) => ({ name: f.name, path: f.path, size: f.size }));
    await pipeline(zipStream(entries, { method, level: LEVEL, password: "benchmark password" }), sink(out));
  },
  async archiver(files, method, out) {
    const { default: archiver } = await import("archiver");
    const archive = archiver("zip", method === "store" ? { store: true } : { zlib: { level: LEVEL } });
    const done = pipeline(archive, sink(out));
    for (const f of files) archive.file(f.path, { name: f.name });
    await archive.finalize();
    await done;
  },
  async yazl(files, method, out) {
    const { ZipFile } = await import("yazl");
    const zip = new ZipFile();
    const done = pipeline(zip.outputStream, sink(out));
    for (const f of files) zip.addFile(f.path, f.name, method === "store" ? { compress: false } : { compress: true, compressionLevel: LEVEL });
    zip.end();
    await done;
  },
  async "zip.js"(files, method, out) {
    const { ZipWriter, configure } = await import("@zip.js/zip.js");
    configure({ useWebWorkers: false });
    const writer = new ZipWriter(Writable.toWeb(sink(out)));
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
    await pipeline(Readable.fromWeb(makeZip(inputs())), sink(out));
  },
  async fflate(files, method, out) {
    const { Zip, ZipDeflate, ZipPassThrough } = await import("fflate");
    const ws = sink(out);
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
  // The limits. crc32: zlib.crc32 over the corpus already in memory (no I/O). The data is CRC'd
  // once untimed first: on this VM the first user-space touch of pages the kernel filled costs
  // more than the CRC itself (about 1 s per GiB), and that cost belongs to reading, not to CRC-32.
  async "limit:crc32"(files) {
    const bufs = files.map((f) => readFileSync(f.path));
    for (const b of bufs) zlib.crc32(b);
    const t0 = process.hrtime.bigint(), c0 = process.cpuUsage();
    let c = 0;
    for (const b of bufs) for (let i = 0; i < b.length; i += 1 << 20) c = zlib.crc32(b.subarray(i, i + (1 << 20)), c);
    return { timed: { ns: Number(process.hrtime.bigint() - t0), cpu: process.cpuUsage(c0) }, crc: c };
  },
  // read + crc32 + copy: what a store encoder cannot beat, written as well as we know how: the
  // same reads (1 MiB, the next read in flight while a chunk is CRC'd and handed on, the next
  // file opened while the current one streams) and the same sink, but no headers at all.
  async "limit:read-crc-copy"(files, _m, out) {
    const ws = sink(out);
    const openAt = (i) => (i < files.length ? open(files[i].path, "r") : undefined);
    const readAt = (fh, pos, len) => { const b = Buffer.allocUnsafe(len); return fh.read(b, 0, len, pos).then((r) => b.subarray(0, r.bytesRead)); };
    let nextFh = openAt(0);
    for (let i = 0; i < files.length; i++) {
      const fh = await nextFh;
      nextFh = openAt(i + 1);
      const size = files[i].size;
      let c = 0, pos = 0;
      let pending = readAt(fh, 0, Math.min(size, 1 << 20));
      while (pos < size) {
        const chunk = await pending;
        if (chunk.length === 0) throw new Error(`${files[i].path}: short file`);
        pos += chunk.length;
        if (pos < size) pending = readAt(fh, pos, Math.min(size - pos, 1 << 20));
        c = zlib.crc32(chunk, c);
        if (!ws.write(chunk)) await once(ws, "drain");
      }
      void fh.close();
    }
    ws.end();
    await once(ws, "finish");
  },
  // The honest limit of a store encoder on this machine (issue 15): one thread, synchronous 1 MiB
  // reads into one reused buffer, CRC-32, into the same sink; no thread pool, no headers, no
  // fresh memory. An encoder that hands its chunks to a consumer cannot reuse its buffers, so
  // this is a bound, not a target.
  async "limit:read-crc-sync"(files, _m, out) {
    const ws = sink(out);
    const buf = Buffer.allocUnsafe(1 << 20);
    for (const f of files) {
      const fd = openSync(f.path, "r");
      let c = 0, pos = 0;
      for (;;) {
        const n = readSync(fd, buf, 0, buf.length, pos);
        if (n === 0) break;
        pos += n;
        const chunk = buf.subarray(0, n);
        c = zlib.crc32(chunk, c);
        if (!ws.write(chunk)) await once(ws, "drain");
      }
      closeSync(fd);
      if (pos !== f.size) throw new Error(`${f.path}: ${pos} bytes, expected ${f.size}`);
    }
    ws.end();
    await once(ws, "finish");
  },
  // Single-thread zlib at the same level: one raw deflate stream at a time.
  async "limit:zlib-1thread"(files, _m, out) {
    const ws = sink(out);
    const into = async (src) => { for await (const c of src) if (!ws.write(c)) await once(ws, "drain"); };
    for (const f of files) {
      await pipeline(createReadStream(f.path, { highWaterMark: 1 << 20 }), zlib.createDeflateRaw({ level: LEVEL }), into);
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
    outBytes: out === "null" ? outBytes : existsSync(out) ? statSync(out).size : 0,
  }) + "\n");
}
