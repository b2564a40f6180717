/**
 * The pure half of a distributed archive: how a part plan is cut into segments (one worker's
 * share), and how a plan travels as JSON. No I/O here; `archive-plan.ts` reads and writes it.
 *
 * A segment is a contiguous run of parts. It may end only at a *clean cut*: a part boundary that
 * no member straddles. Without S3 checksums a member's CRC-32 is learned only from its bytes (a
 * read pass, or S3's copy CRC), and its local header carries that CRC (APPNOTE 4.3.7), so the
 * worker that moves a member's bytes must also write its header: header and data stay together.
 */
import type { PlannedPart, Piece } from "./copy-plan.js";
import type { ResolvedObject } from "./sources.js";

/** Limits of one worker's share; a segment closes before it would pass any of them. */
export interface SegmentLimits {
  /** Archive bytes per segment (copied and uploaded). */
  bytes: number;
  /** Parts per segment. */
  parts: number;
  /** Members per segment (bounds the segment's JSON and a worker's memory). */
  members: number;
}

/** Default limits: see {@link ArchivePlanOptions.segment}. */
export const DEFAULT_SEGMENT_LIMITS: SegmentLimits = { bytes: 4 * 1024 ** 3, parts: 500, members: 50_000 };

/** A segment: parts `[firstPart, endPart)` (indexes into the plan's parts) and members `[firstMember, endMember)`. */
export interface SegmentRange {
  firstPart: number;
  endPart: number;
  firstMember: number;
  endMember: number;
  /** Archive bytes of its parts. */
  bytes: number;
}

/** Where a plan's parts are cut: worker segments, and the final one (the directory's part) run by the finalizer. */
export interface Segmentation {
  segments: SegmentRange[];
  final: SegmentRange;
}

/** The members a part carries bytes of (headers or data), in order. */
function membersOf(p: PlannedPart): number[] {
  if (p.kind === "copy") return [p.member];
  const out: number[] = [];
  for (const piece of p.pieces) if (piece.kind !== "directory" && out.at(-1) !== piece.member) out.push(piece.member);
  return out;
}

/**
 * Cuts a part plan into segments within `limits`, at clean cuts only. The last part (it holds
 * the central directory, which needs every CRC) and the members that share it form the final
 * segment, run by the finalizer. A single member larger than the limits makes a segment of its
 * own, larger than asked: its header and data cannot be split (see the file comment).
 */
export function segmentPlan(parts: readonly PlannedPart[], memberCount: number, limits: SegmentLimits): Segmentation {
  const n = parts.length;
  // last[m]: the last part holding member m's bytes.
  const last = new Int32Array(memberCount).fill(-1);
  parts.forEach((p, pi) => {
    for (const m of membersOf(p)) last[m] = pi;
  });
  // clean[p]: no member has bytes both before part p and in part p or after it.
  const clean = new Uint8Array(n + 1);
  let reach = -1;
  for (let p = 0; p <= n; p++) {
    clean[p] = reach < p ? 1 : 0;
    if (p === n) break;
    for (const m of membersOf(parts[p]!)) if (last[m]! > reach) reach = last[m]!;
  }
  // Member index at each part boundary: members whose header lies before the boundary.
  const membersBefore = new Int32Array(n + 1);
  let seen = 0;
  for (let p = 0; p < n; p++) {
    membersBefore[p] = seen;
    for (const m of membersOf(parts[p]!)) if (m + 1 > seen) seen = m + 1;
  }
  membersBefore[n] = memberCount;
  let finalStart = n - 1;
  while (finalStart > 0 && !clean[finalStart]) finalStart--;
  const bytesOf = (a: number, b: number) => {
    let t = 0;
    for (let p = a; p < b; p++) t += parts[p]!.length;
    return t;
  };
  const segments: SegmentRange[] = [];
  let start = 0;
  let bytes = 0;
  let p = 0;
  while (p < finalStart) {
    // The next block: parts up to the next clean cut.
    let q = p + 1;
    let blockBytes = parts[p]!.length;
    while (q < finalStart && !clean[q]) blockBytes += parts[q++]!.length;
    const over =
      bytes + blockBytes > limits.bytes || q - start > limits.parts || membersBefore[q]! - membersBefore[start]! > limits.members;
    if (over && p > start) {
      segments.push({ firstPart: start, endPart: p, firstMember: membersBefore[start]!, endMember: membersBefore[p]!, bytes });
      start = p;
      bytes = 0;
    }
    bytes += blockBytes;
    p = q;
  }
  if (p > start) segments.push({ firstPart: start, endPart: p, firstMember: membersBefore[start]!, endMember: membersBefore[p]!, bytes });
  const final = { firstPart: finalStart, endPart: n, firstMember: membersBefore[finalStart]!, endMember: memberCount, bytes: bytesOf(finalStart, n) };
  return { segments, final };
}

