// Shared helpers of the interop suite: source shapes, deterministic data, archive writing.
import { createHash, randomBytes } from "node:crypto";
import { mkdtemp, rm, stat, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Readable } from "node:stream";
import { zipStream, type ZipEntry, type ZipOptions, type ZipSource, type ZipSourceFactory } from "@zipstream/core";
import { writeToFile } from "../src/index.js";

/** Every shape a member's bytes can take (ZipEntry.source or .path). */
export const SOURCE_KINDS = [
  "buffer",
  "string",
  "readable",
  "web",
  "asyncgen",
  "iterable",
  "factory",
  "async-factory",
  "path",
] as const;
export type SourceKind = (typeof SOURCE_KINDS)[number];

/** Splits data into uneven chunks so that chunk boundaries never line up with anything. */
export function chunks(data: Uint8Array, size = 7_001): Uint8Array[] {
  const out: Uint8Array[] = [];
  for (let i = 0; i < data.length; i += size) out.push(data.subarray(i, i + size));
  return out;
}

/** Data set used per source kind: incompressible, compressible, one byte and empty. */
export function sampleContents(): { label: string; data: Buffer }[] {
  return [
    { label: "random", data: randomBytes(150_000) },
    { label: "text", data: Buffer.from("The quick brown fox jumps over the lazy dog. ".repeat(3_000)) },
    { label: "one", data: Buffer.from("x") },
    { label: "empty", data: Buffer.alloc(0) },
  ];
}

/**
 * Builds the `source`/`path` part of an entry holding `data` in the given shape. `string`
 * needs UTF-8 text: binary data is passed as latin1-free hex text instead (the caller gets the
 * bytes that will actually be stored back).
 */
export async function sourceOf(kind: SourceKind, data: Buffer, dir: string): Promise<{ entry: Pick<ZipEntry, "source" | "path">; bytes: Buffer }> {
  switch (kind) {
    case "buffer":
      return { entry: { source: new Uint8Array(data) }, bytes: data };
    case "string": {
      const text = data.toString("base64");
      return { entry: { source: text }, bytes: Buffer.from(text, "utf8") };
    }
    case "readable":
      return { entry: { source: Readable.from(chunks(data)) }, bytes: data };
    case "web": {
      const parts = chunks(data);
      const web = new ReadableStream<Uint8Array>({
        pull(controller) {
          const next = parts.shift();
          if (next) controller.enqueue(next);
          else controller.close();
        },
      });
      return { entry: { source: web }, bytes: data };
    }
    case "asyncgen":
      return {
        entry: {
          source: (async function* () {
            for (const c of chunks(data)) yield c;
          })(),
        },
        bytes: data,
      };
    case "iterable":
      return { entry: { source: chunks(data) }, bytes: data };
    case "factory": {
      const f: ZipSourceFactory = () => Readable.from(chunks(data));
      return { entry: { source: f }, bytes: data };
    }
    case "async-factory": {
      const f: ZipSourceFactory = async (): Promise<ZipSource> => data;
      return { entry: { source: f }, bytes: data };
    }
    case "path": {
      const p = join(dir, `src-${createHash("sha1").update(data).digest("hex")}-${Math.random().toString(36).slice(2)}`);
      await writeFile(p, data);
      return { entry: { path: p }, bytes: data };
    }
  }
}

/** Streams an archive to a file (never to memory). Resolves with the file size. */
export async function writeArchive(path: string, entries: Iterable<ZipEntry> | AsyncIterable<ZipEntry>, options?: ZipOptions): Promise<number> {
  const n = await writeToFile(zipStream(entries, options), path);
  const st = await stat(path);
  if (st.size !== n) throw new Error(`wrote ${n} bytes but the file has ${st.size}`);
  return n;
}

export async function tempDir(prefix: string): Promise<{ dir: string; cleanup: () => Promise<void> }> {
  const dir = await mkdtemp(join(tmpdir(), `zipstream-interop-${prefix}-`));
  return { dir, cleanup: () => rm(dir, { recursive: true, force: true }) };
}
