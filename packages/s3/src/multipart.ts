import { createHash } from "node:crypto";
import { setMaxListeners } from "node:events";
import {
  AbortMultipartUploadCommand,
  CompleteMultipartUploadCommand,
  CreateMultipartUploadCommand,
  DeleteObjectCommand,
  HeadObjectCommand,
  PutObjectCommand,
  UploadPartCommand,
  UploadPartCopyCommand,
  type CompleteMultipartUploadCommandOutput,
  type CompletedPart,
  type PutObjectCommandOutput,
  type S3Client,
  type ServerSideEncryption,
  type StorageClass,
} from "@aws-sdk/client-s3";
import { ZipError, crc32Combine, pool } from "@zipstream/core";
import { S3ZipError, isAbortError, mapS3Error, s3Code, type LeftBehind } from "./errors.js";
import { MAX_PARTS } from "./parts.js";
import { crc32FromBase64, crc32ToBase64 } from "./checksums.js";
import { withRetries } from "./retry.js";

/** The destination object and the settings it is created with. */
export interface S3Dest {
  bucket: string;
  /** Object key: non-empty, at most 1,024 bytes of UTF-8. */
  key: string;
  /** Default "application/zip". */
  contentType?: string;
  contentDisposition?: string;
  storageClass?: string;
  /** e.g. "AES256" or "aws:kms". */
  serverSideEncryption?: string;
  sseKmsKeyId?: string;
  metadata?: Record<string, string>;
  /** Object tags, sent as the `x-amz-tagging` header. */
  tags?: Record<string, string>;
  cacheControl?: string;
  /**
   * Replace an object already at `dest`. Default true. With false the archive is written only if
   * no object exists there: PutObject and CompleteMultipartUpload carry `If-None-Match: *`, so the
   * server refuses atomically (HTTP 412) and the job fails with `ERR_S3_DEST_EXISTS`, leaving the
   * existing object untouched. The key is also checked (HeadObject) before anything is uploaded,
   * so a job does not do all its work only to be refused at the end. On a server that ignores
   * `If-None-Match` on Complete, only that early check protects the object: a writer racing
   * between the check and the Complete is overwritten.
   */
  overwrite?: boolean;
}

const encoder = new TextEncoder();

/** Checks that `client` is an S3 client (has `send`); a TypeError otherwise. */
export function checkClient(client: unknown): void {
  if (!client || typeof (client as { send?: unknown }).send !== "function") throw new TypeError("client must be an @aws-sdk/client-s3 S3Client");
}

/** Checks a destination; throws ERR_S3_INVALID_DEST. */
export function validateDest(dest: S3Dest): void {
  if (dest === null || typeof dest !== "object") throw new TypeError("dest must be an object { bucket, key }");
  if (typeof dest.bucket !== "string" || dest.bucket === "") {
    throw new S3ZipError("ERR_S3_INVALID_DEST", "dest.bucket must be a non-empty string");
  }
  if (typeof dest.key !== "string" || dest.key === "") {
    throw new S3ZipError("ERR_S3_INVALID_DEST", "dest.key must be a non-empty string", { bucket: dest.bucket });
  }
  const bytes = encoder.encode(dest.key).length;
  if (bytes > 1024) {
    throw new S3ZipError("ERR_S3_INVALID_DEST", `dest.key is ${bytes} bytes of UTF-8; S3 keys are at most 1024`, {
      bucket: dest.bucket,
    });
  }
  if (dest.overwrite !== undefined && typeof dest.overwrite !== "boolean") throw new TypeError("dest.overwrite must be a boolean");
}

/** The object settings shared by PutObject and CreateMultipartUpload. */
export function objectParams(dest: S3Dest) {
  return {
    Bucket: dest.bucket,
    Key: dest.key,
    ContentType: dest.contentType ?? "application/zip",
    ContentDisposition: dest.contentDisposition,
    CacheControl: dest.cacheControl,
    StorageClass: dest.storageClass as StorageClass | undefined,
    ServerSideEncryption: dest.serverSideEncryption as ServerSideEncryption | undefined,
    SSEKMSKeyId: dest.sseKmsKeyId,
    Metadata: dest.metadata,
    Tagging: dest.tags === undefined ? undefined : new URLSearchParams(dest.tags).toString(),
  };
}

/** A source object range that S3 copies into a part (UploadPartCopy). */
export interface CopySource {
  bucket: string;
  key: string;
  versionId?: string;
  /** Sent as `x-amz-copy-source-if-match` (not every server enforces it; see the copy assembly). */
  etag: string;
}

