import { spawn } from "node:child_process";
import { mkdtemp, mkdir, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import path from "node:path";
import { fileURLToPath } from "node:url";

export const BIN = fileURLToPath(new URL("../dist/bin.js", import.meta.url));

export interface RunResult {
  code: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
}

/** Runs the built binary with no stdin and no TTY, as in a script or CI job. */
export function runCli(
  args: string[],
  opts: { env?: NodeJS.ProcessEnv; cwd?: string; onSpawn?: (pid: number) => void; onStderr?: (chunk: string) => void } = {},
): Promise<RunResult> {
  return new Promise((resolve, reject) => {
    const env = { ...process.env, ...opts.env };
    // Never let the parent's AWS setup leak into a test that does not set it.
    for (const k of Object.keys(opts.env ?? {})) if (opts.env![k] === undefined) delete env[k];
    const child = spawn(process.execPath, [BIN, ...args], { env, cwd: opts.cwd, stdio: ["ignore", "pipe", "pipe"] });
    let stdout = "";
    let stderr = "";
    child.stdout.setEncoding("utf8").on("data", (c: string) => (stdout += c));
    child.stderr.setEncoding("utf8").on("data", (c: string) => {
      stderr += c;
      opts.onStderr?.(c);
    });
    if (child.pid !== undefined) opts.onSpawn?.(child.pid);
    child.once("error", reject);
    child.once("close", (code, signal) => resolve({ code, signal, stdout, stderr }));
  });
}

export async function tempDir(prefix = "zipstream-cli-"): Promise<string> {
  return mkdtemp(path.join(tmpdir(), prefix));
}

/** Writes a small tree: { "a.txt": "...", "sub/b.bin": Uint8Array } under dir. */
export async function writeTree(dir: string, files: Record<string, string | Uint8Array>): Promise<void> {
  for (const [name, data] of Object.entries(files)) {
    const p = path.join(dir, name);
    await mkdir(path.dirname(p), { recursive: true });
    await writeFile(p, data);
  }
}

/** Deterministic pseudo-random bytes (incompressible enough for size checks). */
export function bytes(n: number, seed = 1): Uint8Array {
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
