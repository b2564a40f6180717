import { randomBytes } from "node:crypto";
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Readable } from "node:stream";
import { setImmediate as tick } from "node:timers/promises";
import { inflateRawSync } from "node:zlib";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { crc32, isZipError, predictZipSize, zipStream, ZipError, type ZipEntry } from "../src/index.js";
import { collect, collectError, parseZip, pythonRead, unzipTest } from "./helpers.js";

const EOCD_SIG = Buffer.from([0x50, 0x4b, 0x05, 0x06]);
const mtime = new Date("2024-05-06T07:08:10Z");
let dir: string;

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), "zipstream-core-test-"));
});
afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

function b64(s: Uint8Array | string): string {
  return Buffer.from(s).toString("base64");
}

describe("round trip through external readers", () => {
  it("every source shape, store and deflate, known and unknown sizes", async () => {
    const text = Buffer.from("The quick brown fox jumps over the lazy dog.\n".repeat(60_000)); // ~2.7 MB, several deflate blocks
    const rnd = randomBytes(3 * 1024 * 1024 + 17);
    const filePath = join(dir, "file.bin");
    await writeFile(filePath, rnd);
    const expected: Record<string, Uint8Array> = {
      "string.txt": Buffer.from("hello ✓"),
      "bytes.bin": rnd.subarray(0, 1000),
      "node-readable.txt": text,
      "web-stream.bin": rnd.subarray(0, 200_000),
      "sync-iter.txt": Buffer.from("abcdef"),
      "async-iter.bin": rnd.subarray(5, 100_005),
      "factory-promise.txt": Buffer.from("from a promise"),
      "path.bin": rnd,
      "empty.txt": new Uint8Array(0),
      "empty-deflate.txt": new Uint8Array(0),
      "ünï/cødé €.txt": Buffer.from("utf-8 name"),
      "known-size-deflate.txt": text.subarray(0, 1_500_000),
    };
    const entries: ZipEntry[] = [
      { name: "string.txt", source: "hello ✓", method: "store", comment: "a comment ✓" },
      { name: "bytes.bin", source: rnd.subarray(0, 1000) },
      { name: "node-readable.txt", source: () => Readable.from([text.subarray(0, 1_000_000), text.subarray(1_000_000)]) },
      {
        name: "web-stream.bin",
        method: "store",
        source: () => new Blob([rnd.subarray(0, 200_000)]).stream() as ReadableStream<Uint8Array>,
      },
      { name: "sync-iter.txt", source: [Buffer.from("abc"), Buffer.from("def")], method: "store" },
      {
        name: "async-iter.bin",
        method: "store",
        size: 100_000,
        source: async function* () {
          for (let i = 5; i < 100_005; i += 30_000) yield rnd.subarray(i, Math.min(i + 30_000, 100_005));
        },
      },
      { name: "factory-promise.txt", source: async () => "from a promise" },
      { name: "path.bin", path: filePath, method: "store" },
      { name: "empty.txt", source: "", method: "store" },
      { name: "empty-deflate.txt", source: () => [], method: "deflate" },
      { name: "ünï", type: "directory" },
      { name: "ünï/cødé €.txt", source: "utf-8 name" },
      { name: "known-size-deflate.txt", size: 1_500_000, source: () => Readable.from([text.subarray(0, 1_500_000)]) },
      { name: "link", type: "symlink", source: "string.txt" },
    ];
    const zip = await collect(zipStream(entries, { comment: "archive ✓", defaultMtime: mtime }));
    expect(await unzipTest(zip)).toMatch(/No errors detected/);
    const py = await pythonRead(zip);
    expect(py.bad).toBeNull();
    expect(py.comment).toBe("archive ✓");
    const byName = new Map(py.entries.map((e) => [e.name, e]));
    for (const [name, data] of Object.entries(expected)) {
      const e = byName.get(name);
      expect(e, name).toBeDefined();
      expect(e!.data === b64(data), name).toBe(true);
      expect(e!.crc).toBe(crc32(data));
    }
    expect(byName.get("string.txt")!.comment).toBe("a comment ✓");
    expect(byName.get("ünï/")!.mode).toBe(0o40755);
    expect(byName.get("link")!.mode).toBe(0o120777);
    expect(Buffer.from(byName.get("link")!.data, "base64").toString()).toBe("string.txt");
    expect(byName.get("path.bin")!.mode).toBe(0o100644);
    expect(byName.get("string.txt")!.date_time).toEqual([2024, 5, 6, 7, 8, 10]);
  });

  it("forced Zip64 on a small archive: Zip64 extra in local and central headers, Zip64 end records", async () => {
    const entries: ZipEntry[] = [
      { name: "a.txt", source: "aaa", method: "store" },
      { name: "b.txt", source: () => [Buffer.from("bbbb")], method: "deflate" },
      { name: "d", type: "directory" },
    ];
    const zip = await collect(zipStream(entries, { zip64: "always" }));
    expect(await unzipTest(zip)).toMatch(/No errors detected/);
    const py = await pythonRead(zip);
    expect(py.bad).toBeNull();
    expect(py.entries.map((e) => Buffer.from(e.data, "base64").toString())).toEqual(["aaa", "bbbb", ""]);
    const parsed = parseZip(zip);
    expect(parsed.zip64).toBe(true);
    for (const e of parsed.entries) {
      expect(e.extra.has(0x0001)).toBe(true);
      expect(e.versionNeeded).toBe(45);
      // local header: 32-bit sizes are 0xFFFFFFFF and the Zip64 extra comes first
      expect(zip.readUInt32LE(e.offset + 18)).toBe(0xffffffff);
      expect(zip.readUInt16LE(e.offset + 30 + zip.readUInt16LE(e.offset + 26))).toBe(0x0001);
    }
  });

  it("Unix mode, version made by, UTF-8 flag, extended timestamp and DOS clamping", async () => {
    const entries: ZipEntry[] = [
      { name: "old", source: "", mtime: new Date("1970-01-02T00:00:00Z"), mode: 0o600 },
      { name: "future", source: "", mtime: new Date("2200-01-01T00:00:00Z") },
      { name: "x", source: "", mode: 0o100755, mtime },
    ];
    const zip = await collect(zipStream(entries, { method: "store" }));
    const [old, future, x] = parseZip(zip).entries;
    expect(old.versionMadeBy >> 8).toBe(3);
    expect(old.flags & 0x800).toBe(0x800);
    expect(old.externalAttributes >>> 16).toBe(0o100600);
    expect(x.externalAttributes >>> 16).toBe(0o100755);
    expect([old.date, old.time]).toEqual([0x21, 0]);
    expect(old.extra.get(0x5455)!.readInt32LE(1)).toBe(86_400);
    expect([future.date, future.time]).toEqual([0xff9f, 0xbf7d]);
    // Past 2038 the extended timestamp is left out (readers then use the DOS date, 2107 here).
    expect(future.extra.has(0x5455)).toBe(false);
    const py = await pythonRead(zip);
    expect(py.entries[0].date_time).toEqual([1980, 1, 1, 0, 0, 0]);
  });

  it("no data descriptor when size and CRC are known up front (store); descriptor otherwise", async () => {
    const entries: ZipEntry[] = [
      { name: "mem", source: "abc", method: "store" },
      { name: "declared", source: () => [Buffer.from("abc")], size: 3, crc32: crc32("abc"), method: "store" },
      { name: "size-only", source: () => [Buffer.from("abc")], size: 3, method: "store" },
      { name: "unknown", source: () => [Buffer.from("abc")], method: "store" },
    ];
    const zip = await collect(zipStream(entries));
    const e = parseZip(zip).entries;
    expect(e.map((x) => (x.flags & 8) !== 0)).toEqual([false, false, true, true]);
    // The unknown size streamed with Zip64 sizes in its local header; the central header, written
    // once the size is known, needs no Zip64 field for 3 bytes.
    expect(e.map((x) => x.extra.has(0x0001))).toEqual([false, false, false, false]);
    expect(zip.readUInt16LE(e[3].offset + 30)).toBeGreaterThanOrEqual(20);
    expect(zip.readUInt16LE(e[3].offset + 30 + zip.readUInt16LE(e[3].offset + 26))).toBe(0x0001);
    expect(e[3].usize).toBe(3);
    expect(zip.readUInt32LE(e[0].offset + 14)).toBe(crc32("abc"));
    expect(zip.readUInt32LE(e[0].offset + 22)).toBe(3);
    expect(await unzipTest(zip)).toMatch(/No errors detected/);
  });

  it("parallel block deflate output inflates to the input (many blocks, mixed data)", async () => {
    const parts: Buffer[] = [];
    for (let i = 0; i < 12; i++) parts.push(i % 3 === 0 ? randomBytes(500_000) : Buffer.from(`line ${i} `.repeat(70_000)));
    const data = Buffer.concat(parts);
    const zip = await collect(zipStream([{ name: "big", source: () => Readable.from(parts) }], { level: 6 }));
    const [e] = parseZip(zip).entries;
    const start = e.offset + 30 + zip.readUInt16LE(e.offset + 26) + zip.readUInt16LE(e.offset + 28);
    const out = inflateRawSync(zip.subarray(start, start + e.csize));
    expect(out.equals(data)).toBe(true);
    expect(e.crc).toBe(crc32(data));
    expect(e.csize).toBeLessThan(data.length);
    expect(await unzipTest(zip)).toMatch(/No errors detected/);
  });
});

