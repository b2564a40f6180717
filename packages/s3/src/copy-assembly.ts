/**
 * Copy assembly: an archive of stored members built by S3 itself. The archive's layout is fixed
 * first (`layoutZip`), cut into parts (`planCopyParts`), and the parts are executed by the
 * multipart executor: large members are copied server-side with UploadPartCopy, everything else
 * (local headers, small members, stolen head bytes, the central directory) is read and uploaded.
 *
 * The archive is byte-identical to the one `zipS3Keys` streams for the same members: the same
 * layout functions decide every header. Only CRC-32s are missing at plan time; each member's
 * comes from the cheapest source available (see {@link CrcSource}), and the part that holds its
 * local header is scheduled after the tasks that produce it (parts may be uploaded in any order).
 */
import zlib from "node:zlib";
import { HeadObjectCommand, type S3Client } from "@aws-sdk/client-s3";
import { crc32Concat, layoutZip, localHeaderWithCrc32, pool as workerPool, type Zip64Mode, type ZipEntry, type ZipLayout, type ZipLayoutEntry, type DuplicatePolicy } from "@zipstream/core";
import { sourceCrc32, type CrcSource } from "./checksums.js";
import { planCopyParts, type CopyPart, type CopyPlan, type UploadPart } from "./copy-plan.js";
import { MIN_PART_SIZE } from "./parts.js";
import { S3ZipError, mapS3Error } from "./errors.js";
import { runMultipart, type JobState, type PartContext, type PartTask, type S3Dest } from "./multipart.js";
import { readRange } from "./ranges.js";
import type { ResolvedObject } from "./sources.js";

/**
 * Default smallest member S3 copies, where the server computes CRC-32s while copying (AWS S3,
 * Ceph 20): S3's 5 MiB part minimum. Measured (BENCHMARKS.md, copy-threshold): copying members
 * of 6 MiB already took 0.87× the wall time and 0.68× the client CPU of streaming them there.
 */
export const COPY_MIN_SIZE_WITH_CHECKSUMS = MIN_PART_SIZE;
/**
 * Default smallest member S3 copies where the server has no checksums (Ceph 16): each copied
 * member is then also read once for its CRC, so the gateway serves a copy and a GET instead of a
 * GET and an upload, and copying pays only for larger members (measured: BENCHMARKS.md).
 */
export const COPY_MIN_SIZE_WITHOUT_CHECKSUMS = 16 * 1024 * 1024;

/** The default copyMinSize for a server that does (or does not) compute checksums. */
export function defaultCopyMinSize(serverChecksums: boolean): number {
  return serverChecksums ? COPY_MIN_SIZE_WITH_CHECKSUMS : COPY_MIN_SIZE_WITHOUT_CHECKSUMS;
}

export interface CopyAssemblyOptions {
  client: S3Client;
  dest: S3Dest;
  objects: ResolvedObject[];
  /** The members as the streaming path would write them (name, size, mtime); no data. */
  entries: ZipEntry[];
  zip64: Zip64Mode | undefined;
  duplicates: DuplicatePolicy | undefined;
  defaultMtime: Date;
  /** The layout of `entries` when the caller already made it (checking names and limits): not made twice. */
  layout?: ZipLayout;
  /** Smallest member copied; undefined: {@link defaultCopyMinSize} for the server, known once the upload is created. */
  copyMinSize: number | undefined;
  partSize: number;
  maxCopyPartSize: number | undefined;
  concurrency: number;
  partRetries: number;
  /** GETs at once inside one uploaded part (small members). */
  readsPerPart: number;
  /** Bytes of uploaded parts read ahead of their turn (prefetch.bytes). */
  readAheadBytes: number;
  resumes: number;
  job: JobState;
  onProgress?: (p: { parts: number; partsTotal: number; bytes: number; entriesDone: number }) => void;
}

