// Choices that cost compatibility with readers in the wild (issue 13): Zip64 fields in the
// central directory only where a value needs them (APPNOTE 4.5.3), and the extended timestamp
// (0x5455) only where the time fits the range every reader agrees on.
import { describe, expect, it } from "vitest";
import { predictZipSize, zipStream, type ZipEntry, type ZipOptions } from "../src/index.js";
import { buildCentralHeader, centralHeaderLength, layoutEntry, normalizeEntry, resolveOptions } from "../src/plan.js";
import { MAX_UINT32 } from "../src/records.js";
import { collect, parseZip, pythonRead, unzipTest } from "./helpers.js";
// Readers that prefer the extended timestamp (7-Zip, libarchive, Commons Compress) are checked in
// test/interop (core.test.ts): a 2040 time shows as 2040 there, not 2038-01-19.

const fixedRandom = (n: number): Uint8Array => new Uint8Array(n).fill(7);

/** The extra fields of the local header at `offset`, by header ID. */
function localExtras(zip: Buffer, offset: number): Map<number, Buffer> {
  const nameLen = zip.readUInt16LE(offset + 26);
  const extraLen = zip.readUInt16LE(offset + 28);
  const out = new Map<number, Buffer>();
  for (let p = offset + 30 + nameLen; p < offset + 30 + nameLen + extraLen; ) {
    const id = zip.readUInt16LE(p);
    const len = zip.readUInt16LE(p + 2);
    out.set(id, zip.subarray(p + 4, p + 4 + len));
    p += 4 + len;
  }
  return out;
}

/** Offsets of the central directory headers, in order (small archives: no Zip64 end records needed). */
function centralOffsets(zip: Buffer): number[] {
  const eocd = zip.lastIndexOf(Buffer.from([0x50, 0x4b, 0x05, 0x06]));
  const count = zip.readUInt16LE(eocd + 10);
  let p = zip.readUInt32LE(eocd + 16);
  const out: number[] = [];
  for (let i = 0; i < count; i++) {
    out.push(p);
    p += 46 + zip.readUInt16LE(p + 28) + zip.readUInt16LE(p + 30) + zip.readUInt16LE(p + 32);
  }
  return out;
}

const text = Buffer.from("streamed without a declared size ".repeat(400));
const stream = (): (() => Buffer[]) => () => [text.subarray(0, 5000), text.subarray(5000)];

