/**
 * Local sources and destinations as an attacker or a careless user would give them (issue 13):
 * symlinks (outside the tree, loops), destinations that would destroy data, a readable
 * password file. No S3 here.
 */
import { execFile } from "node:child_process";
import { chmod, mkdir, readFile, rm, stat, symlink, writeFile } from "node:fs/promises";
import path from "node:path";
import { promisify } from "node:util";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { verifyZip } from "@zipstream/interop";
import { BIN, runCli, tempDir, writeTree } from "./helpers.js";

const exec = promisify(execFile);
const NO_AWS = { AWS_ENDPOINT_URL: undefined, AWS_PROFILE: undefined };
let dir: string;

beforeAll(async () => {
  dir = await tempDir("zipstream-cli-hard-");
});
afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

/** A fresh directory under the test's temp dir. */
async function fresh(name: string): Promise<string> {
  const d = path.join(dir, name);
  await mkdir(d, { recursive: true });
  return d;
}

/** Names and, for symlinks, targets, as Python's zipfile reads them (mode from external_attr). */
async function listing(zip: string): Promise<{ name: string; link?: string; data?: string }[]> {
  const script = `
import sys, zipfile, json, stat
out = []
with zipfile.ZipFile(sys.argv[1]) as z:
    for i in z.infolist():
        mode = i.external_attr >> 16
        data = z.read(i).decode("utf-8", "replace")
        out.append({"name": i.filename, "link": data} if stat.S_ISLNK(mode) else {"name": i.filename, "data": data})
print(json.dumps(out))`;
  const { stdout } = await exec("python3", ["-c", script, zip]);
  return JSON.parse(stdout) as { name: string; link?: string; data?: string }[];
}

describe("symlinks in local sources", () => {
  let tree: string;
  let outside: string;

  beforeAll(async () => {
    const base = await fresh("links");
    tree = path.join(base, "tree");
    outside = path.join(base, "outside-secret.txt");
    await writeTree(tree, { "real.txt": "real file\n", "sub/inner.txt": "inner\n" });
    await writeFile(outside, "private key material\n");
    await chmod(outside, 0o600);
    await symlink("sub/inner.txt", path.join(tree, "to-inner"));
  });

  it("stores a link inside the tree as a link by default (its target is not read)", async () => {
    const zip = path.join(dir, "links-default.zip");
    const r = await runCli([tree, zip], { env: NO_AWS });
    expect(r.code, r.stderr).toBe(0);
    expect(await listing(zip)).toEqual([
      { name: "real.txt", data: "real file\n" },
      { name: "sub/inner.txt", data: "inner\n" },
      { name: "to-inner", link: "sub/inner.txt" },
    ]);
    await verifyZip(
      zip,
      [
        { name: "real.txt", data: Buffer.from("real file\n") },
        { name: "sub/inner.txt", data: Buffer.from("inner\n") },
        { name: "to-inner", type: "symlink", data: Buffer.from("sub/inner.txt") },
      ],
      { readers: ["unzip", "bsdtar"] },
    );
  });

  it("refuses a link to a file outside the tree, whether stored or followed: exit 7, nothing written", async () => {
    const evil = path.join(tree, "innocent.txt");
    await symlink(outside, evil);
    try {
      for (const extra of [[], ["--follow-symlinks"]]) {
        const zip = path.join(dir, `links-outside-${extra.length}.zip`);
        const r = await runCli([...extra, tree, zip], { env: NO_AWS });
        expect(r.code, r.stderr).toBe(7);
        expect(r.stderr).toMatch(/symlink .*innocent\.txt (points|leads) outside the source tree.*--allow-outside-symlinks/);
        await expect(stat(zip)).rejects.toThrow();
      }
      // Asked explicitly: stored as the link it is...
      const stored = path.join(dir, "links-outside-stored.zip");
      const s = await runCli(["--allow-outside-symlinks", tree, stored], { env: NO_AWS });
      expect(s.code, s.stderr).toBe(0);
      expect((await listing(stored)).find((e) => e.name === "innocent.txt")).toEqual({ name: "innocent.txt", link: outside });
      // ...and only when following is asked too is the outside file's content archived.
      const zip = path.join(dir, "links-outside-allowed.zip");
      const r = await runCli(["--follow-symlinks", "--allow-outside-symlinks", tree, zip], { env: NO_AWS });
      expect(r.code, r.stderr).toBe(0);
      expect((await listing(zip)).find((e) => e.name === "innocent.txt")).toEqual({ name: "innocent.txt", data: "private key material\n" });
    } finally {
      await rm(evil);
    }
  });

  it("--follow-symlinks archives what links inside the tree point to", async () => {
    const zip = path.join(dir, "links-follow.zip");
    const r = await runCli(["--follow-symlinks", tree, zip], { env: NO_AWS });
    expect(r.code, r.stderr).toBe(0);
    expect((await listing(zip)).find((e) => e.name === "to-inner")).toEqual({ name: "to-inner", data: "inner\n" });
  });

  it("two `ln -s .` loops end at once in both modes (followed: each loop entered zero times, with a warning)", async () => {
    const loopy = await fresh("loopy");
    await writeTree(loopy, { "f.txt": "f\n" });
    await symlink(".", path.join(loopy, "a"));
    await symlink(".", path.join(loopy, "b"));
    const started = Date.now();
    const followed = await runCli(["--dry-run", "--json", "--follow-symlinks", loopy, path.join(dir, "loopy.zip")], { env: NO_AWS });
    expect(followed.code, followed.stderr).toBe(0);
    const report = JSON.parse(followed.stdout) as { entries: { name: string }[]; warnings: string[] };
    expect(report.entries.map((e) => e.name)).toEqual(["f.txt"]);
    expect(report.warnings).toHaveLength(2);
    expect(report.warnings[0]).toMatch(/leads back to a directory it is inside/);
    const stored = await runCli(["--dry-run", "--json", loopy, path.join(dir, "loopy.zip")], { env: NO_AWS });
    expect(stored.code, stored.stderr).toBe(0);
    expect((JSON.parse(stored.stdout) as { entries: { name: string }[] }).entries.map((e) => e.name)).toEqual(["a", "b", "f.txt"]);
    expect(Date.now() - started).toBeLessThan(30_000);
  });
});