/** What one part became on the server. */
export interface PartResult {
  partNumber: number;
  etag: string;
  size: number;
  /** The part's CRC-32: computed here for uploaded bytes, returned by S3 for a copy when it supports checksums. */
  crc32?: number;
}

/** What a task may do with the upload, given to it by {@link runMultipart}. */
export interface PartContext {
  /** Cancels with the job: pass it to every request the task makes. */
  readonly signal: AbortSignal;
  /** True when the server computes CRC-32 checksums for this upload (it echoed the algorithm at create). */
  readonly checksums: boolean;
  /** UploadPart with retries; `crc32` is the bytes' CRC-32 when the caller has it (sent as the part checksum). */
  upload(partNumber: number, bytes: Buffer, crc32?: number): Promise<PartResult>;
  /** UploadPartCopy of `[start, end)` of a source object, with retries. */
  copy(partNumber: number, source: CopySource, start: number, end: number): Promise<PartResult>;
}

/** One unit of work of a multipart upload: uploads or copies parts, or reads (e.g. a CRC pass). */
export type PartTask = (ctx: PartContext) => Promise<void>;

/** Options of {@link runMultipart}. */
export interface MultipartJob {
  client: S3Client;
  dest: S3Dest;
  /** Tasks run at once (one request each). */
  concurrency: number;
  /** Extra attempts of a failed part request on top of the SDK's retries (see retry.ts). */
  partRetries: number;
  /**
   * The next task, or null when there is none. Calls are serialised: a shared generator. A task
   * may wait for tasks handed out before it (never for later ones), so the order is a schedule.
   */
  next(ctx: PartContext): Promise<PartTask | null>;
  /** Ask the server for a CRC-32 FULL_OBJECT checksum (used only when it echoes support). */
  checksums?: boolean;
  /** Runs after every task settled successfully and before Complete (e.g. confirm sources). */
  beforeComplete?: (ctx: PartContext) => Promise<void>;
  /**
   * The job's failure state, created by the caller with its signal and its clean-up (e.g. destroy
   * the body being read). See {@link UploadOptions.signal} for the requests never cancelled.
   */
  job: JobState;
  /** Called after each part succeeds. */
  onPart?: (part: PartResult) => void;
}

/** What {@link runMultipart} wrote. */
export interface MultipartResult {
  etag: string;
  versionId?: string;
  parts: number;
  size: number;
  /** The archive's CRC-32 (base64, as S3 writes it), when every part's CRC is known. */
  checksumCRC32?: string;
  /** True when the server verified `checksumCRC32` at Complete (FULL_OBJECT checksum). */
  checksumVerified: boolean;
}

/**
 * The failure state of one job: the first error wins, and every request in flight is cancelled.
 * One controller per job cancels every request we issue, on the caller's abort or our own failure.
 */
export class JobState {
  readonly inner = new AbortController();
  failure: unknown;
  private readonly where: { bucket: string; key: string };
  private readonly onUserAbort: () => void;

  constructor(
    private readonly dest: S3Dest,
    private readonly userSignal: AbortSignal | undefined,
    private readonly onFail?: (err: unknown) => void,
  ) {
    setMaxListeners(0, this.inner.signal); // one listener per request in flight
    this.where = { bucket: dest.bucket, key: dest.key };
    this.onUserAbort = () =>
      this.fail(new S3ZipError("ERR_ABORTED", `upload to s3://${dest.bucket}/${dest.key} aborted`, { cause: userSignal?.reason, ...this.where }));
    if (userSignal?.aborted) this.onUserAbort();
    else userSignal?.addEventListener("abort", this.onUserAbort, { once: true });
  }

  get failed(): boolean {
    return this.failure !== undefined;
  }

  fail(err: unknown): void {
    if (this.failure === undefined) this.failure = err;
    if (!this.inner.signal.aborted) this.inner.abort(err);
    this.onFail?.(err);
  }

  /** The archive is written and kept: a later abort has nothing left to cancel. */
  detach(): void {
    this.userSignal?.removeEventListener("abort", this.onUserAbort);
  }

