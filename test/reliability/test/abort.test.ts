/**
 * Aborting zipS3Keys through its AbortSignal at chosen and at random points. Invariants in every
 * case: the promise settles; no incomplete upload is left; if it rejects, the code is ERR_ABORTED
 * and dest holds no object (even when the abort landed while the archive was being completed: the
 * library then deletes what it wrote); if it resolves (the abort came after completion had
 * settled) the archive is complete and correct; no socket stays checked out of the client's agent.
 */
import type { S3Client } from "@aws-sdk/client-s3";
import { ZipError } from "@zipstream/core";
import { zipS3Keys, type ZipS3Result } from "@zipstream/s3";
import { afterAll, beforeAll, beforeEach, describe, expect, it } from "vitest";
import { FaultProxy, prng, type ProxyRequestInfo } from "../src/index.js";
import {
  createBucket,
  destroyBucket,
  download,
  expectArchive,
  listUploads,
  makeClient,
  objectExists,
  runSeed,
  s3Env,
  seedObjects,
  socketsInUse,
  uniqueBucket,
  waitFor,
  type Seeded,
} from "./helpers.js";

const MiB = 1024 * 1024;
const env = s3Env();
const seed = runSeed();
let direct: S3Client;
let bucket: string;
let proxy: FaultProxy;
let objects: Seeded[];

beforeAll(async () => {
  direct = makeClient(env).client;
  bucket = uniqueBucket("abort");
  await createBucket(direct, bucket);
  objects = await seedObjects(direct, bucket, [
    ...Array.from({ length: 10 }, (_, i) => ({ key: `src/s${i}.bin`, size: 10_000 + i * 3000, seed: i })),
    { key: "src/big1.bin", size: 6 * MiB, seed: 50 },
    { key: "src/big2.bin", size: 6 * MiB, seed: 51 },
  ]);
  proxy = await FaultProxy.start({ upstream: env.endpoint, seed });
});
afterAll(async () => {
  await proxy?.close();
  if (bucket) await destroyBucket(direct, bucket);
});
beforeEach(() => {
  proxy.reset();
  proxy.onRequest = undefined;
  proxy.onResponse = undefined;
});

type Outcome = { kind: "aborted"; err: ZipError } | { kind: "completed"; res: ZipS3Result };

/** Runs one zip with `arm(ac)` deciding when to abort; checks every invariant; returns the outcome. */
async function runWithAbort(dest: string, arm: (ac: AbortController) => void): Promise<Outcome> {
  const { client, agent } = makeClient(env, { endpoint: proxy.endpoint });
  const ac = new AbortController();
  arm(ac);
  let outcome: Outcome;
  try {
    outcome = await zipS3Keys({
      client,
      src: { bucket, keys: objects.map((o) => o.key) },
      dest: { bucket, key: dest },
      partSize: 5 * MiB,
      concurrency: 2,
      prefetch: { objects: 4, bytes: 4 * MiB, rangeSize: 2 * MiB },
      signal: ac.signal,
    }).then(
      (res): Outcome => ({ kind: "completed", res }),
      (err: unknown): Outcome => {
        if (!(err instanceof ZipError)) throw new Error(`untyped rejection: ${String(err)}`, { cause: err });
        return { kind: "aborted", err };
      },
    );
    // Sockets and source streams released: nothing stays checked out of the agent.
    await waitFor(() => socketsInUse(agent) === 0, `sockets to be released (in use: ${socketsInUse(agent)})`, 15_000);
  } finally {
    client.destroy();
    agent.destroy();
  }
  expect(await listUploads(direct, bucket, dest), "incomplete uploads after abort").toEqual([]);
  const exists = await objectExists(direct, bucket, dest);
  if (outcome.kind === "aborted") {
    expect(outcome.err.code).toBe("ERR_ABORTED");
    expect(exists, "object at dest after ERR_ABORTED").toBe(false);
  } else {
    // Completed before the abort took effect: the object must be the complete, correct archive.
    const file = await download(direct, bucket, dest);
    try {
      await expectArchive(file.path, new Map(objects.map((o) => [o.key, o])));
    } finally {
      await file.dispose();
    }
  }
  return outcome;
}

/** A hook that holds the first request of `op`, aborts, waits a little, then releases it. */
function holdAndAbort(op: ProxyRequestInfo["operation"], ac: () => AbortController, hits: { n: number }) {
  return async (info: ProxyRequestInfo) => {
    if (info.operation === op && hits.n++ === 0) {
      ac().abort(new Error(`test abort during ${op}`));
      await new Promise((r) => setTimeout(r, 200));
    }
  };
}

