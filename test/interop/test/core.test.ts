// Archives written by @zipstream/core, read back by every external reader, every byte compared.
import { join } from "node:path";
import { crc32 } from "node:zlib";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { predictZipSize, type ZipEntry, type ZipMethod, type ZipOptions } from "@zipstream/core";
import { ALL_READERS, STREAM_READERS_WITHOUT_STORED_DESCRIPTORS, readWith, verifyZip, type ExpectedEntry, type ReaderName } from "../src/index.js";
import { SOURCE_KINDS, sampleContents, sourceOf, tempDir, writeArchive } from "./helpers.js";

let dir: string;
let cleanup: () => Promise<void>;
beforeAll(async () => {
  ({ dir, cleanup } = await tempDir("core"));
});
afterAll(async () => {
  await cleanup();
});

const MTIME = new Date("2024-03-05T06:07:09Z"); // odd second: DOS time cannot hold it exactly

/**
 * Archives with entries whose CRC or size is unknown up front (data descriptors) are not given to
 * the JDK's streaming ZipInputStream, for two JDK limitations, not archive defects:
 * - it refuses stored entries with a data descriptor ("only DEFLATED entries can have EXT
 *   descriptor");
 * - JDK 17 reads a Zip64 data descriptor (8-byte sizes, APPNOTE 4.3.9.2), which the encoder
 *   writes for entries of unknown size, as the 4-byte form unless the entry is over 4 GiB
 *   (JDK-8303866, fixed in JDK 21), so it misparses them.
 * java.util.zip.ZipFile (central directory) reads every archive here.
 */
const WITHOUT_JAVA_STREAM: ReaderName[] = ALL_READERS.filter((r) => r !== "java-stream");
/**
 * Archives with stored entries of unknown size or CRC (stored data followed by a descriptor) are
 * also not given to Commons Compress's ZipArchiveInputStream, which refuses them by default (it
 * cannot find the end of stored data without a size). Commons' ZipFile reads them.
 */
const WITHOUT_STREAMS: ReaderName[] = ALL_READERS.filter((r) => !STREAM_READERS_WITHOUT_STORED_DESCRIPTORS.includes(r));

async function buildMatrix(method: ZipMethod, knownSize: boolean): Promise<{ entries: ZipEntry[]; expected: ExpectedEntry[] }> {
  const entries: ZipEntry[] = [];
  const expected: ExpectedEntry[] = [];
  for (const kind of SOURCE_KINDS) {
    for (const { label, data } of sampleContents()) {
      const { entry, bytes } = await sourceOf(kind, data, dir);
      const name = `${kind}/${label}.bin`;
      // Known sizes come with the CRC too, so no data descriptor is needed (APPNOTE 4.4.4 bit 3).
      entries.push({ name, ...entry, ...(knownSize ? { size: bytes.length, crc32: crc32(bytes) } : {}), mtime: MTIME });
      expected.push({ name, data: bytes, mtime: MTIME });
    }
  }
  return { entries, expected };
}

describe.each([
  { method: "store" as const, knownSize: true },
  { method: "store" as const, knownSize: false },
  { method: "deflate" as const, knownSize: true },
  { method: "deflate" as const, knownSize: false },
])("$method, sizes known: $knownSize, every source kind", ({ method, knownSize }) => {
  it("is read identically by every reader", async () => {
    const { entries, expected } = await buildMatrix(method, knownSize);
    const options: ZipOptions = { method };
    const predicted = predictZipSize(entries, options);
    const path = join(dir, `matrix-${method}-${knownSize}.zip`);
    const size = await writeArchive(path, entries, options);
    if (method === "store" && knownSize) expect(predicted).toBe(size);
    if (!knownSize) expect(predicted).toBeUndefined();
    const readers = knownSize ? ALL_READERS : method === "store" ? WITHOUT_STREAMS : WITHOUT_JAVA_STREAM;
    const results = await verifyZip(path, expected, { readers });
    expect(results).toHaveLength(readers.length);
  });
});

