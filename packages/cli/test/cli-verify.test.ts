import { readFile } from "node:fs/promises";
import path from "node:path";
import { GetObjectCommand, type S3Client } from "@aws-sdk/client-s3";
import type { TestS3 } from "@zipstream/testkit";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { bytes, runCli } from "./helpers.js";
import { childEnv, put, s3available, setUpBucket, tearDownBucket } from "./s3-helpers.js";

describe.skipIf(!s3available)("zipstream verify (local S3 gateway)", () => {
  let s3: TestS3;
  let client: S3Client;
  let bucket: string;
  let dir: string;
  let manifest: string;

  beforeAll(async () => {
    const objects = Object.fromEntries(Array.from({ length: 4 }, (_, i) => [`src/f${i}.bin`, bytes(200_000 + i, i + 1)]));
    ({ s3, client, bucket, dir } = await setUpBucket("zs-cliv", objects));
    manifest = path.join(dir, "m.json");
    const r = await runCli(["--quiet", "--method", "deflate", "--manifest", manifest, `s3://${bucket}/src/`, `s3://${bucket}/out/a.zip`], { env: childEnv() });
    expect(r.code, r.stderr).toBe(0);
  });
  afterAll(() => tearDownBucket({ s3, client, bucket, dir }));

  it("exit 0 and a summary for a whole archive, against its sources and its manifest", async () => {
    const r = await runCli(["verify", `s3://${bucket}/out/a.zip`, "--expect", `s3://${bucket}/src/`], { env: childEnv() });
    expect(r.code, r.stdout + r.stderr).toBe(0);
    expect(r.stdout).toMatch(/^ok s3:\/\/.*: 4 entries, .*checked 4 local headers, 4 expected members; 0 problems; 2 requests/m);
    const deep = await runCli(["verify", `s3://${bucket}/out/a.zip`, "--manifest", manifest, "--deep", "--json"], { env: childEnv() });
    expect(deep.code, deep.stderr).toBe(0);
    const report = JSON.parse(deep.stdout);
    expect(report).toMatchObject({ ok: true, entries: 4, checked: { crc: 4, expected: 4 }, problems: [] });
    // Not a TTY: the deep pass logs progress lines on stderr.
    expect(deep.stderr).toMatch(/verify s3:\/\/.*4 entries/);
  });

  it("exit 9 with each problem listed when the archive is damaged; 3 when it does not exist; 2 on misuse", async () => {
    const out = await client.send(new GetObjectCommand({ Bucket: bucket, Key: "out/a.zip" }));
    const zip = Buffer.from(await out.Body!.transformToByteArray());
    await put(client, bucket, "out/cut.zip", zip.subarray(0, 1000));
    const cut = await runCli(["verify", `s3://${bucket}/out/cut.zip`], { env: childEnv() });
    expect(cut.code).toBe(9);
    expect(cut.stdout).toMatch(/^PROBLEM TRUNCATED: /m);
    expect(cut.stdout).toMatch(/^FAILED s3:/m);
    const extra = await runCli(["verify", `s3://${bucket}/out/a.zip`, "--manifest", manifest], { env: childEnv() });
    expect(extra.code).toBe(0);
    await put(client, bucket, "src/f9.bin", "new");
    const missing = await runCli(["verify", `s3://${bucket}/out/a.zip`, "--expect", `s3://${bucket}/src`, "--json"], { env: childEnv() });
    expect(missing.code).toBe(9);
    expect(JSON.parse(missing.stdout).problems).toEqual([expect.objectContaining({ code: "EXPECTED_MISSING", entry: "f9.bin" })]);
    const none = await runCli(["verify", `s3://${bucket}/out/none.zip`], { env: childEnv() });
    expect(none.code).toBe(3);
    const misuse = await runCli(["verify", `s3://${bucket}/out/a.zip`, "--method", "store"], { env: childEnv() });
    expect(misuse.code).toBe(2);
    expect(misuse.stderr).toMatch(/--method does not apply to verify/);
    expect(JSON.parse(await readFile(manifest, "utf8")).entries).toHaveLength(4);
  });
});