  /** The error to reject with: typed, with what is left behind when something is. */
  finalError(left?: LeftBehind): unknown {
    const err = this.failure;
    let out: unknown;
    if (err instanceof ZipError) out = err;
    else if (isAbortError(err)) out = new S3ZipError("ERR_ABORTED", "upload aborted", { cause: err, ...this.where });
    else out = mapS3Error(err, "ERR_S3_UPLOAD", { ...this.where, action: "upload to" });
    if (left === undefined || (left.object === undefined && left.upload === undefined)) return out;
    const e = out as S3ZipError;
    const what: string[] = [];
    if (left.object) what.push(`the archive s3://${left.object.bucket}/${left.object.key}${left.object.versionId ? ` (version ${left.object.versionId})` : ""} remains`);
    if (left.upload) what.push(`the incomplete multipart upload ${left.upload.uploadId} on s3://${left.upload.bucket}/${left.upload.key} remains (remove it with abortIncompleteUploads or a lifecycle rule)`);
    return new S3ZipError((e.code ?? "ERR_S3_UPLOAD") as never, `${e.message}; left behind: ${what.join("; ")}`, {
      cause: e.cause ?? e,
      entry: e.entry,
      bucket: this.dest.bucket,
      key: this.dest.key,
      leftBehind: left,
    });
  }
}

/**
 * HEADs `dest` before anything is uploaded when `overwrite` is false: ERR_S3_DEST_EXISTS if an
 * object is there. The conditional write at the end is the real guard; this saves the work.
 */
export async function checkDestFree(client: S3Client, dest: S3Dest, signal?: AbortSignal): Promise<void> {
  if (dest.overwrite !== false) return;
  try {
    await client.send(new HeadObjectCommand({ Bucket: dest.bucket, Key: dest.key }), { abortSignal: signal });
  } catch (err) {
    const code = s3Code(err);
    if (code === "NotFound" || code === "NoSuchKey" || (err as { $metadata?: { httpStatusCode?: number } }).$metadata?.httpStatusCode === 404) return;
    throw mapS3Error(err, "ERR_S3_UPLOAD", { bucket: dest.bucket, key: dest.key, action: "checking the destination" });
  }
  throw destExists(dest);
}

function destExists(dest: S3Dest, cause?: unknown): S3ZipError {
  return new S3ZipError("ERR_S3_DEST_EXISTS", `s3://${dest.bucket}/${dest.key} already exists and dest.overwrite is false: nothing was written`, {
    cause,
    bucket: dest.bucket,
    key: dest.key,
  });
}

const isPreconditionFailed = (err: unknown): boolean =>
  s3Code(err) === "PreconditionFailed" || (err as { $metadata?: { httpStatusCode?: number } }).$metadata?.httpStatusCode === 412;

/**
 * Deletes the object this job just wrote, because the job failed (in practice: the signal fired)
 * while the request that made it visible was in flight. The VersionId pins the delete to our
 * version on a versioned bucket (no delete marker; the previous version stays current). Returns
 * what is left behind (nothing, or the object when the delete failed); never throws.
 */
export async function removeWritten(client: S3Client, dest: S3Dest, versionId: string | undefined): Promise<{ left?: LeftBehind; error?: unknown }> {
  try {
    await client.send(new DeleteObjectCommand({ Bucket: dest.bucket, Key: dest.key, VersionId: versionId }));
    return {};
  } catch (error) {
    return { left: { object: { bucket: dest.bucket, key: dest.key, versionId } }, error };
  }
}

/** The message of an abort that landed while the archive was being completed. */
function abortedAfterComplete(job: JobState, dest: S3Dest, removal: { left?: LeftBehind; error?: unknown }): S3ZipError {
  const prior = job.failure;
  const abort = prior instanceof S3ZipError && prior.code === "ERR_ABORTED";
  const at = `s3://${dest.bucket}/${dest.key}`;
  if (removal.left) {
    return new S3ZipError(
      abort ? "ERR_ABORTED" : "ERR_S3_UPLOAD",
      `upload to ${at} ${abort ? "aborted" : "failed"}, but the archive had been completed and removing it failed: it remains at dest`,
      { cause: removal.error, bucket: dest.bucket, key: dest.key, leftBehind: removal.left },
    );
  }
  if (abort) {
    return new S3ZipError("ERR_ABORTED", `upload to ${at} aborted while it was being completed: the archive was completed and then removed`, {
      cause: prior.cause,
      bucket: dest.bucket,
      key: dest.key,
    });
  }
  return job.finalError() as S3ZipError;
}

/**
 * Writes a body that fits one request with PutObject. Not tied to the job's signal: the object
 * may be written before the response arrives, and only letting the request finish tells us
 * which version to remove. With `overwrite: false` it carries `If-None-Match: *`.
 */
