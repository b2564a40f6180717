/**
 * `zipstream plan|run-segment|finalize|resume|abort` and `zipstream SRC DEST --workers N`: a
 * distributed archive (see docs/distributed.md) through `@zipstream/s3`'s planArchive,
 * runSegment, finalizeArchive, resumeArchive and abortArchive. `--workers N` plans, runs the
 * segments in N local processes of this same binary (`run-segment`, one segment each, N at
 * once, a failed segment retried once in a new process), then finalizes; when a segment still
 * fails, the plan is aborted (nothing left) and the command fails with the segment's error.
 */
import { spawn } from "node:child_process";
import { fileURLToPath } from "node:url";
import type { S3Client } from "@aws-sdk/client-s3";
import { pool } from "@zipstream/core";
import { integer, resolveJobOptions, size, type CommandLine } from "./args.js";
import { EXIT, UsageError, type ExitCode } from "./exit-codes.js";
import { parseLocation } from "./location.js";
import { loadPassword, s3Dest } from "./run.js";
import { collectSources } from "./sources.js";
import { formatBytes } from "./units.js";
import type { MainIO } from "./io.js";

interface Context {
  getClient: () => S3Client;
  io: MainIO;
  argv: string[];
}

const BIN = fileURLToPath(new URL("./bin.js", import.meta.url));

function planLocation(text: string | undefined, what: string): string {
  if (text === undefined) throw new UsageError(`${what} needs the plan: s3://bucket/plan.json`);
  const loc = parseLocation(text);
  if (loc.kind !== "s3" || loc.key === "" || loc.key.endsWith("/")) throw new UsageError(`the plan must be an S3 object, s3://bucket/plan.json (got ${text})`);
  return `s3://${loc.bucket}/${loc.key}`;
}

function segmentIndex(text: string | undefined): number {
  if (text === undefined || !/^\d+$/.test(text)) throw new UsageError(`run-segment needs a segment index N (0, 1, ...); got ${JSON.stringify(text)}`);
  return Number(text);
}

/** The flags a child `run-segment` needs to reach the same S3 with the same secrets. */
function childFlags(values: CommandLine["values"]): string[] {
  const out: string[] = [];
  for (const k of ["endpoint", "region", "profile", "password-env", "password-file", "concurrency", "prefetch-objects", "prefetch-bytes"] as const) {
    const v = values[k];
    if (typeof v === "string") out.push(`--${k}`, v);
  }
  if (values["path-style"]) out.push("--path-style");
  return out;
}

/** Plans from `SRC... DEST` and the archive flags; returns the plan's s3:// location. */
async function plan(cl: CommandLine, raw: Record<string, unknown>, ctx: Context, planText: string | undefined) {
  if (cl.positionals.length < 2) throw new UsageError("plan needs <src...> <dest> (S3 locations)");
  const src = cl.positionals.slice(0, -1).map(parseLocation);
  const dest = parseLocation(cl.positionals[cl.positionals.length - 1]!);
  if (dest.kind !== "s3" || dest.key === "" || dest.key.endsWith("/")) throw new UsageError("a distributed archive's destination is an S3 object, s3://bucket/archive.zip");
  if (src.some((s) => s.kind !== "s3")) throw new UsageError("a distributed archive's sources are on S3 (local files: use zipstream without --workers)");
  const o = resolveJobOptions(raw);
  const password = await loadPassword(o, ctx.io.env);
  const collected = await collectSources(src, o, ctx.getClient, ctx.io.signal);
  const { planArchive } = await import("@zipstream/s3");
  const where = planText === undefined ? undefined : parseLocation(planLocation(planText, "plan"));
  const segmentBytes = size("segment-size", cl.values["segment-size"], 1);
  const p = await planArchive({
    client: ctx.getClient(),
    src: collected.entries.map((e) => ({ bucket: e.s3!.bucket, key: e.s3!.key, name: e.name, size: e.size, etag: e.s3!.etag })),
    dest: s3Dest(dest, o),
    plan: where?.kind === "s3" ? { bucket: where.bucket, key: where.key } : undefined,
    method: o.method,
    level: o.level,
    partSize: o.partSize,
    copyMinSize: o.copyMinSize,
    duplicates: o.duplicates,
    zip64: o.zip64,
    password,
    onMissing: o.onMissing,
    segment: segmentBytes === undefined ? undefined : { bytes: segmentBytes },
    signal: ctx.io.signal,
  });
  return { plan: p, url: `s3://${p.location.bucket}/${p.location.key}` };
}

/** A segment that failed twice: the first one stops the pool, which rejects with it. */
class SegmentFailure extends Error {
  constructor(
    readonly segment: number,
    message: string,
  ) {
    super(message);
  }
}

