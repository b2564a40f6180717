import { execFile } from "node:child_process";
import { mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { promisify } from "node:util";
import { describe, expect, it } from "vitest";
import { AES_OVERHEAD, predictZipSize, zipStream, type ZipEntry } from "../src/index.js";
import { collect, parseZip } from "./helpers.js";

const run = promisify(execFile);

// Integration of AES-256 (AE-2) into the archive layout; the cipher itself is tested in aes*.test.ts.
describe("encrypted entries in the archive", () => {
  it("7-Zip extracts every byte with the password; layout fields as AE-2 requires", async () => {
    const text = Buffer.from("secret line\n".repeat(200_000));
    const entries: ZipEntry[] = [
      { name: "store.txt", source: "stored secret", method: "store" },
      { name: "deflate.txt", source: () => [text], method: "deflate" },
      { name: "empty.txt", source: "", method: "store" },
      { name: "plain.txt", source: "not encrypted", method: "store", password: null },
    ];
    const zip = await collect(zipStream(entries, { password: "correct horse" }));
    const parsed = parseZip(zip).entries;
    const [store, deflate, empty, plain] = parsed;
    for (const e of [store, deflate, empty]) {
      expect(e.method).toBe(99);
      expect(e.flags & 1).toBe(1);
      expect(e.crc).toBe(0);
      const aes = e.extra.get(0x9901)!;
      expect([aes.readUInt16LE(0), aes.subarray(2, 4).toString(), aes[4]]).toEqual([2, "AE", 3]);
    }
    expect(store.extra.get(0x9901)!.readUInt16LE(5)).toBe(0);
    expect(deflate.extra.get(0x9901)!.readUInt16LE(5)).toBe(8);
    expect(store.csize).toBe(13 + AES_OVERHEAD);
    expect(empty.csize).toBe(AES_OVERHEAD);
    expect(store.flags & 8).toBe(0); // known size: no descriptor even without a CRC
    expect(plain.method).toBe(0);
    expect(plain.extra.has(0x9901)).toBe(false);

    const dir = await mkdtemp(join(tmpdir(), "zipstream-aes-"));
    try {
      const path = join(dir, "a.zip");
      await writeFile(path, zip);
      await run("7z", ["x", "-y", "-pcorrect horse", `-o${join(dir, "out")}`, path]);
      expect(await readFile(join(dir, "out", "store.txt"), "utf8")).toBe("stored secret");
      expect((await readFile(join(dir, "out", "deflate.txt"))).equals(text)).toBe(true);
      expect((await readFile(join(dir, "out", "empty.txt"))).length).toBe(0);
      expect(await readFile(join(dir, "out", "plain.txt"), "utf8")).toBe("not encrypted");
      await expect(run("7z", ["t", "-pwrong", path])).rejects.toThrow();
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });

  it("many encrypted files read ahead: keys derived off the main thread, salts in entry order, 7-Zip verifies every member", async () => {
    const dir = await mkdtemp(join(tmpdir(), "zipstream-aes-many-"));
    try {
      const entries: ZipEntry[] = [];
      const contents: Buffer[] = [];
      for (let i = 0; i < 40; i++) {
        const data = Buffer.from(`member ${i} `.repeat(200 + i * 37));
        const path = join(dir, `f${i}.txt`);
        await writeFile(path, data);
        contents.push(data);
        // Mixed: declared and fstat'ed sizes, store and deflate, and one unencrypted member.
        entries.push({ name: `f${i}.txt`, path, method: i % 3 === 0 ? "deflate" : "store", ...(i % 2 ? { size: data.length } : {}), ...(i === 7 ? { password: null } : {}) });
      }
      let draws = 0;
      // Salt k is 16 bytes of value k: the k-th salt drawn.
      const randomBytes = (n: number): Uint8Array => new Uint8Array(n).fill(draws++);
      const zip = await collect(zipStream(entries, { password: "many secrets", randomBytes }));
      const parsed = parseZip(zip).entries;
      let k = 0;
      for (const e of parsed) {
        if (e.name === "f7.txt") {
          expect(e.method).not.toBe(99);
          continue;
        }
        // The salt opens the member's data, right after its local header.
        const local = e.offset;
        const dataStart = local + 30 + zip.readUInt16LE(local + 26) + zip.readUInt16LE(local + 28);
        expect(zip[dataStart], e.name).toBe(k);
        expect(zip.subarray(dataStart, dataStart + 16).every((b) => b === k)).toBe(true);
        k++;
      }
      expect(k).toBe(39);
      expect(draws).toBe(39);
      const path = join(dir, "many.zip");
      await writeFile(path, zip);
      await run("7z", ["x", "-y", "-pmany secrets", `-o${join(dir, "out")}`, path]);
      for (let i = 0; i < 40; i++) expect((await readFile(join(dir, "out", `f${i}.txt`))).equals(contents[i]!), `f${i}`).toBe(true);
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });

  it("predictZipSize counts the 28-byte overhead and the 0x9901 extra", async () => {
    const entries: ZipEntry[] = [
      { name: "a", source: "abc", method: "store" },
      { name: "b", source: () => [Buffer.from("xyz")], size: 3, method: "store" },
      { name: "c", source: "plain", method: "store", password: null },
    ];
    const options = { password: "pw", randomBytes: (n: number) => new Uint8Array(n) };
    const plainSize = predictZipSize(entries.map((e) => ({ ...e, password: null })), options)!;
    const encSize = predictZipSize(entries, options)!;
    // two encrypted entries: 28 data bytes + 11 local extra + 11 central extra each; "b" (size known,
    // CRC not) needs a 16-byte descriptor in plain but none encrypted (AE-2 writes CRC 0)
    expect(encSize - plainSize).toBe(2 * (AES_OVERHEAD + 11 + 11) - 16);
    expect((await collect(zipStream(entries, options))).length).toBe(encSize);
  });
});
