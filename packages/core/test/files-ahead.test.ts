// Files read from disk: the pipelined FileReader (one read in flight, EOF proved by a read one
// byte longer than the size) and the window of files opened ahead while a stored file streams.
import { randomBytes } from "node:crypto";
import { readdirSync } from "node:fs";
import { mkdir, mkdtemp, readdir, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { zipStream, type ZipEntry } from "../src/index.js";
import { FILE_CHUNK_SIZE, SYNC_FILE_CHUNK_SIZE } from "../src/sources.js";
import { collect, collectError, pythonRead } from "./helpers.js";

let dir: string;
beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), "zipstream-files-ahead-"));
});
afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

const b64 = (b: Uint8Array): string => Buffer.from(b).toString("base64");
const openFds = async (): Promise<number> => (await readdir("/proc/self/fd")).length;
const settle = (ms = 30): Promise<void> => new Promise((r) => setTimeout(r, ms));

describe("files read from disk", () => {
  it("sizes around the read size, declared or not, store and deflate, round-trip through Python", async () => {
    const sizes = [0, 1, 100, FILE_CHUNK_SIZE - 1, FILE_CHUNK_SIZE, FILE_CHUNK_SIZE + 1, 2 * FILE_CHUNK_SIZE, 2 * FILE_CHUNK_SIZE + 7];
    const entries: ZipEntry[] = [];
    const expected = new Map<string, Buffer>();
    for (const [i, size] of sizes.entries()) {
      const data = randomBytes(size);
      const path = join(dir, `f${i}.bin`);
      await writeFile(path, data);
      for (const declared of [true, false]) {
        for (const method of ["store", "deflate"] as const) {
          const name = `${size}-${declared ? "declared" : "fstat"}-${method}`;
          expected.set(name, data);
          entries.push({ name, path, method, ...(declared ? { size } : {}) });
        }
      }
    }
    const z = zipStream(entries);
    const py = await pythonRead(await collect(z));
    expect(py.bad).toBeNull();
    expect(py.entries.map((e) => e.name)).toEqual([...expected.keys()]);
    for (const e of py.entries) expect(e.data === b64(expected.get(e.name)!), e.name).toBe(true);
    expect(z.stats.bytesIn).toBe([...expected.values()].reduce((n, d) => n + d.length, 0));
  });

  it("a file longer or shorter than its declared size fails ERR_SIZE_MISMATCH, naming it (both fileIo modes)", async () => {
    const path = join(dir, "eleven.txt");
    await writeFile(path, "hello world");
    for (const [fileIo, chunk] of [
      ["async", FILE_CHUNK_SIZE],
      ["sync", SYNC_FILE_CHUNK_SIZE],
    ] as const) {
      // Around the read size: the read that should reach the end asks for one byte more.
      const big = join(dir, `${fileIo}-chunk-plus-one.bin`);
      await writeFile(big, randomBytes(chunk + 1));
      for (const [p, size] of [
        [path, 10],
        [path, 12],
        [path, 0],
        [big, chunk],
        [big, chunk + 2],
      ] as const) {
        for (const method of ["store", "deflate"] as const) {
          const { error } = await collectError(zipStream([{ name: "ok", source: "fine" }, { name: "m", path: p, size, method }], { fileIo }));
          expect(error.code, `${fileIo} ${size} ${method}`).toBe("ERR_SIZE_MISMATCH");
          expect(error.entry).toBe("m");
        }
      }
    }
  });

  it("a directory given as a file fails ERR_SOURCE, with or without a declared size", async () => {
    const sub = join(dir, "a-directory");
    await mkdir(sub, { recursive: true });
    for (const size of [undefined, 5]) {
      const { error } = await collectError(zipStream([{ name: "d.bin", path: sub, ...(size === undefined ? {} : { size }) }], { method: "store" }));
      expect(error.code).toBe("ERR_SOURCE");
      expect(error.entry).toBe("d.bin");
    }
  });
});

