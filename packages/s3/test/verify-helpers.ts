import { execFile } from "node:child_process";
import { mkdtemp, readFile, rm, writeFile, mkdir } from "node:fs/promises";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { promisify } from "node:util";
import { zipStream, type ZipEntry, type ZipOptions } from "@zipstream/core";

const run = promisify(execFile);

/** The whole output of zipStream in memory (small test archives only). */
export async function zipBytes(entries: ZipEntry[], options: ZipOptions = {}): Promise<Buffer> {
  const parts: Buffer[] = [];
  for await (const c of zipStream(entries, options)) parts.push(c as Buffer);
  return Buffer.concat(parts);
}

/** Positions of the records of a ZIP without an archive comment (test-side, parsed by hand). */
export function layout(zip: Buffer): { eocd: number; cdOffset: number; central: number[] } {
  let eocd = zip.length - 22;
  while (zip.readUInt32LE(eocd) !== 0x06054b50) eocd--;
  let cdOffset = zip.readUInt32LE(eocd + 16);
  if (cdOffset === 0xffffffff) {
    const z64 = Number(zip.readBigUInt64LE(eocd - 20 + 8));
    cdOffset = Number(zip.readBigUInt64LE(z64 + 48));
  }
  const central: number[] = [];
  for (let p = cdOffset; zip.readUInt32LE(p) === 0x02014b50; p += 46 + zip.readUInt16LE(p + 28) + zip.readUInt16LE(p + 30) + zip.readUInt16LE(p + 32)) central.push(p);
  return { eocd, cdOffset, central };
}

/**
 * Runs an archiver nobody here wrote over files in a temporary directory and returns the
 * archive's bytes. `files` maps relative paths to contents.
 */
export async function externalZip(tool: "zip" | "7z" | "python", files: Record<string, string | Buffer>, extra: { pythonNames?: Record<string, string> } = {}): Promise<Buffer> {
  const dir = await mkdtemp(join(tmpdir(), "zsv-"));
  try {
    const src = join(dir, "src");
    for (const [name, body] of Object.entries(files)) {
      await mkdir(dirname(join(src, name)), { recursive: true });
      await writeFile(join(src, name), body);
    }
    const out = join(dir, "out.zip");
    const names = Object.keys(files).sort();
    // Info-ZIP with an archive comment read from stdin (-z).
    if (tool === "zip") await run("sh", ["-c", 'echo "comment by Info-ZIP" | zip -q -r -z "$0" "$@"', out, ...names], { cwd: src });
    else if (tool === "7z") await run("7z", ["a", "-tzip", "-bd", "-mx=5", out, ...names], { cwd: src });
    else {
      // Python's zipfile, one member per file, deflated; pythonNames renames members (hostile names).
      const script = [
        "import sys, json, zipfile",
        "files, names, out = json.loads(sys.argv[1]), json.loads(sys.argv[2]), sys.argv[3]",
        "with zipfile.ZipFile(out, 'w', zipfile.ZIP_DEFLATED) as z:",
        "    z.comment = b'written by python'",
        "    for f in files:",
        "        z.write(f, names.get(f, f))",
      ].join("\n");
      await run("python3", ["-c", script, JSON.stringify(names), JSON.stringify(extra.pythonNames ?? {}), out], { cwd: src });
    }
    return await readFile(out);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}
