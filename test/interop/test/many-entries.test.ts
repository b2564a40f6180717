// 65,534 / 65,535 / 65,536 members: around the 16-bit entry count of the end record, where
// Zip64 end records become necessary (APPNOTE 4.4.21/4.4.22: 0xFFFF means "see Zip64").
import { join } from "node:path";
import { crc32 } from "node:zlib";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { predictZipSize, type ZipEntry } from "@zipstream/core";
import { ALL_READERS, readWith, verifyZip, type ExpectedEntry } from "../src/index.js";
import { tempDir, writeArchive } from "./helpers.js";

let dir: string;
let cleanup: () => Promise<void>;
beforeAll(async () => {
  ({ dir, cleanup } = await tempDir("many"));
});
afterAll(async () => {
  await cleanup();
});

const MTIME = new Date("2022-02-02T02:02:02Z");

function* tiny(count: number): Generator<ZipEntry> {
  for (let i = 0; i < count; i++) {
    const data = Buffer.from(`entry ${i}\n`);
    // Spread over directories so names are realistic; a few deflated to mix methods.
    yield { name: `d${i % 64}/f${i}.txt`, source: data, size: data.length, crc32: crc32(data), method: i % 1000 === 0 ? "deflate" : "store", mtime: MTIME };
  }
}

function expectedFor(count: number): ExpectedEntry[] {
  return Array.from({ length: count }, (_, i) => ({ name: `d${i % 64}/f${i}.txt`, data: Buffer.from(`entry ${i}\n`) }));
}

describe.each([65_534, 65_535, 65_536])("%i entries", (count) => {
  it("every reader sees every name and checks every CRC", async () => {
    const path = join(dir, `many-${count}.zip`);
    const size = await writeArchive(path, tiny(count), { method: "store" });
    expect(size).toBeGreaterThan(count * 30);
    // deep: false: listing (all names and sizes compared) and integrity with every reader; the
    // in-stream readers hash every member, the extracting ones a sample.
    const results = await verifyZip(path, expectedFor(count), { deep: false });
    expect(results.map((r) => r.reader)).toEqual(ALL_READERS);
    for (const r of results) expect(r.entries.length, r.reader).toBe(count);
    // A sample of contents, spread over the whole central directory, read by a seeking reader.
    const r = await readWith("python", path, { deep: false, hash: [`d0/f0.txt`, `d${(count - 1) % 64}/f${count - 1}.txt`] });
    const last = r.entries.find((e) => e.name === `d${(count - 1) % 64}/f${count - 1}.txt`);
    expect(last?.size).toBe(Buffer.from(`entry ${count - 1}\n`).length);
  }, 600_000);
});

it("predictZipSize matches a store-only archive of 65,536 entries", async () => {
  const entries = (): ZipEntry[] => [...tiny(65_536)].map((e) => ({ ...e, method: "store" as const }));
  const predicted = predictZipSize(entries(), { method: "store" });
  const path = join(dir, "many-predicted.zip");
  const size = await writeArchive(path, entries(), { method: "store" });
  expect(predicted).toBe(size);
  const r = await readWith("7z", path, { deep: false });
  expect(r.entries.length).toBe(65_536);
}, 600_000);
