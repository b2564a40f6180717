/**
 * AES-256 (WinZip AE-2) interoperability: 7-Zip and bsdtar (libarchive) must extract every byte
 * with the right password and refuse a wrong one.
 *
 * Part 1 wraps the encryptor's output in a ZIP built by hand in this file, so the encryption is
 * checked against independent readers without depending on the writer. Part 2 goes through the
 * real writer, `zipStream` with `password`.
 */
import { spawn, spawnSync } from "node:child_process";
import { createHash } from "node:crypto";
import { createWriteStream } from "node:fs";
import { mkdir, mkdtemp, readFile, readdir, rm, stat, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Readable } from "node:stream";
import { pipeline } from "node:stream/promises";
import { crc32, deflateRawSync } from "node:zlib";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { zipStream, type ZipEntry, type ZipEntryInfo, type ZipOptions } from "@zipstream/core";
import { AES_OVERHEAD, aesExtraField, createAesEncryptor } from "../../../packages/core/src/aes/index.js";

const PASSWORD = "s3cret pässword ✓";
const WRONG = "s3cret password";

interface RunResult {
  status: number | null;
  stdout: string;
  stderr: string;
}

/**
 * Runs a reader with stdin on /dev/null, so a reader that prompts for another password after a
 * wrong one reads EOF; the timeout bounds a prompt that would go to a terminal instead.
 */
function run(cmd: string, args: string[]): RunResult {
  const r = spawnSync(cmd, args, {
    stdio: ["ignore", "pipe", "pipe"],
    timeout: 120_000,
    maxBuffer: 64 * 1024 * 1024,
    encoding: "utf8",
  });
  if (r.error) throw r.error;
  return { status: r.status, stdout: r.stdout, stderr: r.stderr };
}

function sevenZipExtract(zip: string, out: string, password: string, files: string[] = []): RunResult {
  return run("7z", ["x", "-y", `-p${password}`, `-o${out}`, zip, ...files]);
}

async function bsdtarExtract(zip: string, out: string, password: string): Promise<RunResult> {
  await mkdir(out, { recursive: true });
  return run("bsdtar", ["-x", "-f", zip, "-C", out, "--passphrase", password]);
}

/** Deterministic, incompressible-ish bytes. */
function pseudoRandom(n: number, seed: number): Uint8Array {
  const out = new Uint8Array(n);
  let x = seed >>> 0 || 1;
  for (let i = 0; i < n; i++) {
    x ^= x << 13;
    x >>>= 0;
    x ^= x >>> 17;
    x ^= x << 5;
    x >>>= 0;
    out[i] = x & 0xff;
  }
  return out;
}

/** Compressible text, so deflate really shrinks it. */
function text(n: number): Uint8Array {
  const line = "The quick brown fox jumps over the lazy dog 0123456789\n";
  return new TextEncoder().encode(line.repeat(Math.ceil(n / line.length)).slice(0, n));
}

// ---------------------------------------------------------------------------------------------
// Minimal hand builder: one AE-2 member per entry, sizes in the local header (flag bit 3 unset),
// no Zip64, no data descriptor.

interface HandEntry {
  name: string;
  data: Uint8Array;
  /** 0 store, 8 deflate: the method inside the encryption. */
  method: 0 | 8;
  password: string;
  /** Flip one byte of the stored (encrypted) payload after encryption. */
  tamper?: "ciphertext" | "mac";
}

const DOS_TIME = 0; // 00:00:00
const DOS_DATE = ((2024 - 1980) << 9) | (1 << 5) | 1; // 2024-01-01
const VERSION_AES = 51; // version needed to extract an AES member (WinZip AE spec: 5.1)

function u16(v: number): Uint8Array {
  const b = new Uint8Array(2);
  new DataView(b.buffer).setUint16(0, v, true);
  return b;
}
function u32(v: number): Uint8Array {
  const b = new Uint8Array(4);
  new DataView(b.buffer).setUint32(0, v, true);
  return b;
}