export async function putSingle(
  client: S3Client,
  dest: S3Dest,
  bytes: Buffer,
  job: JobState,
): Promise<{ etag: string; versionId?: string }> {
  let out: PutObjectCommandOutput;
  try {
    out = await client.send(
      new PutObjectCommand({ ...objectParams(dest), Body: bytes, ContentLength: bytes.length, IfNoneMatch: dest.overwrite === false ? "*" : undefined }),
    );
  } catch (err) {
    job.fail(dest.overwrite === false && isPreconditionFailed(err) ? destExists(dest, err) : err);
    throw job.finalError();
  }
  if (job.failed) throw abortedAfterComplete(job, dest, await removeWritten(client, dest, out.VersionId));
  job.detach();
  return { etag: out.ETag ?? "", versionId: out.VersionId };
}

/**
 * One multipart upload, step by step: {@link create}, the parts ({@link runMultipart}'s workers
 * over one shared task generator), complete, and on any failure abort exactly once (after every
 * worker settled) or remove what Complete wrote.
 *
 * On any failure or abort: every in-flight request is cancelled (except Create and Complete,
 * see {@link UploadOptions.signal}) and awaited, the multipart upload is aborted exactly once,
 * and the promise rejects with a typed error. Nothing is left at `dest` then; when something is
 * (an abort or a delete that failed), the error's message and `leftBehind` say exactly what.
 */
export async function runMultipart(o: MultipartJob): Promise<MultipartResult> {
  const { client, dest, job } = o;
  if (job.failed) throw job.finalError();
  let uploadId: string | undefined;
  // The error of an abort that landed during Complete: already final (says what was removed).
  let final: unknown;
  try {
    const created = await create(client, dest, o.checksums === true, job);
    uploadId = created.uploadId;
    // Aborted while Create was in flight: the catch below aborts the upload just created.
    if (job.failed) throw job.failure;
    const parts = await runParts(o, job, uploadId, created.checksums);
    // Some servers ignore If-None-Match on Complete (Ceph 16, measured): look once more first.
    if (dest.overwrite === false) await checkDestFree(client, dest, job.inner.signal);
    const done = await complete(client, dest, uploadId, parts, created, job);
    uploadId = undefined; // completed: nothing to abort any more
    if (job.failed) {
      final = abortedAfterComplete(job, dest, await removeWritten(client, dest, done.versionId));
      throw final;
    }
    job.detach();
    return await finish(client, dest, done);
  } catch (err) {
    if (!job.failed) job.fail(err);
    // Exactly once, after every worker settled (runParts awaited them all).
    const left = uploadId === undefined ? undefined : await abort(client, dest, uploadId);
    if (err === final) throw err;
    throw job.finalError(left);
  } finally {
    job.detach();
  }
}

/**
 * CreateMultipartUpload. Not tied to the job's signal: an abort landing after the server created
 * the upload but before its response arrived would leave an upload whose UploadId we never learn
 * (an orphan). It runs to the end (bounded by the client's timeouts and retries); the caller then
 * aborts it. With `checksums`, it asks for CRC32 FULL_OBJECT (S3's "flexible checksums"); a
 * server that supports them echoes the algorithm, one that does not ignores the headers.
 */
export async function create(client: S3Client, dest: S3Dest, checksums: boolean, job: JobState): Promise<{ uploadId: string; checksums: boolean; fullObject: boolean }> {
  let out;
  try {
    out = await client.send(
      new CreateMultipartUploadCommand({
        ...objectParams(dest),
        ...(checksums ? { ChecksumAlgorithm: "CRC32", ChecksumType: "FULL_OBJECT" } : {}),
      }),
    );
    if (!out.UploadId) throw new Error("CreateMultipartUpload returned no UploadId");
  } catch (err) {
    job.fail(err);
    throw job.failure;
  }
  const uploadId = out.UploadId;
  const supported = checksums && out.ChecksumAlgorithm === "CRC32";
  // Ceph 20 echoes the algorithm but not the type (measured); only an explicit COMPOSITE says no.
  return { uploadId, checksums: supported, fullObject: supported && out.ChecksumType !== "COMPOSITE" };
}

