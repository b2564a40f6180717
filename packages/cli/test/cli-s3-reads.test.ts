/**
 * The CLI reads S3 through `@zipstream/s3` (issue 15 §1): one listing/HEAD path and one error
 * mapping for its sources, and the package's pinned ranged reader for S3 -> local archives. Each
 * case was a difference from `@zipstream/s3` when the CLI had its own List/Head/Get: a GET body
 * cut mid-way failed the run (no resume), and a source overwritten mid-run surfaced as core's
 * generic ERR_SOURCE. Faults are made by the reliability suite's fault proxy between the CLI and
 * the gateway.
 */
import { readdir, rm } from "node:fs/promises";
import path from "node:path";
import type { S3Client } from "@aws-sdk/client-s3";
import { verifyZip } from "@zipstream/interop";
import { FaultProxy, type ProxyRequestInfo } from "@zipstream/reliability";
import type { TestS3 } from "@zipstream/testkit";
import { afterAll, beforeAll, beforeEach, describe, expect, it } from "vitest";
import { bytes, runCli, tempDir } from "./helpers.js";
import { childEnv, put, s3available, testS3 } from "./s3-helpers.js";

const MiB = 1024 * 1024;
const small = bytes(40_000, 3);
/** Larger than one 8 MiB range of the reader, so the member is read as ranged GETs. */
const big = bytes(9 * MiB + 123, 4);

/** Key of a path-style request `/bucket/key?query`. */
function keyOf(info: Pick<ProxyRequestInfo, "url">): string {
  return decodeURIComponent(new URL(info.url, "http://x").pathname).split("/").slice(2).join("/");
}

describe.skipIf(!s3available)("S3 reads of the CLI go through @zipstream/s3 (local S3 gateway)", () => {
  let s3: TestS3;
  let client: S3Client;
  let bucket: string;
  let dir: string;
  let proxy: FaultProxy;
  /** The CLI's environment, its endpoint the fault proxy. */
  const viaProxy = () => ({ ...childEnv(), AWS_ENDPOINT_URL: proxy.endpoint });

  beforeAll(async () => {
    s3 = await testS3();
    client = s3.client();
    bucket = await s3.newBucket("zs-cli-reads");
    dir = await tempDir();
    proxy = await FaultProxy.start({ upstream: s3.endpoint, seed: 15, log: () => {} });
  });
  beforeEach(async () => {
    proxy.reset();
    proxy.choose = undefined;
    proxy.onRequest = undefined;
    await put(client, bucket, "in/a.txt", small);
    await put(client, bucket, "in/big.bin", big);
  });
  afterAll(async () => {
    await proxy?.close();
    if (bucket) await s3.emptyAndDeleteBucket(bucket);
    client?.destroy();
    if (dir) await rm(dir, { recursive: true, force: true });
  });

  /** Files left in `dir` whose name says they are a partial archive. */
  const partials = async () => (await readdir(dir)).filter((f) => f.includes(".partial"));

  it("a missing source bucket is ERR_S3_NO_SUCH_BUCKET (exit 3) for a key and a prefix; a missing key is ERR_S3_NO_SUCH_KEY", async () => {
    const out = path.join(dir, "never.zip");
    for (const src of [`s3://${bucket}-nope/in/a.txt`, `s3://${bucket}-nope/in/`]) {
      for (const extra of [[], ["--on-missing", "skip"]]) {
        const r = await runCli([src, out, ...extra, "--json"], { env: childEnv() });
        expect(r.code, r.stderr).toBe(3);
        expect(JSON.parse(r.stdout.trim().split("\n").pop()!)).toMatchObject({ ok: false, code: "ERR_S3_NO_SUCH_BUCKET", exitCode: 3 });
      }
    }
    const k = await runCli([`s3://${bucket}/in/nope.txt`, out, "--json"], { env: childEnv() });
    expect(k.code, k.stderr).toBe(3);
    expect(JSON.parse(k.stdout.trim().split("\n").pop()!)).toMatchObject({ ok: false, code: "ERR_S3_NO_SUCH_KEY", exitCode: 3 });
    const e = await runCli([`s3://${bucket}/empty/`, out, "--json"], { env: childEnv() });
    expect(JSON.parse(e.stdout.trim().split("\n").pop()!)).toMatchObject({ ok: false, code: "ERR_S3_EMPTY_SOURCE", exitCode: 3 });
    await expect(readdir(dir)).resolves.not.toContain("never.zip");
  });

  it("S3 -> local survives a GET body cut mid-way: the read resumes from the next byte, pinned to the ETag", async () => {
    let cuts = 0;
    const ranges: string[] = [];
    proxy.choose = (info) => {
      if (info.operation !== "GetObject" || keyOf(info) !== "in/big.bin") return undefined;
      ranges.push(String(info.headers.range ?? "whole"));
      // The first GET of the object's first range is cut after part of its body.
      if (cuts === 0) {
        cuts++;
        return "resetGetBody";
      }
      return null;
    };
    const out = path.join(dir, "resumed.zip");
    const r = await runCli([`s3://${bucket}/in/`, out, "--quiet"], { env: viaProxy() });
    expect(r.code, r.stderr).toBe(0);
    expect(proxy.stats.faults.resetGetBody).toBe(1);
    // Two ranges of 8 MiB, plus the resume of the cut one from a later byte than its start.
    expect(ranges.length).toBe(3);
    expect(ranges.filter((h) => h.startsWith("bytes=0-")).length).toBe(1);
    await verifyZip(out, [
      { name: "a.txt", data: small },
      { name: "big.bin", data: big },
    ], { readers: ["unzip", "python"] });
  });

  it("S3 -> local whose source is overwritten mid-run fails ERR_S3_SOURCE_CHANGED (exit 8) and leaves no file", async () => {
    let replaced = false;
    proxy.onRequest = async (info) => {
      // Replace the object after it was listed, just before its first GET reaches the gateway.
      if (!replaced && info.operation === "GetObject" && keyOf(info) === "in/big.bin") {
        replaced = true;
        await put(client, bucket, "in/big.bin", bytes(big.length, 5));
      }
    };
    const out = path.join(dir, "changed.zip");
    const r = await runCli([`s3://${bucket}/in/`, out, "--json", "--quiet"], { env: viaProxy() });
    expect(replaced).toBe(true);
    expect(r.code, r.stderr).toBe(8);
    expect(JSON.parse(r.stdout.trim().split("\n").pop()!)).toMatchObject({ ok: false, code: "ERR_S3_SOURCE_CHANGED", exitCode: 8 });
    await expect(readdir(dir)).resolves.not.toContain("changed.zip");
    expect(await partials()).toEqual([]);
  });
});