function encryptMember(e: HandEntry): Uint8Array {
  const payload = e.method === 8 ? new Uint8Array(deflateRawSync(e.data)) : e.data;
  const enc = createAesEncryptor(e.password);
  // Feed odd-sized chunks, as a stream would.
  const parts: Uint8Array[] = [enc.header];
  for (let off = 0; off < payload.length; off += 4_099) {
    parts.push(enc.update(payload.subarray(off, off + 4_099)));
  }
  parts.push(enc.final());
  const out = new Uint8Array(Buffer.concat(parts));
  expect(out.length).toBe(payload.length + AES_OVERHEAD);
  if (e.tamper === "ciphertext" && payload.length > 0) out[18] ^= 0x01;
  if (e.tamper === "mac") out[out.length - 1] ^= 0x01;
  return out;
}

function buildAe2Zip(entries: HandEntry[]): Uint8Array {
  const local: Uint8Array[] = [];
  const central: Uint8Array[] = [];
  let offset = 0;
  for (const e of entries) {
    const name = new TextEncoder().encode(e.name);
    const member = encryptMember(e);
    const extra = aesExtraField(e.method);
    // Local file header (APPNOTE 4.3.7). Flag bit 0: encrypted. CRC 0: AE-2 leaves it out.
    // Method 99 marks AES; the real method is in the 0x9901 extra field.
    const lfh = Buffer.concat([
      u32(0x04034b50), u16(VERSION_AES), u16(0x0001), u16(99), u16(DOS_TIME), u16(DOS_DATE),
      u32(0), u32(member.length), u32(e.data.length), u16(name.length), u16(extra.length),
      name, extra,
    ]);
    // Central directory header (APPNOTE 4.3.12); made by Unix (3), regular file 0644.
    const cdh = Buffer.concat([
      u32(0x02014b50), u16((3 << 8) | VERSION_AES), u16(VERSION_AES), u16(0x0001), u16(99),
      u16(DOS_TIME), u16(DOS_DATE), u32(0), u32(member.length), u32(e.data.length),
      u16(name.length), u16(extra.length), u16(0), u16(0), u16(0), u32((0o100644 << 16) >>> 0),
      u32(offset), name, extra,
    ]);
    local.push(lfh, member);
    central.push(cdh);
    offset += lfh.length + member.length;
  }
  const cd = Buffer.concat(central);
  // End of central directory record (APPNOTE 4.3.16).
  const eocd = Buffer.concat([
    u32(0x06054b50), u16(0), u16(0), u16(entries.length), u16(entries.length),
    u32(cd.length), u32(offset), u16(0),
  ]);
  return new Uint8Array(Buffer.concat([...local, cd, eocd]));
}

let work: string;
beforeAll(async () => {
  work = await mkdtemp(join(tmpdir(), "zipstream-aes-interop-"));
});
afterAll(async () => {
  if (work) await rm(work, { recursive: true, force: true });
});

let counter = 0;
async function scratch(): Promise<string> {
  const dir = join(work, String(counter++));
  await mkdir(dir, { recursive: true });
  return dir;
}

async function expectExtracted(dir: string, files: Record<string, Uint8Array>): Promise<void> {
  expect((await readdir(dir)).sort()).toEqual(Object.keys(files).sort());
  for (const [name, data] of Object.entries(files)) {
    const got = await readFile(join(dir, name));
    expect(got.length, name).toBe(data.length);
    expect(Buffer.compare(got, data), name).toBe(0);
  }
}

