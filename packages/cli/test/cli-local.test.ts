import { execFile } from "node:child_process";
import { existsSync } from "node:fs";
import { readdir, readFile, stat, truncate, writeFile } from "node:fs/promises";
import path from "node:path";
import { promisify } from "node:util";
import { crc32 } from "node:zlib";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { verifyZip } from "@zipstream/interop";
import { bytes, runCli, tempDir, writeTree } from "./helpers.js";

const exec = promisify(execFile);

// No S3 in this file: make sure nothing from the parent's environment points the CLI anywhere.
const NO_AWS = { AWS_ENDPOINT_URL: undefined, AWS_PROFILE: undefined };

let dir: string;
let src: string;
const files: Record<string, string | Uint8Array> = {
  "hello.txt": "hello, world\n",
  "sub/data.bin": bytes(200_000, 7),
  "sub/deeper/empty.txt": "",
  "sub/deeper/note.md": "# note\n".repeat(500),
};

beforeAll(async () => {
  dir = await tempDir();
  src = path.join(dir, "src");
  await writeTree(src, files);
});

afterAll(async () => {
  // Leave nothing behind in /tmp.
  const { rm } = await import("node:fs/promises");
  await rm(dir, { recursive: true, force: true });
});

const expected = () =>
  Object.entries(files).map(([name, data]) => ({ name, data: typeof data === "string" ? Buffer.from(data) : data }));

describe.concurrent("usage", () => {
  it("--help prints usage and the exit codes, exit 0", async () => {
    const r = await runCli(["--help"]);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout).toMatch(/^Usage:/);
    expect(r.stdout).toContain("zipstream [options] <src...> <dest>");
    expect(r.stdout).toContain("--password-env NAME");
    expect(r.stdout).toMatch(/Exit codes:[\s\S]*3 {2}source not found[\s\S]*6 {2}aborted/);
  });

  it("--version prints the package version", async () => {
    const r = await runCli(["--version"]);
    const pkg = JSON.parse(await readFile(new URL("../package.json", import.meta.url), "utf8")) as { version: string };
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout.trim()).toBe(pkg.version);
  });

  const cases: [string, string[], RegExp][] = [
    ["no arguments", [], /missing <src\.\.\.> and <dest>/],
    ["a source without destination", ["a.txt"], /missing <dest>/],
    ["an unknown flag", ["--frobnicate", "a", "b.zip"], /Unknown option '--frobnicate'/],
    ["a bad part size", ["--part-size", "lots", "a", "s3://b/k.zip"], /--part-size must be an integer from 5242880 to 5368709120 bytes, a size such as 16MiB, 64M or 8388608; got "lots"/],
    ["a part size under 5 MiB", ["--part-size", "1MiB", "a", "s3://b/k.zip"], /--part-size must be an integer from 5242880 to/],
    ["a part size over 5 GiB", ["--part-size", "6GiB", "a", "s3://b/k.zip"], /--part-size must be an integer from 5242880 to 5368709120 bytes/],
    ["a bad method", ["--method", "bzip2", "a", "b.zip"], /--method must be one of store, deflate/],
    ["--level with store", ["--level", "9", "a", "b.zip"], /--level only applies to --method deflate/],
    ["a password argument", ["--password", "hunter2", "a", "b.zip"], /never accepted on the command line/],
    ["a password argument with =", ["--password=hunter2", "a", "b.zip"], /never accepted on the command line/],
    ["an S3 destination without key", ["a", "s3://bucket/"], /needs an object key/],
    ["an S3 location without bucket", ["s3:///key", "b.zip"], /no bucket/],
    ["a bad metadata pair", ["--metadata", "novalue", "a", "s3://b/k.zip"], /--metadata takes key=value/],
    ["cleanup without --older-than", ["cleanup", "s3://b/p/"], /--older-than AGE/],
    ["cleanup with a bad age", ["cleanup", "s3://b/p/", "--older-than", "soon"], /--older-than must be a duration/],
    ["--jobs with positionals", ["--jobs", "jobs.json", "a", "b.zip"], /--jobs takes no <src> or <dest>/],
  ];
  for (const [what, args, message] of cases) {
    it(`${what} -> exit 2 with a clear message`, async () => {
      const r = await runCli(args, { env: NO_AWS });
      expect(r.code).toBe(2);
      expect(r.stderr).toMatch(message);
      expect(r.stderr).toContain('run "zipstream --help" for usage');
      expect(r.stdout).toBe("");
    });
  }

  it("a missing password environment variable is a usage error and writes nothing", async () => {
    const out = path.join(dir, "nopass.zip");
    const r = await runCli(["--password-env", "ZIPSTREAM_TEST_UNSET", src, out], { env: { ZIPSTREAM_TEST_UNSET: undefined } });
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(/ZIPSTREAM_TEST_UNSET is not set/);
    expect(existsSync(out)).toBe(false);
  });
});