describe(`abort through signal (seed ${seed})`, () => {
  it("already aborted: rejects with ERR_ABORTED and sends nothing", async () => {
    const out = await runWithAbort("out/pre.zip", (ac) => ac.abort());
    expect(out.kind).toBe("aborted");
    expect(proxy.stats.requests).toBe(0);
  });

  it("before the first part (while CreateMultipartUpload is in flight)", async () => {
    const hits = { n: 0 };
    let ctl!: AbortController;
    proxy.onRequest = holdAndAbort("CreateMultipartUpload", () => ctl, hits);
    const out = await runWithAbort("out/create.zip", (ac) => (ctl = ac));
    expect(hits.n).toBeGreaterThan(0);
    expect(out.kind).toBe("aborted");
    expect(proxy.stats.requestsByOperation.UploadPart ?? 0).toBe(0);
  });

  it("mid-part (while the first UploadPart is in flight)", async () => {
    const hits = { n: 0 };
    let ctl!: AbortController;
    proxy.onRequest = holdAndAbort("UploadPart", () => ctl, hits);
    const out = await runWithAbort("out/part.zip", (ac) => (ctl = ac));
    expect(hits.n).toBeGreaterThan(0);
    expect(out.kind).toBe("aborted");
    expect(proxy.stats.requestsByOperation.AbortMultipartUpload ?? 0).toBeGreaterThan(0);
  });

  it("while a source GET is in flight", async () => {
    const hits = { n: 0 };
    let ctl!: AbortController;
    proxy.onRequest = holdAndAbort("GetObject", () => ctl, hits);
    const out = await runWithAbort("out/get.zip", (ac) => (ctl = ac));
    expect(out.kind).toBe("aborted");
  });

  it("during CompleteMultipartUpload (held by the proxy)", async () => {
    const hits = { n: 0 };
    let ctl!: AbortController;
    proxy.onRequest = holdAndAbort("CompleteMultipartUpload", () => ctl, hits);
    const out = await runWithAbort("out/complete.zip", (ac) => (ctl = ac));
    expect(hits.n).toBeGreaterThan(0);
    // Complete is not cancelled (it cannot be, server-side): the held request goes through, the
    // server completes the archive, and the library deletes it again before rejecting.
    // runWithAbort checked: ERR_ABORTED, no object at dest, no upload left.
    console.log(`[reliability] abort during CompleteMultipartUpload -> ${out.kind}${out.kind === "aborted" ? `: ${out.err.message}` : ""}`);
    expect(out.kind).toBe("aborted");
    if (out.kind === "aborted") expect(out.err.message).toMatch(/completed and then removed/);
    expect(proxy.stats.requestsByOperation.DeleteObject ?? 0).toBe(1);
  });

  it("after the server completed the upload but before the client saw the response: ERR_ABORTED, archive removed", async () => {
    const dest = "out/late.zip";
    const { client, agent } = makeClient(env, { endpoint: proxy.endpoint });
    const ac = new AbortController();
    let held = 0;
    proxy.onResponse = async (info, status) => {
      if (info.operation === "CompleteMultipartUpload" && status === 200 && held++ === 0) {
        ac.abort(new Error("late abort"));
        await new Promise((r) => setTimeout(r, 200));
      }
    };
    let outcome: string;
    let error: unknown;
    try {
      outcome = await zipS3Keys({
        client,
        src: { bucket, keys: objects.map((o) => o.key) },
        dest: { bucket, key: dest },
        partSize: 5 * MiB,
        concurrency: 2,
        signal: ac.signal,
      }).then(
        () => "resolved",
        (err: unknown) => {
          error = err;
          return "rejected";
        },
      );
      await waitFor(() => socketsInUse(agent) === 0, "sockets to be released", 15_000);
    } finally {
      proxy.onResponse = undefined;
      client.destroy();
      agent.destroy();
    }
    expect(held).toBe(1);
    const exists = await objectExists(direct, bucket, dest);
    console.log(
      `[reliability] abort after the server completed the upload -> ${outcome}` +
        `${error instanceof ZipError ? ` ${error.code}: ${error.message}` : ""}, object at dest: ${exists}`,
    );
    // The library waits for Complete's response, sees the abort, deletes the archive it wrote.
    expect(outcome).toBe("rejected");
    expect(error).toBeInstanceOf(ZipError);
    expect((error as ZipError).code).toBe("ERR_ABORTED");
    expect((error as ZipError).message).toMatch(/completed and then removed/);
    expect(exists, "object at dest after ERR_ABORTED").toBe(false);
    expect(await listUploads(direct, bucket, "out/")).toEqual([]);
  });

  /*
   * KNOWN-CREATE-RACE (fixed; regression test): CreateMultipartUpload used to be sent with the
   * abort signal, so an abort landing after the server created the upload but before the response
   * arrived cancelled the request; the library never learned the UploadId and left an orphan
   * (~1 in 12 random aborts). It is now sent without the signal and the upload it created is
   * aborted when the signal fired meanwhile: no orphan, ERR_ABORTED.
   */
  it("KNOWN-CREATE-RACE: abort after the server created the upload, before its response arrived: no orphan", async () => {
    const dest = "out/create-race.zip";
    let held = 0;
    let ctl!: AbortController;
    proxy.onResponse = async (info, status) => {
      if (info.operation === "CreateMultipartUpload" && status === 200 && held++ === 0) {
        ctl.abort(new Error("abort while the CreateMultipartUpload response is in flight"));
        await new Promise((r) => setTimeout(r, 200));
      }
    };
    try {
      // runWithAbort asserts no upload left and no object at dest.
      const out = await runWithAbort(dest, (ac) => (ctl = ac));
      expect(held).toBe(1);
      expect(out.kind).toBe("aborted");
      expect(proxy.stats.requestsByOperation.UploadPart ?? 0).toBe(0);
      expect(proxy.stats.requestsByOperation.AbortMultipartUpload ?? 0).toBe(1);
    } finally {
      proxy.onResponse = undefined;
    }
  });

  it("at 12 random points in time: every run rejects ERR_ABORTED cleanly or completes correctly", async () => {
    const rnd = prng(seed);
    const seen: string[] = [];
    for (let i = 0; i < 12; i++) {
      proxy.reset();
      const ms = Math.floor(rnd() * 4000);
      // runWithAbort asserts, for every run: no upload left; ERR_ABORTED with nothing at dest, or
      // a complete, correct archive.
      const out = await runWithAbort(`out/random-${i}.zip`, (ac) => setTimeout(() => ac.abort(), ms));
      seen.push(`${ms}ms:${out.kind}`);
    }
    console.log(`[reliability] random aborts: ${seen.join(" ")}`);
    expect(seen).toHaveLength(12);
  });
});
