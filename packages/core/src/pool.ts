/**
 * The one worker pool of zipstream: part uploads, HEADs, verify reads, plan files, segments and
 * the CLI's batch jobs all run through {@link pool}. See docs/architecture.md ("Worker pools")
 * for why it is ours and not p-limit.
 *
 * @module
 */

import { intOption } from "./options.js";

const DONE: unique symbol = Symbol("done");

/** Options of {@link pool}. */
export interface PoolOptions {
  /** Calls of `work` in flight at once (at least 1). */
  concurrency: number;
  /**
   * Called once, synchronously, with the first failure (of `work` or of the source), before the
   * pool waits for the calls still running: the place to abort their requests.
   */
  onError?: (err: unknown) => void;
  /** Once aborted, no new item is taken; the pool rejects with its reason after the rest settled. */
  signal?: AbortSignal;
}

/**
 * Runs `work` over the items of `source`, `concurrency` at once, each worker pulling the next item
 * when it is free. `source` is an array or (async) iterable, or a function returning the next item
 * or `null` at the end. Items are taken one at a time, in order, never concurrently, so a source
 * that reads a stream (the parts of an upload) is read in order and only as fast as workers free
 * up: memory stays bounded by `concurrency` items.
 *
 * The first failure stops the pool from taking more items; it then waits until every call in
 * flight has settled and rejects with that failure (later failures are dropped). So when it
 * returns or rejects, nothing it started is still running: the caller may clean up.
 */
export async function pool<T>(
  source: Iterable<T> | AsyncIterable<T> | (() => T | null | Promise<T | null>),
  work: (item: T, index: number) => unknown,
  options: PoolOptions,
): Promise<void> {
  const { concurrency, signal } = options;
  intOption("concurrency", concurrency ?? NaN, 1);
  let failed = false;
  let failure: unknown;
  const fail = (err: unknown) => {
    if (failed) return;
    failed = true;
    failure = err;
    options.onError?.(err);
  };
  const stopped = () => failed || signal?.aborted === true;

  let pull: () => T | typeof DONE | Promise<T | typeof DONE>;
  let iterator: Iterator<T> | AsyncIterator<T> | undefined;
  if (typeof source === "function") {
    pull = async () => (await source()) ?? DONE;
  } else if (Symbol.asyncIterator in source) {
    const it = (iterator = source[Symbol.asyncIterator]());
    pull = async () => {
      const r = await it.next();
      return r.done ? DONE : r.value;
    };
  } else {
    const it = (iterator = source[Symbol.iterator]());
    pull = () => {
      const r = it.next();
      return r.done ? DONE : r.value;
    };
  }

  // Serialises the source: each take waits for the one before it.
  let chain: Promise<unknown> = Promise.resolve();
  let index = 0;
  let exhausted = false;
  const take = (): Promise<{ item: T; index: number } | undefined> => {
    const p = chain.then(async () => {
      if (stopped() || exhausted) return undefined;
      const v = await pull();
      if (v === DONE) {
        exhausted = true;
        return undefined;
      }
      return { item: v, index: index++ };
    });
    chain = p.catch(() => undefined);
    return p;
  };
  const worker = async () => {
    while (!stopped()) {
      try {
        const next = await take();
        if (next === undefined || stopped()) return;
        await work(next.item, next.index);
      } catch (err) {
        fail(err);
        return;
      }
    }
  };
  const workers = Array.isArray(source) ? Math.min(concurrency, source.length) : concurrency;
  // Workers never reject, so this waits for every call in flight (allSettled semantics).
  await Promise.all(Array.from({ length: workers }, worker));
  // A generator left part-way gets to run its finally blocks.
  if (!exhausted && iterator?.return) await Promise.resolve(iterator.return()).catch(() => undefined);
  if (failed) throw failure;
  if (signal?.aborted) throw signal.reason;
}