describe("laziness and backpressure", () => {
  it("consumes nothing before the consumer reads; opens sources only when their turn comes", async () => {
    const log: string[] = [];
    const big = Buffer.alloc(4 << 20, 1);
    async function* gen(): AsyncGenerator<ZipEntry> {
      for (let i = 0; i < 4; i++) {
        log.push(`entry ${i}`);
        yield {
          name: `f${i}`,
          method: "store",
          source: () => {
            log.push(`open ${i}`);
            return [big];
          },
        };
      }
      yield { name: "missing", path: join(dir, "does-not-exist") };
    }
    const z = zipStream(gen(), { highWaterMark: 64 * 1024 });
    await tick();
    await new Promise((r) => setTimeout(r, 20));
    expect(log).toEqual([]);
    // Read the first chunk only: entry 0 is open, later entries are not.
    const it = z[Symbol.asyncIterator]();
    await it.next();
    await new Promise((r) => setTimeout(r, 20));
    expect(log).toContain("open 0");
    expect(log).not.toContain("open 2");
    expect(log).not.toContain("entry 3");
    z.destroy();
    // The missing file was never opened: destroying leaves no ERR_SOURCE behind.
    expect(z.errored).toBeNull();
  });

  it("a slow consumer bounds how far sources are read ahead", async () => {
    let produced = 0;
    const chunk = Buffer.alloc(64 * 1024, 2);
    const source = async function* (): AsyncGenerator<Uint8Array> {
      for (let i = 0; i < 10_000; i++) {
        produced += chunk.length;
        yield chunk;
      }
    };
    const z = zipStream([{ name: "endless", source, method: "store" }], { highWaterMark: 256 * 1024 });
    const it = z[Symbol.asyncIterator]();
    await it.next();
    for (let i = 0; i < 5; i++) await new Promise((r) => setTimeout(r, 20));
    // highWaterMark + a chunk in flight, far below the 640 MB the source could produce
    expect(produced).toBeLessThanOrEqual(256 * 1024 + 4 * chunk.length);
    await it.return!();
  });

  it("store path passes source chunks through without copying them", async () => {
    const a = randomBytes(300_000);
    const b = randomBytes(200_000);
    const file = join(dir, "nocopy.bin");
    await writeFile(file, a);
    const z = zipStream(
      [
        { name: "node", source: () => Readable.from([a, b]), method: "store" },
        { name: "mem", source: b, method: "store" },
        { name: "iter", source: () => [a], method: "store" },
      ],
      { highWaterMark: 1 },
    );
    const seen = new Set<ArrayBufferLike>();
    await new Promise<void>((resolve, reject) => {
      z.on("data", (c: Buffer) => seen.add(c.buffer));
      z.on("end", resolve);
      z.on("error", reject);
    });
    expect(seen.has(a.buffer)).toBe(true);
    expect(seen.has(b.buffer)).toBe(true);
  });

  it("reports stats, progress and onEntry", async () => {
    const infos: any[] = [];
    let progressCalls = 0;
    const z = zipStream(
      [
        { name: "a", source: "12345", method: "store" },
        { name: "b", source: () => [Buffer.from("xyz")], method: "deflate" },
      ],
      { onEntry: (i) => infos.push(i), onProgress: () => progressCalls++ },
    );
    const zip = await collect(z);
    expect(z.stats).toEqual({ entries: 2, bytesIn: 8, bytesOut: zip.length, zip64: true });
    expect(infos.map((i) => [i.name, i.size, i.method, i.crc32, i.zip64])).toEqual([
      ["a", 5, "store", crc32("12345"), false],
      ["b", 3, "deflate", crc32("xyz"), true],
    ]);
    expect(infos[1].offset).toBe(parseZip(zip).entries[1].offset);
    expect(progressCalls).toBeGreaterThan(0);
  });
});

