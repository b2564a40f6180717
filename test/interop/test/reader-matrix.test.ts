// The reader matrix: every archive kind the encoder writes, read by every reader, one verdict per
// cell, printed as a table (the one in docs/output-structure.md). On demand only
// (INTEROP_MATRIX=1, about 2 minutes): core.test.ts covers the same cells in CI. Each cell is
// checked against the known limits listed in KNOWN_LIMITS, so a reader that starts or stops
// failing makes this test fail.
import { join } from "node:path";
import { crc32 } from "node:zlib";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { ZipEntry, ZipOptions } from "@zipstream/core";
import { ALL_READERS, verifyZip, type ExpectedEntry, type ReaderName } from "../src/index.js";
import { tempDir, writeArchive } from "./helpers.js";

let dir: string;
let cleanup: () => Promise<void>;
beforeAll(async () => {
  ({ dir, cleanup } = await tempDir("matrix"));
});
afterAll(async () => {
  await cleanup?.();
});

const MTIME = new Date("2024-03-05T06:07:09Z");
const data = Buffer.from("reader matrix ".repeat(3_000));
const stream = (): (() => Buffer[]) => () => [data.subarray(0, 10_000), data.subarray(10_000)];

interface Kind {
  name: string;
  entries: () => ZipEntry[];
  expected: ExpectedEntry[];
  options?: ZipOptions;
  password?: string;
}

const two = (e: (name: string) => ZipEntry): { entries: () => ZipEntry[]; expected: ExpectedEntry[] } => ({
  entries: () => [e("a.txt"), e("b.txt")],
  expected: [
    { name: "a.txt", data, mtime: MTIME },
    { name: "b.txt", data, mtime: MTIME },
  ],
});

const KINDS: Kind[] = [
  { name: "store, size+crc32 declared", ...two((name) => ({ name, source: data, size: data.length, crc32: crc32(data), method: "store", mtime: MTIME })) },
  { name: "store, size unknown", ...two((name) => ({ name, source: stream(), method: "store", mtime: MTIME })) },
  { name: "deflate, size declared", ...two((name) => ({ name, source: stream(), size: data.length, method: "deflate", mtime: MTIME })) },
  { name: "deflate, size unknown", ...two((name) => ({ name, source: stream(), method: "deflate", mtime: MTIME })) },
  { name: "zip64 always, sizes declared", ...two((name) => ({ name, source: data, method: "store", mtime: MTIME })), options: { zip64: "always" } },
  { name: "AES, deflate, size unknown", ...two((name) => ({ name, source: stream(), method: "deflate", mtime: MTIME })), options: { password: "pw" }, password: "pw" },
  {
    name: "mtime 2040 and 1960",
    entries: () => [
      { name: "future.txt", source: "f", mtime: new Date("2040-06-01T10:00:01Z") },
      { name: "ancient.txt", source: "a", mtime: new Date("1960-06-01T10:00:01Z") },
    ],
    expected: [
      { name: "future.txt", data: Buffer.from("f"), mtime: new Date("2040-06-01T10:00:01Z") },
      { name: "ancient.txt", data: Buffer.from("a"), mtime: new Date("1980-01-01T00:00:00Z") },
    ],
  },
];

/** Cells expected to fail with the current encoder: the documented limits of these readers. */
const KNOWN_LIMITS: Record<string, ReaderName[]> = {
  "store, size unknown": ["java-stream", "commons-stream"],
  "deflate, size unknown": ["java-stream"],
  "zip64 always, sizes declared": ["unar"],
  // Only 7-Zip and libarchive decrypt WinZip AES here; the other readers list it (The Unarchiver
  // 1.10.1 reports a wrong password if asked to decrypt), but the streaming ones cannot list it,
  // and the JDK checker (ZipCheck.java) has no listing mode: it reads every entry's data.
  "AES, deflate, size unknown": ["java", "java-stream", "commons-stream"],
};

describe.runIf(process.env.INTEROP_MATRIX === "1")("reader matrix", () => {
  it("every kind by every reader", async () => {
    const table: string[] = [`| archive | ${ALL_READERS.join(" | ")} |`, `|---|${ALL_READERS.map(() => "---").join("|")}|`];
    const unexpected: string[] = [];
    for (const kind of KINDS) {
      const path = join(dir, `${kind.name.replace(/\W+/g, "-")}.zip`);
      await writeArchive(path, kind.entries(), kind.options);
      const cells: string[] = [];
      for (const reader of ALL_READERS) {
        let verdict = "ok";
        try {
          await verifyZip(path, kind.expected, { readers: [reader], ...(kind.password ? { password: kind.password } : {}) });
        } catch (e) {
          verdict = "FAIL";
          console.log(`${kind.name} / ${reader}: ${String((e as Error).message).split("\n").slice(1, 4).join(" | ").slice(0, 300)}`);
        }
        cells.push(verdict);
        const limited = KNOWN_LIMITS[kind.name]?.includes(reader) ?? false;
        if ((verdict === "FAIL") !== limited) unexpected.push(`${kind.name} / ${reader}: ${verdict}`);
      }
      table.push(`| ${kind.name} | ${cells.join(" | ")} |`);
    }
    console.log(table.join("\n"));
    expect(unexpected).toEqual([]);
  }, 600_000);
});
