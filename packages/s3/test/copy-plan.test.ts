import { describe, expect, it } from "vitest";
import { planCopyParts, type CopyPlan, type PlanMember } from "../src/copy-plan.js";
import { MAX_PARTS, MAX_PART_SIZE, MIN_PART_SIZE } from "../src/parts.js";

const MiB = 1024 * 1024;
const GiB = 1024 * MiB;

/** Members laid out back to back, with `header` bytes before each. */
function layout(sizes: number[], header = 80): { members: PlanMember[]; end: number } {
  let offset = 0;
  const members = sizes.map((dataLength) => {
    const m = { offset, headerLength: header, dataLength };
    offset += header + dataLength;
    return m;
  });
  return { members, end: offset };
}

/** Every rule S3 and the archive impose on a plan. */
function checkPlan(plan: CopyPlan, members: PlanMember[], end: number, directory: number, maxCopy = MAX_PART_SIZE): void {
  expect(plan.parts.length).toBeLessThanOrEqual(MAX_PARTS);
  let pos = 0;
  const covered = members.map(() => 0);
  plan.parts.forEach((p, i) => {
    expect(p.partNumber).toBe(i + 1);
    expect(p.offset).toBe(pos);
    const last = i === plan.parts.length - 1;
    if (!last) expect(p.length, `part ${p.partNumber}`).toBeGreaterThanOrEqual(MIN_PART_SIZE);
    expect(p.length).toBeLessThanOrEqual(MAX_PART_SIZE);
    if (p.kind === "copy") {
      expect(p.length).toBeLessThanOrEqual(maxCopy);
      expect(p.end - p.start).toBe(p.length);
      expect(p.start).toBe(covered[p.member]);
      covered[p.member] = p.end;
      expect(plan.copied[p.member]).toBe(true);
    } else {
      let len = 0;
      for (const piece of p.pieces) {
        if (piece.kind === "data") {
          expect(piece.start).toBe(covered[piece.member]);
          covered[piece.member] = piece.end;
          len += piece.end - piece.start;
        } else len += piece.length;
      }
      expect(len).toBe(p.length);
    }
    pos += p.length;
  });
  expect(pos).toBe(end + directory);
  expect(plan.size).toBe(end + directory);
  members.forEach((m, i) => expect(covered[i], `member ${i} covered`).toBe(m.dataLength));
  expect(plan.bytesCopied + plan.bytesUploaded).toBe(plan.size);
  const last = plan.parts.at(-1)!;
  expect(last.kind === "upload" && last.pieces.at(-1)!.kind).toBe("directory");
}

describe("planCopyParts", () => {
  it("copies large members, steals head bytes to lift parts to 5 MiB, uploads the rest", () => {
    const sizes = [0, 1024, 5 * MiB - 1, 5 * MiB, 5 * MiB + 1, 12 * MiB, 25 * MiB + 3, 100 * MiB];
    const { members, end } = layout(sizes);
    const plan = planCopyParts(members, 1000, { copyMinSize: 5 * MiB, partSize: 8 * MiB, maxCopyPartSize: 10 * MiB });
    checkPlan(plan, members, end, 1000, 10 * MiB);
    // The 5 MiB one follows >= 5 MiB of uploaded bytes, so it is copied whole; the next one would
    // need almost all of its bytes stolen and is uploaded; 12, 25 and 100 MiB are copied.
    expect(plan.copied).toEqual([false, false, false, true, false, true, true, true]);
    expect(plan.stolen[3]).toBe(0);
    for (const m of [5, 6, 7]) expect(plan.stolen[m]).toBeLessThanOrEqual(5 * MiB);
    // The 100 MiB member, minus its stolen head, in near-equal copy parts of at most 10 MiB.
    const copies = plan.parts.filter((p) => p.kind === "copy" && p.member === 7);
    expect(copies).toHaveLength(Math.ceil((100 * MiB - plan.stolen[7]!) / (10 * MiB)));
    expect(plan.bytesUploaded).toBeLessThanOrEqual(sizes.slice(0, 5).reduce((a, b) => a + b, 0) + 3 * 5 * MiB + 8 * 80 + 1000);
  });

  it("a member that would leave less than 5 MiB after the steal is uploaded whole", () => {
    const { members, end } = layout([100, 7 * MiB]);
    const plan = planCopyParts(members, 500, { copyMinSize: 5 * MiB, partSize: 8 * MiB });
    checkPlan(plan, members, end, 500);
    expect(plan.copied).toEqual([false, false]);
    expect(plan.bytesCopied).toBe(0);
  });

  it("random archives obey every rule", () => {
    let seed = 12345;
    const rnd = () => ((seed = (seed * 1103515245 + 12345) >>> 0) / 2 ** 32);
    for (let round = 0; round < 200; round++) {
      const n = 1 + Math.floor(rnd() * 40);
      const sizes = Array.from({ length: n }, () => {
        const r = rnd();
        return r < 0.3 ? Math.floor(rnd() * 100_000) : r < 0.7 ? Math.floor(rnd() * 12 * MiB) : Math.floor(rnd() * 200 * MiB);
      });
      const { members, end } = layout(sizes, 30 + Math.floor(rnd() * 300));
      const maxCopy = 10 * MiB + Math.floor(rnd() * 90 * MiB);
      const plan = planCopyParts(members, 46 * n + 22, { copyMinSize: 5 * MiB + Math.floor(rnd() * 30 * MiB), partSize: 5 * MiB + Math.floor(rnd() * 20 * MiB), maxCopyPartSize: maxCopy });
      checkPlan(plan, members, end, 46 * n + 22, maxCopy);
    }
  });

  it("reaches 50 TB within 10,000 parts (5 GiB copy parts)", () => {
    const { members, end } = layout(Array.from({ length: 10 }, () => 5e12));
    const plan = planCopyParts(members, 2000, { copyMinSize: 16 * MiB, partSize: 8 * MiB });
    checkPlan(plan, members, end, 2000);
    expect(plan.parts.length).toBeGreaterThan(9000);
    expect(plan.bytesCopied).toBeGreaterThan(0.999 * 50e12);
  });

  it("doubles the part size and the copy threshold when a plan would need more than 10,000 parts", () => {
    // 12,000 members of 12 MiB: each copied member costs two parts (its stolen head and its copy).
    const { members, end } = layout(Array.from({ length: 12_000 }, () => 12 * MiB));
    const plan = planCopyParts(members, 12_000 * 100, { copyMinSize: 10 * MiB, partSize: 8 * MiB });
    checkPlan(plan, members, end, 12_000 * 100);
    expect(plan.copyMinSize).toBeGreaterThan(10 * MiB);
    // An archive past 10,000 parts of 5 GiB cannot be planned at all.
    const huge = layout([MAX_PARTS * MAX_PART_SIZE + 1]);
    expect(() => planCopyParts(huge.members, 100, { copyMinSize: 16 * MiB, partSize: 8 * MiB })).toThrow(RangeError);
    expect(() => planCopyParts(members, 1, { copyMinSize: 16 * MiB, partSize: 8 * MiB, maxCopyPartSize: 6 * MiB })).toThrow(RangeError);
    void GiB;
  });
});