/** The part workers: `concurrency` of them over one serialised task generator. */
export async function runParts(o: MultipartJob, job: JobState, uploadId: string, checksums: boolean): Promise<PartResult[]> {
  const { client, dest } = o;
  const results: PartResult[] = [];
  const seen = new Set<number>();
  const record = (p: PartResult): PartResult => {
    if (p.partNumber < 1 || p.partNumber > MAX_PARTS) throw new S3ZipError("ERR_S3_TOO_LARGE", `part number ${p.partNumber} is outside 1-${MAX_PARTS}`, { bucket: dest.bucket, key: dest.key });
    // A rerun of the same part number replaces the earlier one on the server: keep the last.
    if (seen.has(p.partNumber)) results.splice(results.findIndex((r) => r.partNumber === p.partNumber), 1);
    seen.add(p.partNumber);
    results.push(p);
    o.onPart?.(p);
    return p;
  };
  const signal = job.inner.signal;
  const ctx: PartContext = {
    signal,
    checksums,
    upload: async (partNumber, bytes, crc) => {
      const out = await withRetries(
        () =>
          client.send(
            new UploadPartCommand({
              Bucket: dest.bucket,
              Key: dest.key,
              UploadId: uploadId,
              PartNumber: partNumber,
              Body: bytes,
              ContentLength: bytes.length,
              ...(checksums && crc !== undefined ? { ChecksumCRC32: crc32ToBase64(crc) } : {}),
            }),
            { abortSignal: signal },
          ),
        o.partRetries,
        signal,
      );
      return record({ partNumber, etag: out.ETag ?? "", size: bytes.length, crc32: crc ?? crc32FromBase64(out.ChecksumCRC32) });
    },
    copy: async (partNumber, src, start, end) => {
      const copySource = `${encodeURIComponent(src.bucket)}/${src.key.split("/").map(encodeURIComponent).join("/")}${src.versionId ? `?versionId=${encodeURIComponent(src.versionId)}` : ""}`;
      const { out, headerCrc } = await withRetries(
        async () => {
          const cmd = new UploadPartCopyCommand({
            Bucket: dest.bucket,
            Key: dest.key,
            UploadId: uploadId,
            PartNumber: partNumber,
            CopySource: copySource,
            CopySourceRange: `bytes=${start}-${end - 1}`,
            CopySourceIfMatch: src.etag === "" ? undefined : src.etag,
          });
          // AWS returns the copied range's CRC32 in the XML body (CopyPartResult.ChecksumCRC32);
          // Ceph 20 only as the response header x-amz-checksum-crc32 (measured): read both.
          let headerCrc: string | undefined;
          cmd.middlewareStack.add(
            (next) => async (args) => {
              const r = await next(args);
              headerCrc = (r.response as { headers?: Record<string, string> } | undefined)?.headers?.["x-amz-checksum-crc32"];
              return r;
            },
            { step: "deserialize", name: "zipstreamCopyChecksumHeader" },
          );
          return { out: await client.send(cmd, { abortSignal: signal }), headerCrc };
        },
        o.partRetries,
        signal,
      ).catch((err) => {
        throw mapS3Error(err, "ERR_S3_UPLOAD", { bucket: src.bucket, key: src.key, action: `copying part ${partNumber} from` });
      });
      const r = out.CopyPartResult;
      const crc32 = checksums ? (crc32FromBase64(r?.ChecksumCRC32) ?? crc32FromBase64(headerCrc)) : undefined;
      return record({ partNumber, etag: r?.ETag ?? "", size: end - start, crc32 });
    },
  };
  // One schedule, taken in order by `concurrency` workers; the first failure fails the job (which
  // aborts the requests in flight), and the pool returns only once every worker settled.
  await pool(() => (job.failed ? null : o.next(ctx)), (task) => (job.failed ? undefined : task(ctx)), {
    concurrency: o.concurrency,
    onError: (err) => job.fail(err),
  }).catch((err: unknown) => {
    if (!job.failed) throw err;
  });
  if (job.failed) throw job.failure;
  if (o.beforeComplete) {
    try {
      await o.beforeComplete(ctx);
    } catch (err) {
      job.fail(err);
      throw err;
    }
  }
  return results.sort((a, b) => a.partNumber - b.partNumber);
}

/**
 * CompleteMultipartUpload. Not tied to the job's signal: a Complete cannot be cancelled
 * server-side, and a cancelled request would leave us not knowing whether the archive exists.
 * - With `overwrite: false` it carries `If-None-Match: *`: a 412 means another writer got there.
 * - When the server computes checksums, every part carries its CRC-32 and, for FULL_OBJECT, the
 *   archive's CRC-32 (combined from the parts) is sent for S3 to verify end to end.
 * - A Complete whose response was lost is retried by the SDK into `NoSuchUpload`: the object is
 *   then HEADed, and the job succeeds when the object there is ours (its ETag is the multipart
 *   ETag of exactly our parts: MD5 of the parts' MD5s, "-N").
 * The caller removes the archive again when the job was aborted while this was in flight.
 */