describe("AE-2 encryptor in a hand-built archive", () => {
  const files = {
    "stored.bin": pseudoRandom(200_003, 1),
    "deflated.txt": text(300_001),
    "empty-stored": new Uint8Array(0),
    "empty-deflated": new Uint8Array(0),
  };
  const entries: HandEntry[] = [
    { name: "stored.bin", data: files["stored.bin"], method: 0, password: PASSWORD },
    { name: "deflated.txt", data: files["deflated.txt"], method: 8, password: PASSWORD },
    { name: "empty-stored", data: files["empty-stored"], method: 0, password: PASSWORD },
    { name: "empty-deflated", data: files["empty-deflated"], method: 8, password: PASSWORD },
  ];
  let zip: string;
  beforeAll(async () => {
    zip = join(await scratch(), "hand.zip");
    await writeFile(zip, buildAe2Zip(entries));
  });

  it("7z lists the members as AES-256 with the real method", () => {
    const r = run("7z", ["l", "-slt", `-p${PASSWORD}`, zip]);
    expect(r.status, r.stderr).toBe(0);
    expect(r.stdout).toMatch(/Method = AES-256 Store/);
    expect(r.stdout).toMatch(/Method = AES-256 Deflate/);
    expect(r.stdout.match(/Encrypted = \+/g)?.length).toBe(4);
  });

  it("7z extracts every byte with the right password", async () => {
    const out = await scratch();
    const r = sevenZipExtract(zip, out, PASSWORD);
    expect(r.status, r.stdout + r.stderr).toBe(0);
    await expectExtracted(out, files);
  });

  it("bsdtar extracts every byte with the right password", async () => {
    const out = await scratch();
    const r = await bsdtarExtract(zip, out, PASSWORD);
    expect(r.status, r.stdout + r.stderr).toBe(0);
    await expectExtracted(out, files);
  });

  it("7z refuses a wrong password", async () => {
    const out = await scratch();
    const r = sevenZipExtract(zip, out, WRONG);
    expect(r.status).not.toBe(0);
    expect(r.stdout + r.stderr).toMatch(/wrong password/i);
  });

  it("bsdtar refuses a wrong password", async () => {
    const out = await scratch();
    const r = await bsdtarExtract(zip, out, WRONG);
    expect(r.status).not.toBe(0);
    expect(r.stderr).toMatch(/passphrase/i);
  });

  // The positive tests above only mean something if the readers check the authentication code:
  // a flipped ciphertext or MAC byte (right password) must be detected.
  for (const tamper of ["ciphertext", "mac"] as const) {
    it(`7z and bsdtar detect a flipped ${tamper} byte`, async () => {
      const bad = join(await scratch(), "bad.zip");
      await writeFile(bad, buildAe2Zip([{ ...entries[0], tamper }]));
      const r7 = sevenZipExtract(bad, await scratch(), PASSWORD);
      expect(r7.status).not.toBe(0);
      // 7-Zip reports a failed authentication code as a CRC error in the encrypted member.
      expect(r7.stdout + r7.stderr).toMatch(/CRC Failed in encrypted file/);
      const rb = await bsdtarExtract(bad, await scratch(), PASSWORD);
      expect(rb.status).not.toBe(0);
      expect(rb.stderr).toMatch(/Authentication code/i);
    });
  }
});

// ---------------------------------------------------------------------------------------------
// Part 2: the real writer.

async function writeZip(path: string, entries: ZipEntry[], options: ZipOptions): Promise<ZipEntryInfo[]> {
  const infos: ZipEntryInfo[] = [];
  await pipeline(zipStream(entries, { ...options, onEntry: (i) => infos.push(i) }), createWriteStream(path));
  return infos;
}

interface CentralRecord {
  name: string;
  flags: number;
  method: number;
  crc: number;
  compressedSize: number;
  size: number;
  /** Data of the 0x9901 extra field, when present. */
  aes?: Uint8Array;
}

