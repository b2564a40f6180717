import { describe, expect, it } from "vitest";
import {
  centralDirectoryHeader,
  dataDescriptor,
  dosDateTime,
  endOfCentralDirectory,
  extendedTimestampExtra,
  localFileHeader,
  unixTime32,
  zip64EndOfCentralDirectory,
  zip64EndOfCentralDirectoryLocator,
  zip64ExtraCentral,
  zip64ExtraLocal,
} from "../src/records.js";
import { hex } from "./helpers.js";

// Expected bytes are written out by hand from APPNOTE 6.3.10 (little-endian fields), not captured
// from the implementation.
const h = (s: string): string => s.replace(/\s+/g, "");

describe("record builders (golden hex)", () => {
  it("local file header (APPNOTE 4.3.7)", () => {
    const b = localFileHeader({
      versionNeeded: 20,
      flags: 0x0808,
      method: 8,
      dosTime: 0x1234,
      dosDate: 0x5678,
      crc32: 0,
      compressedSize: 0,
      uncompressedSize: 0,
      name: new Uint8Array([0x61]),
      extra: new Uint8Array([0xaa, 0xbb]),
    });
    expect(hex(b)).toBe(h("504b0304 1400 0808 0800 3412 7856 00000000 00000000 00000000 0100 0200 61 aabb"));
  });

  it("data descriptor, 32- and 64-bit (APPNOTE 4.3.9)", () => {
    expect(hex(dataDescriptor(0xdeadbeef, 5, 7, false))).toBe(h("504b0708 efbeadde 05000000 07000000"));
    expect(hex(dataDescriptor(0xdeadbeef, 0x100000005, 7, true))).toBe(
      h("504b0708 efbeadde 0500000001000000 0700000000000000"),
    );
  });

  it("central directory header (APPNOTE 4.3.12)", () => {
    const b = centralDirectoryHeader({
      versionMadeBy: 0x033f,
      versionNeeded: 20,
      flags: 0x0800,
      method: 0,
      dosTime: 0,
      dosDate: 0x21,
      crc32: 0x11223344,
      compressedSize: 3,
      uncompressedSize: 3,
      localHeaderOffset: 0x10,
      internalAttributes: 0,
      externalAttributes: 0x81a40000,
      name: Buffer.from("ab"),
      extra: new Uint8Array(0),
      comment: Buffer.from("c"),
    });
    expect(hex(b)).toBe(
      h("504b0102 3f03 1400 0008 0000 0000 2100 44332211 03000000 03000000 0200 0000 0100 0000 0000 0000a481 10000000 6162 63"),
    );
  });

  it("Zip64 extra field, local and central variants (APPNOTE 4.5.3)", () => {
    expect(hex(zip64ExtraLocal(0x100000000, 2))).toBe(h("0100 1000 0000000001000000 0200000000000000"));
    expect(hex(zip64ExtraLocal(0, 0))).toBe(h("0100 1000 0000000000000000 0000000000000000"));
    expect(hex(zip64ExtraCentral({ localHeaderOffset: 0x123456789 }))).toBe(h("0100 0800 8967452301000000"));
    expect(hex(zip64ExtraCentral({ uncompressedSize: 1, compressedSize: 2, localHeaderOffset: 3 }))).toBe(
      h("0100 1800 0100000000000000 0200000000000000 0300000000000000"),
    );
  });

  it("extended timestamp 0x5455", () => {
    expect(hex(extendedTimestampExtra(0x5f5e1000))).toBe(h("5554 0500 01 00105e5f"));
    expect(hex(extendedTimestampExtra(-1))).toBe(h("5554 0500 01 ffffffff"));
  });

  it("Zip64 end of central directory record and locator (APPNOTE 4.3.14, 4.3.15)", () => {
    expect(hex(zip64EndOfCentralDirectory(3, 0x40, 0x100))).toBe(
      h(
        "504b0606 2c00000000000000 3f03 2d00 00000000 00000000 0300000000000000 0300000000000000 4000000000000000 0001000000000000",
      ),
    );
    expect(hex(zip64EndOfCentralDirectoryLocator(0x140))).toBe(h("504b0607 00000000 4001000000000000 01000000"));
  });

  it("end of central directory (APPNOTE 4.3.16)", () => {
    expect(hex(endOfCentralDirectory(3, 0x40, 0x100, Buffer.from("hi")))).toBe(
      h("504b0506 0000 0000 0300 0300 40000000 00010000 0200 6869"),
    );
  });

  it("rejects values that do not fit their field", () => {
    expect(() => dataDescriptor(0, 0x100000000, 0, false)).toThrow(RangeError);
    expect(() => endOfCentralDirectory(0x10000, 0, 0, new Uint8Array(0))).toThrow(RangeError);
  });
});

describe("dates", () => {
  it("DOS date/time in UTC (APPNOTE 4.4.6)", () => {
    expect(dosDateTime(new Date("2020-06-15T13:45:30Z"))).toEqual({ time: 0x6daf, date: 0x50cf });
    // odd seconds round down (2-second resolution)
    expect(dosDateTime(new Date("2020-06-15T13:45:31Z"))).toEqual({ time: 0x6daf, date: 0x50cf });
  });
  it("clamps to 1980-01-01 .. 2107-12-31 23:59:58", () => {
    expect(dosDateTime(new Date("1970-01-01T00:00:00Z"))).toEqual({ time: 0, date: 0x21 });
    expect(dosDateTime(new Date("1979-12-31T23:59:59Z"))).toEqual({ time: 0, date: 0x21 });
    expect(dosDateTime(new Date("2200-01-01T00:00:00Z"))).toEqual({ time: 0xbf7d, date: 0xff9f });
    expect(dosDateTime(new Date("2107-12-31T23:59:58Z"))).toEqual({ time: 0xbf7d, date: 0xff9f });
  });
  it("unix time for the extended timestamp: 1970-01-01..2038-01-19T03:14:07Z, else none (no clamping)", () => {
    expect(unixTime32(new Date("2020-01-01T00:00:00Z"))).toBe(1577836800);
    expect(unixTime32(new Date("1970-01-01T00:00:00Z"))).toBe(0);
    expect(unixTime32(new Date("2038-01-19T03:14:07.999Z"))).toBe(0x7fffffff);
    expect(unixTime32(new Date("2038-01-19T03:14:08Z"))).toBeUndefined();
    expect(unixTime32(new Date("2100-01-01T00:00:00Z"))).toBeUndefined();
    expect(unixTime32(new Date("1969-12-31T23:59:59Z"))).toBeUndefined();
    expect(unixTime32(new Date("1900-01-01T00:00:00Z"))).toBeUndefined();
  });
});
