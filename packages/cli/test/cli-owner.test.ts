/**
 * `--expected-bucket-owner` (issue 13) against the Ceph 20 gateway of infra/checksum-s3, which
 * enforces the bucket-owner condition (a wrong owner gets 403; Ceph 16 ignores the header, so
 * the request shape is tested in packages/s3's owner.test.ts).
 */
import { CreateBucketCommand, GetBucketAclCommand, S3Client } from "@aws-sdk/client-s3";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { runCli } from "./helpers.js";
import { listKeys, put } from "./s3-helpers.js";

const endpoint = process.env.S3_CHECKSUM_ENDPOINT;
const creds = { accessKeyId: process.env.S3_CHECKSUM_ACCESS_KEY_ID ?? "", secretAccessKey: process.env.S3_CHECKSUM_SECRET_ACCESS_KEY ?? "" };

describe("--expected-bucket-owner, enforced by the server", () => {
  let client: S3Client;
  let src: string;
  let out: string;
  let owner: string;
  const env = () => ({
    AWS_ENDPOINT_URL: endpoint,
    AWS_ACCESS_KEY_ID: creds.accessKeyId,
    AWS_SECRET_ACCESS_KEY: creds.secretAccessKey,
    AWS_REGION: process.env.S3_CHECKSUM_REGION ?? "us-east-1",
    AWS_PROFILE: undefined,
    AWS_SESSION_TOKEN: undefined,
    AWS_ENDPOINT_URL_S3: undefined,
  });

  beforeAll(async () => {
    if (!endpoint) throw new Error("S3_CHECKSUM_ENDPOINT is not set: start infra/checksum-s3 (scripts/test.sh does) and source its env");
    client = new S3Client({ endpoint, region: "us-east-1", forcePathStyle: true, credentials: creds, requestChecksumCalculation: "WHEN_REQUIRED", responseChecksumValidation: "WHEN_REQUIRED" });
    const tag = `${process.pid}-${Date.now().toString(36)}`;
    src = `cli-own-src-${tag}`;
    out = `cli-own-out-${tag}`;
    for (const b of [src, out]) await client.send(new CreateBucketCommand({ Bucket: b }));
    owner = (await client.send(new GetBucketAclCommand({ Bucket: src }))).Owner!.ID!;
    await put(client, src, "in/a.txt", "alpha\n");
    await put(client, src, "in/b.txt", "beta\n");
  });

  afterAll(() => client?.destroy());

  it("the right owner, for every bucket or per bucket: the archive is written", async () => {
    const a = await runCli([`s3://${src}/in/`, `s3://${out}/all.zip`, "--expected-bucket-owner", owner], { env: env() });
    expect(a.stderr).toMatch(/2 entries/);
    expect(a.code).toBe(0);
    const b = await runCli([`s3://${src}/in/`, `s3://${out}/each.zip`, "--expected-bucket-owner", `${src}=${owner}`, "--expected-bucket-owner", `${out}=${owner}`], { env: env() });
    expect(b.code).toBe(0);
    expect(await listKeys(client, out)).toEqual(["all.zip", "each.zip"]);
  });

  it("another owner: exit 4 (access denied), the message names the condition, nothing written", async () => {
    const r = await runCli([`s3://${src}/in/`, `s3://${out}/denied.zip`, "--expected-bucket-owner", `${out}=111122223333`, "--expected-bucket-owner", `${src}=${owner}`], { env: env() });
    expect(r.code).toBe(4);
    expect(r.stderr).toContain(`bucket "${out}" to belong to account 111122223333`);
    expect(await listKeys(client, out)).not.toContain("denied.zip");
  });

  it("malformed values are usage errors (exit 2) before any request", async () => {
    for (const args of [["--expected-bucket-owner", "a", "--expected-bucket-owner", "b"], ["--expected-bucket-owner", "a", "--expected-bucket-owner", `${src}=b`], ["--expected-bucket-owner", "=x"], ["--expected-bucket-owner", "has space"]]) {
      // An endpoint nobody listens on: a request would fail with another code than 2.
      const r = await runCli([`s3://${src}/in/`, `s3://${out}/bad.zip`, ...args], { env: { ...env(), AWS_ENDPOINT_URL: "http://127.0.0.1:9" } });
      expect({ args, code: r.code }).toEqual({ args, code: 2 });
      expect(r.stderr).toMatch(/--expected-bucket-owner/);
    }
  });
});
