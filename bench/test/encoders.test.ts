// Smoke test of the benchmark's encoder runners: each one, in its own process as in `pnpm bench`,
// zips a small corpus, and Info-ZIP plus Python's zipfile check the archive and every member's
// hash. A runner that silently produced a wrong archive would make the benchmark meaningless.
import { describe, expect, it, beforeAll, afterAll } from "vitest";
import { execFileSync, spawnSync } from "node:child_process";
import { createHash } from "node:crypto";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { tmpdir } from "node:os";
// @ts-expect-error plain ESM module without types
import { smallCorpus } from "../src/corpus.mjs";

const runner = join(__dirname, "..", "src", "encoders.mjs");
let dir: string;
let corpus: { files: { name: string; sha256: string }[]; bytes: number };
let manifestPath: string;

beforeAll(() => {
  dir = mkdtempSync(join(tmpdir(), "zipstream-bench-smoke-"));
  corpus = smallCorpus(join(dir, "corpus"));
  manifestPath = join(dir, "manifest.json");
  writeFileSync(manifestPath, JSON.stringify(corpus));
});
afterAll(() => rmSync(dir, { recursive: true, force: true }));

const hashesPy = `
import hashlib, json, sys, zipfile
z = zipfile.ZipFile(sys.argv[1])
assert z.testzip() is None
print(json.dumps({i.filename: hashlib.sha256(z.read(i)).hexdigest() for i in z.infolist()}))`;

const cases: [string, string][] = [];
for (const e of ["zipstream", "archiver", "yazl", "zip.js", "client-zip", "fflate"]) {
  cases.push([e, "store"]);
  if (e !== "client-zip") cases.push([e, "deflate"]);
}

describe("benchmark encoder runners produce valid archives", () => {
  it.each(cases)("%s / %s", (encoder, method) => {
    const out = join(dir, `${encoder}-${method}.zip`);
    const p = spawnSync(process.execPath, [runner, encoder, method, manifestPath, out], { cwd: join(__dirname, ".."), encoding: "utf8" });
    expect(p.stderr).toBe("");
    expect(p.status).toBe(0);
    const res = JSON.parse(p.stdout.trim());
    expect(res.bytesIn).toBe(corpus.bytes);
    expect(res.seconds).toBeGreaterThan(0);
    expect(res.maxRssMiB).toBeGreaterThan(0);
    execFileSync("unzip", ["-tqq", out]);
    const seen = JSON.parse(execFileSync("python3", ["-c", hashesPy, out], { encoding: "utf8" }));
    expect(Object.keys(seen).sort()).toEqual(corpus.files.map((f) => f.name).sort());
    for (const f of corpus.files) expect(seen[f.name], f.name).toBe(f.sha256);
  });

  it("zipstream+aes writes an archive 7-Zip decrypts and verifies, and refuses with a wrong password", () => {
    const out = join(dir, "aes.zip");
    const p = spawnSync(process.execPath, [runner, "zipstream+aes", "store", manifestPath, out], { cwd: join(__dirname, ".."), encoding: "utf8" });
    expect(p.status, p.stderr).toBe(0);
    for (const f of corpus.files) {
      const data = execFileSync("7z", ["x", "-so", "-pbenchmark password", out, f.name], { maxBuffer: 1 << 26 });
      expect(createHash("sha256").update(data).digest("hex"), f.name).toBe(f.sha256);
    }
    expect(spawnSync("7z", ["t", "-pwrong", out], { stdio: "ignore" }).status).not.toBe(0);
  });

  it("the counting sink sees exactly the bytes each runner writes to a file", () => {
    for (const [encoder, method] of cases) {
      const out = join(dir, `${encoder}-${method}-sized.zip`);
      const toFile = spawnSync(process.execPath, [runner, encoder, method, manifestPath, out], { encoding: "utf8" });
      const toNull = spawnSync(process.execPath, [runner, encoder, method, manifestPath, "null"], { encoding: "utf8" });
      expect(toFile.status, toFile.stderr).toBe(0);
      expect(toNull.status, toNull.stderr).toBe(0);
      const fileRes = JSON.parse(toFile.stdout);
      expect(fileRes.outBytes, `${encoder}/${method}`).toBeGreaterThan(0);
      expect(JSON.parse(toNull.stdout).outBytes, `${encoder}/${method}`).toBe(fileRes.outBytes);
    }
  });

  it("the limit runners process every input byte", () => {
    for (const limit of ["limit:crc32", "limit:read-crc-copy", "limit:zlib-1thread"]) {
      const out = join(dir, "limit.bin");
      const p = spawnSync(process.execPath, [runner, limit, "store", manifestPath, out], { encoding: "utf8" });
      expect(p.status, p.stderr).toBe(0);
      expect(JSON.parse(p.stdout).bytesIn).toBe(corpus.bytes);
    }
    const copy = spawnSync(process.execPath, [runner, "limit:read-crc-copy", "store", manifestPath, "null"], { encoding: "utf8" });
    expect(copy.status, copy.stderr).toBe(0);
    expect(JSON.parse(copy.stdout).outBytes).toBe(corpus.bytes);
  });
});
