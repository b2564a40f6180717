import { readFile } from "node:fs/promises";
import { pool, printableName } from "@zipstream/core";
import type { S3Client } from "@aws-sdk/client-s3";
import {
  JOB_OPTION_NAMES,
  parseCommandLine,
  resolveJobOptions,
  resolveOlderThan,
  resolveParallel,
  toFlagName,
  type RawValues,
} from "./args.js";
import { createS3Client, resolveS3Settings } from "./config.js";
import { EXIT, UsageError, exitCodeFor, type ExitCode } from "./exit-codes.js";
import { HELP } from "./help.js";
import type { MainIO } from "./io.js";
import { parseLocation, type Location } from "./location.js";
import { barReporter, lineReporter, silentReporter, type Reporter } from "./progress.js";
import type { DryRunReport, Job, JobResult } from "./run.js";
import { formatBytes, formatDuration } from "./units.js";

export const VERSION = "0.1.0";
export type { MainIO };


function describeError(err: unknown): { code: string; message: string } {
  const e = err as { code?: unknown; message?: unknown };
  const code = typeof e?.code === "string" ? e.code : err instanceof UsageError ? "USAGE" : "ERROR";
  return { code, message: typeof e?.message === "string" ? e.message : String(err) };
}

function jobFromRaw(src: string[], dest: string, raw: Record<string, unknown>): Job {
  if (src.length === 0) throw new UsageError("at least one source is needed");
  const dst = parseLocation(dest);
  if (dst.kind === "s3" && (dst.key === "" || dst.key.endsWith("/"))) {
    throw new UsageError(`destination ${dest} needs an object key (e.g. s3://${dst.bucket}/archive.zip)`);
  }
  return { src: src.map(parseLocation), dest: dst, options: resolveJobOptions(raw) };
}

/** Jobs from a JSON array or NDJSON file; every problem is a usage error naming the job. */
export function parseJobsFile(text: string, defaults: Record<string, unknown>): Job[] {
  let items: unknown[];
  const trimmed = text.trim();
  if (trimmed.startsWith("[")) {
    try {
      items = JSON.parse(trimmed) as unknown[];
    } catch (err) {
      throw new UsageError(`--jobs: invalid JSON: ${(err as Error).message}`);
    }
  } else {
    items = [];
    trimmed.split(/\r?\n/).forEach((line, i) => {
      if (line.trim() === "") return;
      try {
        items.push(JSON.parse(line));
      } catch (err) {
        throw new UsageError(`--jobs: line ${i + 1}: invalid JSON: ${(err as Error).message}`);
      }
    });
  }
  if (items.length === 0) throw new UsageError("--jobs: the file has no job");
  return items.map((item, i) => {
    const where = `--jobs: job ${i + 1}`;
    if (typeof item !== "object" || item === null) throw new UsageError(`${where}: not an object`);
    const { src, dest, options = {} } = item as { src?: unknown; dest?: unknown; options?: unknown };
    const srcList = typeof src === "string" ? [src] : Array.isArray(src) && src.every((s) => typeof s === "string") ? (src as string[]) : undefined;
    if (srcList === undefined) throw new UsageError(`${where}: "src" must be a string or an array of strings`);
    if (typeof dest !== "string") throw new UsageError(`${where}: "dest" must be a string`);
    if (typeof options !== "object" || options === null) throw new UsageError(`${where}: "options" must be an object`);
    const raw: Record<string, unknown> = { ...defaults };
    for (const [k, v] of Object.entries(options)) {
      const flag = toFlagName(k);
      if (!(JOB_OPTION_NAMES as readonly string[]).includes(flag)) throw new UsageError(`${where}: unknown option "${k}"`);
      raw[flag] = typeof v === "number" ? String(v) : v;
    }
    try {
      return jobFromRaw(srcList, dest, raw);
    } catch (err) {
      if (err instanceof UsageError) throw new UsageError(`${where}: ${err.message}`);
      throw err;
    }
  });
}

function resultLine(r: JobResult): string {
  const parts = r.parts !== undefined ? `, ${r.parts} part${r.parts === 1 ? "" : "s"}` : "";
  const skipped = r.skipped.length > 0 ? `, ${r.skipped.length} skipped` : "";
  return `${r.dest}: ${r.entries} entries, ${formatBytes(r.size)} (${r.size} bytes)${parts}${r.zip64 ? ", zip64" : ""}${skipped}, ${formatDuration(r.durationMs)}`;
}

