/**
 * The one reader of Node `Readable`s in zipstream: core's sources and `@zipstream/s3` (response
 * bodies, the archive it uploads) both read streams through {@link chunksOf}.
 *
 * @module
 */
import type { Readable } from "node:stream";

/** True for a Node `Readable` (duck-typed: streams from other copies of `stream` count too). */
export function isNodeReadable(x: unknown): x is Readable {
  return typeof x === "object" && x !== null && typeof (x as Readable).on === "function" && typeof (x as Readable).pause === "function" && typeof (x as Readable).resume === "function";
}

/**
 * A chunk as a Buffer: other Uint8Arrays and ArrayBuffers viewed (not copied), strings as UTF-8;
 * anything else (an object-mode stream's values) is a TypeError.
 */
export function toBytes(c: unknown): Buffer {
  if (Buffer.isBuffer(c)) return c;
  if (c instanceof Uint8Array) return Buffer.from(c.buffer, c.byteOffset, c.byteLength);
  if (typeof c === "string") return Buffer.from(c, "utf8");
  if (c instanceof ArrayBuffer) return Buffer.from(c);
  throw new TypeError(`source produced a chunk of type ${c === null ? "null" : typeof c}; expected Uint8Array`);
}

/**
 * Iterates a Node `Readable`'s chunks one by one, as they were pushed (empty chunks skipped). A
 * Readable's own async iterator calls `read()`, which concatenates everything buffered into a
 * new Buffer: a copy of every byte (up to the stream's highWaterMark each time) and a large
 * allocation per call. On the S3 path that copy cost more CPU than the CRC-32 of the same bytes.
 *
 * Backpressure: the stream is paused while `highWaterMark` bytes wait here unread. Memory: at
 * most the stream's highWaterMark plus one chunk, besides the stream's own buffer. An error, a
 * destroy without end, or a chunk that is not bytes rejects the pending and later `next()`
 * calls; `return()` destroys the stream. A stream already ended yields nothing; one already
 * destroyed without ending fails.
 */
export function chunksOf(stream: Readable): AsyncIterator<Buffer> & AsyncIterable<Buffer> {
  const queue: Buffer[] = [];
  let head = 0;
  let queued = 0;
  let ended = stream.readableEnded === true;
  let failure: unknown = !ended && stream.destroyed ? (stream.errored ?? prematureClose()) : undefined;
  let wake: (() => void) | undefined;
  const limit = Math.max(1, stream.readableHighWaterMark ?? 64 * 1024);
  const notify = (): void => {
    const w = wake;
    wake = undefined;
    w?.();
  };
  const onData = (chunk: unknown): void => {
    let c: Buffer;
    try {
      c = toBytes(chunk);
    } catch (err) {
      failure ??= err;
      stream.pause();
      notify();
      return;
    }
    if (c.length === 0) return;
    queue.push(c);
    queued += c.length;
    if (queued >= limit) stream.pause();
    notify();
  };
  const onEnd = (): void => {
    ended = true;
    notify();
  };
  const onError = (err: unknown): void => {
    failure ??= err;
    notify();
  };
  const onClose = (): void => {
    if (!ended && failure === undefined) failure = prematureClose();
    notify();
  };
  stream.on("data", onData);
  stream.on("end", onEnd);
  stream.on("error", onError);
  stream.on("close", onClose);
  const detach = (): void => {
    stream.off("data", onData);
    stream.off("end", onEnd);
    stream.off("error", onError);
    stream.off("close", onClose);
    // A late error (say, the SDK destroying the body on abort) must not become an uncaught one.
    stream.on("error", () => undefined);
  };
  const it: AsyncIterator<Buffer> & AsyncIterable<Buffer> = {
    async next(): Promise<IteratorResult<Buffer>> {
      for (;;) {
        if (head < queue.length) {
          const c = queue[head]!;
          queue[head++] = undefined as unknown as Buffer;
          if (head > 1024 && head * 2 > queue.length) {
            queue.splice(0, head);
            head = 0;
          }
          queued -= c.length;
          if (queued < limit && stream.isPaused() && !ended && failure === undefined) stream.resume();
          return { done: false, value: c };
        }
        if (failure !== undefined) {
          detach();
          throw failure;
        }
        if (ended) {
          detach();
          return { done: true, value: undefined };
        }
        await new Promise<void>((resolve) => (wake = resolve));
      }
    },
    async return(): Promise<IteratorResult<Buffer>> {
      detach();
      if (!ended && typeof stream.destroy === "function") stream.destroy();
      return { done: true, value: undefined };
    },
    [Symbol.asyncIterator]() {
      return it;
    },
  };
  return it;
}

function prematureClose(): Error {
  return Object.assign(new Error("Premature close"), { code: "ERR_STREAM_PREMATURE_CLOSE" });
}