describe("Zip64 in the central directory only where a value needs it (zip64: auto)", () => {
  const entries = (): ZipEntry[] => [
    { name: "store-unknown", source: stream(), method: "store" },
    { name: "deflate-unknown", source: stream(), method: "deflate" },
    { name: "aes-unknown", source: stream(), method: "deflate", password: "pw" },
    { name: "known", source: text, method: "store" },
  ];

  it("small entries of unknown size: 32-bit sizes in the central header, Zip64 kept in the local header and descriptor", async () => {
    const zip = await collect(zipStream(entries(), { randomBytes: fixedRandom }));
    const central = parseZip(zip).entries;
    const raw = centralOffsets(zip);
    for (let i = 0; i < 3; i++) {
      const c = central[i];
      // Central header: no Zip64 extra, real sizes in the 32-bit fields (not 0xFFFFFFFF).
      expect(c.extra.has(0x0001), c.name).toBe(false);
      expect(zip.readUInt32LE(raw[i] + 20), c.name).toBe(c.csize);
      expect(zip.readUInt32LE(raw[i] + 24), c.name).toBe(text.length);
      expect(c.csize, c.name).toBeLessThan(MAX_UINT32);
      expect(c.versionNeeded, c.name).toBeGreaterThanOrEqual(45);
      // Local header: the Zip64 extra (sizes deferred, 0) and 0xFFFFFFFF in the 32-bit slots.
      const local = localExtras(zip, c.offset);
      expect(local.get(0x0001)?.length, c.name).toBe(16);
      expect(zip.readUInt32LE(c.offset + 18), c.name).toBe(MAX_UINT32);
      // The 64-bit data descriptor (24 bytes with signature) ends where the next entry begins.
      const next = i + 1 < central.length ? central[i + 1].offset : zip.readUInt32LE(zip.lastIndexOf(Buffer.from([0x50, 0x4b, 0x05, 0x06])) + 16);
      expect(zip.readUInt32LE(next - 24), c.name).toBe(0x08074b50);
      expect(Number(zip.readBigUInt64LE(next - 16)), c.name).toBe(c.csize);
      expect(Number(zip.readBigUInt64LE(next - 8)), c.name).toBe(text.length);
    }
    expect(central[3].extra.has(0x0001)).toBe(false);
    const unencrypted = await collect(zipStream(entries().filter((e) => e.password === undefined)));
    expect(await unzipTest(unencrypted)).toMatch(/No errors detected/);
    const py = await pythonRead(unencrypted);
    expect(py.bad).toBeNull();
  });

  it('zip64: "always" is unchanged: both sizes and the offset in every central Zip64 extra', async () => {
    const zip = await collect(zipStream([...entries(), { name: "d/", type: "directory" }], { zip64: "always", randomBytes: fixedRandom }));
    const raw = centralOffsets(zip);
    parseZip(zip).entries.forEach((c, i) => {
      expect(c.extra.get(0x0001)?.length, c.name).toBe(24);
      expect(zip.readUInt32LE(raw[i] + 20), c.name).toBe(MAX_UINT32);
      expect(zip.readUInt32LE(raw[i] + 24), c.name).toBe(MAX_UINT32);
      expect(zip.readUInt32LE(raw[i] + 42), c.name).toBe(MAX_UINT32);
    });
  });

  it("centralHeaderLength matches the record built, for every combination of sizes and offset around 4 GiB", () => {
    const opts = resolveOptions({ method: "store" });
    const values = [0, 12_345, MAX_UINT32 - 1, MAX_UINT32, 2 ** 33];
    for (const mode of ["auto", "always", "never"] as const) {
      for (const size of values) {
        for (const dataSize of values) {
          for (const offset of values) {
            if (mode === "never" && (size >= MAX_UINT32 || dataSize >= MAX_UINT32 || offset >= MAX_UINT32)) continue;
            const n = normalizeEntry({ name: "x", source: () => [], method: "store" }, opts);
            const l = layoutEntry(n, Buffer.from("x"), mode, undefined, undefined);
            const record = buildCentralHeader(l, 0, dataSize, size, offset, mode);
            expect(centralHeaderLength(l, offset, mode, size, dataSize), `${mode} ${size} ${dataSize} ${offset}`).toBe(record.length);
            // Each value is either in its 32-bit field or in the extra (0xFFFFFFFF in the field).
            const view = Buffer.from(record);
            const fits = (v: number): boolean => mode !== "always" && v < MAX_UINT32;
            expect(view.readUInt32LE(20)).toBe(fits(dataSize) ? dataSize : MAX_UINT32);
            expect(view.readUInt32LE(24)).toBe(fits(size) ? size : MAX_UINT32);
            expect(view.readUInt32LE(42)).toBe(fits(offset) ? offset : MAX_UINT32);
          }
        }
      }
    }
  });
});

describe("extended timestamp (0x5455) only for 1970-01-01..2038-01-19T03:14:07Z", () => {
  const cases: [string, boolean][] = [
    ["1960-06-01T10:00:01Z", false],
    ["1969-12-31T23:59:59Z", false],
    ["1970-01-01T00:00:00Z", true],
    ["2024-03-05T06:07:09Z", true],
    ["2038-01-19T03:14:07Z", true],
    ["2038-01-19T03:14:08Z", false],
    ["2040-06-01T10:00:01Z", false],
  ];

  it("is in both headers or in neither, and predictZipSize counts it", async () => {
    for (const options of [{ method: "store" }, { method: "store", zip64: "always" }, { method: "store", password: "pw", randomBytes: fixedRandom }] as ZipOptions[]) {
      const entries = cases.map(([iso], i): ZipEntry => ({ name: `f${i}`, source: `data ${i}`, mtime: new Date(iso) }));
      const zip = await collect(zipStream(entries, options));
      expect(predictZipSize(entries, options), JSON.stringify(options)).toBe(zip.length);
      const central = parseZip(zip).entries;
      cases.forEach(([iso, present], i) => {
        const c = central[i];
        expect(c.extra.has(0x5455), `${iso} central`).toBe(present);
        expect(localExtras(zip, c.offset).has(0x5455), `${iso} local`).toBe(present);
        if (present) expect(c.extra.get(0x5455)!.readUInt32LE(1)).toBe(Math.floor(Date.parse(iso) / 1000));
      });
    }
  });
});