/** Runs `run-segment` child processes, `workers` at once; a segment that fails is retried once. */
async function runWorkers(url: string, segments: number, workers: number, flags: string[], io: MainIO): Promise<{ failed?: SegmentFailure }> {
  const once = (segment: number) =>
    new Promise<{ code: number | null; stderr: string }>((resolve) => {
      const child = spawn(process.execPath, [BIN, "run-segment", url, String(segment), "--quiet", ...flags], { env: io.env, stdio: ["ignore", "ignore", "pipe"] });
      let stderr = "";
      child.stderr.on("data", (d) => (stderr += d));
      const kill = () => child.kill("SIGTERM");
      io.signal?.addEventListener("abort", kill, { once: true });
      child.on("exit", (code) => {
        io.signal?.removeEventListener("abort", kill);
        resolve({ code, stderr });
      });
    });
  const runSegment = async (segment: number) => {
    let r = await once(segment);
    if (r.code !== 0 && !io.signal?.aborted) r = await once(segment);
    if (r.code !== 0) throw new SegmentFailure(segment, r.stderr.trim().split("\n").filter((l) => l.startsWith("zipstream:"))[0] ?? `exit ${r.code}`);
  };
  // The first failed segment (or an abort) stops starting new ones; those running are awaited.
  return pool(Array.from({ length: segments }, (_, i) => i), runSegment, { concurrency: workers, signal: io.signal }).then(
    () => ({}),
    (err: unknown) => (err instanceof SegmentFailure ? { failed: err } : {}),
  );
}

/** Dispatches the distributed subcommands and `--workers`. */
export async function runDistributed(cl: CommandLine, raw: Record<string, unknown>, ctx: Context): Promise<ExitCode> {
  const { values } = cl;
  const { io } = ctx;
  const s3 = await import("@zipstream/s3");
  const client = ctx.getClient();
  const print = (text: string, json: object) => io.stdout.write(values.json ? `${JSON.stringify(json)}\n` : `${text}\n`);
  const concurrency = integer("concurrency", values.concurrency, 1, 64);
  switch (cl.command) {
    case "plan": {
      const { plan: p, url } = await plan(cl, raw, ctx, planLocation(values.plan, "plan"));
      print(`planned ${url}: ${p.segments} segments (run-segment ${url} 0..${p.segments - 1}), ${p.members} members${p.size !== undefined ? `, ${formatBytes(p.size)}` : ""}, mode ${p.mode}`, { ok: true, plan: url, segments: p.segments, members: p.members, size: p.size, mode: p.mode });
      return EXIT.OK;
    }
    case "run-segment": {
      const url = planLocation(cl.positionals[0], "run-segment");
      const segment = segmentIndex(cl.positionals[1]);
      const password = await loadPassword(resolveJobOptions(raw), io.env);
      const r = await s3.runSegment({ client, plan: url, segment, concurrency, password, signal: io.signal });
      print(`segment ${segment} of ${url}: ${r.crcs.length} members, ${r.parts.length} parts`, { ok: true, segment, members: r.crcs.length, parts: r.parts.length, bytesRead: r.bytesRead, bytesUploaded: r.bytesUploaded, bytesCopied: r.bytesCopied });
      return EXIT.OK;
    }
    case "finalize":
    case "resume": {
      const url = planLocation(cl.positionals[0], cl.command);
      const password = await loadPassword(resolveJobOptions(raw), io.env);
      const r =
        cl.command === "finalize"
          ? await s3.finalizeArchive({ client, plan: url, concurrency, keepPlan: values["keep-plan"], signal: io.signal })
          : await s3.resumeArchive({ client, plan: url, concurrency, password, keepPlan: values["keep-plan"], signal: io.signal });
      print(`wrote s3://${r.bucket}/${r.key}: ${r.entries} entries, ${formatBytes(r.size)} (${r.size} bytes), ${r.parts} parts`, { ok: true, ...r });
      return EXIT.OK;
    }
    case "abort": {
      const url = planLocation(cl.positionals[0], "abort");
      const r = await s3.abortArchive({ client, plan: url, keepPlan: values["keep-plan"] });
      print(r.found ? `aborted ${url}: upload ${r.uploadAborted ? "aborted" : "already gone"}, ${r.filesRemoved} plan files removed` : `no plan at ${url}: nothing to abort`, { ok: true, ...r });
      return EXIT.OK;
    }
    default: {
      // zipstream SRC... DEST --workers N
      const workers = integer("workers", values.workers ?? "", 1, 256)!;
      if (values["dry-run"]) throw new UsageError("--dry-run does not apply to --workers (use zipstream plan, then inspect the plan)");
      const started = Date.now();
      const { plan: p, url } = await plan(cl, raw, ctx, values.plan);
      const { failed } = await runWorkers(url, p.segments, workers, childFlags(values), io);
      if (failed !== undefined || io.signal?.aborted) {
        await s3.abortArchive({ client, plan: url });
        if (io.signal?.aborted) return EXIT.ABORTED;
        throw new s3.S3ZipError(
          "ERR_SEGMENT_FAILED",
          `segment ${failed!.segment} failed twice (${failed!.message}); the archive was abandoned: upload aborted, plan removed, nothing written`,
          { bucket: p.location.bucket, key: p.location.key },
        );
      }
      const r = await s3.finalizeArchive({ client, plan: url, concurrency, signal: io.signal });
      print(`wrote s3://${r.bucket}/${r.key}: ${r.entries} entries, ${formatBytes(r.size)} (${r.size} bytes), ${r.parts} parts, ${p.segments} segments on ${workers} workers, ${Date.now() - started} ms`, { ok: true, ...r, segments: p.segments, workers, durationMs: Date.now() - started });
      return EXIT.OK;
    }
  }
}
