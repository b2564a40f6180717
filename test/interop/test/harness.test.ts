// Validates the harness itself on archives made by other tools (Info-ZIP `zip`, Python zipfile),
// before it is trusted to judge @zipstream/core: good archives pass every reader, and a corrupted
// member, a wrong expectation or a missing entry make each reader fail with its name in the error.
import { execFileSync } from "node:child_process";
import { mkdtemp, mkdir, readFile, readdir, rm, symlink, utimes, writeFile, chmod } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { ALL_READERS, InteropError, readWith, readerVersions, sha256, verifyZip, type ExpectedEntry, type ReaderName } from "../src/index.js";

let dir: string;
const text = "hello, interop\n";
const big = Buffer.alloc(300_000, "abcdefghij"); // compressible
const mtime = new Date("2021-06-15T10:20:30Z");

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), "zipstream-harness-"));
  const src = join(dir, "src");
  await mkdir(join(src, "d", "sub"), { recursive: true });
  await writeFile(join(src, "d", "a.txt"), text);
  await writeFile(join(src, "d", "sub", "big.bin"), big);
  await writeFile(join(src, "d", "empty"), "");
  await chmod(join(src, "d", "a.txt"), 0o600);
  await symlink("a.txt", join(src, "d", "link"));
  for (const f of ["d/a.txt", "d/sub/big.bin", "d/empty"]) await utimes(join(src, f), mtime, mtime);
  execFileSync("zip", ["-qry", join(dir, "infozip.zip"), "d"], { cwd: src, env: { ...process.env, TZ: "UTC" } });
  execFileSync("zip", ["-qrZ", "store", join(dir, "infozip-store.zip"), "d/a.txt", "d/sub/big.bin"], { cwd: src });
  // Python: a deflated archive with comments and a UTF-8 name (flag bit 11), no directory entries.
  execFileSync("python3", [
    "-c",
    `import zipfile,sys
with zipfile.ZipFile(sys.argv[1], "w", zipfile.ZIP_DEFLATED) as z:
    z.comment = "archive comment".encode()
    i = zipfile.ZipInfo("x/one.txt", (2020, 1, 2, 3, 4, 6)); i.comment = "c1".encode(); i.compress_type = zipfile.ZIP_DEFLATED
    z.writestr(i, "one")
    z.writestr("two.bin", bytes(range(256)) * 100)
    z.writestr("é日🎉.txt", "utf8")`,
    join(dir, "python.zip"),
  ]);
}, 60_000);

afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

const infozipExpected = (): ExpectedEntry[] => [
  { name: "d/", type: "directory" },
  { name: "d/sub/", type: "directory" },
  { name: "d/a.txt", data: Buffer.from(text), mode: 0o600, mtime },
  { name: "d/sub/big.bin", data: big, mode: 0o644, mtime },
  { name: "d/empty", data: new Uint8Array(0), mtime },
  { name: "d/link", type: "symlink", data: Buffer.from("a.txt") },
];