export interface CopyAssemblyResult {
  etag: string;
  versionId?: string;
  size: number;
  parts: number;
  layout: ZipLayout;
  plan: CopyPlan;
  crc32: number[];
  crcSource: CrcSource[];
  bytesRead: number;
  bytesUploaded: number;
  bytesCopied: number;
  checksumCRC32?: string;
  checksumVerified: boolean;
}

/** A value that a later task provides. */
interface Deferred<T> {
  promise: Promise<T>;
  resolve(v: T): void;
  reject(e: unknown): void;
}
/** Every deferred of a job, so that a failure rejects those still open (no worker waits for ever). */
type Deferreds = Deferred<unknown>[];
function deferred<T>(all: Deferreds): Deferred<T> {
  let resolve!: (v: T) => void;
  let reject!: (e: unknown) => void;
  const promise = new Promise<T>((res, rej) => {
    resolve = res;
    reject = rej;
  });
  promise.catch(() => undefined); // awaited by dependants; a job failure is reported once, elsewhere
  const d = { promise, resolve, reject };
  all.push(d as Deferred<unknown>);
  return d;
}

/** The layout with placeholder CRCs (lengths do not depend on them), for planning. */
export function layoutForPlan(o: Pick<CopyAssemblyOptions, "entries" | "zip64" | "duplicates" | "defaultMtime">, crcs?: readonly number[]): ZipLayout {
  return layoutZip(
    o.entries.map((e, i) => ({ name: e.name, size: e.size, mtime: e.mtime, crc32: crcs?.[i] ?? 0 })),
    { method: "store", zip64: o.zip64, duplicates: o.duplicates, defaultMtime: o.defaultMtime },
  );
}

/** The parts of a laid-out archive; throws RangeError when no plan fits S3's limits. */
export function planFor(layout: ZipLayout, o: { copyMinSize: number; partSize: number; maxCopyPartSize: number | undefined }): CopyPlan {
  return planCopyParts(
    layout.entries.map((e) => ({ offset: e.offset, headerLength: e.localHeader.length, dataLength: e.dataLength })),
    layout.centralDirectory.length,
    { copyMinSize: o.copyMinSize, partSize: o.partSize, maxCopyPartSize: o.maxCopyPartSize },
  );
}

type Task = { kind: "part"; part: number } | { kind: "lookup"; member: number };

/** Options of {@link assemblyTasks}: the parts to run and what they need to know. */
export interface AssemblyTasksOptions {
  client: S3Client;
  /** The sources, by the member indexes the parts use. */
  objects: ResolvedObject[];
  /** Each member's layout (its local header is written once its CRC-32 is known). */
  entries: readonly ZipLayoutEntry[];
  /**
   * The parts to run (a whole plan, or one segment of it: every part of a member among them),
   * decided once the upload is known to compute checksums or not.
   */
  planOf: (serverChecksums: boolean) => Pick<CopyPlan, "parts" | "copied">;
  /** The central directory and end records, given every member's CRC-32 (for a directory piece). */
  directory?: (crcs: number[]) => Uint8Array;
  concurrency: number;
  readsPerPart: number;
  readAheadBytes: number;
  resumes: number;
  onProgress?: CopyAssemblyOptions["onProgress"];
}

/** The task generator of a copy assembly and what it learns. */
export interface AssemblyTasks {
  /** For {@link runMultipart}'s `next`. */
  next(ctx: PartContext): Promise<PartTask | null>;
  /** Every member's CRC-32, once the tasks ran. */
  crcs(): Promise<number[]>;
  /** Settles reads started ahead for parts that never ran (call after the parts, success or not). */
  settle(): Promise<void>;
  readonly crcSource: CrcSource[];
  readonly stats: { bytesRead: number; bytesUploaded: number; bytesCopied: number };
}

/**
 * Runs a copy assembly. Memory: about `readAheadBytes` + 2 × partSize × concurrency for uploaded
 * parts (at most about 2 × partSize each; reads go straight into the part's buffer), plus ~300
 * bytes per member for the layout and the plan.
 */
