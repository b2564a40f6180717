/**
 * Aborting zipS3Keys through its AbortSignal at chosen and at random points. Invariants in every
 * case: the promise settles; if it rejects, the code is ERR_ABORTED, dest holds no object and no
 * incomplete upload is left; if it resolves (the abort came after the archive was durably
 * completed) the archive is complete and correct; no socket stays checked out of the client's agent.
 */
import { AbortMultipartUploadCommand, type S3Client } from "@aws-sdk/client-s3";
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

/**
 * Runs one zip with `arm(ac)` deciding when to abort; checks every invariant; returns the outcome.
 * `tolerateCreateRace`: see KNOWN-CREATE-RACE below.
 */
async function runWithAbort(
  dest: string,
  arm: (ac: AbortController) => void,
  tolerateCreateRace?: { count: number },
  lateCompletion?: { count: number },
): Promise<Outcome> {
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
  const left = await listUploads(direct, bucket, dest);
  if (left.length > 0 && tolerateCreateRace && outcome.kind === "aborted" && !proxy.stats.requestsByOperation.UploadPart) {
    // KNOWN-CREATE-RACE: the abort landed while CreateMultipartUpload's response was on its way
    // (no part was ever sent). Counted and cleaned up here; the dedicated test below pins it.
    tolerateCreateRace.count++;
    for (const u of left) await direct.send(new AbortMultipartUploadCommand({ Bucket: bucket, Key: u.key, UploadId: u.uploadId }));
  } else {
    expect(left, "incomplete uploads after abort").toEqual([]);
  }
  const exists = await objectExists(direct, bucket, dest);
  if (outcome.kind === "aborted") {
    expect(outcome.err.code).toBe("ERR_ABORTED");
  }
  if (outcome.kind === "aborted" && !(exists && lateCompletion)) {
    expect(exists, "object at dest after ERR_ABORTED").toBe(false);
  } else {
    // Completed, or aborted after the server had completed the upload (documented edge): the
    // object must be the complete, correct archive.
    if (outcome.kind === "aborted") lateCompletion!.count++;
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
    // The abort cancels the held request before it reaches the server, so nothing is completed.
    console.log(`[reliability] abort during CompleteMultipartUpload -> ${out.kind}`);
    expect(out.kind).toBe("aborted");
  });

  it("after the server completed the upload but before the client saw the response: documented outcome", async () => {
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
        `${error instanceof ZipError ? ` ${error.code}` : ""}, object at dest: ${exists}`,
    );
    if (outcome === "rejected") {
      expect(error).toBeInstanceOf(ZipError);
      expect((error as ZipError).code).toBe("ERR_ABORTED");
    }
    // No incomplete upload in any case, and whatever is at dest is the complete, correct archive
    // (never a partial object).
    expect(await listUploads(direct, bucket, "out/")).toEqual([]);
    if (exists) {
      const file = await download(direct, bucket, dest);
      try {
        await expectArchive(file.path, new Map(objects.map((o) => [o.key, o])));
      } finally {
        await file.dispose();
      }
    }
  });

  /*
   * KNOWN-CREATE-RACE (bug in @zipstream/s3, reported): CreateMultipartUpload is sent with the
   * abort signal, so an abort that lands after the server created the upload but before the
   * response arrived cancels the request, the library never learns the UploadId and cannot abort
   * it: an orphan that only abortIncompleteUploads / a lifecycle rule removes. This test
   * reproduces it deterministically and logs whether the orphan is still there; the library is
   * being fixed concurrently, so both outcomes pass for now. Once fixed (e.g. let
   * CreateMultipartUpload finish, then abort the upload), expect 0 and drop the tolerance.
   */
  it("KNOWN-CREATE-RACE: abort after the server created the upload, before its response arrived", async () => {
    const dest = "out/create-race.zip";
    let held = 0;
    let ctl!: AbortController;
    const race = { count: 0 };
    proxy.onResponse = async (info, status) => {
      if (info.operation === "CreateMultipartUpload" && status === 200 && held++ === 0) {
        ctl.abort(new Error("abort while the CreateMultipartUpload response is in flight"));
        await new Promise((r) => setTimeout(r, 200));
      }
    };
    try {
      const out = await runWithAbort(dest, (ac) => (ctl = ac), race);
      expect(held).toBe(1);
      expect(out.kind).toBe("aborted");
      console.log(`[reliability] KNOWN-CREATE-RACE reproduced: ${race.count === 1 ? "orphan left (bug present)" : "no orphan (fixed)"}`);
      expect(race.count).toBeLessThanOrEqual(1);
    } finally {
      proxy.onResponse = undefined;
    }
  });

  it("at 12 random points in time: every run rejects ERR_ABORTED cleanly or completes correctly", async () => {
    const rnd = prng(seed);
    const seen: string[] = [];
    const createRace = { count: 0 };
    const late = { count: 0 };
    for (let i = 0; i < 12; i++) {
      proxy.reset();
      const ms = Math.floor(rnd() * 4000);
      const out = await runWithAbort(`out/random-${i}.zip`, (ac) => setTimeout(() => ac.abort(), ms), createRace, late);
      seen.push(`${ms}ms:${out.kind}`);
    }
    console.log(`[reliability] random aborts: ${seen.join(" ")}; KNOWN-CREATE-RACE orphans: ${createRace.count}; ERR_ABORTED with the archive completed: ${late.count}`);
    expect(seen).toHaveLength(12);
  });
});
