/**
 * Bad input: each case fails with its own stable code and a message naming the culprit, and
 * nothing is written (no object at dest, no incomplete upload).
 */
import type { S3Client } from "@aws-sdk/client-s3";
import { ZipError } from "@zipstream/core";
import { zipS3Keys, type ZipS3Options } from "@zipstream/s3";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import {
  createBucket,
  destroyBucket,
  download,
  hashMembers,
  listUploads,
  makeClient,
  objectExists,
  s3Env,
  seedObjects,
  uniqueBucket,
} from "./helpers.js";

const env = s3Env();
let direct: S3Client;
let bucket: string;
const DEST = "out/bad.zip";

beforeAll(async () => {
  direct = makeClient(env).client;
  bucket = uniqueBucket("badinput");
  await createBucket(direct, bucket);
  await seedObjects(direct, bucket, [
    { key: "src/a.txt", size: 100, seed: 1 },
    { key: "src/b.txt", size: 200, seed: 2 },
    { key: "src/dir/a.txt", size: 300, seed: 3 },
  ]);
});
afterAll(async () => {
  if (bucket) await destroyBucket(direct, bucket);
});

/** Runs zipS3Keys expecting `code`, a message containing `culprit`, and nothing written. */
async function expectFailure(
  options: Partial<ZipS3Options>,
  code: string,
  culprit: string,
  client: S3Client = direct,
): Promise<ZipError> {
  const dest = options.dest ?? { bucket, key: DEST };
  const err = await zipS3Keys({ client, src: { bucket, keys: ["src/a.txt"] }, ...options, dest } as ZipS3Options).then(
    () => {
      throw new Error(`expected ${code}, but zipS3Keys resolved`);
    },
    (e: unknown) => e,
  );
  expect(err, String(err)).toBeInstanceOf(ZipError);
  const z = err as ZipError;
  expect(z.code, z.message).toBe(code);
  expect(z.message).toContain(culprit);
  if (dest.key && Buffer.byteLength(dest.key) <= 1024) {
    expect(await objectExists(direct, bucket, dest.key)).toBe(false);
  }
  expect(await listUploads(direct, bucket)).toEqual([]);
  return z;
}

describe("bad input", () => {
  it("missing key -> ERR_S3_NO_SUCH_KEY naming the key", async () => {
    await expectFailure({ src: { bucket, keys: ["src/a.txt", "src/missing-object.txt"] } }, "ERR_S3_NO_SUCH_KEY", "src/missing-object.txt");
  });

  it("missing source bucket -> ERR_S3_NO_SUCH_BUCKET naming the bucket", async () => {
    const nb = `${bucket}-nope`;
    await expectFailure({ src: { bucket: nb, keys: ["x"] } }, "ERR_S3_NO_SUCH_BUCKET", nb);
    await expectFailure({ src: { bucket: nb, prefix: "src/" } }, "ERR_S3_NO_SUCH_BUCKET", nb);
  });

  it("missing destination bucket -> ERR_S3_NO_SUCH_BUCKET naming the bucket", async () => {
    const nb = `${bucket}-nodest`;
    await expectFailure({ dest: { bucket: nb, key: "x.zip" } }, "ERR_S3_NO_SUCH_BUCKET", nb);
  });

  it("access denied (a second user without rights) -> ERR_S3_ACCESS_DENIED naming the object", async () => {
    if (!env.second) throw new Error("S3_SECOND_ACCESS_KEY_ID/S3_SECOND_SECRET_ACCESS_KEY are not set");
    const { client, agent } = makeClient(env, { credentials: env.second });
    try {
      await expectFailure({}, "ERR_S3_ACCESS_DENIED", bucket, client);
      await expectFailure({ src: { bucket, prefix: "src/" } }, "ERR_S3_ACCESS_DENIED", bucket, client);
    } finally {
      client.destroy();
      agent.destroy();
    }
  });

  it("invalid destination key -> ERR_S3_INVALID_DEST naming dest.key", async () => {
    await expectFailure({ dest: { bucket, key: "" } }, "ERR_S3_INVALID_DEST", "dest.key");
    await expectFailure({ dest: { bucket, key: "k".repeat(1025) } }, "ERR_S3_INVALID_DEST", "dest.key");
  });

  it("absolute entry name (name mapping) -> ERR_INVALID_NAME naming it", async () => {
    await expectFailure({ name: (k) => `/etc/${k}` }, "ERR_INVALID_NAME", "/etc/src/a.txt");
  });

  it("entry name with a '..' segment -> ERR_INVALID_NAME naming it", async () => {
    await expectFailure({ name: (k) => `../${k}` }, "ERR_INVALID_NAME", "../src/a.txt");
  });

  it("duplicate names -> ERR_DUPLICATE_NAME naming the name", async () => {
    await expectFailure(
      { src: { bucket, keys: ["src/a.txt", "src/dir/a.txt"] }, name: (k) => k.split("/").pop()! },
      "ERR_DUPLICATE_NAME",
      "a.txt",
    );
  });

  it("over-long name (65,536 bytes) -> ERR_INVALID_NAME", async () => {
    const long = "n".repeat(65_536);
    const err = await expectFailure({ name: () => long }, "ERR_INVALID_NAME", "65");
    // The message names the culprit without dumping 64 KiB of it.
    expect(err.message.length).toBeLessThan(2000);
  });

  it("empty source list -> ERR_S3_EMPTY_SOURCE by default", async () => {
    await expectFailure({ src: { bucket, keys: [] } }, "ERR_S3_EMPTY_SOURCE", "no source");
    await expectFailure({ src: { bucket, prefix: "nothing-here/" } }, "ERR_S3_EMPTY_SOURCE", "no source");
  });

  it("empty source list with allowEmpty: true -> an empty, valid archive", async () => {
    const res = await zipS3Keys({ client: direct, src: { bucket, keys: [] }, dest: { bucket, key: "out/empty.zip" }, allowEmpty: true });
    expect(res.entries).toBe(0);
    // End of central directory record only (APPNOTE 4.3.16): 22 bytes.
    expect(res.size).toBe(22);
    const file = await download(direct, bucket, "out/empty.zip");
    try {
      expect((await hashMembers(file.path)).size).toBe(0);
    } finally {
      await file.dispose();
    }
  });
});