export async function assembleByCopy(o: CopyAssemblyOptions): Promise<CopyAssemblyResult> {
  // The layout is fixed now (names, Zip64 and limits were checked by the caller); the parts,
  // whose copy threshold may depend on the server, once the upload is created.
  const layout = o.layout ?? layoutForPlan(o);
  let plan!: CopyPlan;
  const tasks = assemblyTasks({
    client: o.client,
    objects: o.objects,
    entries: layout.entries,
    planOf: (serverChecksums) =>
      (plan = planFor(layout, { copyMinSize: o.copyMinSize ?? defaultCopyMinSize(serverChecksums), partSize: o.partSize, maxCopyPartSize: o.maxCopyPartSize })),
    directory: (crcs) => {
      const final = layoutForPlan(o, crcs);
      if (final.size !== layout.size) throw new Error("copy assembly: the final layout differs from the plan");
      return final.centralDirectory;
    },
    concurrency: o.concurrency,
    readsPerPart: o.readsPerPart,
    readAheadBytes: o.readAheadBytes,
    resumes: o.resumes,
    onProgress: o.onProgress,
  });
  let up;
  try {
    up = await runMultipart({ client: o.client, dest: o.dest, job: o.job, concurrency: o.concurrency, partRetries: o.partRetries, checksums: true, next: tasks.next });
  } finally {
    await tasks.settle();
  }
  const crc32 = await tasks.crcs();
  return {
    etag: up.etag,
    versionId: up.versionId,
    size: up.size,
    parts: up.parts,
    layout,
    plan,
    crc32,
    crcSource: tasks.crcSource,
    ...tasks.stats,
    checksumCRC32: up.checksumCRC32,
    checksumVerified: up.checksumVerified,
  };
}

/**
 * The tasks of a copy assembly, for {@link runMultipart} (a whole archive) or for the part
 * workers of one segment of a distributed archive: the CRC sources of each member, and a
 * schedule in which every header part comes after the tasks that give its member's CRC.
 */
