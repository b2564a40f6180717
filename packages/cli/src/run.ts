import { createWriteStream } from "node:fs";
import { lstat, open, realpath, rename, rm, writeFile } from "node:fs/promises";
import path from "node:path";
import type { Readable } from "node:stream";
import { pipeline } from "node:stream/promises";
import type { S3Client } from "@aws-sdk/client-s3";
import { predictZipSize, printableName, ZipError, zipStream, type ZipEntry, type ZipEntryInfo, type ZipOptions } from "@zipstream/core";
import type { S3Dest, S3ObjectRef } from "@zipstream/s3";
import type { JobOptions } from "./args.js";
import { UsageError } from "./exit-codes.js";
import type { Location } from "./location.js";
import type { Reporter } from "./progress.js";
import { collectSources, toZipEntries, type PlannedEntry } from "./sources.js";

/** One archive to build. */
export interface Job {
  src: Location[];
  dest: Location;
  options: JobOptions;
}

/** One line of the manifest written by `--manifest`. */
export interface ManifestEntry {
  source: string;
  name: string;
  size: number;
  compressedSize: number;
  crc32: number;
  offset: number;
  method: string;
  encrypted: boolean;
  zip64: boolean;
}

/** What `--dry-run` reports. */
export interface DryRunReport {
  dryRun: true;
  dest: string;
  entries: { name: string; source: string; size: number }[];
  skipped: string[];
  /** Things left out that the user should hear about (symlink loops, dangling links). */
  warnings: string[];
  totalBytes: number;
  /** Exact archive size; absent with deflate (the compressed size is unknown until compressed). */
  predictedSize?: number;
  /** Whether Zip64 records are needed (true/false), or "possible" when the size is unknown. */
  zip64: boolean | "possible";
  /** Multipart plan for an S3 destination. */
  parts?: { partSize: number; partCount?: number; singlePut: boolean; growEvery?: number; maxBytes: number };
  /** S3 to S3: how the archive would be built (copy assembly or streaming) and what it moves. */
  assembly?: import("@zipstream/s3").AssemblyReport;
}

/** Summary of a finished archive. */
export interface JobResult {
  dest: string;
  size: number;
  entries: number;
  zip64: boolean;
  parts?: number;
  etag?: string;
  versionId?: string;
  skipped: string[];
  predictedSize?: number;
  durationMs: number;
  manifest?: string;
}

export interface RunContext {
  getClient: () => S3Client;
  signal?: AbortSignal;
  reporter: Reporter;
  env?: NodeJS.ProcessEnv;
  /** Warnings (not progress: shown even with --quiet). Default: stderr. */
  warn?: (line: string) => void;
}

const stderrWarn = (line: string) => void process.stderr.write(`zipstream: warning: ${line}\n`);

const MAX_UINT32 = 0xffffffff;
const MAX_UINT16 = 0xffff;

/**
 * Reads the password from `--password-env NAME` or `--password-file FILE` (its first line, the
 * trailing newline removed). Never from argv, never logged.
 */
export async function loadPassword(
  opts: JobOptions,
  env: NodeJS.ProcessEnv = process.env,
  warn: (line: string) => void = stderrWarn,
): Promise<string | undefined> {
  if (opts.passwordEnv !== undefined) {
    const v = env[opts.passwordEnv];
    if (v === undefined || v === "") throw new UsageError(`--password-env: environment variable ${opts.passwordEnv} is not set or empty`);
    return v;
  }
  if (opts.passwordFile !== undefined) {
    // One open: the mode checked is that of the file whose text was read.
    let text: string;
    let mode: number;
    try {
      const fh = await open(opts.passwordFile, "r");
      try {
        text = await fh.readFile("utf8");
        mode = (await fh.stat()).mode & 0o777;
      } finally {
        await fh.close();
      }
    } catch (err) {
      throw new UsageError(`--password-file: cannot read ${opts.passwordFile}: ${(err as Error).message}`);
    }
    const line = text.split(/\r?\n/)[0] ?? "";
    if (line === "") throw new UsageError(`--password-file: ${opts.passwordFile} is empty`);
    // As ssh says of a private key others can read: the secret is not secret. Warned, not refused.
    if ((mode & 0o077) !== 0) {
      warn(
        `--password-file ${opts.passwordFile} is readable by ${mode & 0o004 ? "everyone" : "its group"} (mode ${mode.toString(8).padStart(4, "0")}); ` +
          `anyone who can read it can open the archive: chmod 600 it`,
      );
    }
    return line;
  }
  return undefined;
}

