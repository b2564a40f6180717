import { randomBytes } from "node:crypto";
import zlib from "node:zlib";
import { describe, expect, it } from "vitest";
import { crc32Combine, crc32Concat, layoutZip, localHeaderWithCrc32, predictZipSize, zipStream, type ZipEntry, type ZipLayout, type ZipOptions } from "../src/index.js";
import { collect, pythonRead, unzipTest } from "./helpers.js";

const mtime = new Date("2025-06-07T08:09:10Z");

describe("crc32Combine (GF(2) matrix method) against zlib.crc32", () => {
  it("random buffers split at random points, including empty halves", () => {
    for (let i = 0; i < 300; i++) {
      const buf = randomBytes(1 + Math.floor(Math.random() * 70_000));
      const cut = i % 10 === 0 ? 0 : i % 10 === 1 ? buf.length : Math.floor(Math.random() * (buf.length + 1));
      const a = buf.subarray(0, cut);
      const b = buf.subarray(cut);
      expect(crc32Combine(zlib.crc32(a), zlib.crc32(b), b.length)).toBe(zlib.crc32(buf));
    }
  });

  it("many pieces folded in order (crc32Concat)", () => {
    const buf = randomBytes(3 * 1024 * 1024 + 77);
    for (let round = 0; round < 20; round++) {
      const cuts = [0, ...Array.from({ length: 1 + (round % 9) }, () => Math.floor(Math.random() * buf.length)).sort((x, y) => x - y), buf.length];
      const pieces: [number, number][] = [];
      for (let i = 1; i < cuts.length; i++) {
        const p = buf.subarray(cuts[i - 1], cuts[i]);
        pieces.push([zlib.crc32(p), p.length]);
      }
      expect(crc32Concat(pieces)).toBe(zlib.crc32(buf));
    }
    expect(crc32Concat([])).toBe(0);
  });

  it("a second run longer than 4 GiB (length bits above 32)", () => {
    const head = randomBytes(1000);
    const zeros = Buffer.alloc(1 << 20);
    const total = 2 ** 32 + 17;
    let crcZeros = 0;
    let crcAll = zlib.crc32(head);
    for (let done = 0; done < total; ) {
      const n = Math.min(zeros.length, total - done);
      const chunk = zeros.subarray(0, n);
      crcZeros = zlib.crc32(chunk, crcZeros);
      crcAll = zlib.crc32(chunk, crcAll);
      done += n;
    }
    expect(crc32Combine(zlib.crc32(head), crcZeros, total)).toBe(crcAll);
  });

  it("rejects a bad length with a TypeError", () => {
    expect(() => crc32Combine(1, 2, -1)).toThrow(TypeError);
    expect(() => crc32Combine(1, 2, 1.5)).toThrow(TypeError);
  });
});

/** Writes the layout and the given member data into one buffer: what copy assembly does in S3. */
function assemble(layout: ZipLayout, data: Uint8Array[]): Buffer {
  const out = Buffer.alloc(layout.size, 0xaa);
  layout.entries.forEach((e, i) => {
    out.set(e.localHeader, e.offset);
    expect(data[i]!.length).toBe(e.dataLength);
    out.set(data[i]!, e.dataOffset);
    if (e.descriptor) out.set(e.descriptor, e.dataOffset + e.dataLength);
    const next = i + 1 < layout.entries.length ? layout.entries[i + 1]!.offset : layout.centralDirectoryOffset;
    expect(e.dataOffset + e.dataLength + (e.descriptor?.length ?? 0)).toBe(next);
  });
  out.set(layout.centralDirectory, layout.centralDirectoryOffset);
  expect(layout.centralDirectoryOffset + layout.centralDirectory.length).toBe(layout.size);
  return out;
}

interface Member {
  name: string;
  bytes: Buffer;
  entry?: Partial<ZipEntry>;
}

function members(): Member[] {
  const text = Buffer.from("a line of text for deflate\n".repeat(3000));
  return [
    { name: "empty.bin", bytes: Buffer.alloc(0) },
    { name: "small.bin", bytes: randomBytes(1024) },
    { name: "dir/ünïcødé €.bin", bytes: randomBytes(100_000), entry: { comment: "entry comment ✓", mode: 0o600 } },
    { name: "big.bin", bytes: randomBytes(2 * 1024 * 1024 + 3) },
    { name: "text.txt", bytes: text, entry: { method: "deflate", level: 6 } },
  ];
}

/** Entries for zipStream (streams with declared size and crc) and for layoutZip (no data at all). */
function entriesOf(ms: Member[], forLayout: boolean): ZipEntry[] {
  return ms.map((m) => {
    const deflated = m.entry?.method === "deflate";
    const e: ZipEntry = { name: m.name, mtime, size: m.bytes.length, crc32: zlib.crc32(m.bytes), ...m.entry };
    if (deflated) e.compressedSize = zlib.deflateRawSync(m.bytes, { level: m.entry?.level ?? 6 }).length;
    if (forLayout) return e;
    // A generator source: the writer learns nothing about the bytes but what is declared.
    return { ...e, source: () => (async function* () { yield m.bytes.subarray(0, 7); yield m.bytes.subarray(7); })() };
  });
}

const configs: [string, ZipOptions][] = [
  ["store, zip64 auto", { method: "store" }],
  ["store, zip64 always", { method: "store", zip64: "always" }],
  ["store, zip64 never", { method: "store", zip64: "never" }],
  ["store, archive comment", { method: "store", comment: "archive comment ✓" }],
];