describe("harness on Info-ZIP and Python archives", () => {
  it("reports reader versions", async () => {
    const v = await readerVersions();
    console.log("reader versions", v);
    for (const k of ["unzip", "7z", "python", "bsdtar", "java", "yauzl", "unar", "commons"]) expect(v[k], k).not.toMatch(/missing|unknown/);
  });

  it("accepts an Info-ZIP archive with every reader (deep)", async () => {
    const results = await verifyZip(join(dir, "infozip.zip"), infozipExpected());
    expect(results.map((r) => r.reader)).toEqual(ALL_READERS);
    for (const r of results) {
      const a = r.entries.find((e) => e.name === "d/sub/big.bin");
      expect(a?.sha256, r.reader).toBe(sha256(big));
    }
  });

  it("accepts an Info-ZIP archive in non-deep mode and still hashes the requested members", async () => {
    const results = await verifyZip(join(dir, "infozip.zip"), infozipExpected(), { deep: false });
    for (const r of results) expect(r.entries.find((e) => e.name === "d/a.txt")?.sha256, r.reader).toBe(sha256(text));
  });

  it("accepts a Python zipfile archive with comments", async () => {
    await verifyZip(
      join(dir, "python.zip"),
      [
        { name: "x/one.txt", data: Buffer.from("one"), comment: "c1" },
        { name: "two.bin", data: Buffer.from(Array.from({ length: 25600 }, (_, i) => i % 256)) },
        { name: "é日🎉.txt", data: Buffer.from("utf8") },
      ],
      { comment: "archive comment" },
    );
  });

  it("names the reader and the entry when content differs", async () => {
    const wrong = infozipExpected().map((e) => (e.name === "d/a.txt" ? { ...e, data: Buffer.from("other") } : e));
    const err = await verifyZip(join(dir, "infozip.zip"), wrong, { readers: ["unzip", "yauzl", "java"] }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(InteropError);
    const msg = (err as Error).message;
    for (const r of ["unzip", "yauzl", "java"]) expect(msg).toContain(`${r}: `);
    expect(msg).toMatch(/"d\/a.txt": size 15, expected 5/);
  });

  it("reports missing and unexpected entries, wrong modes and comments", async () => {
    const exp = infozipExpected().filter((e) => e.name !== "d/empty");
    exp.push({ name: "d/ghost", data: Buffer.from("x") });
    exp[2] = { ...exp[2]!, mode: 0o755 };
    const err = (await verifyZip(join(dir, "infozip.zip"), exp, { readers: ["python"], comment: "nope" }).catch((e: unknown) => e)) as Error;
    expect(err.message).toContain('missing entry "d/ghost"');
    expect(err.message).toContain('unexpected entry "d/empty"');
    expect(err.message).toContain("mode 600, expected 755");
    expect(err.message).toContain("archive comment");
  });

  it("every reader rejects a corrupted member", async () => {
    // Flip a byte inside the stored data of d/sub/big.bin (found by its repeated pattern).
    const buf = Buffer.from(await readFile(join(dir, "infozip-store.zip")));
    const at = buf.indexOf(Buffer.from("abcdefghijabcdefghij")) + 5000;
    buf[at] = buf[at]! ^ 0xff;
    const bad = join(dir, "corrupt.zip");
    await writeFile(bad, buf);
    const expected: ExpectedEntry[] = [
      { name: "d/a.txt", data: Buffer.from(text) },
      { name: "d/sub/big.bin", size: big.length },
    ];
    for (const reader of ALL_READERS as ReaderName[]) {
      // Even non-deep (integrity only), every reader must notice the bad CRC.
      const err = await verifyZip(bad, expected, { readers: [reader], deep: false }).catch((e: unknown) => e);
      expect(err, reader).toBeInstanceOf(InteropError);
      expect((err as Error).message, reader).toContain(`${reader}: `);
    }
  }, 120_000);

  it("readWith lists a stored archive's names and sizes in non-deep mode", async () => {
    const r = await readWith("7z", join(dir, "infozip-store.zip"), { deep: false });
    expect(r.entries.map((e) => [e.name, e.size]).sort()).toEqual([
      ["d/a.txt", text.length],
      ["d/sub/big.bin", big.length],
    ]);
  });

});

/** Pids of live processes whose command line mentions `text` (Linux /proc). */
async function processesWith(text: string): Promise<number[]> {
  const pids: number[] = [];
  for (const d of await readdir("/proc")) {
    if (!/^\d+$/.test(d)) continue;
    try {
      if ((await readFile(`/proc/${d}/cmdline`, "utf8")).includes(text)) pids.push(Number(d));
    } catch {
      // the process ended while we looked
    }
  }
  return pids;
}

describe("reader time limits", () => {
  it("kills a reader that hangs and names it, its step and the limit", async () => {
    // A FIFO with no writer: unzip blocks in open() forever, a real hang.
    const fifo = join(dir, "hang-fifo.zip");
    execFileSync("mkfifo", [fifo]);
    const err = await readWith("unzip", fifo, { timeoutMs: 1_500 }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(InteropError);
    expect((err as InteropError).code).toBe("ERR_INTEROP_TIMEOUT");
    expect((err as InteropError).reader).toBe("unzip");
    expect((err as Error).message).toMatch(/^unzip: no verdict after \d+ ms \(limit 1500 ms\)/);
    expect((err as Error).message).toContain(`it was at: unzip -t -q ${fifo}`);
    // SIGKILL was sent before the promise rejected; give the kernel a moment to reap it.
    let left = await processesWith(fifo);
    for (let i = 0; i < 50 && left.length > 0; i++) {
      await new Promise((r) => setTimeout(r, 100));
      left = await processesWith(fifo);
    }
    expect(left).toEqual([]);
  }, 60_000);

  it("stops an in-process yauzl read at its limit, and the next read works", async () => {
    const archive = join(dir, "infozip.zip");
    const err = await readWith("yauzl", archive, { timeoutMs: 1 }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(InteropError);
    expect((err as InteropError).code).toBe("ERR_INTEROP_TIMEOUT");
    expect((err as Error).message).toMatch(/^yauzl: no verdict after \d+ ms \(limit 1 ms\).*it was at: yauzl: /);
    const ok = await readWith("yauzl", archive, { timeoutMs: 60_000 });
    expect(ok.entries.find((e) => e.name === "d/sub/big.bin")?.sha256).toBe(sha256(big));
  });

  it("verifyZip reports a timed-out reader among the failures", async () => {
    const err = await verifyZip(join(dir, "infozip.zip"), infozipExpected(), { readers: ["python"], timeoutMs: 1 }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(InteropError);
    expect((err as Error).message).toMatch(/python: no verdict after/);
  });

  it("rejects a time limit that is not a positive number", async () => {
    await expect(readWith("yauzl", join(dir, "infozip.zip"), { timeoutMs: 0 })).rejects.toThrow(/timeoutMs/);
  });
});