describe("failures", () => {
  function noEnd(bytes: Buffer): void {
    expect(bytes.includes(EOCD_SIG)).toBe(false);
  }

  it("a source error destroys the output with ERR_SOURCE, cause and entry; no end records", async () => {
    const boom = new Error("disk on fire");
    const z = zipStream([
      { name: "ok", source: "fine", method: "store" },
      {
        name: "bad",
        source: async function* () {
          yield Buffer.from("partial");
          throw boom;
        },
      },
      { name: "never", source: "x" },
    ]);
    const { error, bytes } = await collectError(z);
    expect(isZipError(error, "ERR_SOURCE")).toBe(true);
    expect(error.entry).toBe("bad");
    expect(error.cause).toBe(boom);
    noEnd(bytes);
  });

  it("a Node stream that errors or closes early: ERR_SOURCE", async () => {
    const boom = new Error("socket reset");
    let n = 0;
    const failing = new Readable({
      read() {
        if (n++ < 3) this.push(Buffer.alloc(1000, 1));
        else this.destroy(boom);
      },
    });
    const r1 = await collectError(zipStream([{ name: "s", source: failing, method: "store" }]));
    expect(r1.error.code).toBe("ERR_SOURCE");
    expect(r1.error.cause).toBe(boom);
    noEnd(r1.bytes);
    const early = new Readable({
      read() {
        this.destroy();
      },
    });
    const r2 = await collectError(zipStream([{ name: "e", source: early, method: "store" }]));
    expect(r2.error.code).toBe("ERR_SOURCE");
    noEnd(r2.bytes);
  });

  it("Node streams read through chunksOf: already ended, destroyed before reading, object-mode values", async () => {
    const ended = Readable.from([Buffer.from("x")]);
    for await (const _ of ended) void _;
    expect(ended.readableEnded).toBe(true);
    const zip = await collect(zipStream([{ name: "ended", source: ended, method: "store" }]));
    expect(parseZip(zip).entries[0]!.usize).toBe(0);
    const gone = new Readable({ read() {} });
    gone.on("error", () => undefined); // destroyed before zipstream listens
    gone.destroy(new Error("gone before its turn"));
    await tick();
    const r1 = await collectError(zipStream([{ name: "gone", source: gone, method: "store" }]));
    expect(r1.error.code).toBe("ERR_SOURCE");
    expect(r1.error.cause.message).toBe("gone before its turn");
    const objects = Readable.from([{ not: "bytes" }]);
    const r2 = await collectError(zipStream([{ name: "objects", source: objects, method: "store" }]));
    expect(r2.error.code).toBe("ERR_SOURCE");
    expect(r2.error.cause).toBeInstanceOf(TypeError);
    noEnd(r2.bytes);
  });

  it("a source that cannot be opened: ERR_SOURCE naming the entry", async () => {
    const { error, bytes } = await collectError(zipStream([{ name: "gone", path: join(dir, "nope") }]));
    expect(error.code).toBe("ERR_SOURCE");
    expect(error.entry).toBe("gone");
    expect(error.cause.code).toBe("ENOENT");
    noEnd(bytes);
  });

  it("declared size too small, too large, and a wrong crc32", async () => {
    const cases: [ZipEntry, string][] = [
      [{ name: "more", size: 2, source: () => [Buffer.from("abc")], method: "store" }, "ERR_SIZE_MISMATCH"],
      [{ name: "less", size: 4, source: () => [Buffer.from("abc")], method: "deflate" }, "ERR_SIZE_MISMATCH"],
      [{ name: "crc", crc32: 1, source: () => [Buffer.from("abc")], method: "store" }, "ERR_CRC_MISMATCH"],
      [{ name: "crc-mem", crc32: 1, source: "abc", method: "store" }, "ERR_CRC_MISMATCH"],
    ];
    for (const [entry, code] of cases) {
      const { error, bytes } = await collectError(zipStream([entry]));
      expect(error.code, entry.name).toBe(code);
      expect(error.entry).toBe(entry.name);
      noEnd(bytes);
    }
    // An in-memory source contradicting its declared size is rejected by the predictor as well.
    expect(() => predictZipSize([{ name: "m", size: 1, source: "abc" }])).toThrow(ZipError);
  });

  it("the entries iterable throwing: ERR_ENTRIES", async () => {
    const oops = new Error("listing failed");
    async function* gen(): AsyncGenerator<ZipEntry> {
      yield { name: "a", source: "a" };
      throw oops;
    }
    const { error, bytes } = await collectError(zipStream(gen()));
    expect(error.code).toBe("ERR_ENTRIES");
    expect(error.cause).toBe(oops);
    noEnd(bytes);
  });

  it("abort through signal: ERR_ABORTED, sources closed", async () => {
    const ac = new AbortController();
    let destroyed = false;
    let cancelled = false;
    const node = new Readable({
      read() {
        this.push(Buffer.alloc(16 * 1024));
      },
      destroy(err, cb) {
        destroyed = true;
        cb(err);
      },
    });
    const z = zipStream([{ name: "endless", source: node, method: "store" }], { signal: ac.signal });
    const it = z[Symbol.asyncIterator]();
    await it.next();
    ac.abort(new Error("user cancelled"));
    const err = await it.next().then(
      () => it.next().then(() => null, (e) => e),
      (e) => e,
    );
    expect(isZipError(err, "ERR_ABORTED")).toBe(true);
    expect(err.cause.message).toBe("user cancelled");
    await new Promise((r) => setTimeout(r, 10));
    expect(destroyed).toBe(true);

    // web stream: cancelled on abort
    const ac2 = new AbortController();
    const web = new ReadableStream<Uint8Array>({
      pull(c) {
        c.enqueue(new Uint8Array(16 * 1024));
      },
      cancel() {
        cancelled = true;
      },
    });
    const z2 = zipStream([{ name: "w", source: web, method: "store" }], { signal: ac2.signal });
    const it2 = z2[Symbol.asyncIterator]();
    await it2.next();
    ac2.abort();
    await expect(
      (async () => {
        for (;;) await it2.next();
      })(),
    ).rejects.toMatchObject({ code: "ERR_ABORTED" });
    await new Promise((r) => setTimeout(r, 10));
    expect(cancelled).toBe(true);
  });

  it("an already-aborted signal fails before anything is opened", async () => {
    let opened = false;
    const z = zipStream([{ name: "a", source: () => ((opened = true), "x") }], { signal: AbortSignal.abort() });
    const { error, bytes } = await collectError(z);
    expect(error.code).toBe("ERR_ABORTED");
    expect(bytes.length).toBe(0);
    expect(opened).toBe(false);
  });

  it("invalid names: ERR_INVALID_NAME naming the entry", async () => {
    const bad = ["", "/abs", "C:/x", "a/../b", "..", "a\\b", "nul\0x", "x".repeat(65_536), "é".repeat(40_000), "file/"];
    for (const name of bad) {
      const { error } = await collectError(zipStream([{ name, source: "" }]));
      expect(error.code, JSON.stringify(name.slice(0, 20))).toBe("ERR_INVALID_NAME");
      expect(typeof error.entry).toBe("string");
    }
    // allowed: dots inside names, a leading "./"-free relative path, exactly 65,535 bytes
    const ok = ["a..b", ".hidden", "a/.../b", "x".repeat(65_535)];
    const zip = await collect(zipStream(ok.map((name) => ({ name, source: "" }))));
    expect(parseZip(zip).entries.map((e) => e.name)).toEqual(ok);
  });

  it("duplicates: error, rename, allow", async () => {
    const entries = (): ZipEntry[] => [
      { name: "a.txt", source: "1" },
      { name: "a.txt", source: "2" },
      { name: "a.txt", source: "3" },
      { name: "d", type: "directory" },
      { name: "d/", type: "directory" },
      { name: "noext", source: "4" },
      { name: "noext", source: "5" },
    ];
    const { error } = await collectError(zipStream(entries()));
    expect(error.code).toBe("ERR_DUPLICATE_NAME");
    expect(error.entry).toBe("a.txt");
    const renamed = parseZip(await collect(zipStream(entries(), { duplicates: "rename" }))).entries.map((e) => e.name);
    expect(renamed).toEqual(["a.txt", "a (1).txt", "a (2).txt", "d/", "d (1)/", "noext", "noext (1)"]);
    const allowed = parseZip(await collect(zipStream(entries(), { duplicates: "allow" }))).entries.map((e) => e.name);
    expect(allowed).toEqual(["a.txt", "a.txt", "a.txt", "d/", "d/", "noext", "noext"]);
  });

  it("zip64 'never': ERR_ZIP64_REQUIRED before any inconsistent byte", async () => {
    const { error, bytes } = await collectError(
      zipStream([{ name: "huge", size: 2 ** 32, source: () => [] }], { zip64: "never", method: "store" }),
    );
    expect(error.code).toBe("ERR_ZIP64_REQUIRED");
    expect(error.entry).toBe("huge");
    expect(bytes.length).toBe(0);
    // too many entries: fails at the 65,535th, before its header
    const many = Array.from({ length: 65_536 }, (_, i): ZipEntry => ({ name: `${i}`, source: "" }));
    const r = await collectError(zipStream(many, { zip64: "never", method: "store" }));
    expect(r.error.code).toBe("ERR_ZIP64_REQUIRED");
    expect(r.error.entry).toBe("65534");
    noEnd(r.bytes);
    // unknown sizes under "never" use 32-bit descriptors and no Zip64 extra
    const zip = await collect(zipStream([{ name: "s", source: () => [Buffer.from("abc")] }], { zip64: "never" }));
    const [e] = parseZip(zip).entries;
    expect(e.extra.has(0x0001)).toBe(false);
    expect(e.versionNeeded).toBe(20);
    expect(await unzipTest(zip)).toMatch(/No errors detected/);
  });

  it("options are validated up front with a TypeError naming the option", () => {
    expect(() => zipStream([], { method: "zstd" as never })).toThrow(/"method"/);
    expect(() => zipStream([], { level: 10 })).toThrow(/"level"/);
    expect(() => zipStream([], { zip64: "sometimes" as never })).toThrow(/"zip64"/);
    expect(() => zipStream([], { duplicates: "skip" as never })).toThrow(/"duplicates"/);
    expect(() => zipStream([], { comment: "x".repeat(70_000) })).toThrow(/"comment"/);
    expect(() => zipStream([], { signal: {} as never })).toThrow(/"signal"/);
    expect(() => zipStream([], { highWaterMark: 0 })).toThrow(TypeError);
    expect(() => zipStream(42 as never)).toThrow(TypeError);
  });

  it("invalid entries: ERR_INVALID_ENTRY", async () => {
    const bad: any[] = [
      { name: "a" },
      { name: "a", source: "x", path: "/etc/hostname" },
      { name: "a", source: "x", size: -1 },
      { name: "a", source: "x", type: "fifo" },
      { name: "d", type: "directory", source: "x" },
    ];
    for (const e of bad) {
      const { error } = await collectError(zipStream([e]));
      expect(error.code).toBe("ERR_INVALID_ENTRY");
    }
  });
});

