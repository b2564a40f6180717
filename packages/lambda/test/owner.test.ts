/**
 * `ZIPSTREAM_EXPECTED_BUCKET_OWNER` (issue 13): the bucket-owner condition, configured at deploy
 * time, on the client the handler builds from its environment. Run against the Ceph 20 gateway of
 * infra/checksum-s3, which enforces the condition (Ceph 16 ignores it).
 */
import { CreateBucketCommand, GetBucketAclCommand, HeadObjectCommand, ListMultipartUploadsCommand, PutObjectCommand, S3Client } from "@aws-sdk/client-s3";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createHandler, expectedOwnersFromEnv, type LambdaContext, type LambdaZipError } from "../src/index.js";

const endpoint = process.env.S3_CHECKSUM_ENDPOINT;
const creds = { accessKeyId: process.env.S3_CHECKSUM_ACCESS_KEY_ID ?? "", secretAccessKey: process.env.S3_CHECKSUM_SECRET_ACCESS_KEY ?? "" };
const context = (): LambdaContext => ({ awsRequestId: "owner-test", memoryLimitInMB: 512, getRemainingTimeInMillis: () => 300_000 });

describe("ZIPSTREAM_EXPECTED_BUCKET_OWNER", () => {
  let client: S3Client;
  let bucket: string;
  let owner: string;
  const env = (owners?: string): NodeJS.ProcessEnv => ({
    AWS_ENDPOINT_URL: endpoint,
    AWS_ACCESS_KEY_ID: creds.accessKeyId,
    AWS_SECRET_ACCESS_KEY: creds.secretAccessKey,
    AWS_REGION: "us-east-1",
    S3_FORCE_PATH_STYLE: "1",
    ...(owners !== undefined ? { ZIPSTREAM_EXPECTED_BUCKET_OWNER: owners } : {}),
  });

  beforeAll(async () => {
    if (!endpoint) throw new Error("S3_CHECKSUM_ENDPOINT is not set: start infra/checksum-s3 (scripts/test.sh does) and source its env");
    // The handler's client reads credentials from the default chain: give it this server's.
    process.env.AWS_ACCESS_KEY_ID = creds.accessKeyId;
    process.env.AWS_SECRET_ACCESS_KEY = creds.secretAccessKey;
    client = new S3Client({ endpoint, region: "us-east-1", forcePathStyle: true, credentials: creds, requestChecksumCalculation: "WHEN_REQUIRED", responseChecksumValidation: "WHEN_REQUIRED" });
    bucket = `lambda-owner-${process.pid}-${Date.now().toString(36)}`;
    await client.send(new CreateBucketCommand({ Bucket: bucket }));
    owner = (await client.send(new GetBucketAclCommand({ Bucket: bucket }))).Owner!.ID!;
    for (const k of ["in/a.txt", "in/b.txt"]) await client.send(new PutObjectCommand({ Bucket: bucket, Key: k, Body: `${k}\n` }));
  });

  afterAll(() => client?.destroy());

  it("parses one ID or BUCKET=ID pairs, and refuses anything else naming the variable", () => {
    expect(expectedOwnersFromEnv({})).toBeUndefined();
    expect(expectedOwnersFromEnv({ ZIPSTREAM_EXPECTED_BUCKET_OWNER: "111122223333" })).toBe("111122223333");
    expect(expectedOwnersFromEnv({ ZIPSTREAM_EXPECTED_BUCKET_OWNER: "a=111122223333, b=444455556666" })).toEqual({ a: "111122223333", b: "444455556666" });
    for (const bad of ["a=1,=2", "x y", "a=1,b"]) expect(() => expectedOwnersFromEnv({ ZIPSTREAM_EXPECTED_BUCKET_OWNER: bad })).toThrow(/ZIPSTREAM_EXPECTED_BUCKET_OWNER/);
  });

  it("the bucket's owner: the archive is written", async () => {
    const handler = createHandler({ env: env(owner), write: () => {} });
    const r = await handler({ src: { bucket, prefix: "in/" }, dest: { bucket, key: "out/ok.zip" } }, context());
    expect(r.entries).toBe(2);
    expect((await client.send(new HeadObjectCommand({ Bucket: bucket, Key: "out/ok.zip" }))).ContentLength).toBe(r.size);
  });

  it("another account: ERR_S3_ACCESS_DENIED naming the condition, nothing written", async () => {
    const handler = createHandler({ env: env(`${bucket}=111122223333`), write: () => {} });
    const err = (await handler({ src: { bucket, prefix: "in/" }, dest: { bucket, key: "out/denied.zip" } }, context()).catch((e: unknown) => e)) as LambdaZipError;
    expect(err.code).toBe("ERR_S3_ACCESS_DENIED");
    expect(err.message).toContain(`bucket "${bucket}" to belong to account 111122223333`);
    await expect(client.send(new HeadObjectCommand({ Bucket: bucket, Key: "out/denied.zip" }))).rejects.toMatchObject({ $metadata: { httpStatusCode: 404 } });
    expect((await client.send(new ListMultipartUploadsCommand({ Bucket: bucket }))).Uploads ?? []).toEqual([]);
  });
});
