// `fileIo: "sync"`: path entries read with openSync/readSync/closeSync on the calling thread. The
// archive must be byte-for-byte the one the default (thread pool) mode writes, readers must accept
// it, and every failure must carry the same typed error, with no descriptor left open. (Declared
// sizes that do not match the file: files-ahead.test.ts, for both modes.)
import { randomBytes } from "node:crypto";
import { appendFileSync, truncateSync } from "node:fs";
import { mkdir, mkdtemp, readdir, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Writable } from "node:stream";
import { pipeline } from "node:stream/promises";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { zipStream, type FileIo, type ZipEntry, type ZipOptions } from "../src/index.js";
import { FILE_CHUNK_SIZE, SYNC_FILE_CHUNK_SIZE, SYNC_TURN_BYTES, SYNC_TURN_READS } from "../src/sources.js";
import { collect, collectError, pythonRead, unzipTest } from "./helpers.js";

let dir: string;
beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), "zipstream-file-io-"));
});
afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

const openFds = async (): Promise<number> => (await readdir("/proc/self/fd")).length;
const settle = (ms = 30): Promise<void> => new Promise((r) => setTimeout(r, ms));
const EOCD = Buffer.from([0x50, 0x4b, 0x05, 0x06]);

/** Deterministic options (salts, times), so two runs of the same entries give the same bytes. */
function fixed(fileIo: FileIo, extra: ZipOptions = {}): ZipOptions {
  let salt = 0;
  return {
    fileIo,
    defaultMtime: new Date("2026-01-02T03:04:05Z"),
    randomBytes: (n) => Buffer.alloc(n, ++salt),
    ...extra,
  };
}