/** Reads the central directory of a small archive (no Zip64 end records); independent of the writer's code. */
function readCentral(zip: Uint8Array): CentralRecord[] {
  const dv = new DataView(zip.buffer, zip.byteOffset, zip.length);
  let eocd = zip.length - 22;
  while (eocd >= 0 && dv.getUint32(eocd, true) !== 0x06054b50) eocd--;
  expect(eocd).toBeGreaterThanOrEqual(0);
  const count = dv.getUint16(eocd + 10, true);
  let p = dv.getUint32(eocd + 16, true);
  const out: CentralRecord[] = [];
  for (let i = 0; i < count; i++) {
    expect(dv.getUint32(p, true)).toBe(0x02014b50);
    const nameLen = dv.getUint16(p + 28, true);
    const extraLen = dv.getUint16(p + 30, true);
    const commentLen = dv.getUint16(p + 32, true);
    const rec: CentralRecord = {
      name: Buffer.from(zip.subarray(p + 46, p + 46 + nameLen)).toString("utf8"),
      flags: dv.getUint16(p + 8, true),
      method: dv.getUint16(p + 10, true),
      crc: dv.getUint32(p + 16, true),
      compressedSize: dv.getUint32(p + 20, true),
      size: dv.getUint32(p + 24, true),
    };
    // Walk the extra fields (APPNOTE 4.5.1: id, size, data).
    for (let q = p + 46 + nameLen; q < p + 46 + nameLen + extraLen; ) {
      const id = dv.getUint16(q, true);
      const len = dv.getUint16(q + 2, true);
      if (id === 0x9901) rec.aes = zip.subarray(q + 4, q + 4 + len);
      if (id === 0x0001) {
        // Zip64 extended information (APPNOTE 4.5.3): only the fields whose 32-bit value is
        // 0xFFFFFFFF are present, in the order uncompressed size, compressed size.
        let r = q + 4;
        if (rec.size === 0xffffffff) {
          rec.size = Number(dv.getBigUint64(r, true));
          r += 8;
        }
        if (rec.compressedSize === 0xffffffff) rec.compressedSize = Number(dv.getBigUint64(r, true));
      }
      q += 4 + len;
    }
    out.push(rec);
    p += 46 + nameLen + extraLen + commentLen;
  }
  return out;
}

/** A source that arrives in odd-sized chunks of unknown total size. */
function chunked(data: Uint8Array, size: number): Readable {
  const parts: Uint8Array[] = [];
  for (let off = 0; off < data.length; off += size) parts.push(data.subarray(off, off + size));
  return Readable.from(parts, { objectMode: false });
}

