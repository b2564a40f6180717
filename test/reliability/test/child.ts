import { spawn, type ChildProcess } from "node:child_process";
import { createInterface } from "node:readline";
import { fileURLToPath } from "node:url";

export const CHILD_SCRIPT = fileURLToPath(new URL("../fixtures/zip-child.mjs", import.meta.url));

export interface ChildSample {
  type: "sample";
  t: number;
  rss: number;
  heapUsed: number;
  external: number;
  arrayBuffers: number;
  entries: number;
  bytesIn: number;
  bytesOut: number;
  partsUploaded: number;
}
export interface ChildGcSample {
  type: "gcSample";
  t: number;
  heapUsed: number;
  rss: number;
  entries: number;
}
export type ChildLine =
  | ChildSample
  | ChildGcSample
  | { type: "done"; result: { entries: number; size: number; parts: number }; seconds: number; sdkRetries: number; commands: number }
  | { type: "error"; code?: string; message: string; sdkRetries: number };

/** Spawns the zip child; `lines` collects its JSON output; `exit` resolves with code/signal. */
export function spawnZipChild(config: unknown, nodeArgs: string[] = []) {
  const child: ChildProcess = spawn(process.execPath, [...nodeArgs, CHILD_SCRIPT, JSON.stringify(config)], {
    cwd: fileURLToPath(new URL("..", import.meta.url)),
    stdio: ["ignore", "pipe", "pipe"],
  });
  const lines: ChildLine[] = [];
  let stderr = "";
  child.stderr!.on("data", (d: Buffer) => (stderr += d.toString()));
  createInterface({ input: child.stdout! }).on("line", (l) => {
    try {
      lines.push(JSON.parse(l) as ChildLine);
    } catch {
      stderr += `${l}\n`;
    }
  });
  const exit = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) =>
    child.once("close", (code: number | null, signal: NodeJS.Signals | null) => resolve({ code, signal })),
  );
  return { child, lines, exit, stderr: () => stderr };
}