describe.concurrent("local -> local", () => {
  it("zips a directory (store) that unzip, Python and 7-Zip read back byte for byte", async () => {
    const out = path.join(dir, "store.zip");
    const r = await runCli([src, out], { env: NO_AWS });
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout).toMatch(/^wrote .*store\.zip: 4 entries/);
    await verifyZip(out, expected(), { readers: ["unzip", "python", "7z"] });
    const t = await exec("unzip", ["-t", out]);
    expect(t.stdout).toMatch(/No errors detected/);
  });

  it("zips with deflate; the summary is JSON with --json; progress lines go to stderr", async () => {
    const out = path.join(dir, "deflate.zip");
    const r = await runCli(["--method", "deflate", "--level", "9", "--json", src, out], { env: NO_AWS });
    expect(r.code, r.stderr).toBe(0);
    const summary = JSON.parse(r.stdout) as { ok: boolean; entries: number; size: number; zip64: boolean };
    expect(summary).toMatchObject({ ok: true, entries: 4, zip64: false });
    expect(summary.size).toBe((await stat(out)).size);
    expect(r.stderr).toMatch(/zipstream: .* -> .*deflate\.zip: 4 entries/);
    // The text file of 3,500 repetitive bytes must have shrunk: deflate really ran.
    expect(summary.size).toBeLessThan(200_000 + 3500);
    await verifyZip(out, expected(), { readers: ["unzip", "python"] });
  });

  it("takes single files and several sources; --names full / basename / --strip-prefix map names", async () => {
    const a = path.join(src, "hello.txt");
    const b = path.join(src, "sub", "deeper", "note.md");
    const base = path.join(dir, "names-base.zip");
    expect((await runCli([a, b, base], { env: NO_AWS })).code).toBe(0);
    await verifyZip(base, [
      { name: "hello.txt", data: Buffer.from(files["hello.txt"] as string) },
      { name: "note.md", data: Buffer.from(files["sub/deeper/note.md"] as string) },
    ], { readers: ["python"] });

    const stripped = path.join(dir, "names-strip.zip");
    expect((await runCli(["--strip-prefix", `${dir}/`, src, stripped], { env: NO_AWS })).code).toBe(0);
    const py = await exec("python3", ["-c", "import sys,zipfile;print('\\n'.join(sorted(zipfile.ZipFile(sys.argv[1]).namelist())))", stripped]);
    expect(py.stdout.trim().split("\n")).toEqual(["src/hello.txt", "src/sub/data.bin", "src/sub/deeper/empty.txt", "src/sub/deeper/note.md"]);

    const flat = path.join(dir, "names-flat.zip");
    expect((await runCli(["--names", "basename", path.join(src, "sub"), flat], { env: NO_AWS })).code).toBe(0);
    const py2 = await exec("python3", ["-c", "import sys,zipfile;print('\\n'.join(sorted(zipfile.ZipFile(sys.argv[1]).namelist())))", flat]);
    expect(py2.stdout.trim().split("\n")).toEqual(["data.bin", "empty.txt", "note.md"]);
  });

  it("--dry-run writes nothing, and its predicted size is the real size", async () => {
    const out = path.join(dir, "dry.zip");
    const r = await runCli(["--dry-run", "--json", src, out], { env: NO_AWS });
    expect(r.code, r.stderr).toBe(0);
    const report = JSON.parse(r.stdout) as { dryRun: boolean; predictedSize: number; zip64: boolean; entries: { name: string; size: number }[]; totalBytes: number };
    expect(report.dryRun).toBe(true);
    expect(report.zip64).toBe(false);
    expect(report.entries.map((e) => e.name).sort()).toEqual(Object.keys(files).sort());
    expect(report.totalBytes).toBe(Object.values(files).reduce((s, d) => s + Buffer.byteLength(d as string), 0));
    expect(existsSync(out)).toBe(false);
    expect((await readdir(dir)).filter((n) => n.includes("dry"))).toEqual([]);

    const human = await runCli(["--dry-run", src, out], { env: NO_AWS });
    expect(human.code).toBe(0);
    expect(human.stdout).toMatch(/dry run: nothing written/);
    expect(human.stdout).toContain(`predicted archive size: `);
    expect(human.stdout).toContain(`(${report.predictedSize} bytes)`);

    const real = await runCli([src, out], { env: NO_AWS });
    expect(real.code).toBe(0);
    expect((await stat(out)).size).toBe(report.predictedSize);
  });

  it("--manifest lists source, name, size, CRC-32 and offset of every entry", async () => {
    const out = path.join(dir, "manifest.zip");
    const man = path.join(dir, "manifest.json");
    const r = await runCli(["--manifest", man, src, out], { env: NO_AWS });
    expect(r.code, r.stderr).toBe(0);
    const m = JSON.parse(await readFile(man, "utf8")) as {
      archive: string;
      size: number;
      entries: { source: string; name: string; size: number; crc32: number; offset: number }[];
    };
    expect(m.size).toBe((await stat(out)).size);
    expect(m.entries.map((e) => e.name).sort()).toEqual(Object.keys(files).sort());
    const zip = await readFile(out);
    for (const e of m.entries) {
      const data = files[e.name];
      const buf = typeof data === "string" ? Buffer.from(data) : Buffer.from(data);
      expect(e.source).toBe(path.join(src, ...e.name.split("/")));
      expect(e.size).toBe(buf.length);
      expect(e.crc32).toBe(crc32(buf));
      // The offset points at this entry's local file header (APPNOTE 4.3.7, signature PK\3\4).
      expect(zip.readUInt32LE(e.offset)).toBe(0x04034b50);
      const nameLen = zip.readUInt16LE(e.offset + 26);
      expect(zip.subarray(e.offset + 30, e.offset + 30 + nameLen).toString("utf8")).toBe(e.name);
    }
  });

  it("--password-env and --password-file make an AES archive that 7-Zip opens with that password only", async () => {
    const out = path.join(dir, "secret.zip");
    const r = await runCli(["--password-env", "ZIP_PASSWORD", src, out], { env: { ...NO_AWS, ZIP_PASSWORD: "correct horse" } });
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout + r.stderr).not.toContain("correct horse");
    const ok = await exec("7z", ["t", "-pcorrect horse", out]);
    expect(ok.stdout).toMatch(/Everything is Ok/);
    await expect(exec("7z", ["t", "-pwrong", out])).rejects.toThrow();
    await verifyZip(out, expected(), { readers: ["7z"], password: "correct horse" });

    const pwFile = path.join(dir, "pw.txt");
    await writeFile(pwFile, "from a file\n");
    const out2 = path.join(dir, "secret2.zip");
    expect((await runCli(["--password-file", pwFile, "--method", "deflate", src, out2], { env: NO_AWS })).code).toBe(0);
    expect((await exec("7z", ["t", "-pfrom a file", out2])).stdout).toMatch(/Everything is Ok/);
  });

  it("a missing source exits 3 and leaves no output; --on-missing skip zips the rest", async () => {
    const out = path.join(dir, "missing.zip");
    const r = await runCli([path.join(src, "hello.txt"), path.join(dir, "nope.txt"), out], { env: NO_AWS });
    expect(r.code).toBe(3);
    expect(r.stderr).toMatch(/source not found: .*nope\.txt \[ERR_LOCAL_SOURCE_MISSING\]/);
    expect(existsSync(out)).toBe(false);
    // Every source missing under --on-missing skip: nothing to zip, the same code and exit.
    const none = await runCli(["--on-missing", "skip", "--json", path.join(dir, "nope.txt"), out], { env: NO_AWS });
    expect(none.code).toBe(3);
    expect(JSON.parse(none.stdout)).toMatchObject({ ok: false, code: "ERR_LOCAL_SOURCE_MISSING", exitCode: 3 });

    const s = await runCli(["--on-missing", "skip", "--json", path.join(src, "hello.txt"), path.join(dir, "nope.txt"), out], { env: NO_AWS });
    expect(s.code).toBe(0);
    const summary = JSON.parse(s.stdout) as { entries: number; skipped: string[] };
    expect(summary.entries).toBe(1);
    expect(summary.skipped).toEqual([path.join(dir, "nope.txt")]);
  });

  it("an unwritable destination exits 5", async () => {
    const r = await runCli([src, path.join(dir, "no", "such", "dir", "x.zip")], { env: NO_AWS });
    expect(r.code).toBe(5);
    expect(r.stderr).toMatch(/cannot write.*\[ERR_LOCAL_DEST\]/);
  });

  it("SIGTERM aborts cleanly: exit 6, no archive and no partial file left", async () => {
    const big = path.join(dir, "big");
    const { mkdir } = await import("node:fs/promises");
    await mkdir(big);
    // A sparse 4 GiB file: takes far longer to zip than the signal takes to arrive.
    await writeFile(path.join(big, "zeros.bin"), "");
    await truncate(path.join(big, "zeros.bin"), 4 * 1024 ** 3);
    const out = path.join(dir, "aborted.zip");
    let sent = false;
    let pid = 0;
    const r = await runCli([big, out], {
      env: NO_AWS,
      onSpawn: (p) => (pid = p),
      onStderr: (chunk) => {
        // The job's first log line: the archive is being written now.
        if (!sent && chunk.includes("zipstream:")) {
          sent = true;
          process.kill(pid, "SIGTERM");
        }
      },
    });
    expect(sent).toBe(true);
    expect(r.code).toBe(6);
    expect(r.stderr).toMatch(/SIGTERM: aborting/);
    expect(existsSync(out)).toBe(false);
    expect((await readdir(dir)).filter((n) => n.includes("aborted"))).toEqual([]);
  });
});