describe("zipStream with password: 7z and bsdtar", () => {
  const files: Record<string, Uint8Array> = {
    "stored.bin": pseudoRandom(300_007, 2),
    "deflated.txt": text(500_003),
    "streamed.bin": pseudoRandom(123_457, 3),
    "streamed-deflated.txt": text(77_777),
    "empty-stored": new Uint8Array(0),
    "empty-deflated": new Uint8Array(0),
    "plain.txt": text(1_001),
  };
  const entries = (): ZipEntry[] => [
    { name: "stored.bin", source: files["stored.bin"], method: "store" },
    { name: "deflated.txt", source: files["deflated.txt"], method: "deflate" },
    { name: "streamed.bin", source: chunked(files["streamed.bin"], 9_999), method: "store" },
    { name: "streamed-deflated.txt", source: () => chunked(files["streamed-deflated.txt"], 333), method: "deflate" },
    { name: "empty-stored", source: new Uint8Array(0), method: "store" },
    { name: "empty-deflated", source: "", method: "deflate" },
    { name: "plain.txt", source: files["plain.txt"], password: null },
  ];
  let zip: string;
  let infos: ZipEntryInfo[];
  beforeAll(async () => {
    zip = join(await scratch(), "archive-wide.zip");
    infos = await writeZip(zip, entries(), { password: PASSWORD });
  });

  it("headers say AE-2: method 99, CRC 0, 0x9901 with the real method, sizes + 28", async () => {
    const central = readCentral(await readFile(zip));
    expect(central.map((c) => c.name)).toEqual(Object.keys(files));
    for (const c of central) {
      const info = infos.find((i) => i.name === c.name)!;
      expect(c.size, c.name).toBe(files[c.name].length);
      expect(c.compressedSize, c.name).toBe(info.compressedSize);
      if (c.name === "plain.txt") {
        expect(c.flags & 1).toBe(0);
        expect(c.method).not.toBe(99);
        expect(c.aes).toBeUndefined();
        expect(c.crc).toBe(crc32(files[c.name]));
        expect(info.encrypted).toBe(false);
        continue;
      }
      expect(info.encrypted, c.name).toBe(true);
      expect(c.flags & 1, c.name).toBe(1);
      expect(c.method, c.name).toBe(99);
      expect(c.crc, c.name).toBe(0);
      const real = c.name.includes("deflated") ? 8 : 0;
      expect(Buffer.from(c.aes ?? []).toString("hex"), c.name).toBe(
        Buffer.from(aesExtraField(real).subarray(4)).toString("hex"),
      );
      if (real === 0) expect(c.compressedSize, c.name).toBe(files[c.name].length + AES_OVERHEAD);
      else expect(c.compressedSize, c.name).toBeGreaterThanOrEqual(AES_OVERHEAD + 2);
    }
  });

  it("7z extracts every byte", async () => {
    const out = await scratch();
    const r = sevenZipExtract(zip, out, PASSWORD);
    expect(r.status, r.stdout + r.stderr).toBe(0);
    await expectExtracted(out, files);
  });

  it("bsdtar extracts every byte", async () => {
    const out = await scratch();
    const r = await bsdtarExtract(zip, out, PASSWORD);
    expect(r.status, r.stdout + r.stderr).toBe(0);
    await expectExtracted(out, files);
  });

  it("a wrong password is refused by both (the plain entry still extracts)", async () => {
    const o7 = await scratch();
    const r7 = sevenZipExtract(zip, o7, WRONG);
    expect(r7.status).not.toBe(0);
    expect(r7.stdout + r7.stderr).toMatch(/wrong password/i);
    expect(Buffer.compare(await readFile(join(o7, "plain.txt")), files["plain.txt"])).toBe(0);
    const ob = await scratch();
    const rb = await bsdtarExtract(zip, ob, WRONG);
    expect(rb.status).not.toBe(0);
    expect(rb.stderr).toMatch(/passphrase/i);
  });

  it("per-entry passwords override the archive's, and null stores an entry in clear", async () => {
    const alpha = pseudoRandom(40_001, 4);
    const beta = text(60_001);
    const clear = text(999);
    const path = join(await scratch(), "per-entry.zip");
    // No archive-wide password: only the entries that ask for one are encrypted.
    await writeZip(
      path,
      [
        { name: "alpha.bin", source: alpha, method: "store", password: "alpha" },
        { name: "clear.txt", source: clear },
        { name: "beta.txt", source: beta, method: "deflate", password: "beta" },
      ],
      {},
    );
    const central = readCentral(await readFile(path));
    expect(central.map((c) => [c.name, c.method, c.flags & 1])).toEqual([
      ["alpha.bin", 99, 1],
      ["clear.txt", 8, 0],
      ["beta.txt", 99, 1],
    ]);

    const o1 = await scratch();
    const r1 = sevenZipExtract(path, o1, "alpha", ["alpha.bin", "clear.txt"]);
    expect(r1.status, r1.stdout + r1.stderr).toBe(0);
    await expectExtracted(o1, { "alpha.bin": alpha, "clear.txt": clear });
    const o2 = await scratch();
    const r2 = sevenZipExtract(path, o2, "beta", ["beta.txt"]);
    expect(r2.status, r2.stdout + r2.stderr).toBe(0);
    await expectExtracted(o2, { "beta.txt": beta });
    // beta.txt is not readable with alpha's password.
    const r3 = sevenZipExtract(path, await scratch(), "alpha", ["beta.txt"]);
    expect(r3.status).not.toBe(0);

    const o4 = await scratch();
    const r4 = run("bsdtar", ["-x", "-f", path, "-C", o4, "--passphrase", "beta", "beta.txt", "clear.txt"]);
    expect(r4.status, r4.stderr).toBe(0);
    await expectExtracted(o4, { "beta.txt": beta, "clear.txt": clear });

    // An archive-wide password with one entry overriding it.
    const path2 = join(await scratch(), "override.zip");
    await writeZip(
      path2,
      [
        { name: "wide.bin", source: alpha, method: "store" },
        { name: "own.txt", source: beta, password: "own" },
        { name: "clear.txt", source: clear, password: null },
      ],
      { password: PASSWORD },
    );
    const o5 = await scratch();
    const r5 = sevenZipExtract(path2, o5, PASSWORD, ["wide.bin", "clear.txt"]);
    expect(r5.status, r5.stdout + r5.stderr).toBe(0);
    await expectExtracted(o5, { "wide.bin": alpha, "clear.txt": clear });
    const o6 = await scratch();
    const r6 = await bsdtarExtract(path2, o6, "own");
    // wide.bin fails with "own"; own.txt and clear.txt extract.
    expect(r6.status).not.toBe(0);
    expect(Buffer.compare(await readFile(join(o6, "own.txt")), beta)).toBe(0);
    expect(Buffer.compare(await readFile(join(o6, "clear.txt")), clear)).toBe(0);
  });
});

