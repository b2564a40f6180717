/**
 * The part plan of a copy-assembled archive: which byte ranges of the archive are uploaded from
 * here and which S3 copies from the source objects itself (UploadPartCopy). Pure: no I/O.
 *
 * S3's multipart rules shape it ("Amazon S3 multipart upload limits"; UploadPartCopy):
 * - a part is either uploaded bytes or a copy of ONE byte range of ONE source object;
 * - every part but the last is at least 5 MiB, at most 5 GiB, and there are at most 10,000.
 *
 * So a stored member of a large object is copied, but the bytes between two copied members (the
 * next local header, small members) must be uploaded in a part of at least 5 MiB. When fewer
 * bytes lie between them, the part is lifted to 5 MiB with the first bytes of the next large
 * member ("stolen head bytes"), which are read from S3 and uploaded; the rest of that member is
 * copied. A member is copied only when what remains after the steal is still a valid part.
 */
import { MAX_PARTS, MAX_PART_SIZE, MIN_PART_SIZE } from "./parts.js";

/** One member's place in the archive (from `layoutZip`). */
export interface PlanMember {
  /** Offset of its local header. */
  offset: number;
  headerLength: number;
  /** Stored bytes: for store, the source object's size. */
  dataLength: number;
}

/** Options of {@link planCopyParts}. */
export interface CopyPlanOptions {
  /** Members at least this large are copied (when the 5 MiB rule allows). */
  copyMinSize: number;
  /**
   * Uploaded parts close at the first member boundary at or after this size (at least 5 MiB); a
   * member's data is cut only where a part would pass 2 × partSize. So uploaded parts are at most
   * about 2 × partSize (plus one header).
   */
  partSize: number;
  /** Largest copy part; default 5 GiB (S3's limit). At least 10 MiB. */
  maxCopyPartSize?: number;
}

/** A run of bytes inside an uploaded part. */
export type Piece =
  | { kind: "header"; member: number; length: number }
  /** Bytes `[start, end)` of member `member`'s data, read from its source object. */
  | { kind: "data"; member: number; start: number; end: number }
  /** The central directory and end records. */
  | { kind: "directory"; length: number };

export interface UploadPart {
  kind: "upload";
  partNumber: number;
  /** Offset of the part in the archive. */
  offset: number;
  length: number;
  pieces: Piece[];
}

export interface CopyPart {
  kind: "copy";
  partNumber: number;
  offset: number;
  length: number;
  member: number;
  /** Range `[start, end)` of the member's source object. */
  start: number;
  end: number;
}

export type PlannedPart = UploadPart | CopyPart;

/** The plan: parts in archive order, numbered 1..n. */
export interface CopyPlan {
  parts: PlannedPart[];
  /** Archive size. */
  size: number;
  /** Per member: bytes read and uploaded from its head before its copied rest (0 when not copied). */
  stolen: number[];
  /** Per member: whether S3 copies (most of) it. */
  copied: boolean[];
  membersCopied: number;
  bytesCopied: number;
  /** Bytes sent in uploaded parts: headers, small members, stolen head bytes, the directory. */
  bytesUploaded: number;
  /** The options the plan was made with, after raising them to fit 10,000 parts. */
  partSize: number;
  copyMinSize: number;
}

function attempt(members: readonly PlanMember[], directoryLength: number, copyMinSize: number, partSize: number, maxCopy: number): CopyPlan {
  const parts: PlannedPart[] = [];
  const stolen = new Array<number>(members.length).fill(0);
  const copied = new Array<boolean>(members.length).fill(false);
  let cur: UploadPart | undefined;
  let pos = 0;
  let bytesCopied = 0;
  let membersCopied = 0;
  const add = (piece: Piece, length: number) => {
    cur ??= { kind: "upload", partNumber: 0, offset: pos, length: 0, pieces: [] };
    cur.pieces.push(piece);
    cur.length += length;
    pos += length;
  };
  const close = () => {
    if (cur !== undefined) parts.push(cur);
    cur = undefined;
  };
  // Member data uploaded from here. A part is cut inside a member only where it would pass
  // 2 × partSize (a member larger than that); otherwise it closes at member boundaries.
  const addData = (member: number, start: number, end: number) => {
    while (start < end) {
      const room = 2 * partSize - (cur?.length ?? 0);
      if (room <= 0) {
        close();
        continue;
      }
      const take = Math.min(room, end - start);
      add({ kind: "data", member, start, end: start + take }, take);
      start += take;
    }
  };
  members.forEach((m, i) => {
    if (m.offset !== pos) throw new Error(`layout and plan disagree at member ${i}: offset ${m.offset}, plan at ${pos}`);
    const size = m.dataLength;
    const copyable = size >= copyMinSize;
    // A part that reached partSize is closed at this boundary, unless this member is copied whole
    // right after it: then its header joins the part and nothing needs to be stolen.
    if (cur !== undefined && cur.length >= partSize && !(copyable && size >= MIN_PART_SIZE)) close();
    add({ kind: "header", member: i, length: m.headerLength }, m.headerLength);
    const need = Math.max(0, MIN_PART_SIZE - cur!.length);
    if (!copyable || size - need < MIN_PART_SIZE) {
      addData(i, 0, size);
      return;
    }
    if (need > 0) add({ kind: "data", member: i, start: 0, end: need }, need);
    close();
    stolen[i] = need;
    copied[i] = true;
    membersCopied++;
    // The rest in near-equal copy parts of at most maxCopy bytes: each is then at least
    // maxCopy / 2 >= 5 MiB when there are several, or the whole rest (>= 5 MiB) when one.
    const rest = size - need;
    const k = Math.ceil(rest / maxCopy);
    let start = need;
    for (let j = 0; j < k; j++) {
      const length = Math.floor(rest / k) + (j < rest % k ? 1 : 0);
      parts.push({ kind: "copy", partNumber: 0, offset: pos, length, member: i, start, end: start + length });
      pos += length;
      start += length;
    }
    bytesCopied += rest;
  });
  add({ kind: "directory", length: directoryLength }, directoryLength);
  close();
  parts.forEach((p, i) => (p.partNumber = i + 1));
  const size = pos;
  return { parts, size, stolen, copied, membersCopied, bytesCopied, bytesUploaded: size - bytesCopied, partSize, copyMinSize };
}

/**
 * Plans the parts of an archive whose members are laid out by `layoutZip`. When the plan needs
 * more than 10,000 parts, uploaded parts and the copy threshold are doubled until it fits.
 *
 * @throws RangeError when no plan fits 10,000 parts (an archive beyond S3's object limits).
 */
export function planCopyParts(members: readonly PlanMember[], directoryLength: number, options: CopyPlanOptions): CopyPlan {
  const maxCopy = options.maxCopyPartSize ?? MAX_PART_SIZE;
  if (!(maxCopy >= 2 * MIN_PART_SIZE && maxCopy <= MAX_PART_SIZE)) throw new RangeError(`maxCopyPartSize must be from 10 MiB to 5 GiB; got ${maxCopy}`);
  let partSize = Math.max(MIN_PART_SIZE, options.partSize);
  let copyMinSize = Math.max(MIN_PART_SIZE, options.copyMinSize);
  for (;;) {
    const plan = attempt(members, directoryLength, copyMinSize, partSize, maxCopy);
    if (plan.parts.length <= MAX_PARTS) return plan;
    if (partSize >= MAX_PART_SIZE) throw new RangeError(`the archive needs more than ${MAX_PARTS} parts even with ${MAX_PART_SIZE}-byte parts`);
    partSize = Math.min(MAX_PART_SIZE, partSize * 2);
    copyMinSize *= 2;
  }
}