function dryRunText(r: DryRunReport): string {
  const lines = [`dry run: nothing written. ${r.entries.length} entries -> ${r.dest}`];
  for (const e of r.entries) lines.push(`  ${String(e.size).padStart(12)}  ${printableName(e.name)}  <- ${printableName(e.source)}`);
  for (const s of r.skipped) lines.push(`  skipped (missing): ${printableName(s)}`);
  for (const w of r.warnings ?? []) lines.push(`  warning: ${printableName(w)}`);
  lines.push(`total input: ${formatBytes(r.totalBytes)} (${r.totalBytes} bytes)`);
  lines.push(
    r.predictedSize !== undefined
      ? `predicted archive size: ${formatBytes(r.predictedSize)} (${r.predictedSize} bytes)`
      : "predicted archive size: unknown until compressed (deflate)",
  );
  lines.push(`zip64: ${r.zip64 === "possible" ? "possible" : r.zip64 ? "needed" : "not needed"}`);
  if (r.parts) {
    const p = r.parts;
    lines.push(
      p.singlePut
        ? `upload: single PutObject`
        : `upload: multipart, part size ${formatBytes(p.partSize)}` +
            (p.partCount !== undefined ? `, ${p.partCount} parts` : "") +
            (p.growEvery !== undefined ? `, doubling every ${p.growEvery} parts` : ""),
    );
  }
  const a = r.assembly;
  if (a?.assembly === "copy") {
    lines.push(
      `assembly: copy (planned for a server with checksums, as AWS S3) — ${a.parts} parts, ${a.copyParts} copied by S3 (${formatBytes(a.bytesCopied)}), ` +
        `${formatBytes(a.bytesUploaded ?? 0)} uploaded from here; bytes read here: ${formatBytes(a.bytesToRead.withChecksums)} ` +
        `where S3 has checksums, ${formatBytes(a.bytesToRead.withoutChecksums)} where it has not (one CRC pass)`,
    );
  } else if (a) {
    lines.push(`assembly: stream (${a.reason})`);
  }
  return lines.join("\n");
}

function makeReporter(values: RawValues, io: MainIO, batch: boolean): Reporter {
  if (values.quiet) return silentReporter;
  const tty = (io.stderr as NodeJS.WriteStream).isTTY === true;
  if (tty && !batch) return barReporter(io.stderr as NodeJS.WriteStream);
  if (batch) {
    // Interleaved progress of parallel jobs would be noise: log starts only.
    const l = lineReporter(io.stderr, Number.POSITIVE_INFINITY);
    return l;
  }
  return lineReporter(io.stderr);
}

async function runCleanup(positionals: string[], values: RawValues, getClient: () => S3Client, io: MainIO): Promise<ExitCode> {
  if (positionals.length !== 1) throw new UsageError("cleanup takes one s3://bucket/prefix");
  const loc = parseLocation(positionals[0]);
  if (loc.kind !== "s3") throw new UsageError("cleanup needs an s3://bucket/prefix location");
  const olderThan = resolveOlderThan(values["older-than"], values.force === true || values["dry-run"] === true);
  const { abortIncompleteUploads, listIncompleteUploads } = await import("@zipstream/s3");
  const args = { client: getClient(), bucket: loc.bucket, prefix: loc.key || undefined, olderThan };
  const uploads = values["dry-run"] ? await listIncompleteUploads(args) : await abortIncompleteUploads(args);
  const verb = values["dry-run"] ? "would abort" : "aborted";
  if (values.json) {
    io.stdout.write(`${JSON.stringify({ dryRun: values["dry-run"] === true, bucket: loc.bucket, prefix: loc.key, olderThanMs: olderThan, uploads })}\n`);
  } else {
    for (const u of uploads) {
      const initiated = u.initiated instanceof Date ? u.initiated.toISOString() : String(u.initiated ?? "");
      io.stdout.write(`${verb} s3://${loc.bucket}/${u.key} upload ${u.uploadId} initiated ${initiated}\n`);
    }
    io.stdout.write(`${uploads.length} incomplete upload${uploads.length === 1 ? "" : "s"} ${verb}\n`);
  }
  return EXIT.OK;
}

/**
 * The `zipstream` command. Never throws and never calls `process.exit`: resolves with the exit
 * code (see the README's table).
 */