export async function complete(
  client: S3Client,
  dest: S3Dest,
  uploadId: string,
  parts: PartResult[],
  created: { checksums: boolean; fullObject: boolean },
  job: JobState,
): Promise<MultipartResult> {
  const size = parts.reduce((n, p) => n + p.size, 0);
  let archiveCrc: number | undefined = 0;
  for (const p of parts) archiveCrc = archiveCrc === undefined || p.crc32 === undefined ? undefined : crc32Combine(archiveCrc, p.crc32, p.size);
  const listed: CompletedPart[] = parts.map((p) => ({
    PartNumber: p.partNumber,
    ETag: p.etag,
    ...(created.checksums && p.crc32 !== undefined ? { ChecksumCRC32: crc32ToBase64(p.crc32) } : {}),
  }));
  const sendChecksum = created.fullObject && archiveCrc !== undefined;
  let out: CompleteMultipartUploadCommandOutput;
  try {
    out = await client.send(
      new CompleteMultipartUploadCommand({
        Bucket: dest.bucket,
        Key: dest.key,
        UploadId: uploadId,
        MultipartUpload: { Parts: listed },
        IfNoneMatch: dest.overwrite === false ? "*" : undefined,
        ...(sendChecksum ? { ChecksumCRC32: crc32ToBase64(archiveCrc!), ChecksumType: "FULL_OBJECT" as const } : {}),
      }),
    );
  } catch (err) {
    if (dest.overwrite === false && isPreconditionFailed(err)) {
      job.fail(destExists(dest, err));
      throw job.failure;
    }
    if (s3Code(err) === "NoSuchUpload") {
      const ours = await confirmCompleted(client, dest, parts).catch(() => undefined);
      if (ours !== undefined) {
        out = { ETag: ours.etag, VersionId: ours.versionId, $metadata: {} };
      } else {
        job.fail(err);
        throw job.failure;
      }
    } else {
      job.fail(err);
      throw job.failure;
    }
  }
  return {
    etag: out.ETag ?? "",
    versionId: out.VersionId,
    parts: parts.length,
    size,
    checksumCRC32: archiveCrc === undefined ? undefined : crc32ToBase64(archiveCrc),
    checksumVerified: sendChecksum,
  };
}

/** The result, with the ETag asked of the object when Complete gave none (Ceph 16 answers with an empty one). */
export async function finish(client: S3Client, dest: S3Dest, done: MultipartResult): Promise<MultipartResult> {
  if (done.etag !== "" && done.etag !== '""') return done;
  const head = await client.send(new HeadObjectCommand({ Bucket: dest.bucket, Key: dest.key, VersionId: done.versionId }));
  return { ...done, etag: head.ETag ?? "" };
}

/**
 * After a Complete that ended in NoSuchUpload: is the object at dest the one our parts make?
 * Its size must be the parts' total and its ETag the multipart ETag of these parts (the MD5 of
 * the concatenated binary MD5s of the parts, then "-" and their count; S3 and Ceph both form it
 * so). Returns its ETag and version when it is ours.
 */
async function confirmCompleted(client: S3Client, dest: S3Dest, parts: PartResult[]): Promise<{ etag: string; versionId?: string } | undefined> {
  const head = await client.send(new HeadObjectCommand({ Bucket: dest.bucket, Key: dest.key }));
  const size = parts.reduce((n, p) => n + p.size, 0);
  if (head.ContentLength !== size) return undefined;
  const md5 = createHash("md5");
  for (const p of parts) md5.update(Buffer.from(p.etag.replace(/"/g, ""), "hex"));
  const expected = `"${md5.digest("hex")}-${parts.length}"`;
  if (head.ETag !== expected) return undefined;
  return { etag: head.ETag, versionId: head.VersionId };
}

/**
 * AbortMultipartUpload, sent once per job. Not tied to the job's signal: it must go out although
 * everything else was cancelled. Returns what is left when it fails (the upload), never throws.
 */
export async function abort(client: S3Client, dest: S3Dest, uploadId: string): Promise<LeftBehind | undefined> {
  try {
    await client.send(new AbortMultipartUploadCommand({ Bucket: dest.bucket, Key: dest.key, UploadId: uploadId }));
    return undefined;
  } catch {
    return { upload: { bucket: dest.bucket, key: dest.key, uploadId } };
  }
}
