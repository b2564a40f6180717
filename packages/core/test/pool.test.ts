import { describe, expect, it } from "vitest";
import { intOption, pool } from "../src/index.js";

const tick = (ms: number) => new Promise((r) => setTimeout(r, ms));

describe("pool", () => {
  it("runs every item, never more than `concurrency` at once, indices in order of the source", async () => {
    let running = 0;
    let peak = 0;
    const seen: [number, number][] = [];
    await pool([10, 11, 12, 13, 14, 15, 16], async (item, i) => {
      running++;
      peak = Math.max(peak, running);
      await tick(2 + (item % 3));
      seen.push([item, i]);
      running--;
    }, { concurrency: 3 });
    expect(peak).toBe(3);
    expect(seen.sort((a, b) => a[0] - b[0])).toEqual([[10, 0], [11, 1], [12, 2], [13, 3], [14, 4], [15, 5], [16, 6]]);
  });

  it("on the first failure takes no more items, settles those in flight, then rejects with it", async () => {
    const started: number[] = [];
    const settled: number[] = [];
    let onErrorSawInFlight = -1;
    const p = pool(Array.from({ length: 20 }, (_, i) => i), async (i) => {
      started.push(i);
      try {
        if (i === 2) {
          await tick(1);
          throw new Error("boom 2");
        }
        if (i === 3) {
          await tick(5);
          throw new Error("boom 3 (later, dropped)");
        }
        await tick(20);
      } finally {
        settled.push(i);
      }
    }, { concurrency: 4, onError: () => (onErrorSawInFlight = started.length - settled.length) });
    await expect(p).rejects.toThrow("boom 2");
    // 0, 1, 2, 3 started; 2 failed first, and nothing after it was taken.
    expect(started).toEqual([0, 1, 2, 3]);
    expect(settled.sort()).toEqual([0, 1, 2, 3]);
    // onError ran while the others were still in flight (the place to abort them).
    expect(onErrorSawInFlight).toBe(3);
  });

  it("pulls a function source one call at a time, in order, until it returns null", async () => {
    let pulling = false;
    let n = 0;
    const done: number[] = [];
    await pool(async () => {
      expect(pulling).toBe(false);
      pulling = true;
      await tick(1);
      pulling = false;
      return n < 9 ? n++ : null;
    }, async (item) => {
      await tick(3);
      done.push(item);
    }, { concurrency: 4 });
    expect(done.sort()).toEqual([0, 1, 2, 3, 4, 5, 6, 7, 8]);
  });

  it("a failing source fails the pool after the work in flight settled", async () => {
    let n = 0;
    let settled = 0;
    const p = pool(() => {
      if (n === 3) throw new TypeError("source broke");
      return n++;
    }, async () => {
      await tick(10);
      settled++;
    }, { concurrency: 2 });
    await expect(p).rejects.toThrow("source broke");
    expect(settled).toBe(3);
  });

  it("closes a generator it left part-way (its finally runs)", async () => {
    let closed = false;
    function* gen() {
      try {
        for (let i = 0; ; i++) yield i;
      } finally {
        closed = true;
      }
    }
    await expect(pool(gen(), (i) => {
      if (i === 5) throw new Error("stop");
    }, { concurrency: 2 })).rejects.toThrow("stop");
    expect(closed).toBe(true);
  });

  it("an aborted signal stops new items and rejects with its reason", async () => {
    const ac = new AbortController();
    const done: number[] = [];
    const p = pool([0, 1, 2, 3, 4, 5], async (i) => {
      if (i === 1) ac.abort(new Error("stopped by caller"));
      await tick(5);
      done.push(i);
    }, { concurrency: 2, signal: ac.signal });
    await expect(p).rejects.toThrow("stopped by caller");
    expect(done.sort()).toEqual([0, 1]);
  });

  it("refuses a concurrency below 1 with a TypeError naming it", async () => {
    await expect(pool([1], () => undefined, { concurrency: 0 })).rejects.toThrow(/concurrency must be an integer >= 1; got 0/);
  });
});

describe("intOption", () => {
  it("passes undefined and in-range integers, names the option and its range otherwise", () => {
    expect(intOption("partSize", undefined, 5)).toBeUndefined();
    expect(intOption("level", 9, 0, 9)).toBe(9);
    expect(() => intOption("level", 10, 0, 9)).toThrow(new TypeError("level must be an integer from 0 to 9; got 10"));
    expect(() => intOption("concurrency", 1.5, 1)).toThrow(new TypeError("concurrency must be an integer >= 1; got 1.5"));
    expect(() => intOption("concurrency", "4", 1)).toThrow(/concurrency must be an integer >= 1; got "4"/);
    expect(() => intOption("x", 2 ** 53, 0)).toThrow(TypeError);
  });
});