describe("destinations that would destroy data", () => {
  it("`zipstream *.txt` whose last file is not a zip: exit 5, the file untouched; --force replaces it", async () => {
    const d = await fresh("glob");
    await writeTree(d, { "a.txt": "a\n", "b.txt": "b\n", "c.txt": "precious c\n" });
    const r = await runCli(["a.txt", "b.txt", "c.txt"], { env: NO_AWS, cwd: d });
    expect(r.code).toBe(5);
    expect(r.stderr).toContain("destination c.txt exists and is not a ZIP archive: not replaced (use --force to replace it) [ERR_LOCAL_DEST]");
    expect(await readFile(path.join(d, "c.txt"), "utf8")).toBe("precious c\n");
    const forced = await runCli(["--force", "a.txt", "b.txt", "c.txt"], { env: NO_AWS, cwd: d });
    expect(forced.code, forced.stderr).toBe(0);
    expect((await listing(path.join(d, "c.txt"))).map((e) => e.name)).toEqual(["a.txt", "b.txt"]);
  });

  it("replaces an existing ZIP archive without --force (re-running a job)", async () => {
    const d = await fresh("rerun");
    await writeTree(d, { "a.txt": "a\n" });
    expect((await runCli(["a.txt", "out.zip"], { env: NO_AWS, cwd: d })).code).toBe(0);
    await writeTree(d, { "a.txt": "a, changed\n" });
    const again = await runCli(["a.txt", "out.zip"], { env: NO_AWS, cwd: d });
    expect(again.code, again.stderr).toBe(0);
    expect(await listing(path.join(d, "out.zip"))).toEqual([{ name: "a.txt", data: "a, changed\n" }]);
  });

  it("`zipstream notes.txt notes.txt` (the destination is a source): exit 5, even with --force", async () => {
    const d = await fresh("self");
    await writeTree(d, { "notes.txt": "my notes\n" });
    for (const extra of [[], ["--force"]]) {
      const r = await runCli([...extra, "notes.txt", "./notes.txt"], { env: NO_AWS, cwd: d });
      expect(r.code).toBe(5);
      expect(r.stderr).toContain("is also a source");
    }
    expect(await readFile(path.join(d, "notes.txt"), "utf8")).toBe("my notes\n");
  });

  it("a destination inside a source directory: exit 5, nothing written", async () => {
    const d = await fresh("inside");
    await writeTree(d, { "src/a.txt": "a\n" });
    const r = await runCli(["src", "src/archive.zip"], { env: NO_AWS, cwd: d });
    expect(r.code).toBe(5);
    expect(r.stderr).toContain("is inside the source src");
    await expect(stat(path.join(d, "src/archive.zip"))).rejects.toThrow();
  });

  it("a directory as destination exits 5 (invalid destination), as the README says", async () => {
    const d = await fresh("dirdest");
    await writeTree(d, { "a.txt": "a\n", "outdir/keep.txt": "k\n" });
    const r = await runCli(["a.txt", "outdir"], { env: NO_AWS, cwd: d });
    expect(r.code).toBe(5);
    expect(r.stderr).toContain("destination outdir is a directory");
    const readme = await readFile(new URL("../README.md", import.meta.url), "utf8");
    expect(readme).toMatch(/\| 5 \| invalid destination \([^)]*a directory/);
  });

  it("fsyncs the archive before renaming it into place (observed with strace)", async () => {
    const d = await fresh("fsync");
    await writeTree(d, { "a.txt": "a\n".repeat(1000) });
    const { stderr } = await exec("strace", ["-f", "-y", "-e", "trace=fsync,fdatasync,rename,renameat,renameat2", process.execPath, BIN, "-q", "a.txt", "out.zip"], {
      cwd: d,
      env: { ...process.env, AWS_ENDPOINT_URL: "" },
    });
    const lines = stderr.split("\n");
    const renameAt = lines.findIndex((l) => /rename.*\.out\.zip\.\d+\.partial.*out\.zip/.test(l));
    const syncAt = lines.findIndex((l) => /^(\[pid\s+\d+\] )?f(data)?sync\(\d+<[^>]*\.out\.zip\.\d+\.partial>\) = 0/.test(l));
    expect(renameAt, stderr).toBeGreaterThan(-1);
    expect(syncAt, stderr).toBeGreaterThan(-1);
    expect(syncAt).toBeLessThan(renameAt);
  });
});