export function s3Dest(dest: Extract<Location, { kind: "s3" }>, o: JobOptions): S3Dest {
  return {
    bucket: dest.bucket,
    key: dest.key,
    contentType: o.contentType,
    contentDisposition: o.contentDisposition,
    storageClass: o.storageClass,
    serverSideEncryption: o.sse,
    sseKmsKeyId: o.sseKmsKeyId,
    metadata: o.metadata,
    tags: o.tags,
    cacheControl: o.cacheControl,
  };
}

function zipOptionsOf(o: JobOptions, password: string | undefined): ZipOptions {
  return {
    method: o.method,
    level: o.level,
    zip64: o.zip64,
    duplicates: o.duplicates,
    password,
    // --allow-outside-symlinks is the user's explicit consent to links leaving the tree, which
    // the encoder refuses by default (core's `allowUnsafeSymlinks`, issue 13).
    ...(o.allowOutsideSymlinks ? { allowUnsafeSymlinks: true } : {}),
  };
}

/** Size-only entries for {@link predictZipSize}: nothing is opened. */
function sizingEntries(planned: PlannedEntry[]): ZipEntry[] {
  return planned.map((p) =>
    p.link
      ? { name: p.name, type: "symlink" as const, source: p.link.target, mtime: p.link.mtime }
      : { name: p.name, size: p.size, mtime: p.local?.mtime ?? p.s3?.mtime, source: () => new Uint8Array(0) },
  );
}

/** Local-file signatures of a ZIP archive: local file header, empty archive's end record, spanning marker (APPNOTE 4.3.7, 4.3.16, 8.5.3). */
const ZIP_SIGNATURES = [0x04034b50, 0x06054b50, 0x08074b50];

function destError(message: string, cause?: unknown): ZipError {
  return new ZipError("ERR_LOCAL_DEST", message, { cause });
}

/**
 * Refuses, before anything is read or written, a local destination that would destroy data:
 * one of the sources, a path inside a source directory (the next run would zip the archive into
 * itself), a directory, or an existing file that is not a ZIP archive (unless `--force`).
 * An existing ZIP is replaced, as before: re-running a job updates its archive.
 */
export async function checkLocalDest(job: Job): Promise<void> {
  if (job.dest.kind !== "local") return;
  const dest = path.resolve(job.dest.path);
  // Compare real paths (a source reached through a symlink, or "./x" and "x"); the destination
  // may not exist yet, so resolve its directory.
  const realDest = await realpath(dest).catch(async () => path.join(await realpath(path.dirname(dest)).catch(() => path.dirname(dest)), path.basename(dest)));
  for (const src of job.src) {
    if (src.kind !== "local") continue;
    const realSrc = await realpath(src.path).catch(() => path.resolve(src.path));
    if (realDest === realSrc) throw destError(`destination ${job.dest.text} is also a source: it would be replaced by an archive of itself`);
    const rel = path.relative(realSrc, realDest);
    if (rel !== "" && !rel.startsWith("..") && !path.isAbsolute(rel)) {
      throw destError(`destination ${job.dest.text} is inside the source ${src.text}: the archive would be zipped into the next run; write it elsewhere`);
    }
  }
  let st;
  try {
    st = await lstat(dest);
  } catch {
    return; // does not exist: nothing to protect
  }
  if (st.isDirectory()) throw destError(`destination ${job.dest.text} is a directory; give a file name such as ${path.join(job.dest.text, "archive.zip")}`);
  if (job.options.force) return;
  const head = Buffer.alloc(4);
  let n = 0;
  try {
    const fh = await open(dest, "r");
    try {
      n = (await fh.read(head, 0, 4, 0)).bytesRead;
    } finally {
      await fh.close();
    }
  } catch (err) {
    throw destError(`cannot read the existing destination ${job.dest.text}: ${(err as Error).message}`, err);
  }
  if (n < 4 || !ZIP_SIGNATURES.includes(head.readUInt32LE(0))) {
    throw destError(`destination ${job.dest.text} exists and is not a ZIP archive: not replaced (use --force to replace it)`);
  }
}