describe("layoutZip: the same bytes as zipStream with size and crc32 declared", () => {
  for (const [label, options] of configs) {
    it(label, async () => {
      const ms = members();
      const layout = layoutZip(entriesOf(ms, true), options);
      const streamed = await collect(zipStream(entriesOf(ms, false), options));
      const data = ms.map((m) => (m.entry?.method === "deflate" ? zlib.deflateRawSync(m.bytes, { level: 6 }) : m.bytes));
      const built = assemble(layout, data);
      expect(built.length).toBe(streamed.length);
      expect(built.equals(streamed)).toBe(true);
      expect(layout.size).toBe(predictZipSize(entriesOf(ms, true), options));
      expect(layout.zip64).toBe(options.zip64 === "always");
      expect(layout.entries.map((e) => e.name)).toEqual(ms.map((m) => m.name));
      // An independent reader accepts the assembled archive, CRCs included.
      const py = await pythonRead(built);
      expect(py.bad).toBeNull();
      expect(await unzipTest(built)).toMatch(/No errors/);
    });
  }

  it("directories, in-memory sources (CRC computed here) and renamed duplicates", async () => {
    const options: ZipOptions = { method: "store", duplicates: "rename", defaultMtime: mtime };
    const entries = (): ZipEntry[] => [
      { name: "d", type: "directory" },
      { name: "d/a.txt", source: "hello" },
      { name: "d/a.txt", source: new Uint8Array([1, 2, 3]) },
    ];
    const layout = layoutZip(entries(), options);
    expect(layout.entries.map((e) => e.name)).toEqual(["d/", "d/a.txt", "d/a (1).txt"]);
    expect(layout.entries[1]!.crc32).toBe(zlib.crc32("hello"));
    const built = assemble(layout, [new Uint8Array(0), Buffer.from("hello"), new Uint8Array([1, 2, 3])]);
    expect(built.equals(await collect(zipStream(entries(), options)))).toBe(true);
  });

  it("Zip64 by size, without any data: offsets past 4 GiB and the predictor agree", () => {
    const big = 5 * 2 ** 30;
    const entries: ZipEntry[] = [
      { name: "huge.bin", size: big, crc32: 0x12345678, mtime },
      { name: "after.bin", size: 10, crc32: 1, mtime },
    ];
    const layout = layoutZip(entries, { method: "store" });
    expect(layout.zip64).toBe(true);
    expect(layout.entries[0]!.zip64).toBe(true);
    expect(layout.entries[1]!.offset).toBe(layout.entries[0]!.dataOffset + big);
    expect(layout.entries[1]!.offset).toBeGreaterThan(2 ** 32);
    expect(layout.size).toBe(predictZipSize(entries, { method: "store" }));
    expect(() => layoutZip(entries, { method: "store", zip64: "never" })).toThrow(expect.objectContaining({ code: "ERR_ZIP64_REQUIRED" }));
  });

  it("names the entry whose size or CRC is missing (ERR_INVALID_ENTRY)", () => {
    const noSize: ZipEntry[] = [{ name: "ok", source: "x" }, { name: "stream.bin", source: () => [] }];
    expect(() => layoutZip(noSize, { method: "store" })).toThrow(expect.objectContaining({ code: "ERR_INVALID_ENTRY", entry: "stream.bin" }));
    const noCrc: ZipEntry[] = [{ name: "sized.bin", size: 3, source: () => [Buffer.from("abc")] }];
    expect(() => layoutZip(noCrc, { method: "store" })).toThrow(expect.objectContaining({ code: "ERR_INVALID_ENTRY", entry: "sized.bin" }));
    const noCompressed: ZipEntry[] = [{ name: "t.txt", size: 3, crc32: 1, method: "deflate", source: () => [] }];
    expect(() => layoutZip(noCompressed, {})).toThrow(expect.objectContaining({ code: "ERR_INVALID_ENTRY", entry: "t.txt" }));
  });
});

describe("localHeaderWithCrc32: a header laid out before its CRC was known", () => {
  it("equals the header laid out with the CRC, for stored members (Zip64 or not)", () => {
    for (const zip64 of ["auto", "always"] as const) {
      const data = randomBytes(5000);
      const real = layoutZip([{ name: "x.bin", size: data.length, crc32: zlib.crc32(data), mtime }], { method: "store", zip64 });
      const placeholder = layoutZip([{ name: "x.bin", size: data.length, crc32: 0, mtime }], { method: "store", zip64 });
      expect(placeholder.size).toBe(real.size);
      const before = Buffer.from(placeholder.entries[0]!.localHeader);
      const filled = localHeaderWithCrc32(placeholder.entries[0]!, zlib.crc32(data));
      expect(Buffer.from(filled).equals(Buffer.from(real.entries[0]!.localHeader))).toBe(true);
      // The layout itself is left as it was (the result is a copy).
      expect(Buffer.from(placeholder.entries[0]!.localHeader).equals(before)).toBe(true);
      expect(before.equals(Buffer.from(real.entries[0]!.localHeader))).toBe(false);
    }
  });

  it("refuses entries whose header takes no CRC (descriptor, AES)", () => {
    const text = Buffer.from("abc".repeat(100));
    const deflated = layoutZip([{ name: "t", size: text.length, crc32: zlib.crc32(text), compressedSize: zlib.deflateRawSync(text).length, method: "deflate", mtime }]);
    expect(() => localHeaderWithCrc32(deflated.entries[0]!, 1)).toThrow(expect.objectContaining({ code: "ERR_INVALID_ENTRY" }));
    const aes = layoutZip([{ name: "s", size: 3, crc32: 1, mtime }], { method: "store", password: "pw" });
    expect(() => localHeaderWithCrc32(aes.entries[0]!, 1)).toThrow(expect.objectContaining({ code: "ERR_INVALID_ENTRY" }));
  });
});
