// chunksOf: a Readable read chunk by chunk, without the concatenation its own iterator does.
import { PassThrough, Readable } from "node:stream";
import { describe, expect, it } from "vitest";
import { chunksOf } from "../src/chunks.js";

const tick = (): Promise<void> => new Promise((r) => setImmediate(r));

describe("chunksOf", () => {
  it("yields the very buffers pushed, in order, where the stream's own iterator would concatenate", async () => {
    const pushed = [Buffer.from("ab"), Buffer.from("cde"), Buffer.alloc(0), Buffer.from("f")];
    const s = new PassThrough({ highWaterMark: 1024 });
    for (const b of pushed) s.write(b);
    s.end();
    const got: Buffer[] = [];
    for await (const c of chunksOf(s)) got.push(c);
    expect(got.length).toBe(3);
    expect(got[0]).toBe(pushed[0]);
    expect(got[1]).toBe(pushed[1]);
    expect(got[2]).toBe(pushed[3]);
    // The control: Node's iterator hands back one concatenated buffer here.
    const s2 = new PassThrough({ highWaterMark: 1024 });
    for (const b of pushed) s2.write(b);
    s2.end();
    const native: Buffer[] = [];
    for await (const c of s2) native.push(c as Buffer);
    expect(native.length).toBeLessThan(3);
  });

  it("pauses the stream while a highWaterMark of chunks waits unread, and resumes as they are taken", async () => {
    let produced = 0;
    const s = new Readable({
      highWaterMark: 4096,
      read() {
        produced += 1024;
        this.push(Buffer.alloc(1024, 1));
      },
    });
    const it = chunksOf(s);
    await it.next();
    for (let i = 0; i < 20; i++) await tick();
    // queue limit (4 KiB) + the stream's own buffer (4 KiB) + a chunk in flight
    expect(produced).toBeLessThanOrEqual(4096 * 2 + 2048);
    const before = produced;
    for (let i = 0; i < 10; i++) await it.next();
    for (let i = 0; i < 20; i++) await tick();
    expect(produced).toBeGreaterThan(before);
    await it.return!();
    expect(s.destroyed).toBe(true);
  });

  it("an error rejects the pending next(), and later ones", async () => {
    const s = new PassThrough();
    const it = chunksOf(s);
    const pending = it.next();
    const boom = new Error("boom");
    s.destroy(boom);
    await expect(pending).rejects.toBe(boom);
  });

  it("a destroy without end is a premature close, not a clean end", async () => {
    const s = new PassThrough();
    s.write(Buffer.from("x"));
    const it = chunksOf(s);
    expect((await it.next()).value?.toString()).toBe("x");
    s.destroy();
    await expect(it.next()).rejects.toMatchObject({ code: "ERR_STREAM_PREMATURE_CLOSE" });
  });

  it("an error after the iterator was returned is not an uncaught exception", async () => {
    const s = new PassThrough();
    const it = chunksOf(s);
    await it.return!();
    s.emit("error", new Error("late"));
    await tick();
    expect(s.destroyed).toBe(true);
  });
});
