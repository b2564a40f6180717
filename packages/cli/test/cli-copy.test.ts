import path from "node:path";
import type { S3Client } from "@aws-sdk/client-s3";
import { verifyZip } from "@zipstream/interop";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { TestS3 } from "@zipstream/testkit";
import { bytes, runCli } from "./helpers.js";
import { childEnv, s3available, setUpBucket, tearDownBucket } from "./s3-helpers.js";

const MiB = 1024 * 1024;
const objects: Record<string, Uint8Array> = {
  "src/big.bin": bytes(12 * MiB + 1, 5),
  "src/small.txt": Buffer.from("small\n".repeat(50)),
};

describe.skipIf(!s3available)("--assembly copy against the local S3 gateway", () => {
  let s3: TestS3;
  let client: S3Client;
  let bucket: string;
  let dir: string;

  beforeAll(async () => void ({ s3, client, bucket, dir } = await setUpBucket("zs-cli-copy", objects)));

  afterAll(() => tearDownBucket({ s3, client, bucket, dir }));

  it("--dry-run prints the copy plan: parts, copies, bytes uploaded and read", async () => {
    const r = await runCli([`s3://${bucket}/src/`, `s3://${bucket}/out/a.zip`, "--dry-run", "--copy-min-size", "5MiB"], { env: childEnv() });
    expect(r.code).toBe(0);
    expect(r.stdout).toMatch(/assembly: copy \(planned for a server with checksums, as AWS S3\) — 3 parts, 1 copied by S3 \(7\.00 MiB\)/);
    expect(r.stdout).toMatch(/where S3 has checksums, 12\.0 MiB where it has not/);
    // "auto" copies from 16 MiB: the 12 MiB member streams, and the plan says why.
    const json = await runCli([`s3://${bucket}/src/`, `s3://${bucket}/out/a.zip`, "--dry-run", "--json"], { env: childEnv() });
    expect(JSON.parse(json.stdout).assembly).toMatchObject({ assembly: "stream", reason: expect.stringMatching(/copyMinSize \(16777216 bytes\)/) });
    const forced = await runCli([`s3://${bucket}/src/`, `s3://${bucket}/out/a.zip`, "--dry-run", "--json", "--assembly", "copy"], { env: childEnv() });
    expect(JSON.parse(forced.stdout).assembly).toMatchObject({ assembly: "copy", copyParts: 1 });
    const deflate = await runCli([`s3://${bucket}/src/`, `s3://${bucket}/out/a.zip`, "--dry-run", "--json", "--method", "deflate"], { env: childEnv() });
    expect(JSON.parse(deflate.stdout).assembly).toMatchObject({ assembly: "stream", reason: expect.stringMatching(/deflate/) });
  });

  it("--assembly copy builds the archive with S3 copies; --assembly copy with deflate is refused", async () => {
    const r = await runCli([`s3://${bucket}/src/`, `s3://${bucket}/out/b.zip`, "--assembly", "copy", "--copy-min-size", "5MiB", "--json"], { env: childEnv() });
    expect(r.code).toBe(0);
    const file = path.join(dir, "b.zip");
    await s3.downloadToFile(bucket, "out/b.zip", file);
    await verifyZip(file, Object.entries(objects).map(([k, data]) => ({ name: k.slice(4), data })), { readers: ["unzip", "python"] });
    const bad = await runCli([`s3://${bucket}/src/`, `s3://${bucket}/out/c.zip`, "--assembly", "copy", "--method", "deflate"], { env: childEnv() });
    expect(bad.code).not.toBe(0);
    expect(bad.stderr).toMatch(/ERR_S3_COPY_UNSUPPORTED|cannot build this archive/);
  });
});
