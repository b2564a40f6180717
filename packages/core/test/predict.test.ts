import { randomBytes } from "node:crypto";
import { deflateRawSync } from "node:zlib";
import { describe, expect, it } from "vitest";
import { predictZipSize, zipStream, type ZipEntry, type ZipOptions } from "../src/index.js";
import { entryNeedsZip64, endNeedsZip64 } from "../src/plan.js";
import { collect, parseZip, pythonRead } from "./helpers.js";

const fixedRandom = (n: number): Uint8Array => new Uint8Array(n).fill(7);
const mtime = new Date("2024-01-02T03:04:05Z");

function mixed(): ZipEntry[] {
  const text = Buffer.from("hello zip\n".repeat(500));
  const rnd = randomBytes(70_000);
  return [
    { name: "a.txt", source: "hello", mtime },
    { name: "empty.txt", source: "", mtime },
    { name: "dir", type: "directory", mtime },
    { name: "dir/ünïcødé €.bin", source: rnd, comment: "entry comment ✓", mtime },
    { name: "gen.bin", size: text.length, source: () => [text.subarray(0, 100), text.subarray(100)], mtime },
    { name: "gen-crc.bin", size: 3, crc32: 0x352441c2, source: async function* () { yield Buffer.from("abc"); }, mtime },
    { name: "link", type: "symlink", source: "a.txt", mtime },
    { name: "deflated.txt", method: "deflate", size: text.length, compressedSize: deflateRawSync(text).length, source: text, mtime },
  ];
}

const configs: [string, ZipOptions][] = [
  ["store auto", { method: "store" }],
  ["store always", { method: "store", zip64: "always" }],
  ["store never", { method: "store", zip64: "never" }],
  ["store + comment", { method: "store", comment: "archive comment ✓" }],
  ["rename duplicates", { method: "store", duplicates: "rename" }],
  ["encrypted", { method: "store", password: "pw", randomBytes: fixedRandom }],
  ["encrypted always", { method: "store", password: "pw", zip64: "always", randomBytes: fixedRandom }],
];

describe("predictZipSize == actual output length", () => {
  for (const [label, options] of configs) {
    it(label, async () => {
      let entries = mixed();
      if (options.duplicates === "rename") entries = [...entries, ...mixed().filter((e) => e.type !== "symlink")];
      const predicted = predictZipSize(entries, options);
      const zip = await collect(zipStream(entries, options));
      expect(predicted).toBe(zip.length);
      const parsed = parseZip(zip);
      expect(parsed.count).toBe(entries.length);
      if (options.password === undefined && (options.zip64 === "always" || options.duplicates === "rename")) {
        const py = await pythonRead(zip);
        expect(py.bad).toBeNull();
        expect(py.entries.map((e) => e.name)).toEqual(parsed.entries.map((e) => e.name));
      }
    });
  }

  it("deflate with a matching compressedSize (level 6 single block)", async () => {
    const data = Buffer.from("abcabcabd".repeat(10_000));
    const entries: ZipEntry[] = [{ name: "x", method: "deflate", size: data.length, compressedSize: deflateRawSync(data).length, source: data }];
    expect(predictZipSize(entries)).toBe((await collect(zipStream(entries))).length);
  });

  it("is undefined when a size is unknown", () => {
    expect(predictZipSize([{ name: "a", source: () => "x" }], { method: "store" })).toBeUndefined();
    expect(predictZipSize([{ name: "a", source: "abc" }], { method: "deflate" })).toBeUndefined();
    expect(predictZipSize([{ name: "a", path: "/etc/hostname" }], { method: "store" })).toBeUndefined();
    expect(predictZipSize([{ name: "a", path: "/etc/hostname", size: 3 }], { method: "store" })).toBeTypeOf("number");
  });

  it("applies the same name rules as the writer", () => {
    expect(() => predictZipSize([{ name: "../x", source: "" }])).toThrow(expect.objectContaining({ code: "ERR_INVALID_NAME" }));
    expect(() => predictZipSize([{ name: "x", source: "" }, { name: "x", source: "" }])).toThrow(
      expect.objectContaining({ code: "ERR_DUPLICATE_NAME" }),
    );
  });

  it("65,534 / 65,535 entries: Zip64 end records exactly from 65,535", async () => {
    for (const count of [65_534, 65_535]) {
      const entries = Array.from({ length: count }, (_, i): ZipEntry => ({ name: `f${i}`, source: "", mtime }));
      const zip = await collect(zipStream(entries, { method: "store" }));
      expect(predictZipSize(entries, { method: "store" })).toBe(zip.length);
      const parsed = parseZip(zip);
      expect(parsed.count).toBe(count);
      expect(parsed.zip64).toBe(count >= 65_535);
    }
  });

  it("sizes and offsets past 4 GiB (predictor only; streamed in the zip64 test)", () => {
    const big = 5 * 2 ** 30;
    const entries: ZipEntry[] = [
      { name: "big", size: big, source: () => [] },
      { name: "after", size: 10, source: () => [] },
    ];
    const p = predictZipSize(entries, { method: "store" })!;
    // big: header 30+3+20(zip64)+9, data, descriptor 24; after: header 30+5+9, data 10, descriptor 16 (offset > 4 GiB)
    const local = 30 + 3 + 20 + 9 + big + 24 + (30 + 5 + 9 + 10 + 16);
    const central = 46 + 3 + 20 + 9 + (46 + 5 + 12 + 9);
    expect(p).toBe(local + central + 56 + 20 + 22);
    expect(() => predictZipSize(entries, { method: "store", zip64: "never" })).toThrow(expect.objectContaining({ code: "ERR_ZIP64_REQUIRED" }));
  });
});

describe("Zip64 predicate", () => {
  it("entries", () => {
    expect(entryNeedsZip64("auto", 100, 100)).toBe(false);
    expect(entryNeedsZip64("auto", 0xfffffffe, 0xfffffffe)).toBe(false);
    expect(entryNeedsZip64("auto", 0xffffffff, 0xffffffff)).toBe(true);
    expect(entryNeedsZip64("auto", 100, 0xffffffff)).toBe(true);
    expect(entryNeedsZip64("auto", undefined, undefined)).toBe(true);
    expect(entryNeedsZip64("always", 1, 1)).toBe(true);
    expect(entryNeedsZip64("never", undefined, undefined)).toBe(false);
  });
  it("end records", () => {
    expect(endNeedsZip64("auto", 65_534, 10, 10)).toBe(false);
    expect(endNeedsZip64("auto", 65_535, 10, 10)).toBe(true);
    expect(endNeedsZip64("auto", 1, 0xffffffff, 10)).toBe(true);
    expect(endNeedsZip64("auto", 1, 10, 0xffffffff)).toBe(true);
    expect(endNeedsZip64("always", 0, 0, 0)).toBe(true);
  });
});
