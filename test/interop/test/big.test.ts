// Archives past the 32-bit limits, streamed to temporary files (never held in memory):
// one stored member over 4 GiB of unknown size, and members whose local headers start past 4 GiB;
// and one deflated member over 4 GiB of unknown size (its archive is small, so yauzl inflates it
// from memory). Every reader checks every CRC (deep: false); the small members are hashed; the
// big members' CRCs are compared with the CRC computed here as the bytes were generated.
// Each reader has a time limit (READER_TIMEOUT_MS): a hung reader fails the test with its name
// and step instead of blocking CI.
import { open, rm, stat } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { randomBytes } from "node:crypto";
import { crc32 } from "node:zlib";
import { afterAll, describe, expect, it } from "vitest";
import type { ZipEntry } from "@zipstream/core";
import { ALL_READERS, STREAM_READERS_WITHOUT_STORED_DESCRIPTORS, verifyZip, type ExpectedEntry, type ReaderName } from "../src/index.js";
import { writeArchive } from "./helpers.js";

const GiB = 1024 ** 3;
const files: string[] = [];
afterAll(async () => {
  for (const f of files) await rm(f, { force: true });
});

/**
 * The Unarchiver 1.10.1 cannot read a central Zip64 extra that lacks fields it does not need
 * (docs/output-structure.md), which every archive here has: it is left out of this file.
 */
const BIG_READERS: ReaderName[] = ALL_READERS.filter((r) => r !== "unar");
/** Stored members of unknown size need data descriptors; see core.test.ts WITHOUT_STREAMS. */
const READERS: ReaderName[] = BIG_READERS.filter((r) => !STREAM_READERS_WITHOUT_STORED_DESCRIPTORS.includes(r));

/**
 * Per reader and archive. The slowest readers (Python, yauzl, unzip) took under a minute per
 * 4 GiB member at load average 10-12 on the 2-core machine; 8 minutes leaves room for a slower
 * CI machine while a hang still fails well inside CI's budget.
 */
const READER_TIMEOUT_MS = 480_000;

/**
 * A fast source of `size` bytes: one 1 MiB block (random, or a compressible text pattern)
 * repeated, each repetition shifted by its index in its first bytes so that no two blocks are equal
 * (a reader or writer that duplicated or dropped a block would change the CRC). `state.crc` is the
 * CRC-32 of everything yielded so far.
 */
function pattern(size: number, compressible: boolean): { source: () => AsyncGenerator<Uint8Array>; state: { crc: number; bytes: number } } {
  const block = compressible ? Buffer.from("zipstream interop pattern 0123456789 ".repeat(30_000).slice(0, 1 << 20)) : randomBytes(1 << 20);
  const state = { crc: 0, bytes: 0 };
  return {
    state,
    source: async function* () {
      for (let i = 0; state.bytes < size; i++) {
        const n = Math.min(block.length, size - state.bytes);
        const b = Buffer.allocUnsafe(n);
        block.copy(b, 0, 0, n);
        b.writeUInt32LE(i, 0);
        state.crc = crc32(b, state.crc);
        state.bytes += n;
        yield b;
      }
    },
  };
}

async function tail(path: string, n: number): Promise<Buffer> {
  const { size } = await stat(path);
  const fh = await open(path, "r");
  try {
    const buf = Buffer.alloc(Math.min(n, size));
    await fh.read(buf, 0, buf.length, size - buf.length);
    return buf;
  } finally {
    await fh.close();
  }
}

