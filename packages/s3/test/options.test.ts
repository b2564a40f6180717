// Every option of zipS3Keys is checked before the first request: a bad value is a TypeError that
// names the option, and the client (whose send throws if ever called) sees no request at all.
import { Readable } from "node:stream";
import type { S3Client } from "@aws-sdk/client-s3";
import { describe, expect, it } from "vitest";
import { planArchive, uploadStream, zipS3Keys, type ZipS3Options } from "../src/index.js";

const MiB = 1024 * 1024;

function noRequestClient(): { client: S3Client; calls: string[] } {
  const calls: string[] = [];
  const client = {
    send: async (cmd: { constructor: { name: string } }) => {
      calls.push(cmd.constructor.name);
      throw new Error(`no request was expected, got ${cmd.constructor.name}`);
    },
  } as unknown as S3Client;
  return { client, calls };
}

// [option, a bad value, what the message names]
const BAD: [string, Partial<ZipS3Options> & Record<string, unknown>, RegExp][] = [
  ["method", { method: "zstd" as never }, /^method must be/],
  ["level", { level: 10 }, /^level must be an integer from 0 to 9; got 10/],
  ["partSize", { partSize: 4 * MiB }, /^partSize must be an integer from 5242880 to 5368709120; got 4194304/],
  ["partSize (not an integer)", { partSize: 6.5 * MiB + 0.5 }, /^partSize must be an integer/],
  ["equalParts", { equalParts: "yes" as never }, /^equalParts must be a boolean/],
  ["concurrency", { concurrency: 0 }, /^concurrency must be an integer from 1 to 10000; got 0/],
  ["headConcurrency", { headConcurrency: 1001 }, /^headConcurrency must be an integer from 1 to 1000/],
  ["prefetch", { prefetch: 3 as never }, /^prefetch must be an object/],
  ["prefetch.objects", { prefetch: { objects: 0 } }, /^prefetch\.objects must be an integer >= 1/],
  ["prefetch.bytes", { prefetch: { bytes: -1 } }, /^prefetch\.bytes must be an integer >= 1/],
  ["prefetch.rangeSize", { prefetch: { rangeSize: 0 } as never }, /^prefetch\.rangeSize must be an integer >= 1/],
  ["prefetch.resumes", { prefetch: { resumes: -1 } as never }, /^prefetch\.resumes must be an integer >= 0/],
  ["name", { name: "basename" as never }, /^name must be a function/],
  ["onMissing", { onMissing: "ignore" as never }, /^onMissing must be/],
  ["allowEmpty", { allowEmpty: 1 as never }, /^allowEmpty must be a boolean/],
  ["duplicates", { duplicates: "keep" as never }, /^duplicates must be/],
  ["password", { password: "" }, /^password must be a non-empty string/],
  ["signal", { signal: {} as never }, /^signal must be an AbortSignal/],
  ["onProgress", { onProgress: true as never }, /^onProgress must be a function/],
  ["onEntry", { onEntry: "log" as never }, /^onEntry must be a function/],
  ["assembly", { assembly: "fast" as never }, /^assembly must be/],
  ["copyMinSize", { copyMinSize: 1 }, /^copyMinSize must be an integer >= 5242880/],
  ["maxCopyPartSize", { maxCopyPartSize: 6 * 1024 ** 3 }, /^maxCopyPartSize must be an integer from 10485760 to 5368709120/],
  ["verify", { verify: "deep" as never }, /^verify must be a boolean/],
  ["onArchived", { onArchived: "wait" as never }, /^onArchived must be/],
  ["sse", { sse: { customerKey: "short" } as never }, /sse/],
  ["maxEntries", { maxEntries: 0 }, /^maxEntries must be an integer >= 1; got 0/],
  ["maxEntryMemory", { maxEntryMemory: 1.5 }, /^maxEntryMemory must be an integer >= 1; got 1\.5/],
];

describe("options are validated up front, before any request (no S3 server needed: the client refuses every call)", () => {
  for (const [what, bad, message] of BAD) {
    it(`zipS3Keys: a bad ${what} is a TypeError naming it, and no request is made`, async () => {
      const { client, calls } = noRequestClient();
      const options = { client, src: { bucket: "src", keys: ["a", "b"] }, dest: { bucket: "out", key: "a.zip" }, ...bad } as ZipS3Options;
      const err = await zipS3Keys(options).then(
        () => undefined,
        (e: unknown) => e,
      );
      expect(err).toBeInstanceOf(TypeError);
      expect((err as Error).message).toMatch(message);
      expect(calls).toEqual([]);
    });
  }

  it("zipS3Keys: a bad dest is S3ZipError ERR_S3_INVALID_DEST (its documented code), and no request is made", async () => {
    const { client, calls } = noRequestClient();
    await expect(zipS3Keys({ client, src: { bucket: "src", keys: ["a"] }, dest: { bucket: "out" } as never })).rejects.toMatchObject({ code: "ERR_S3_INVALID_DEST", message: "dest.key must be a non-empty string" });
    expect(calls).toEqual([]);
  });

  it("planArchive checks the same options first (partSize), with no request", async () => {
    const { client, calls } = noRequestClient();
    await expect(planArchive({ client, src: { bucket: "src", prefix: "" }, dest: { bucket: "out", key: "a.zip" }, partSize: 1 })).rejects.toThrow(/^partSize must be an integer from 5242880/);
    expect(calls).toEqual([]);
  });

  it("uploadStream: concurrency and partRetries go through the same check, with no request", async () => {
    const { client, calls } = noRequestClient();
    const body = () => Readable.from([Buffer.from("x")]);
    await expect(uploadStream({ client, dest: { bucket: "out", key: "a" }, body: body(), concurrency: 0 })).rejects.toThrow(/^concurrency must be an integer from 1 to 10000; got 0/);
    await expect(uploadStream({ client, dest: { bucket: "out", key: "a" }, body: body(), partRetries: -1 })).rejects.toThrow(/^partRetries must be an integer >= 0; got -1/);
    expect(calls).toEqual([]);
  });
});
