/**
 * `--workers N` and the distributed subcommands against the local gateway: the archive built by
 * two worker processes is byte-identical to `--assembly copy` of the same sources.
 */
import { readFile } from "node:fs/promises";
import path from "node:path";
import type { S3Client } from "@aws-sdk/client-s3";
import { verifyZip } from "@zipstream/interop";
import { FaultProxy } from "@zipstream/reliability";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { TestS3 } from "@zipstream/testkit";
import { bytes, runCli } from "./helpers.js";
import { childEnv, listKeys, s3available, setUpBucket, tearDownBucket } from "./s3-helpers.js";

const MiB = 1024 * 1024;
const objects: Record<string, Uint8Array> = {
  "src/a-small.txt": Buffer.from("small\n".repeat(5000)),
  "src/b-big.bin": bytes(12 * MiB + 1, 5),
  "src/c-small.txt": Buffer.from("another\n".repeat(9000)),
  "src/d-big.bin": bytes(7 * MiB, 6),
  "src/e-tail.txt": Buffer.from("tail\n"),
};

describe.skipIf(!s3available)("distributed archives from the CLI", () => {
  let s3: TestS3;
  let client: S3Client;
  let bucket: string;
  let dir: string;

  beforeAll(async () => void ({ s3, client, bucket, dir } = await setUpBucket("zs-cli-dist", objects)));

  afterAll(() => tearDownBucket({ s3, client, bucket, dir }));

  const flags = ["--copy-min-size", "5MiB", "--part-size", "5MiB", "--segment-size", "8MiB"];

  // The CLI hands zipS3Keys listed refs without LastModified, so each run stamps its members with
  // its own start time: the two archives have the same layout and size, not the same mtimes.
  // (packages/s3/test/archive.test.ts compares the bytes with the mtimes from the listing.)
  it("--workers 2 writes the same layout as --assembly copy; readers agree; no plan file left", async () => {
    const ref = await runCli([`s3://${bucket}/src/`, `s3://${bucket}/out/ref.zip`, "--assembly", "copy", "--copy-min-size", "5MiB", "--part-size", "5MiB", "--json"], { env: childEnv() });
    expect(ref.code, ref.stderr).toBe(0);
    const r = await runCli([`s3://${bucket}/src/`, `s3://${bucket}/out/w.zip`, "--workers", "2", ...flags, "--json"], { env: childEnv() });
    expect(r.code, r.stderr).toBe(0);
    const out = JSON.parse(r.stdout.trim().split("\n").at(-1)!);
    expect(out).toMatchObject({ ok: true, workers: 2, entries: 5 });
    expect(out.segments).toBeGreaterThanOrEqual(2);
    const a = path.join(dir, "ref.zip");
    const b = path.join(dir, "w.zip");
    await s3.downloadToFile(bucket, "out/ref.zip", a);
    await s3.downloadToFile(bucket, "out/w.zip", b);
    expect((await readFile(b)).length).toBe((await readFile(a)).length);
    await verifyZip(b, Object.entries(objects).map(([k, data]) => ({ name: k.slice(4), data })), { readers: ["unzip", "python"] });
    expect((await listKeys(client, bucket)).filter((k) => k.includes("plan"))).toEqual([]);
  });

  it("a segment whose copies keep failing: ERR_SEGMENT_FAILED after its retry, the upload aborted and the plan removed, nothing written", async () => {
    // Every UploadPartCopy answered 500 by a fault proxy: the planner (which only creates the
    // upload and writes the plan) succeeds, and each run-segment process fails after its retries.
    const proxy = await FaultProxy.start({ upstream: s3.endpoint, seed: 12, log: () => {}, choose: (info) => (info.operation === "UploadPartCopy" ? "internalError" : null) });
    try {
      const r = await runCli([`s3://${bucket}/src/`, `s3://${bucket}/out/failing.zip`, "--workers", "2", ...flags, "--json", "--quiet"], {
        env: { ...childEnv(), AWS_ENDPOINT_URL: proxy.endpoint },
      });
      expect(r.code, r.stderr).toBe(1);
      const out = JSON.parse(r.stdout.trim().split("\n").pop()!);
      expect(out).toMatchObject({ ok: false, code: "ERR_SEGMENT_FAILED", exitCode: 1 });
      expect(out.message).toMatch(/^segment \d+ failed twice \(.+\); the archive was abandoned: upload aborted, plan removed, nothing written/);
      expect(proxy.stats.faults.internalError).toBeGreaterThan(0);
    } finally {
      await proxy.close();
    }
    expect(await listKeys(client, bucket)).not.toContain("out/failing.zip");
    expect((await listKeys(client, bucket)).filter((k) => k.includes("plan"))).toEqual([]);
    expect(await s3.listMultipartUploads(bucket)).toEqual([]);
  });

  it("plan, run-segment each, finalize; abort of a plan removes it; usage errors are clear", async () => {
    const plan = `s3://${bucket}/plans/p.json`;
    const p = await runCli(["plan", `s3://${bucket}/src/`, `s3://${bucket}/out/p.zip`, "--plan", plan, ...flags, "--json"], { env: childEnv() });
    expect(p.code, p.stderr).toBe(0);
    const { segments } = JSON.parse(p.stdout);
    for (let i = segments - 1; i >= 0; i--) {
      const s = await runCli(["run-segment", plan, String(i), "--json"], { env: childEnv() });
      expect(s.code, s.stderr).toBe(0);
    }
    const f = await runCli(["finalize", plan, "--json"], { env: childEnv() });
    expect(f.code, f.stderr).toBe(0);
    expect(JSON.parse(f.stdout)).toMatchObject({ ok: true, entries: 5 });

    const q = await runCli(["plan", `s3://${bucket}/src/`, `s3://${bucket}/out/q.zip`, "--plan", `s3://${bucket}/plans/q.json`, ...flags], { env: childEnv() });
    expect(q.code, q.stderr).toBe(0);
    const ab = await runCli(["abort", `s3://${bucket}/plans/q.json`], { env: childEnv() });
    expect(ab.stdout).toMatch(/upload aborted, \d+ plan files removed/);
    expect((await listKeys(client, bucket)).filter((k) => k.startsWith("plans/"))).toEqual([]);
    const bad = await runCli(["run-segment", `s3://${bucket}/plans/q.json`, "x"], { env: childEnv() });
    expect(bad.code).not.toBe(0);
    expect(bad.stderr).toMatch(/segment index/);
  });
});