describe("over 4 GiB", () => {
  it("a stored member over 4 GiB of unknown size, then members at offsets past 4 GiB", async () => {
    const path = join(tmpdir(), `zipstream-interop-big-${process.pid}.zip`);
    files.push(path);
    const bigSize = 4 * GiB + (1 << 20) + 123;
    const big = pattern(bigSize, false);
    const small = randomBytes(200_000);
    const text = Buffer.from("after the big one ".repeat(2_000));
    const entries: ZipEntry[] = [
      { name: "before.txt", source: "first member\n" },
      { name: "big-store.bin", source: big.source, method: "store" },
      { name: "after/known.bin", source: small, size: small.length, method: "store" },
      { name: "after/unknown.txt", source: async function* () { yield text; }, method: "deflate" },
      { name: "after/dir/", type: "directory" },
    ];
    const t0 = performance.now();
    const size = await writeArchive(path, entries);
    const writeMs = performance.now() - t0;
    expect(big.state.bytes).toBe(bigSize);
    expect(size).toBeGreaterThan(bigSize);
    // Zip64 end of central directory record and its locator (APPNOTE 4.3.14, 4.3.15).
    const end = await tail(path, 4096);
    expect(end.indexOf(Buffer.from([0x50, 0x4b, 0x06, 0x06]))).toBeGreaterThanOrEqual(0);
    expect(end.indexOf(Buffer.from([0x50, 0x4b, 0x06, 0x07]))).toBeGreaterThanOrEqual(0);
    const expected: ExpectedEntry[] = [
      { name: "before.txt", data: Buffer.from("first member\n") },
      { name: "big-store.bin", size: bigSize, crc32: big.state.crc >>> 0 },
      { name: "after/known.bin", data: small },
      { name: "after/unknown.txt", data: text },
      { name: "after/dir/", type: "directory" },
    ];
    const results = await verifyZip(path, expected, { deep: false, readers: READERS, timeoutMs: READER_TIMEOUT_MS });
    console.log(`big archive ${size} bytes written in ${Math.round(writeMs)} ms; readers: ${results.map((r) => `${r.reader} ${Math.round(r.ms)} ms`).join(", ")}`);
    for (const r of results) {
      // Each reader hashed at least the members it could sample (all of them for in-stream readers).
      const hashed = r.entries.filter((e) => e.sha256 !== undefined).map((e) => e.name);
      expect(hashed.length, r.reader).toBeGreaterThan(0);
    }
    await rm(path, { force: true });
  }, 1_800_000);

  it("a deflated member over 4 GiB of unknown size, then small members of known size", async () => {
    const path = join(tmpdir(), `zipstream-interop-big-deflate-${process.pid}.zip`);
    files.push(path);
    const bigSize = 4 * GiB + (1 << 20) + 7;
    const big = pattern(bigSize, true);
    const small = randomBytes(100_000);
    const text = Buffer.from("after the big deflated one ".repeat(1_000));
    const entries: ZipEntry[] = [
      { name: "big-deflate.txt", source: big.source, method: "deflate" },
      { name: "after/known.bin", source: small, size: small.length, method: "store" },
      // Known size: JDK 17's ZipInputStream misreads the Zip64 descriptor of a small member of
      // unknown size (core.test.ts WITHOUT_JAVA_STREAM); over 4 GiB it reads it correctly.
      { name: "after/text.txt", source: async function* () { yield text; }, size: text.length, method: "deflate" },
    ];
    const t0 = performance.now();
    const size = await writeArchive(path, entries);
    const writeMs = performance.now() - t0;
    expect(big.state.bytes).toBe(bigSize);
    // The pattern compresses ~300:1, so the archive stays small (a few MiB): the readers' cost is
    // inflating 4 GiB, and yauzl reads this archive from memory (the harness's buffer path).
    expect(size).toBeLessThan(64 * 1024 * 1024);
    // No Zip64 end records here (offsets, sizes and count all fit the classic end record); the
    // member's sizes live in its Zip64 extra field (APPNOTE 4.5.3), which every reader must honour
    // to report the size checked below.
    const expected: ExpectedEntry[] = [
      { name: "big-deflate.txt", size: bigSize, crc32: big.state.crc >>> 0 },
      { name: "after/known.bin", data: small },
      { name: "after/text.txt", data: text },
    ];
    // Every reader but unar, the streaming ones included: they read deflated members with data descriptors.
    const results = await verifyZip(path, expected, { deep: false, readers: BIG_READERS, timeoutMs: READER_TIMEOUT_MS });
    expect(results.map((r) => r.reader)).toEqual(BIG_READERS);
    console.log(`big deflated archive ${size} bytes written in ${Math.round(writeMs)} ms; readers: ${results.map((r) => `${r.reader} ${Math.round(r.ms)} ms`).join(", ")}`);
    for (const r of results) {
      // The member was seen at its full size (by readers that report sizes), past 32 bits.
      const b = r.entries.find((e) => e.name === "big-deflate.txt");
      expect(b, r.reader).toBeDefined();
      if (b?.size !== undefined) expect(b.size, r.reader).toBe(bigSize);
      expect(r.entries.filter((e) => e.sha256 !== undefined).length, r.reader).toBeGreaterThan(0);
    }
    await rm(path, { force: true });
  }, 1_800_000);
});