export function assemblyTasks(o: AssemblyTasksOptions): AssemblyTasks {
  const { client, objects } = o;
  const layout = { entries: o.entries };
  const n = objects.length;
  const open: Deferreds = [];
  let plan!: Pick<CopyPlan, "parts" | "copied">;

  // Each member's data, in order, as spans whose CRC a task provides: computed here over bytes
  // read, returned by S3 for a copy (server), or none (a copy whose member's CRC S3 already gave).
  type SpanCrc = { crc: number; server: boolean } | undefined;
  const spans: { length: number; crc: Deferred<SpanCrc>; copy: boolean }[][] = Array.from({ length: n }, () => []);
  const spanOf = new Map<string, Deferred<SpanCrc>>(); // "part" or "part:piece" -> span
  const partsOfMember: number[][] = Array.from({ length: n }, () => []);
  let crcSource!: CrcSource[];
  let copiesLeft!: number[];
  const prepare = (serverChecksums: boolean) => {
    plan = o.planOf(serverChecksums);
    crcSource = plan.copied.map(() => "read");
    copiesLeft = new Array<number>(n).fill(0);
    plan.parts.forEach((p, pi) => {
      if (p.kind === "copy") {
        const d = deferred<SpanCrc>(open);
        spans[p.member]!.push({ length: p.length, crc: d, copy: true });
        spanOf.set(`${pi}`, d);
        partsOfMember[p.member]!.push(pi);
        copiesLeft[p.member]!++;
        return;
      }
      p.pieces.forEach((piece, k) => {
        if (piece.kind !== "data") return;
        const d = deferred<SpanCrc>(open);
        spans[piece.member]!.push({ length: piece.end - piece.start, crc: d, copy: false });
        spanOf.set(`${pi}:${k}`, d);
        if (partsOfMember[piece.member]!.at(-1) !== pi) partsOfMember[piece.member]!.push(pi);
      });
    });
  };
  const known: ({ crc: number; source: CrcSource } | undefined)[] = new Array(n);
  const lookups: (Deferred<void> | undefined)[] = new Array(n);
  const memberCrc: (Promise<number> | undefined)[] = new Array(n);
  const crcOf = (m: number): Promise<number> =>
    (memberCrc[m] ??= (async () => {
      await lookups[m]?.promise;
      const got = await Promise.all(spans[m]!.map((s) => s.crc.promise));
      const k = known[m];
      const whole = got.every((g) => g !== undefined);
      const computed = whole ? crc32Concat(got.map((g, i) => [g!.crc, spans[m]![i]!.length] as const)) : undefined;
      const copiedByServer = plan.copied[m]! && spans[m]!.every((s, i) => !s.copy || got[i]?.server === true);
      if (k !== undefined) {
        if (computed !== undefined && copiedByServer && computed !== k.crc) {
          // S3's stored checksum and the CRC S3 computed of the bytes it copied now disagree.
          const obj = objects[m]!;
          throw new S3ZipError("ERR_S3_SOURCE_CHANGED", `s3://${obj.bucket}/${obj.key}: its stored CRC32 checksum does not match the bytes copied`, {
            bucket: obj.bucket,
            key: obj.key,
            entry: layout.entries[m]!.name,
          });
        }
        crcSource[m] = k.source;
        return k.crc;
      }
      if (computed === undefined) throw new Error(`copy assembly: no CRC-32 for member ${m}`);
      crcSource[m] = copiedByServer ? "s3-copy" : "read";
      return computed;
    })());

  let bytesRead = 0;
  let bytesUploaded = 0;
  let bytesCopied = 0;
  let partsDone = 0;
  let archiveBytes = 0;
  let entriesDone = 0;
  const report = () => o.onProgress?.({ parts: partsDone, partsTotal: plan.parts.length, bytes: archiveBytes, entriesDone });
  const partDone = (length: number) => {
    partsDone++;
    archiveBytes += length;
    report();
  };

  /** Reads `[start, end)` of member m, handing chunks to `sink`; counts bytesRead. */
  const read = (m: number, start: number, end: number, ctx: PartContext, sink: (c: Buffer) => void) =>
    readRange(client, objects[m]!, start, end, {
      signal: ctx.signal,
      resumes: o.resumes,
      onChunk: (c) => {
        bytesRead += c.length;
        sink(c);
      },
    });

  /**
   * Ceph ignores `x-amz-copy-source-if-match` (measured), so a copy is not pinned by the server:
   * after a member's last copy, its ETag and size are confirmed. On AWS this is a redundant HEAD.
   */
  const confirmSource = async (m: number, ctx: PartContext) => {
    const obj = objects[m]!;
    let head;
    try {
      head = await client.send(new HeadObjectCommand({ Bucket: obj.bucket, Key: obj.key, VersionId: obj.versionId }), { abortSignal: ctx.signal });
    } catch (err) {
      throw mapS3Error(err, "ERR_S3_READ", { bucket: obj.bucket, key: obj.key, action: "confirming the copied source" });
    }
    const sameVersion = obj.etag === "" || head.ETag === obj.etag;
    if (sameVersion && head.ContentLength !== undefined && head.ContentLength !== obj.size) {
      // Same object, another size: the declared `size` was wrong (as readRange reports it).
      throw new S3ZipError("ERR_SIZE_MISMATCH", `s3://${obj.bucket}/${obj.key} is ${head.ContentLength} bytes, not the ${obj.size} bytes declared or listed for it`, {
        bucket: obj.bucket,
        key: obj.key,
        entry: layout.entries[m]!.name,
      });
    }
    if (!sameVersion || head.ContentLength !== obj.size) {
      throw new S3ZipError("ERR_S3_SOURCE_CHANGED", `s3://${obj.bucket}/${obj.key} changed while it was being copied (ETag ${obj.etag} -> ${head.ETag})`, {
        bucket: obj.bucket,
        key: obj.key,
        entry: layout.entries[m]!.name,
      });
    }
  };

  const copyTask = (pi: number, p: CopyPart): PartTask => async (ctx) => {
    const obj = objects[p.member]!;
    const r = await ctx.copy(p.partNumber, { bucket: obj.bucket, key: obj.key, versionId: obj.versionId, etag: obj.etag }, p.start, p.end);
    bytesCopied += p.length;
    await lookups[p.member]?.promise;
    let span: SpanCrc;
    if (r.crc32 !== undefined) span = { crc: r.crc32, server: true };
    else if (known[p.member] === undefined) {
      // No checksum from the server: one read pass over the range, pinned by If-Match.
      let c = 0;
      await read(p.member, p.start, p.end, ctx, (chunk) => (c = zlib.crc32(chunk, c)));
      span = { crc: c, server: false };
    }
    spanOf.get(`${pi}`)!.resolve(span);
    if (--copiesLeft[p.member]! === 0) await confirmSource(p.member, ctx);
    partDone(p.length);
  };

  /**
   * An uploaded part's member bytes, read a few GETs at once straight into its buffer, each
   * piece's CRC on arrival. Started ahead of the part's turn (see `readAhead`), so reads overlap
   * the uploads of earlier parts as the streaming path's prefetch does.
   */
  const fill = async (pi: number, p: UploadPart, ctx: PartContext): Promise<{ body: Buffer; at: number[] }> => {
    let body = pool.pop();
    if (body === undefined || body.length !== p.length) body = Buffer.allocUnsafe(p.length);
    const at: number[] = [];
    let pos = 0;
    for (const piece of p.pieces) {
      at.push(pos);
      pos += piece.kind === "data" ? piece.end - piece.start : piece.length;
    }
    const dataPieces = p.pieces.map((piece, k) => ({ piece, k })).filter((x) => x.piece.kind === "data");
    const readPiece = async ({ piece, k }: (typeof dataPieces)[number]) => {
      if (piece.kind !== "data") return;
      let off = at[k]!;
      const target = body!;
      await read(piece.member, piece.start, piece.end, ctx, (c) => {
        c.copy(target, off);
        off += c.length;
      });
      spanOf.get(`${pi}:${k}`)!.resolve({ crc: zlib.crc32(target.subarray(at[k]!, at[k]! + piece.end - piece.start)), server: false });
    };
    // Every read settled before the buffer can go back to the part buffers kept for reuse.
    await workerPool(dataPieces, readPiece, { concurrency: o.readsPerPart });
    return { body, at };
  };
  /** Part buffers reused once S3 acknowledged their part (most parts have the same size). */
  const pool: Buffer[] = [];
  const fills = new Map<number, Promise<{ body: Buffer; at: number[] }>>();
  let aheadBytes = 0;
  const startFill = (pi: number, ctx: PartContext) => {
    let f = fills.get(pi);
    if (f === undefined) {
      const p = plan.parts[pi] as UploadPart;
      aheadBytes += p.length;
      f = fill(pi, p, ctx);
      f.catch(() => undefined); // a failure surfaces in the part's own task
      fills.set(pi, f);
    }
    return f;
  };

  const uploadTask = (pi: number, p: UploadPart): PartTask => async (ctx) => {
    const { body, at } = await startFill(pi, ctx);
    // Headers, once their members' CRCs are known (their tasks were scheduled before this one).
    for (const [k, piece] of p.pieces.entries()) {
      if (piece.kind === "header") {
        const crc = await crcOf(piece.member);
        body.set(localHeaderWithCrc32(layout.entries[piece.member]!, crc), at[k]!);
        entriesDone++;
      } else if (piece.kind === "directory") {
        const crcs = await Promise.all(layout.entries.map((_, m) => crcOf(m)));
        const directory = o.directory?.(crcs);
        if (directory === undefined || directory.length !== piece.length) throw new Error("copy assembly: the final layout differs from the plan");
        body.set(directory, at[k]!);
      }
    }
    await ctx.upload(p.partNumber, body, zlib.crc32(body));
    fills.delete(pi);
    aheadBytes -= p.length;
    bytesUploaded += body.length;
    partDone(p.length);
    if (pool.length < o.concurrency + 1) pool.push(body);
  };

  // The schedule: every task after the tasks it waits for (depth first), so a worker only ever
  // waits for tasks already handed out and the queue cannot deadlock.
  let schedule: Task[] | undefined;
  let cursor = 0;
  const buildSchedule = (ctx: PartContext): Task[] => {
    const out: Task[] = [];
    const visited = new Uint8Array(plan.parts.length);
    const looked = new Uint8Array(n);
    const visit = (pi: number): void => {
      if (visited[pi]) return;
      visited[pi] = 1;
      const p = plan.parts[pi]!;
      if (p.kind === "upload") {
        for (const piece of p.pieces) {
          const members = piece.kind === "header" ? [piece.member] : piece.kind === "directory" ? layout.entries.map((_, m) => m) : [];
          for (const m of members) {
            // Where the server has checksums, the source's own CRC is asked first (no byte read).
            if (ctx.checksums && plan.copied[m] && !looked[m]) {
              looked[m] = 1;
              lookups[m] = deferred<void>(open);
              out.push({ kind: "lookup", member: m });
            }
            for (const dep of partsOfMember[m]!) if (dep !== pi) visit(dep);
          }
        }
      }
      out.push({ kind: "part", part: pi });
    };
    for (let pi = 0; pi < plan.parts.length; pi++) visit(pi);
    return out;
  };
  /**
   * Starts the reads of the next uploaded parts in the schedule while their bytes fit the
   * read-ahead budget (at least one: a part larger than the budget still progresses).
   */
  const readAhead = (ctx: PartContext) => {
    for (let i = cursor; i < schedule!.length; i++) {
      const t = schedule![i]!;
      if (t.kind !== "part" || plan.parts[t.part]!.kind !== "upload" || fills.has(t.part)) continue;
      const len = plan.parts[t.part]!.length;
      if (aheadBytes > 0 && aheadBytes + len > o.readAheadBytes) return;
      startFill(t.part, ctx);
    }
  };
  const next = async (ctx: PartContext): Promise<PartTask | null> => {
    if (schedule === undefined) {
      prepare(ctx.checksums);
      schedule = buildSchedule(ctx);
      // The job failed: tasks waiting for a CRC that will never come wake up and stop.
      const stop = () => {
        for (const d of open) d.reject(ctx.signal.reason);
      };
      if (ctx.signal.aborted) stop();
      else ctx.signal.addEventListener("abort", stop, { once: true });
    }
    const t = schedule[cursor++];
    if (t === undefined) return null;
    readAhead(ctx);
    if (t.kind === "lookup") {
      return async (c) => {
        try {
          known[t.member] = await sourceCrc32(client, objects[t.member]!, c.signal);
          lookups[t.member]!.resolve();
        } catch (err) {
          lookups[t.member]!.reject(err);
          throw err;
        }
      };
    }
    const p = plan.parts[t.part]!;
    return p.kind === "copy" ? copyTask(t.part, p) : uploadTask(t.part, p);
  };

  return {
    next,
    crcs: () => Promise.all(layout.entries.map((_, m) => crcOf(m))),
    // Reads started ahead for parts that never ran are cancelled with the job; settle them so
    // that no GET outlives the caller's promise.
    settle: async () => void (await Promise.allSettled(fills.values())),
    get crcSource() {
      return crcSource;
    },
    get stats() {
      return { bytesRead, bytesUploaded, bytesCopied };
    },
  };
}