describe('fileIo: "sync"', () => {
  it("writes the same bytes as the default mode, and readers accept them", async () => {
    const sizes = [
      0,
      1,
      100,
      SYNC_FILE_CHUNK_SIZE - 1,
      SYNC_FILE_CHUNK_SIZE,
      SYNC_FILE_CHUNK_SIZE + 1,
      FILE_CHUNK_SIZE,
      FILE_CHUNK_SIZE + 1,
      3 * SYNC_FILE_CHUNK_SIZE + 7,
    ];
    const files: { path: string; data: Buffer }[] = [];
    for (const [i, size] of sizes.entries()) {
      const data = randomBytes(size);
      const path = join(dir, `same-${i}.bin`);
      await writeFile(path, data);
      files.push({ path, data });
    }
    const entries = (): ZipEntry[] => {
      const out: ZipEntry[] = [{ name: "in-memory.txt", source: "not a file" }];
      for (const [i, { path, data }] of files.entries()) {
        for (const declared of [true, false]) {
          for (const method of ["store", "deflate"] as const) {
            out.push({ name: `${i}-${data.length}-${declared ? "declared" : "fstat"}-${method}`, path, method, ...(declared ? { size: data.length } : {}) });
          }
        }
      }
      out.push({ name: "encrypted.bin", path: files[5]!.path, method: "store", password: "pw" });
      return out;
    };
    const asyncZip = await collect(zipStream(entries(), fixed("async")));
    const syncZip = await collect(zipStream(entries(), fixed("sync")));
    expect(syncZip.length).toBe(asyncZip.length);
    expect(syncZip.equals(asyncZip)).toBe(true);

    // The same archive with only unencrypted entries, for readers without AES.
    const plain = entries().filter((e) => e.password === undefined);
    const zip = await collect(zipStream(plain, fixed("sync")));
    await unzipTest(zip);
    const py = await pythonRead(zip);
    expect(py.bad).toBeNull();
    expect(py.entries.length).toBe(plain.length);
    for (const e of py.entries.slice(1)) {
      const i = Number(e.name.split("-")[0]);
      expect(e.data === files[i]!.data.toString("base64"), e.name).toBe(true);
    }
    expect(py.entries[0]!.data).toBe(Buffer.from("not a file").toString("base64"));
  });

  it("a missing file fails ERR_SOURCE at its turn, naming it, with no end records", async () => {
    const ok = join(dir, "ok.txt");
    await writeFile(ok, "fine");
    for (const size of [undefined, 10]) {
      const done: string[] = [];
      const { error, bytes } = await collectError(
        zipStream(
          [
            { name: "ok", path: ok, method: "store" },
            { name: "missing", path: join(dir, "no-such-file"), method: "store", ...(size === undefined ? {} : { size }) },
          ],
          { fileIo: "sync", onEntry: (e) => done.push(e.name) },
        ),
      );
      expect(error.code).toBe("ERR_SOURCE");
      expect(error.entry).toBe("missing");
      expect(error.cause?.code).toBe("ENOENT");
      expect(done).toEqual(["ok"]);
      expect(bytes.includes(EOCD)).toBe(false);
    }
  });

  it("a file that grows or shrinks while it is read fails ERR_SIZE_MISMATCH (size from fstat)", async () => {
    for (const change of ["grow", "shrink"] as const) {
      const path = join(dir, `changing-${change}.bin`);
      await writeFile(path, randomBytes(4 * SYNC_FILE_CHUNK_SIZE));
      const z = zipStream([{ name: "changing", path, method: "store" }], { fileIo: "sync", highWaterMark: 1 });
      const it = z[Symbol.asyncIterator]();
      await it.next(); // the local header
      await it.next(); // the first chunk: the size came from fstat before it
      if (change === "grow") appendFileSync(path, "more");
      else truncateSync(path, SYNC_FILE_CHUNK_SIZE + 5);
      let error: any;
      try {
        for (;;) if ((await it.next()).done) break;
      } catch (e) {
        error = e;
      }
      expect(error?.code, change).toBe("ERR_SIZE_MISMATCH");
      expect(error.entry).toBe("changing");
    }
  });

  it("a directory given as a file fails ERR_SOURCE, with or without a declared size", async () => {
    const sub = join(dir, "a-directory");
    await mkdir(sub, { recursive: true });
    const before = await openFds();
    for (const size of [undefined, 5]) {
      const { error } = await collectError(zipStream([{ name: "d.bin", path: sub, ...(size === undefined ? {} : { size }) }], { method: "store", fileIo: "sync" }));
      expect(error.code).toBe("ERR_SOURCE");
      expect(error.entry).toBe("d.bin");
    }
    await settle();
    expect(await openFds()).toBe(before);
  });

  it("opens no file ahead of its turn, and closes every file (on completion and on destroy)", async () => {
    const paths: string[] = [];
    for (let i = 0; i < 12; i++) {
      const p = join(dir, `ahead-${i}.bin`);
      await writeFile(p, Buffer.alloc(3 * SYNC_FILE_CHUNK_SIZE, i));
      paths.push(p);
    }
    const entries = (): ZipEntry[] => paths.map((p, i) => ({ name: `e${i}`, path: p, method: "store" as const }));
    const before = await openFds();
    const z = zipStream(entries(), { fileIo: "sync", highWaterMark: 1 });
    const it = z[Symbol.asyncIterator]();
    await it.next(); // the local header
    await it.next(); // the first of three chunks
    await settle();
    // Only the file being written is open (the default mode opens several ahead here).
    expect(await openFds()).toBe(before + 1);
    z.destroy();
    await settle();
    expect(await openFds()).toBe(before);

    const zip = await collect(zipStream(entries(), { fileIo: "sync" }));
    expect(zip.length).toBeGreaterThan(12 * 3 * SYNC_FILE_CHUNK_SIZE);
    expect(await openFds()).toBe(before);
  });

  it("gives the event loop a turn while it reads, even into a consumer that never pushes back", async () => {
    // A consumer that takes every chunk synchronously never fills the output buffer: without
    // turns, the whole archive would be written in one macrotask (no timer, signal or abort).
    const big: ZipEntry[] = [];
    for (let i = 0; i < 3; i++) {
      const p = join(dir, `turn-${i}.bin`);
      await writeFile(p, Buffer.alloc(SYNC_TURN_BYTES, i));
      big.push({ name: `big-${i}`, path: p });
    }
    const small: ZipEntry[] = [];
    const tiny = join(dir, "turn-tiny.txt");
    await writeFile(tiny, "x");
    for (let i = 0; i < 3 * SYNC_TURN_READS; i++) small.push({ name: `small-${i}`, path: tiny });
    for (const entries of [big, small]) {
      let turns = 0;
      let stop = false;
      const tick = (): void => {
        turns++;
        if (!stop) setImmediate(tick);
      };
      setImmediate(tick);
      let bytes = 0;
      await pipeline(
        zipStream(entries, { fileIo: "sync", method: "store" }),
        new Writable({
          write(chunk: Buffer, _enc, cb) {
            bytes += chunk.length;
            cb();
          },
        }),
      );
      stop = true;
      expect(bytes).toBeGreaterThan(0);
      // At least one turn per SYNC_TURN_BYTES read or SYNC_TURN_READS reads (3 of either here).
      expect(turns, entries[0]!.name).toBeGreaterThanOrEqual(2);
    }
  });

  it("rejects an unknown fileIo with a TypeError naming the option", () => {
    expect(() => zipStream([], { fileIo: "threads" as FileIo })).toThrow(TypeError);
    expect(() => zipStream([], { fileIo: "threads" as FileIo })).toThrow(/"fileIo"/);
  });
});