export async function main(argv: string[], io: MainIO = { stdout: process.stdout, stderr: process.stderr, env: process.env }): Promise<ExitCode> {
  let values: RawValues = {};
  const err = (line: string) => io.stderr.write(`zipstream: ${line}\n`);
  // Warnings are not progress: --quiet does not hide them (as ssh does not hide its key warning).
  const warn = (line: string) => err(`warning: ${line}`);
  try {
    const cl = parseCommandLine(argv);
    values = cl.values;
    if (values.help) {
      io.stdout.write(HELP);
      return EXIT.OK;
    }
    if (values.version) {
      io.stdout.write(`${VERSION}\n`);
      return EXIT.OK;
    }
    const settings = resolveS3Settings(values, io.env);
    let client: S3Client | undefined;
    const getClient = (): S3Client => {
      if (client === undefined) throw new Error("internal error: S3 client used before it was created");
      return client;
    };
    /** Creates the client once, only when some location is on S3 (the SDK is slow to load). */
    const prepare = async (locations: Location[]) => {
      if (client === undefined && locations.some((l) => l.kind === "s3")) client = await createS3Client(settings);
      return import("./run.js");
    };
    try {
      if (cl.command === "cleanup") {
        client = await createS3Client(settings);
        return await runCleanup(cl.positionals, values, getClient, io);
      }
      if (cl.command === "verify") {
        client = await createS3Client(settings);
        const { runVerify } = await import("./verify.js");
        return await runVerify(cl.positionals, values, client, io, makeReporter(values, io, false));
      }

      // Per-archive flags shared by a single job and as defaults of every --jobs entry.
      const raw: Record<string, unknown> = {};
      for (const name of JOB_OPTION_NAMES) if (values[name] !== undefined) raw[name] = values[name];

      if (cl.command !== "zip" || values.workers !== undefined) {
        client = await createS3Client(settings);
        const { runDistributed } = await import("./distributed.js");
        return await runDistributed(cl, raw, { getClient, io, argv });
      }

      if (values.jobs !== undefined) {
        if (cl.positionals.length > 0) throw new UsageError("--jobs takes no <src> or <dest> arguments");
        if (values.manifest !== undefined) throw new UsageError("--manifest is per job in batch mode: put it in a job's options");
        let text: string;
        try {
          text = await readFile(values.jobs, "utf8");
        } catch (e) {
          throw new UsageError(`--jobs: cannot read ${values.jobs}: ${(e as Error).message}`);
        }
        const jobs = parseJobsFile(text, raw);
        const parallel = resolveParallel(values.parallel);
        const { dryRun, runJob } = await prepare(jobs.flatMap((j) => [...j.src, j.dest]));
        const reporter = makeReporter(values, io, true);
        let failed = 0;
        // At most `parallel` jobs at once; each reports its own failure, so one does not stop the rest.
        await pool(jobs, async (job, i) => {
          const n = i + 1;
          try {
            reporter.log(`job ${n}: ${job.src.map((s) => printableName(s.text)).join(" ")} -> ${printableName(job.dest.text)}`);
            if (values["dry-run"]) {
              const r = await dryRun(job, { getClient, signal: io.signal, reporter, env: io.env, warn });
              io.stdout.write(values.json ? `${JSON.stringify({ job: n, ok: true, ...r })}\n` : `ok   job ${n} ${dryRunText(r)}\n`);
            } else {
              const r = await runJob(job, { getClient, signal: io.signal, reporter, env: io.env, warn });
              io.stdout.write(values.json ? `${JSON.stringify({ job: n, ok: true, ...r })}\n` : `ok   job ${n} ${resultLine(r)}\n`);
            }
          } catch (e) {
            failed++;
            const { code, message } = describeError(e);
            const exitCode = exitCodeFor(e, { destBucket: job.dest.kind === "s3" ? job.dest.bucket : undefined });
            io.stdout.write(
              values.json
                ? `${JSON.stringify({ job: n, ok: false, dest: job.dest.text, code, exitCode, message })}\n`
                : `FAIL job ${n} ${job.dest.text}: ${message} [${code}, exit ${exitCode}]\n`,
            );
          }
        }, { concurrency: parallel });
        const summary = { jobs: jobs.length, ok: jobs.length - failed, failed };
        io.stdout.write(values.json ? `${JSON.stringify({ summary })}\n` : `${summary.jobs} jobs: ${summary.ok} ok, ${summary.failed} failed\n`);
        if (io.signal?.aborted) return EXIT.ABORTED;
        return failed > 0 ? EXIT.OTHER : EXIT.OK;
      }

      if (values.parallel !== undefined) throw new UsageError("--parallel only applies to --jobs");
      if (values["older-than"] !== undefined) throw new UsageError("--older-than only applies to cleanup");
      if (cl.positionals.length < 2) {
        throw new UsageError(
          cl.positionals.length === 0 ? "missing <src...> and <dest>" : "missing <dest> (usage: zipstream <src...> <dest>)",
        );
      }
      const job = jobFromRaw(cl.positionals.slice(0, -1), cl.positionals[cl.positionals.length - 1], raw);
      const destBucket = job.dest.kind === "s3" ? job.dest.bucket : undefined;
      try {
        const { dryRun, runJob } = await prepare([...job.src, job.dest]);
        if (values["dry-run"]) {
          const r = await dryRun(job, { getClient, signal: io.signal, reporter: silentReporter, env: io.env, warn });
          io.stdout.write(values.json ? `${JSON.stringify(r)}\n` : `${dryRunText(r)}\n`);
          return EXIT.OK;
        }
        const r = await runJob(job, { getClient, signal: io.signal, reporter: makeReporter(values, io, false), env: io.env, warn });
        io.stdout.write(values.json ? `${JSON.stringify({ ok: true, ...r })}\n` : `wrote ${resultLine(r)}\n`);
        return EXIT.OK;
      } catch (e) {
        const exitCode = exitCodeFor(e, { destBucket, localDest: job.dest.kind === "local" ? job.dest.path : undefined });
        throw Object.assign(e as object, { exitCode });
      }
    } finally {
      client?.destroy();
    }
  } catch (e) {
    const exitCode = ((e as { exitCode?: ExitCode }).exitCode ?? exitCodeFor(e)) as ExitCode;
    const { code, message } = describeError(e);
    if (exitCode === EXIT.USAGE) {
      err(`${message}`);
      err(`run "zipstream --help" for usage`);
    } else {
      err(`error: ${message} [${code}]`);
    }
    if (values.json) io.stdout.write(`${JSON.stringify({ ok: false, code, exitCode, message })}\n`);
    return exitCode;
  }
}