function predict(planned: PlannedEntry[], o: JobOptions, password: string | undefined): number | undefined {
  try {
    return predictZipSize(sizingEntries(planned), zipOptionsOf(o, password));
  } catch {
    return undefined;
  }
}

/** The Zip64 need from sizes alone (APPNOTE 4.4.8-4.4.9, 4.4.21-4.4.22: 32-bit sizes and offsets, 16-bit counts). */
function zip64Need(planned: PlannedEntry[], predicted: number | undefined, o: JobOptions): boolean | "possible" {
  if (o.zip64 === "always") return true;
  if (planned.length >= MAX_UINT16 || planned.some((p) => p.size >= MAX_UINT32)) return true;
  if (predicted !== undefined) return predicted > MAX_UINT32;
  // Deflate can grow incompressible data slightly; compare the stored size with some headroom.
  const total = planned.reduce((s, p) => s + p.size, 0);
  return total > MAX_UINT32 * 0.99 ? "possible" : false;
}

/** Plans the job and reports it without writing anything (`--dry-run`). */
export async function dryRun(job: Job, ctx: RunContext): Promise<DryRunReport> {
  await checkLocalDest(job);
  const collected = await collectSources(job.src, job.options, ctx.getClient, ctx.signal);
  // The AES overhead is the same for any password: plan with a placeholder, never read the secret.
  const password = job.options.passwordEnv !== undefined || job.options.passwordFile !== undefined ? "x" : undefined;
  const predictedSize = predict(collected.entries, job.options, password);
  const report: DryRunReport = {
    dryRun: true,
    dest: job.dest.text,
    entries: collected.entries.map((e) => ({ name: e.name, source: e.source, size: e.size })),
    skipped: collected.skipped,
    warnings: collected.warnings,
    totalBytes: collected.entries.reduce((s, e) => s + e.size, 0),
    predictedSize,
    zip64: zip64Need(collected.entries, predictedSize, job.options),
  };
  if (job.dest.kind === "s3") {
    const { planParts } = await import("@zipstream/s3");
    const plan = planParts(predictedSize, { partSize: job.options.partSize, equalParts: job.options.equalParts });
    report.parts = {
      partSize: plan.partSize,
      partCount: plan.partCount,
      singlePut: plan.singlePut,
      growEvery: plan.growEvery,
      maxBytes: plan.maxBytes,
    };
    if (collected.entries.every((e) => e.s3)) {
      const { planAssemblyReport } = await import("@zipstream/s3");
      const o = job.options;
      report.assembly = planAssemblyReport(collected.entries.map((e) => ({ name: e.name, size: e.size, lastModified: e.s3!.mtime })), {
        method: o.method,
        password,
        equalParts: o.equalParts,
        copyMinSize: o.copyMinSize,
        partSize: o.partSize,
        zip64: o.zip64,
        duplicates: o.duplicates,
        assembly: o.assembly,
      });
    }
  }
  return report;
}