// ---------------------------------------------------------------------------------------------
// The JSON forms. Compact on purpose: a plan for millions of members is read by every worker
// only for its own segment, and the finalizer reads all of them.

/**
 * One member: `[bucket index, key, name, size, etag, mtime (s), versionId?]`. The name is a
 * number when it is the key without its first n characters (a prefix listing), else a string.
 * The ETag is kept without its quotes.
 */
export type MemberRecord = [number, string, string | number, number, string, number] | [number, string, string | number, number, string, number, string];

/** A part: copy `[partNumber, member, start, end]`; upload `[partNumber, length, pieces]`. */
export type PartRecord = [number, number, number, number] | [number, number, PieceRecord[]];
/** A piece: header `member`; data `[member, start, end]`; directory `[length]`. */
export type PieceRecord = number | [number, number, number] | [number];

/** A segment's share of the plan, as stored at `<plan>.d/seg/<index>.json`. */
export interface SegmentDoc {
  version: 1;
  index: number;
  /** Index of the segment's first member in the archive. */
  firstMember: number;
  buckets: string[];
  members: MemberRecord[];
  /** Copy mode only: the segment's parts, member numbers relative to `firstMember`. */
  parts?: PartRecord[];
}

/** Encodes members `[from, to)` of `objects` (with their archive names and mtimes). */
export function encodeMembers(objects: readonly ResolvedObject[], names: readonly string[], mtimes: readonly Date[], from: number, to: number): Pick<SegmentDoc, "buckets" | "members"> {
  const buckets: string[] = [];
  const index = new Map<string, number>();
  const members: MemberRecord[] = [];
  for (let i = from; i < to; i++) {
    const o = objects[i]!;
    let b = index.get(o.bucket);
    if (b === undefined) {
      b = buckets.push(o.bucket) - 1;
      index.set(o.bucket, b);
    }
    const name = names[i]!;
    const short: string | number = o.key.endsWith(name) ? o.key.length - name.length : name;
    const rec: MemberRecord = [b, o.key, short, o.size, o.etag.replace(/^"|"$/g, ""), Math.floor(mtimes[i]!.getTime() / 1000)];
    if (o.versionId !== undefined) rec.push(o.versionId);
    members.push(rec);
  }
  return { buckets, members };
}

/** Decodes a segment's members: the objects to read and each one's archive name and mtime. */
export function decodeMembers(doc: Pick<SegmentDoc, "buckets" | "members">): { objects: ResolvedObject[]; mtimes: Date[] } {
  const objects: ResolvedObject[] = [];
  const mtimes: Date[] = [];
  for (const [b, key, short, size, etag, mtime, versionId] of doc.members) {
    const name = typeof short === "number" ? key.slice(short) : short;
    objects.push({ bucket: doc.buckets[b]!, key, name, size, etag: etag === "" ? "" : `"${etag}"`, versionId, lastModified: new Date(mtime * 1000) });
    mtimes.push(new Date(mtime * 1000));
  }
  return { objects, mtimes };
}

/** Encodes parts, renumbering members from `firstMember`. */
export function encodeParts(parts: readonly PlannedPart[], firstMember: number): PartRecord[] {
  return parts.map((p): PartRecord => {
    if (p.kind === "copy") return [p.partNumber, p.member - firstMember, p.start, p.end];
    const pieces = p.pieces.map((x): PieceRecord => (x.kind === "header" ? x.member - firstMember : x.kind === "data" ? [x.member - firstMember, x.start, x.end] : [x.length]));
    return [p.partNumber, p.length, pieces];
  });
}

/** Decodes parts (offsets are not kept: the tasks do not need them, so they are 0). */
export function decodeParts(records: readonly PartRecord[], headerLength: (member: number) => number): PlannedPart[] {
  return records.map((r): PlannedPart => {
    if (r.length === 4) return { kind: "copy", partNumber: r[0], offset: 0, length: r[3] - r[2], member: r[1], start: r[2], end: r[3] };
    const pieces = (r[2] as PieceRecord[]).map((x): Piece => {
      if (typeof x === "number") return { kind: "header", member: x, length: headerLength(x) };
      if (x.length === 3) return { kind: "data", member: x[0], start: x[1], end: x[2] };
      return { kind: "directory", length: x[0] };
    });
    return { kind: "upload", partNumber: r[0], offset: 0, length: r[1] as number, pieces };
  });
}