describe("batch (--jobs)", () => {
  it("runs every job, reports one line each, continues past a failure and exits non-zero", async () => {
    const jobsFile = path.join(dir, "jobs.ndjson");
    const outs = ["job1.zip", "job2.zip", "job3.zip"].map((n) => path.join(dir, n));
    await writeFile(
      jobsFile,
      [
        JSON.stringify({ src: path.join(src, "sub"), dest: outs[0] }),
        JSON.stringify({ src: [path.join(dir, "does-not-exist")], dest: outs[1] }),
        JSON.stringify({ src: src, dest: outs[2], options: { method: "deflate", level: 1 } }),
      ].join("\n"),
    );
    const r = await runCli(["--jobs", jobsFile, "--parallel", "2"], { env: NO_AWS });
    expect(r.code).toBe(1);
    const lines = r.stdout.trim().split("\n");
    expect(lines).toHaveLength(4);
    expect(lines.find((l) => l.startsWith("ok   job 1"))).toBeDefined();
    expect(lines.find((l) => l.startsWith("FAIL job 2"))).toMatch(/source not found.*exit 3/);
    expect(lines.find((l) => l.startsWith("ok   job 3"))).toBeDefined();
    expect(lines[3]).toBe("3 jobs: 2 ok, 1 failed");
    expect(existsSync(outs[1])).toBe(false);
    await verifyZip(outs[0], [
      { name: "data.bin", data: files["sub/data.bin"] as Uint8Array },
      { name: "deeper/empty.txt", data: Buffer.alloc(0) },
      { name: "deeper/note.md", data: Buffer.from(files["sub/deeper/note.md"] as string) },
    ], { readers: ["python"] });
    await verifyZip(outs[2], expected(), { readers: ["python"] });
  });

  it("--json gives one JSON line per job and a summary; a JSON array file works too", async () => {
    const jobsFile = path.join(dir, "jobs.json");
    await writeFile(jobsFile, JSON.stringify([{ src: path.join(src, "hello.txt"), dest: path.join(dir, "j-a.zip") }]));
    const r = await runCli(["--jobs", jobsFile, "--json"], { env: NO_AWS });
    expect(r.code, r.stderr).toBe(0);
    const lines = r.stdout.trim().split("\n").map((l) => JSON.parse(l) as Record<string, unknown>);
    expect(lines[0]).toMatchObject({ job: 1, ok: true, entries: 1 });
    expect(lines[1]).toEqual({ summary: { jobs: 1, ok: 1, failed: 0 } });
  });

  it("a malformed jobs file is a usage error naming the job", async () => {
    const jobsFile = path.join(dir, "bad-jobs.json");
    await writeFile(jobsFile, JSON.stringify([{ src: "a", dest: "b.zip" }, { src: "a", dest: "b.zip", options: { method: "lzma" } }]));
    const r = await runCli(["--jobs", jobsFile], { env: NO_AWS });
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(/job 2: --method must be one of/);
  });
});
