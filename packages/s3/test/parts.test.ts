import { describe, expect, it } from "vitest";
import { DEFAULT_PART_SIZE, MAX_OBJECT_SIZE, MAX_PARTS, MAX_PART_SIZE, MIN_PART_SIZE, planParts, type PartPlan } from "../src/parts.js";

const MiB = 1024 * 1024;

/** Walks a plan the way the uploader does and checks every S3 limit. */
function walk(plan: PartPlan, total: number): { parts: number; last: number } {
  let sent = 0;
  let n = 0;
  let last = 0;
  while (sent < total) {
    n++;
    const size = Math.min(plan.sizeOf(n), total - sent);
    if (plan.sizeOf(n) < MIN_PART_SIZE || plan.sizeOf(n) > MAX_PART_SIZE) throw new Error(`part ${n}: ${plan.sizeOf(n)} bytes`);
    sent += size;
    last = size;
    if (n > MAX_PARTS) break;
  }
  return { parts: n, last };
}

describe("planParts, known size", () => {
  it("an archive up to one part is a single PutObject", () => {
    for (const total of [0, 1, DEFAULT_PART_SIZE]) {
      const p = planParts(total);
      expect(p.singlePut).toBe(true);
      expect(p.partCount).toBe(1);
    }
    expect(planParts(DEFAULT_PART_SIZE + 1).singlePut).toBe(false);
    expect(planParts(DEFAULT_PART_SIZE + 1).partCount).toBe(2);
  });

  it("keeps the requested part size while 10,000 parts suffice", () => {
    const p = planParts(1e9, { partSize: 5 * MiB });
    expect(p.partSize).toBe(5 * MiB);
    expect(p.partCount).toBe(Math.ceil(1e9 / (5 * MiB)));
  });

  it("raises the part size to whole MiB so that 10,000 parts cover the total", () => {
    for (const total of [100e9, 1e12, 5e12, 49_999e9, MAX_OBJECT_SIZE]) {
      const p = planParts(total, { partSize: 5 * MiB });
      expect(p.partCount!).toBeLessThanOrEqual(MAX_PARTS);
      expect(p.partSize % MiB).toBe(0);
      expect(p.partSize).toBeLessThanOrEqual(MAX_PART_SIZE);
      expect(p.partSize * p.partCount!).toBeGreaterThanOrEqual(total);
      expect(walk(p, total).parts).toBe(p.partCount);
    }
  });

  it("rejects what cannot fit 10,000 parts of 5 GiB", () => {
    expect(() => planParts(MAX_PART_SIZE * MAX_PARTS + 1)).toThrow(RangeError);
  });

  it("validates options with a TypeError naming the option", () => {
    expect(() => planParts(10, { partSize: MIN_PART_SIZE - 1 })).toThrow(/partSize/);
    expect(() => planParts(10, { partSize: MAX_PART_SIZE + 1 })).toThrow(/partSize/);
    expect(() => planParts(10, { partSize: 6.5 * MiB + 0.5 })).toThrow(TypeError);
    expect(() => planParts(-1)).toThrow(/totalSize/);
  });
});

describe("planParts, unknown size", () => {
  it("grows part sizes so that 10,000 parts reach 50 TB", () => {
    for (const start of [MIN_PART_SIZE, DEFAULT_PART_SIZE, 64 * MiB, MAX_PART_SIZE]) {
      const p = planParts(undefined, { partSize: start });
      expect(p.singlePut).toBe(false);
      expect(p.partSize).toBe(start);
      expect(p.maxBytes).toBeGreaterThanOrEqual(MAX_OBJECT_SIZE);
      let total = 0;
      const bad: number[] = [];
      for (let n = 1; n <= MAX_PARTS; n++) {
        const s = p.sizeOf(n);
        if (s < MIN_PART_SIZE || s > MAX_PART_SIZE || (n > 1 && s < p.sizeOf(n - 1))) bad.push(n);
        total += s;
      }
      expect(bad).toEqual([]);
      expect(total).toBe(p.maxBytes);
    }
  });

  it("grows as slowly as the 50 TB target allows (a part stays a small share of what was sent)", () => {
    const p = planParts(undefined);
    expect(p.growEvery).toBeGreaterThan(32);
    // One period slower would no longer reach 50 TB.
    let total = 0;
    for (let n = 1; n <= MAX_PARTS; n++) total += Math.min(MAX_PART_SIZE, p.partSize * 2 ** Math.floor((n - 1) / (p.growEvery! + 1)));
    expect(total).toBeLessThan(MAX_OBJECT_SIZE);
    // After 1 GB the parts are still small: memory tracks the archive only slowly.
    let sent = 0;
    let n = 1;
    while (sent < 1e9) sent += p.sizeOf(n++);
    expect(p.sizeOf(n)).toBeLessThanOrEqual(64 * MiB);
    expect(p.sizeOf(1)).toBe(DEFAULT_PART_SIZE);
  });

  it("equal parts keep one size and cap the archive at partSize x 10,000", () => {
    const p = planParts(undefined, { partSize: 16 * MiB, equalParts: true });
    expect(p.growEvery).toBeUndefined();
    for (const n of [1, 2, 500, 10_000]) expect(p.sizeOf(n)).toBe(16 * MiB);
    expect(p.maxBytes).toBe(16 * MiB * MAX_PARTS);
  });
});