/** Builds one archive: S3 to S3 through `zipS3Keys`, anything else through `zipStream`. */
export async function runJob(job: Job, ctx: RunContext): Promise<JobResult> {
  const started = Date.now();
  const o = job.options;
  const warn = ctx.warn ?? stderrWarn;
  await checkLocalDest(job);
  const password = await loadPassword(o, ctx.env, warn);
  const collected = await collectSources(job.src, o, ctx.getClient, ctx.signal);
  for (const w of collected.warnings) warn(w);
  if (collected.entries.length === 0) {
    const message = `nothing to zip: every source is missing (${collected.skipped.join(", ")})`;
    // Only reached under --on-missing skip: every source was skipped as missing.
    if (!job.src.some((s) => s.kind === "s3")) throw new ZipError("ERR_LOCAL_SOURCE_MISSING", message);
    const { S3ZipError } = await import("@zipstream/s3");
    throw new S3ZipError("ERR_S3_EMPTY_SOURCE", message);
  }
  const totalBytes = collected.entries.reduce((s, e) => s + e.size, 0);
  const predictedSize = predict(collected.entries, o, password);
  const manifest: ManifestEntry[] = [];
  const sourceByName = new Map<string, string>();
  for (const e of collected.entries) sourceByName.set(e.name, e.source);
  const record = (info: ZipEntryInfo, source: string | undefined) => {
    if (o.manifest === undefined) return;
    manifest.push({
      source: source ?? sourceByName.get(info.name) ?? "",
      name: info.name,
      size: info.size,
      compressedSize: info.compressedSize,
      crc32: info.crc32,
      offset: info.offset,
      method: info.method,
      encrypted: info.encrypted,
      zip64: info.zip64,
    });
  };
  ctx.reporter.start(`${job.src.map((s) => printableName(s.text)).join(" ")} -> ${printableName(job.dest.text)}`, {
    entries: collected.entries.length,
    bytes: totalBytes,
  });
  const entriesTotal = collected.entries.length;
  let result: JobResult;
  let closeReads = () => {};
  try {
    if (job.dest.kind === "s3" && collected.entries.every((e) => e.s3)) {
      // All S3: zipS3Keys reads with bounded prefetch. The listing is passed as refs so that the
      // names, sizes and ETags planned here are exactly what gets zipped.
      const refs: S3ObjectRef[] = collected.entries.map((e) => ({
        bucket: e.s3!.bucket,
        key: e.s3!.key,
        name: e.name,
        size: e.size,
        etag: e.s3!.etag,
      }));
      const iterable: Iterable<S3ObjectRef> = { [Symbol.iterator]: () => refs[Symbol.iterator]() };
      const { zipS3Keys } = await import("@zipstream/s3");
      const r = await zipS3Keys({
        client: ctx.getClient(),
        src: iterable,
        dest: s3Dest(job.dest, o),
        method: o.method,
        level: o.level,
        partSize: o.partSize,
        equalParts: o.equalParts,
        concurrency: o.concurrency,
        prefetch: { objects: o.prefetchObjects, bytes: o.prefetchBytes },
        assembly: o.assembly,
        copyMinSize: o.copyMinSize,
        onMissing: o.onMissing,
        duplicates: o.duplicates,
        zip64: o.zip64,
        password,
        signal: ctx.signal,
        onProgress: (p) => ctx.reporter.update({ entries: p.entries, entriesTotal, bytesIn: p.bytesIn, bytesOut: p.bytesOut, bytesTotal: totalBytes }),
        onEntry: (e) => record(e, `s3://${e.bucket}/${e.key}`),
      });
      result = {
        dest: job.dest.text,
        size: r.size,
        entries: r.entries,
        zip64: r.zip64,
        parts: r.parts,
        etag: r.etag,
        versionId: r.versionId,
        skipped: [...collected.skipped, ...r.skipped],
        predictedSize: r.predictedSize ?? predictedSize,
        durationMs: 0,
      };
    } else {
      let zip64 = false;
      const members = await toZipEntries(collected.entries, o, ctx.getClient, ctx.signal);
      closeReads = members.close;
      const archive = zipStream(members.entries, {
        ...zipOptionsOf(o, password),
        fileIo: job.dest.kind === "local" ? "sync" : "async", // core fileIo: blocking reads only delay this CLI's own jobs
        signal: ctx.signal,
        onProgress: (p) => ctx.reporter.update({ entries: p.entries, entriesTotal, bytesIn: p.bytesIn, bytesOut: p.bytesOut, bytesTotal: totalBytes }),
        onEntry: (info) => {
          if (info.zip64) zip64 = true;
          record(info, undefined);
        },
      });
      // The upload (or file pipeline) reports failures itself; when it stops reading early (abort,
      // failed part) the archive's own error must not surface as an unhandled 'error' event.
      archive.on("error", () => {});
      if (job.dest.kind === "s3") {
        const { uploadStream } = await import("@zipstream/s3");
        const r = await uploadStream({
          client: ctx.getClient(),
          dest: s3Dest(job.dest, o),
          body: archive,
          totalSize: predictedSize,
          partSize: o.partSize,
          equalParts: o.equalParts,
          concurrency: o.concurrency,
          signal: ctx.signal,
        });
        result = {
          dest: job.dest.text,
          size: r.size,
          entries: archive.stats.entries,
          zip64: archive.stats.zip64 || zip64,
          parts: r.parts,
          etag: r.etag,
          versionId: r.versionId,
          skipped: collected.skipped,
          predictedSize,
          durationMs: 0,
        };
      } else {
        const size = await writeLocal(archive, job.dest.path, ctx.signal);
        result = {
          dest: job.dest.text,
          size,
          entries: archive.stats.entries,
          zip64: archive.stats.zip64 || zip64,
          skipped: collected.skipped,
          predictedSize,
          durationMs: 0,
        };
      }
    }
  } catch (err) {
    // A failed S3 member surfaces as its own typed error (ERR_S3_SOURCE_CHANGED...), not core's ERR_SOURCE.
    // (@zipstream/s3 is loaded already when there are S3 members: local-only runs never load the SDK.)
    if (!collected.entries.some((e) => e.s3)) throw err;
    const { s3SourceFailure } = await import("@zipstream/s3");
    throw s3SourceFailure(err);
  } finally {
    closeReads();
    ctx.reporter.stop();
  }
  if (o.manifest !== undefined) {
    await writeFile(o.manifest, `${JSON.stringify({ archive: job.dest.text, size: result.size, entries: manifest }, null, 2)}\n`);
    result.manifest = o.manifest;
  }
  result.durationMs = Date.now() - started;
  return result;
}