describe("entry kinds and metadata", () => {
  it("empty files, directories, symlinks, modes, comments, UTF-8 names", async () => {
    const hello = Buffer.from("hello\n");
    const names = ["café/crème brûlée.txt", "日本語/ファイル.txt", "emoji/🎉🚀.txt", "spaces and (parens) [x].txt"];
    const entries: ZipEntry[] = [
      { name: "dir", type: "directory", mode: 0o750, mtime: MTIME },
      { name: "dir/sub/", type: "directory", mtime: MTIME },
      { name: "dir/empty-store", source: new Uint8Array(0), method: "store", mtime: MTIME },
      { name: "dir/empty-deflate", source: new Uint8Array(0), method: "deflate", mtime: MTIME },
      { name: "dir/empty-stream", source: async function* () {}, mtime: MTIME },
      { name: "dir/exec.sh", source: "#!/bin/sh\necho hi\n", mode: 0o755, mtime: MTIME },
      { name: "dir/private", source: hello, mode: 0o600, mtime: MTIME, comment: "entry comment ✓" },
      { name: "dir/link", type: "symlink", source: "private", mtime: MTIME },
      { name: "dir/sub/uplink", type: "symlink", source: "../exec.sh", mtime: MTIME },
      ...names.map((name) => ({ name, source: name, mtime: MTIME })),
    ];
    const expected: ExpectedEntry[] = [
      { name: "dir/", type: "directory", mode: 0o750 },
      { name: "dir/sub/", type: "directory", mode: 0o755 },
      { name: "dir/empty-store", data: new Uint8Array(0), mtime: MTIME },
      { name: "dir/empty-deflate", data: new Uint8Array(0), mtime: MTIME },
      { name: "dir/empty-stream", data: new Uint8Array(0), mtime: MTIME },
      { name: "dir/exec.sh", data: Buffer.from("#!/bin/sh\necho hi\n"), mode: 0o755, mtime: MTIME },
      { name: "dir/private", data: hello, mode: 0o600, mtime: MTIME, comment: "entry comment ✓" },
      { name: "dir/link", type: "symlink", data: Buffer.from("private") },
      { name: "dir/sub/uplink", type: "symlink", data: Buffer.from("../exec.sh") },
      ...names.map((name) => ({ name, data: Buffer.from(name), mode: 0o644, mtime: MTIME })),
    ];
    const path = join(dir, "kinds.zip");
    const comment = "archive comment: ÆØÅ 中文 🎉";
    await writeArchive(path, entries, { comment });
    // Entries from strings/buffers of known size and from a factory of unknown size: see WITHOUT_JAVA_STREAM.
    await verifyZip(path, expected, { comment, readers: WITHOUT_JAVA_STREAM });
  });

  it("clamps dates outside the DOS range but keeps the true time in the extended timestamp", async () => {
    const old = new Date("1975-04-03T02:01:07Z"); // before 1980, the DOS epoch
    const recent = new Date("2023-11-14T22:13:21Z"); // odd second
    // Past 2038 the extended timestamp cannot hold the time: it is left out and every reader
    // shows the DOS date (2 s resolution). It used to be clamped to 2038-01-19, which readers
    // that prefer it (7-Zip, libarchive, Commons Compress, Info-ZIP, yauzl, the JDK) showed.
    const future = new Date("2040-06-01T10:00:01Z");
    // Before 1970: left out too. Written as a negative count, 7-Zip and libarchive read it
    // unsigned and showed 2096; now every reader shows the DOS date, clamped to 1980-01-01.
    const ancient = new Date("1960-06-01T10:00:01Z");
    const entries: ZipEntry[] = [
      { name: "old.txt", source: "old", mtime: old },
      { name: "recent.txt", source: "recent", mtime: recent },
      { name: "future.txt", source: "future", mtime: future },
      { name: "ancient.txt", source: "ancient", mtime: ancient },
    ];
    const expected: ExpectedEntry[] = [
      { name: "old.txt", data: Buffer.from("old"), mtime: old },
      { name: "recent.txt", data: Buffer.from("recent"), mtime: recent },
      { name: "future.txt", data: Buffer.from("future"), mtime: future },
      { name: "ancient.txt", data: Buffer.from("ancient"), mtime: new Date("1980-01-01T00:00:00Z") },
    ];
    const path = join(dir, "dates.zip");
    await writeArchive(path, entries);
    await verifyZip(path, expected);
    // Exact to the second (not within the 2 s tolerance of DOS time): Python reads the
    // extended timestamp field (APPNOTE 4.5.x, Info-ZIP 0x5455); bsdtar and unzip restore it on disk.
    for (const reader of ["python", "bsdtar", "unzip", "yauzl"] as const) {
      const r = await readWith(reader, path);
      const seen = new Map(r.entries.map((e) => [e.name, e.mtime?.getTime()]));
      expect(seen.get("old.txt"), reader).toBe(old.getTime());
      expect(seen.get("recent.txt"), reader).toBe(recent.getTime());
    }
  });

  it("forced Zip64 on a small archive (zip64: always), store and deflate, known and unknown sizes", async () => {
    const data = Buffer.from("zip64 everywhere ".repeat(500));
    const entries: ZipEntry[] = [
      { name: "a-store-known", source: data, method: "store", size: data.length },
      { name: "b-store-unknown", source: async function* () { yield data; }, method: "store" },
      { name: "c-deflate-known", source: data, method: "deflate", size: data.length },
      { name: "d-deflate-unknown", source: async function* () { yield data; }, method: "deflate" },
      { name: "e-empty", source: new Uint8Array(0), size: 0 },
      { name: "f-dir/", type: "directory" },
    ];
    const expected: ExpectedEntry[] = [
      ...["a-store-known", "b-store-unknown", "c-deflate-known", "d-deflate-unknown"].map((name) => ({ name, data })),
      { name: "e-empty", data: new Uint8Array(0) },
      { name: "f-dir/", type: "directory" as const },
    ];
    const path = join(dir, "zip64-always.zip");
    const size = await writeArchive(path, entries, { zip64: "always", comment: "forced" });
    // Zip64 end of central directory record and locator are present (APPNOTE 4.3.14, 4.3.15).
    const { readFile } = await import("node:fs/promises");
    const buf = await readFile(path);
    expect(buf.indexOf(Buffer.from([0x50, 0x4b, 0x06, 0x06]))).toBeGreaterThan(0);
    expect(buf.indexOf(Buffer.from([0x50, 0x4b, 0x06, 0x07]))).toBeGreaterThan(0);
    expect(size).toBe(buf.length);
    // The Unarchiver 1.10.1 stops after the first entry of a forced-Zip64 archive: a known limit,
    // see docs/output-structure.md.
    await verifyZip(path, expected, { readers: WITHOUT_STREAMS.filter((r) => r !== "unar"), comment: "forced" });
  });

  it("predictZipSize equals the written size for known sizes, store and zip64 always", async () => {
    const a = Buffer.from("known size ".repeat(1000));
    const mk = (): ZipEntry[] => [
      { name: "x/", type: "directory" },
      { name: "x/a", source: a, size: a.length, method: "store", comment: "c" },
      { name: "x/é", source: Buffer.alloc(0), size: 0, method: "store" },
      { name: "x/l", type: "symlink", source: "a" },
    ];
    for (const options of [{ method: "store" }, { method: "store", zip64: "always", comment: "z" }] as ZipOptions[]) {
      const predicted = predictZipSize(mk(), options);
      const path = join(dir, `predict-${options.zip64 ?? "auto"}.zip`);
      const size = await writeArchive(path, mk(), options);
      expect(predicted).toBe(size);
      // Forced Zip64: not for The Unarchiver 1.10.1 (see the test above).
      const readers = options.zip64 === "always" ? ALL_READERS.filter((r) => r !== "unar") : ALL_READERS;
      await verifyZip(path, [
        { name: "x/", type: "directory" },
        { name: "x/a", data: a, comment: "c" },
        { name: "x/é", data: Buffer.alloc(0) },
        { name: "x/l", type: "symlink", data: Buffer.from("a") },
      ], { readers, ...(options.comment ? { comment: options.comment } : {}) });
    }
  });
});