// ---------------------------------------------------------------------------------------------
// LARGE: one stored AES entry over 4 GiB, so Zip64 is required. About 4.3 GB of AES-CTR and
// HMAC-SHA1 in the writer, the same again in 7-Zip, and 4.3 GB of temporary disk; the archive
// streams straight to a file (never held in memory) and is deleted afterwards. Measured on the
// shared 2-core dev machine: about 45 s of CPU in all (writer ~28 s, 7z t ~4 s, 7z x + SHA-256
// the rest) but 7.4 min of wall time under a load average of 20; expect ~1-2 min when quiet.
describe("zipStream with password: an entry over 4 GiB with Zip64 (LARGE, slow)", () => {
  const CHUNK = 1 << 20;
  const SIZE = 4 * 2 ** 30 + 3 * CHUNK + 12_345; // crosses 4 GiB and ends mid-chunk

  it("7z t accepts it and extracts the exact bytes", { timeout: 15 * 60_000 }, async () => {
    const dir = await scratch();
    const zip = join(dir, "big.zip");
    const base = pseudoRandom(CHUNK, 5);
    const expected = createHash("sha256");
    // Every chunk differs (its index is stamped in), so a misplaced or repeated chunk shows.
    async function* source(): AsyncGenerator<Uint8Array> {
      for (let off = 0, i = 0; off < SIZE; off += CHUNK, i++) {
        const chunk = Buffer.from(base.subarray(0, Math.min(CHUNK, SIZE - off)));
        chunk.writeUInt32LE(i, 0);
        expected.update(chunk);
        yield chunk;
      }
    }
    try {
      const infos = await writeZip(zip, [{ name: "big.bin", source: source, size: SIZE, method: "store" }], {
        password: PASSWORD,
      });
      expect(infos[0].zip64).toBe(true);
      expect(infos[0].encrypted).toBe(true);
      expect(infos[0].compressedSize).toBe(SIZE + AES_OVERHEAD);
      expect((await stat(zip)).size).toBeGreaterThan(SIZE + AES_OVERHEAD);

      const list = run("7z", ["l", "-slt", `-p${PASSWORD}`, zip]);
      expect(list.status, list.stderr).toBe(0);
      expect(list.stdout).toContain(`Size = ${SIZE}`);
      expect(list.stdout).toContain(`Packed Size = ${SIZE + AES_OVERHEAD}`);
      expect(list.stdout).toMatch(/Method = AES-256 Store/);

      // 7z t checks the authentication code over all 4 GiB of ciphertext.
      const t = run("7z", ["t", `-p${PASSWORD}`, zip]);
      expect(t.status, t.stdout + t.stderr).toBe(0);
      expect(t.stdout).toMatch(/Everything is Ok/);

      // And the plaintext itself, hashed as 7z streams it out.
      const child = spawn("7z", ["x", "-so", `-p${PASSWORD}`, zip], { stdio: ["ignore", "pipe", "pipe"] });
      const got = createHash("sha256");
      let stderr = "";
      child.stderr.on("data", (d: Buffer) => (stderr += d.toString()));
      const code = new Promise<number | null>((resolve) => child.on("close", resolve));
      for await (const d of child.stdout) got.update(d as Buffer);
      expect(await code, stderr).toBe(0);
      expect(got.digest("hex")).toBe(expected.digest("hex"));
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });
});
