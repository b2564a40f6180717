import { readFile } from "node:fs/promises";
import type { S3Client } from "@aws-sdk/client-s3";
import { quoteName } from "@zipstream/core";
import type { VerifyExpect, VerifyReport } from "@zipstream/s3";
import type { RawValues } from "./args.js";
import { EXIT, UsageError, type ExitCode } from "./exit-codes.js";
import { parseLocation } from "./location.js";
import type { Reporter } from "./progress.js";
import { loadPassword } from "./run.js";
import { formatBytes, formatDuration } from "./units.js";

/** Flags `zipstream verify` takes besides the S3 connection ones. */
export const VERIFY_FLAGS = ["expect", "manifest", "deep", "local-headers", "password-env", "password-file", "json", "quiet"] as const;

/**
 * `zipstream verify s3://bucket/key.zip [--expect s3://bucket/prefix/ | --manifest FILE] [--deep]`:
 * runs `verifyS3Zip` and prints its report. Exit 0 when the archive is whole, 9 when a problem was
 * found; other failures (missing object, denied, aborted) keep their usual codes.
 */
export async function runVerify(
  positionals: string[],
  values: RawValues,
  client: S3Client,
  io: { stdout: NodeJS.WritableStream; env: NodeJS.ProcessEnv; signal?: AbortSignal },
  reporter: Reporter,
): Promise<ExitCode> {
  if (positionals.length !== 1) throw new UsageError("verify takes one s3://bucket/key.zip");
  const loc = parseLocation(positionals[0]!);
  if (loc.kind !== "s3" || loc.key === "" || loc.key.endsWith("/")) throw new UsageError("verify needs an archive as s3://bucket/key.zip");
  for (const flag of Object.keys(values) as (keyof RawValues)[]) {
    const allowed = (VERIFY_FLAGS as readonly string[]).includes(flag) || ["endpoint", "region", "profile", "path-style"].includes(flag);
    if (!allowed && values[flag] !== undefined) throw new UsageError(`--${flag} does not apply to verify`);
  }
  if (values.expect !== undefined && values.manifest !== undefined) throw new UsageError("use either --expect or --manifest, not both");
  let expect: VerifyExpect | undefined;
  if (values.expect !== undefined) {
    const src = parseLocation(values.expect);
    if (src.kind !== "s3") throw new UsageError("--expect takes an S3 prefix s3://bucket/prefix/ (the sources the archive was made from)");
    // Like a source of the zip command: a key not ending in "/" names the prefix "key/".
    const prefix = src.key === "" || src.key.endsWith("/") ? src.key : `${src.key}/`;
    expect = { bucket: src.bucket, prefix };
  } else if (values.manifest !== undefined) {
    let manifest: unknown;
    try {
      manifest = JSON.parse(await readFile(values.manifest, "utf8"));
    } catch (err) {
      throw new UsageError(`--manifest: cannot read ${values.manifest}: ${(err as Error).message}`);
    }
    expect = { manifest: manifest as never };
  }
  const localHeaders = values["local-headers"];
  if (localHeaders !== undefined && !["all", "sample", "none"].includes(localHeaders)) {
    throw new UsageError(`--local-headers must be one of all, sample, none (got ${JSON.stringify(localHeaders)})`);
  }
  const password = await loadPassword({ passwordEnv: values["password-env"], passwordFile: values["password-file"] } as never, io.env);

  const { verifyS3Zip } = await import("@zipstream/s3");
  const started = Date.now();
  let startedBar = false;
  let report: VerifyReport;
  try {
    report = await verifyS3Zip({
      client,
      bucket: loc.bucket,
      key: loc.key,
      expect,
      deep: values.deep === true,
      localHeaders: localHeaders as "all" | "sample" | "none" | undefined,
      password,
      signal: io.signal,
      onProgress: (p) => {
        if (!startedBar) {
          startedBar = true;
          reporter.start(`verify ${loc.text}`, { entries: p.entriesTotal, bytes: p.bytesTotal });
        }
        reporter.update({ entries: p.entries, entriesTotal: p.entriesTotal, bytesIn: p.bytesRead, bytesTotal: p.bytesTotal, bytesOut: 0 });
      },
    });
  } catch (err) {
    // A manifest of the wrong shape is the user's input: a usage error naming the field.
    if (err instanceof TypeError && /expect\.manifest/.test(err.message)) throw new UsageError(`--manifest: ${err.message}`);
    throw err;
  } finally {
    reporter.stop();
  }
  if (values.json) {
    io.stdout.write(`${JSON.stringify(report)}\n`);
  } else {
    const r = report;
    const what = `${r.entries} entries, ${formatBytes(r.size)} (${r.size} bytes)${r.zip64 ? ", zip64" : ""}`;
    const cost = `${r.requests} request${r.requests === 1 ? "" : "s"}, ${formatBytes(r.bytesRead)} read, ${formatDuration(Date.now() - started)}`;
    const checks = [
      `${r.checked.localHeaders} local headers`,
      ...(values.deep ? [`${r.checked.crc} CRCs`, ...(r.checked.aesAuthenticated ? [`${r.checked.aesAuthenticated} AES codes`] : [])] : []),
      ...(expect !== undefined ? [`${r.checked.expected} expected members`] : []),
    ].join(", ");
    // Names come from the archive, which may be hostile: escaped for the terminal, as everywhere in the CLI.
    for (const p of r.problems) io.stdout.write(`PROBLEM ${p.code}${p.entry !== undefined ? ` ${quoteName(p.entry)}` : ""}: ${p.message}\n`);
    for (const w of r.warnings) io.stdout.write(`warning ${w.code}${w.entry !== undefined ? ` ${quoteName(w.entry)}` : ""}: ${w.message}\n`);
    io.stdout.write(`${r.ok ? "ok" : "FAILED"} ${loc.text}: ${what}; checked ${checks}; ${r.problems.length} problem${r.problems.length === 1 ? "" : "s"}; ${cost}\n`);
  }
  return report.ok ? EXIT.OK : EXIT.VERIFY_FAILED;
}