describe("empty archive", () => {
  it("is 22 bytes and valid", async () => {
    const zip = await collect(zipStream([]));
    expect(zip.length).toBe(22);
    expect(predictZipSize([])).toBe(22);
    expect(parseZip(zip).count).toBe(0);
  });
});

describe("read-ahead of the next deflated entry", () => {
  const text = Buffer.from("read ahead ".repeat(300_000)); // ~3.3 MB: several blocks

  it("many deflated members in a row round-trip", async () => {
    const entries: ZipEntry[] = [];
    const expected: Buffer[] = [];
    for (let i = 0; i < 20; i++) {
      // m10 is one 9 MB chunk: more blocks than may be in flight, taken in several writes
      const data = i === 10 ? Buffer.concat([text, randomBytes(3 << 20), text]) : i % 2 ? randomBytes(50_000 * i) : text.subarray(0, 100_000 * i);
      expected.push(data);
      entries.push({ name: `m${i}`, source: i % 3 ? () => Readable.from([data]) : () => [data], size: i % 4 === 0 ? data.length : undefined });
    }
    const z = zipStream(entries, { method: "deflate" });
    const zip = await collect(z);
    const py = await pythonRead(zip);
    expect(py.bad).toBeNull();
    expect(py.entries.map((e) => e.data === b64(expected[Number(e.name.slice(1))]))).toEqual(entries.map(() => true));
    expect(z.stats.bytesIn).toBe(expected.reduce((s, d) => s + d.length, 0));
  });

  it("the writer reaching an entry while it is still being read ahead continues where read-ahead stopped", async () => {
    // "a" ends at once and the file "b" is read ahead, so b's turn comes mid-read: its input must
    // be read once, in order (not by the read-ahead and the writer both).
    const dir = await mkdtemp(join(tmpdir(), "zipstream-ahead-"));
    try {
      const data = Buffer.concat([text, randomBytes(1 << 20)]);
      const path = join(dir, "b.bin");
      await writeFile(path, data);
      for (const declared of [true, false]) {
        for (let round = 0; round < 3; round++) {
          const entries: ZipEntry[] = [
            { name: "a", source: "tiny" },
            { name: "b", path, ...(declared ? { size: data.length } : {}) },
          ];
          const zip = await collect(zipStream(entries, { method: "deflate" }));
          const py = await pythonRead(zip);
          expect(py.bad).toBeNull();
          expect(py.entries[1]!.data === b64(data), `declared ${declared}`).toBe(true);
        }
      }
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });

  it("failures of the next entry surface at its turn, naming it, after the current entry is complete", async () => {
    const boom = new Error("no such object");
    const cases: [ZipEntry, string][] = [
      [{ name: "b", source: () => Promise.reject(boom) }, "ERR_SOURCE"],
      [{ name: "b", size: 5, source: () => [text] }, "ERR_SIZE_MISMATCH"],
      [{ name: "../b", source: () => [text] }, "ERR_INVALID_NAME"],
      [
        {
          name: "b",
          source: async function* () {
            throw boom;
          },
        },
        "ERR_SOURCE",
      ],
    ];
    for (const [second, code] of cases) {
      const done: string[] = [];
      const { error, bytes } = await collectError(
        zipStream([{ name: "a", source: () => [text] }, second], { method: "deflate", onEntry: (e) => done.push(e.name) }),
      );
      expect(error.code, code).toBe(code);
      expect(error.entry).toBe(second.name);
      // entry "a" was completely written before the failure was raised
      expect(done).toEqual(["a"]);
      expect(bytes.includes(EOCD_SIG)).toBe(false);
    }
  });

  it("the entries iterable failing during read-ahead: ERR_ENTRIES", async () => {
    const oops = new Error("list failed");
    async function* gen(): AsyncGenerator<ZipEntry> {
      yield { name: "a", source: () => [text] };
      throw oops;
    }
    const { error } = await collectError(zipStream(gen(), { method: "deflate" }));
    expect(error.code).toBe("ERR_ENTRIES");
    expect(error.cause).toBe(oops);
  });

  it("destroying the output closes a source opened ahead", async () => {
    let destroyed = false;
    const slowOutput = new Readable({
      read() {
        this.push(randomBytes(64 * 1024));
      },
      destroy(err, cb) {
        destroyed = true;
        cb(err);
      },
    });
    const z = zipStream(
      [
        { name: "a", source: () => [randomBytes(3 << 20)] },
        { name: "b", source: () => slowOutput },
      ],
      { method: "deflate", highWaterMark: 1024 },
    );
    const it = z[Symbol.asyncIterator]();
    // read until entry "b" has been opened ahead (a's blocks compressing) or is being written
    for (let i = 0; i < 200 && !slowOutput.listenerCount("data"); i++) await it.next();
    expect(slowOutput.listenerCount("data")).toBeGreaterThan(0);
    z.destroy();
    await new Promise((r) => setTimeout(r, 20));
    expect(destroyed).toBe(true);
  });
});