describe("--password-file permissions", () => {
  it("warns, as ssh does, when the file is group- or world-readable (even with --quiet); silent at 0600", async () => {
    const d = await fresh("pwfile");
    await writeTree(d, { "a.txt": "a\n" });
    const pw = path.join(d, "pw");
    await writeFile(pw, "hunter22\n");
    await chmod(pw, 0o644);
    const loose = await runCli(["-q", "--password-file", pw, "a.txt", "loose.zip"], { env: NO_AWS, cwd: d });
    expect(loose.code, loose.stderr).toBe(0);
    expect(loose.stderr).toContain(`zipstream: warning: --password-file ${pw} is readable by everyone (mode 0644)`);
    expect(loose.stderr).toContain("chmod 600");
    expect(loose.stderr).not.toContain("hunter22");
    await chmod(pw, 0o640);
    const group = await runCli(["-q", "--password-file", pw, "a.txt", "group.zip"], { env: NO_AWS, cwd: d });
    expect(group.stderr).toContain("is readable by its group (mode 0640)");
    await chmod(pw, 0o600);
    const tight = await runCli(["-q", "--password-file", pw, "a.txt", "tight.zip"], { env: NO_AWS, cwd: d });
    expect(tight.code, tight.stderr).toBe(0);
    expect(tight.stderr).toBe("");
  });
});

describe("cleanup below one hour", () => {
  it("needs --force: exit 2 naming the flag, before any request", async () => {
    const r = await runCli(["cleanup", "s3://bucket/prefix/", "--older-than", "0s"], { env: { ...NO_AWS, AWS_ENDPOINT_URL: "http://127.0.0.1:9" } });
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(/--older-than 0s is under 1h: it would abort uploads that may still be running .* add --force/);
    expect(r.stderr).not.toMatch(/ECONNREFUSED/);
  });
});