/**
 * Writes the archive next to `dest` under a temporary name and renames it on success, so a failed
 * or interrupted run never leaves a truncated zip behind. The data is fsync'ed before the rename
 * (and the directory after it): otherwise a crash soon after could leave the new name pointing at
 * an empty or partial file on file systems that reorder metadata before data.
 */
async function writeLocal(archive: Readable, dest: string, signal?: AbortSignal): Promise<number> {
  const tmp = path.join(path.dirname(dest), `.${path.basename(dest)}.${process.pid}.partial`);
  let size = 0;
  let out;
  try {
    out = createWriteStream(tmp, { flags: "wx" });
    await new Promise<void>((resolve, reject) => {
      out!.once("open", () => resolve());
      out!.once("error", reject);
    });
  } catch (err) {
    throw destError(`cannot write ${dest}: ${(err as Error).message}`, err);
  }
  try {
    await pipeline(archive, out, { signal });
    size = out.bytesWritten;
    const fh = await open(tmp, "r+");
    try {
      await fh.sync();
    } finally {
      await fh.close();
    }
    await rename(tmp, dest);
    const dir = await open(path.dirname(dest), "r").catch(() => undefined);
    await dir?.sync().catch(() => {});
    await dir?.close();
  } catch (err) {
    await rm(tmp, { force: true });
    throw err;
  }
  return size;
}
