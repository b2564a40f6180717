/** `verify: true` in the event: the structural report of the written archive in the response. */
import type { S3Client } from "@aws-sdk/client-s3";
import { getTestS3, type TestS3 } from "@zipstream/testkit";
import { randomUUID } from "node:crypto";
import { afterAll, beforeAll, expect, it } from "vitest";
import { createHandler, validateEvent } from "../src/index.js";

let s3: TestS3;
let client: S3Client;
let bucket: string;

beforeAll(async () => {
  s3 = await getTestS3();
  client = s3.client();
  bucket = await s3.newBucket("lambda-verify");
  await s3.putObjects(bucket, ["in/a.txt", "in/b.txt"].map((k) => ({ key: k, body: `contents of ${k}\n` })));
});
afterAll(async () => {
  await s3?.cleanup();
  client?.destroy();
});

it("runs the structural check after the upload and returns its report", async () => {
  const handler = createHandler({ client, write: () => {} });
  const deadline = Date.now() + 120_000;
  const ctx = { awsRequestId: randomUUID(), memoryLimitInMB: "1024", getRemainingTimeInMillis: () => deadline - Date.now() };
  const r = await handler({ src: { bucket, prefix: "in/" }, dest: { bucket, key: "out/v.zip" }, options: { verify: true } }, ctx);
  expect(r.verify).toMatchObject({ ok: true, entries: 2, problems: [], etag: r.etag, size: r.size });
  expect(r.verify!.requests).toBeLessThanOrEqual(2);
  const plain = await handler({ src: { bucket, prefix: "in/" }, dest: { bucket, key: "out/p.zip" } }, ctx);
  expect(plain.verify).toBeUndefined();
  expect(validateEvent({ src: { bucket, prefix: "" }, dest: { bucket, key: "k" }, options: { verify: "yes" } }).issues.map((i) => i.path)).toEqual(["options.verify"]);
});