describe("files opened ahead", () => {
  async function files(n: number, size: number): Promise<string[]> {
    const paths: string[] = [];
    for (let i = 0; i < n; i++) {
      const p = join(dir, `w${n}-${size}-${i}.bin`);
      await writeFile(p, Buffer.alloc(size, i));
      paths.push(p);
    }
    return paths;
  }

  it("pulls one entry at a time, and a slow consumer bounds how many files are pulled ahead", async () => {
    const paths = await files(60, 4096);
    let pulled = 0;
    let inFlight = 0;
    let overlapped = false;
    const iterable: AsyncIterable<ZipEntry> = {
      [Symbol.asyncIterator]() {
        let i = 0;
        return {
          async next() {
            if (inFlight > 0) overlapped = true;
            inFlight++;
            await settle(1);
            inFlight--;
            if (i >= paths.length) return { done: true, value: undefined };
            pulled++;
            const p = paths[i]!;
            return { done: false, value: { name: `e${i++}`, path: p, method: "store" } };
          },
        };
      },
    };
    const written: string[] = [];
    const z = zipStream(iterable, { highWaterMark: 1, onEntry: (e) => written.push(e.name) });
    const it = z[Symbol.asyncIterator]();
    await it.next();
    for (let i = 0; i < 10; i++) await settle(5);
    // The first entry, plus at most the window (8 files) pulled ahead.
    expect(pulled).toBeGreaterThan(1);
    expect(pulled).toBeLessThanOrEqual(1 + 8 + 1);
    const rest = await collect(z);
    expect(rest.length).toBeGreaterThan(0);
    expect(overlapped).toBe(false);
    expect(written).toEqual(paths.map((_, i) => `e${i}`));
  });

  it("a missing file in the window fails at its turn, naming it, after the files before it are complete", async () => {
    const paths = await files(6, 3000);
    const entries: ZipEntry[] = paths.map((p, i) => ({ name: `e${i}`, path: p, size: 3000, method: "store" }));
    entries.splice(3, 0, { name: "missing", path: join(dir, "no-such-file"), size: 10, method: "store" });
    const done: string[] = [];
    const { error, bytes } = await collectError(zipStream(entries, { onEntry: (e) => done.push(e.name) }));
    expect(error.code).toBe("ERR_SOURCE");
    expect(error.entry).toBe("missing");
    expect(done).toEqual(["e0", "e1", "e2"]);
    expect(bytes.includes(Buffer.from([0x50, 0x4b, 0x05, 0x06]))).toBe(false);
  });

  it("a source factory after files is not called before its turn", async () => {
    const paths = await files(4, 2000);
    const events: string[] = [];
    const entries: ZipEntry[] = [
      ...paths.map((p, i) => ({ name: `f${i}`, path: p, method: "store" as const })),
      {
        name: "factory",
        source: () => {
          events.push("factory called");
          return [Buffer.from("late")];
        },
      },
      { name: "f-after", path: paths[0]!, method: "store" },
    ];
    await collect(zipStream(entries, { onEntry: (e) => events.push(e.name) }));
    expect(events).toEqual(["f0", "f1", "f2", "f3", "factory called", "factory", "f-after"]);
  });

  it("destroying the archive mid-way closes every file opened ahead", async () => {
    const paths = await files(40, 64 * 1024);
    const before = await openFds();
    const z = zipStream(
      paths.map((p, i) => ({ name: `e${i}`, path: p, method: "store" as const })),
      { highWaterMark: 1 },
    );
    const it = z[Symbol.asyncIterator]();
    await it.next();
    await settle();
    const during = await openFds();
    expect(during).toBeGreaterThan(before + 1); // several files are open ahead
    z.destroy();
    for (let i = 0; i < 50 && (await openFds()) > before; i++) await settle(10);
    expect(await openFds()).toBe(before);
  });

  it("every file is closed when the archive completes", async () => {
    const paths = await files(30, 1000);
    const before = await openFds();
    const zip = await collect(zipStream(paths.map((p, i) => ({ name: `e${i}`, path: p, method: "store" as const }))));
    expect(zip.length).toBeGreaterThan(30 * 1000);
    expect(await openFds()).toBe(before);
  });
});

describe("the open-ahead window over a long archive", () => {
  it("refills after the writer catches up with a slow listing (the window's byte count does not leak)", async () => {
    const n = 40;
    const paths: string[] = [];
    for (let i = 0; i < n; i++) {
      const p = join(dir, `late-${i}.bin`);
      await writeFile(p, Buffer.alloc(600 * 1024, i));
      paths.push(p);
    }
    // Every fifth entry is slow to list: the writer catches up and takes an entry whose pull is
    // still in flight; the others arrive at once and the window fills again.
    const list: AsyncIterable<ZipEntry> = {
      async *[Symbol.asyncIterator]() {
        for (const [i, p] of paths.entries()) {
          await settle(i % 5 === 0 ? 60 : 0);
          yield { name: `e${i}`, path: p, size: 600 * 1024, method: "store" };
        }
      },
    };
    const base = (await readdir("/proc/self/fd")).length;
    let maxOpenLate = 0;
    const z = zipStream(list, {
      highWaterMark: 1,
      onEntry: (e) => {
        if (Number(e.name.slice(1)) >= 30) maxOpenLate = Math.max(maxOpenLate, readdirSync("/proc/self/fd").length - base);
      },
    });
    const it = z[Symbol.asyncIterator]();
    for (;;) {
      const r = await it.next();
      if (r.done) break;
      await settle(5); // slower than the listing between its pauses
    }
    // Files are open ahead late in the archive (with the count leaking, the window shut for good
    // after about four catch-ups).
    expect(maxOpenLate).toBeGreaterThanOrEqual(2);
  });
});
