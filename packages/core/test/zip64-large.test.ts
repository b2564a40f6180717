import { describe, expect, it } from "vitest";
import { predictZipSize, zipStream, type ZipEntry } from "../src/index.js";
import { parseZip } from "./helpers.js";

// Streams a little over 4 GiB through the encoder (store, zero bytes, no disk, no retained
// memory): only the tail of the output is kept and parsed.
const CHUNK = Buffer.alloc(4 << 20);
const BIG = 2 ** 32 + 5;

function* zeros(size: number): Generator<Uint8Array> {
  let left = size;
  while (left > 0) {
    const n = Math.min(left, CHUNK.length);
    left -= n;
    yield n === CHUNK.length ? CHUNK : CHUNK.subarray(0, n);
  }
}


describe("past 4 GiB (streamed, tail parsed)", () => {
  it("an entry over 4 GiB and an entry whose offset is past 4 GiB", async () => {
    const entries: ZipEntry[] = [
      { name: "big", size: BIG, source: () => zeros(BIG), method: "store" },
      { name: "after", source: "tail", method: "store" },
    ];
    let total = 0;
    let tail: Buffer[] = [];
    let tailStart = 0;
    for await (const c of zipStream(entries)) {
      const b = c as Buffer;
      if (b.length >= CHUNK.length / 2) {
        tail = [];
        tailStart = total + b.length;
      } else tail.push(b);
      total += b.length;
    }
    expect(total).toBe(predictZipSize(entries));
    const buf = Buffer.concat(tail);
    const parsed = parseZip(buf, tailStart);
    // the central directory starts past 4 GiB: Zip64 end records
    expect(parsed.zip64).toBe(true);
    const [big, after] = parsed.entries;
    expect([big.usize, big.csize, big.offset]).toEqual([BIG, BIG, 0]);
    expect(big.extra.get(0x0001)!.length).toBe(16); // both sizes, offset fits
    expect(big.versionNeeded).toBe(45);
    // (the CRC itself is checked by external readers in the interop suite; here: descriptor == central)
    const crc = big.crc;
    expect(crc).not.toBe(0);
    // 64-bit data descriptor right after the data (local header: 30 + 3 + 20 + 9 bytes)
    const d = 62 + BIG - tailStart;
    expect(buf.readUInt32LE(d)).toBe(0x08074b50);
    expect(buf.readUInt32LE(d + 4)).toBe(crc);
    expect(Number(buf.readBigUInt64LE(d + 8))).toBe(BIG);
    expect(Number(buf.readBigUInt64LE(d + 16))).toBe(BIG);
    // the second entry: small, no Zip64 sizes, its offset in the Zip64 extra
    expect(after.offset).toBe(62 + BIG + 24);
    expect(after.extra.get(0x0001)!.length).toBe(8);
    expect(after.versionNeeded).toBe(45);
    expect(buf.readUInt32LE(after.offset - tailStart)).toBe(0x04034b50);
    expect(buf.subarray(after.offset - tailStart + 30 + 5 + 9, after.offset - tailStart + 30 + 5 + 9 + 4).toString()).toBe("tail");
  });

  it('zip64 "never": an entry of unknown size fails as it reaches 4 GiB, before its descriptor', async () => {
    let total = 0;
    let lastChunks: Buffer[] = [];
    let error: any;
    try {
      for await (const c of zipStream([{ name: "grows", source: () => zeros(BIG), method: "store" }], { zip64: "never" })) {
        total += (c as Buffer).length;
        lastChunks = [...lastChunks.slice(-2), c as Buffer];
      }
    } catch (e) {
      error = e;
    }
    expect(error?.code).toBe("ERR_ZIP64_REQUIRED");
    expect(error.entry).toBe("grows");
    // header (30 + 5 + 9) + data below 0xFFFFFFFF, no descriptor, no end records
    expect(total).toBeLessThan(44 + 0xffffffff);
    expect(Buffer.concat(lastChunks).includes(Buffer.from([0x50, 0x4b, 0x07, 0x08]))).toBe(false);
  });
});
