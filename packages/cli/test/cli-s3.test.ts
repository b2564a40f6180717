import { execFile } from "node:child_process";
import { existsSync } from "node:fs";
import { readFile, stat, truncate, writeFile, mkdir } from "node:fs/promises";
import path from "node:path";
import { promisify } from "node:util";
import { crc32 } from "node:zlib";
import {
  CreateMultipartUploadCommand,
  GetObjectTaggingCommand,
  HeadObjectCommand,
  type S3Client,
} from "@aws-sdk/client-s3";
import { verifyZip } from "@zipstream/interop";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { bytes, runCli, writeTree } from "./helpers.js";
import type { TestS3 } from "@zipstream/testkit";
import { childEnv, listKeys, s3available, setUpBucket, tearDownBucket } from "./s3-helpers.js";

const exec = promisify(execFile);

const objects: Record<string, Uint8Array> = {
  "photos/a.jpg": bytes(300_000, 1),
  "photos/sub/b.raw": bytes(1_500_000, 2),
  "photos/sub/c.txt": Buffer.from("caption\n".repeat(100)),
  "other/x.txt": Buffer.from("not in the prefix"),
};
const underPhotos = () =>
  Object.entries(objects)
    .filter(([k]) => k.startsWith("photos/"))
    .map(([k, data]) => ({ name: k.slice("photos/".length), data }));

describe.skipIf(!s3available)("against the local S3 gateway", () => {
  let s3: TestS3;
  let client: S3Client;
  let bucket: string;
  let dir: string;
  const env = () => childEnv();

  beforeAll(async () => void ({ s3, client, bucket, dir } = await setUpBucket("zs-cli", objects)));

  afterAll(() => tearDownBucket({ s3, client, bucket, dir }));

  async function download(key: string, file: string): Promise<string> {
    await s3.downloadToFile(bucket, key, file);
    return file;
  }

  it("S3 -> S3 with object settings and a manifest", async () => {
    const man = path.join(dir, "s3.manifest.json");
    const r = await runCli(
      [
        `s3://${bucket}/photos/`,
        `s3://${bucket}/out/photos.zip`,
        "--manifest", man,
        "--content-disposition", 'attachment; filename="photos.zip"',
        "--metadata", "job=cli-test",
        "--tag", "team=zip",
        "--json",
      ],
      { env: env() },
    );
    expect(r.code, r.stderr).toBe(0);
    const summary = JSON.parse(r.stdout) as { ok: boolean; entries: number; size: number; parts: number; predictedSize: number };
    expect(summary).toMatchObject({ ok: true, entries: 3 });
    const head = await client.send(new HeadObjectCommand({ Bucket: bucket, Key: "out/photos.zip" }));
    expect(head.ContentLength).toBe(summary.size);
    expect(head.ContentType).toBe("application/zip");
    expect(head.ContentDisposition).toBe('attachment; filename="photos.zip"');
    expect(head.Metadata).toEqual({ job: "cli-test" });
    const tags = await client.send(new GetObjectTaggingCommand({ Bucket: bucket, Key: "out/photos.zip" }));
    expect(tags.TagSet).toEqual([{ Key: "team", Value: "zip" }]);

    const file = await download("out/photos.zip", path.join(dir, "photos.zip"));
    await verifyZip(file, underPhotos(), { readers: ["unzip", "python"] });

    const m = JSON.parse(await readFile(man, "utf8")) as { entries: { source: string; name: string; size: number; crc32: number; offset: number }[] };
    const zip = await readFile(file);
    expect(m.entries.map((e) => e.source).sort()).toEqual(Object.keys(objects).filter((k) => k.startsWith("photos/")).map((k) => `s3://${bucket}/${k}`));
    for (const e of m.entries) {
      const data = objects[`photos/${e.name}`];
      expect(e.size).toBe(data.length);
      expect(e.crc32).toBe(crc32(data));
      expect(zip.readUInt32LE(e.offset)).toBe(0x04034b50); // local file header (APPNOTE 4.3.7)
    }
  });

  it("--dry-run touches nothing, and the predicted size is the size of the real run", async () => {
    const before = await listKeys(client, bucket);
    const r = await runCli([`s3://${bucket}/photos/`, `s3://${bucket}/out/dry.zip`, "--dry-run", "--json", "--part-size", "5MiB"], { env: env() });
    expect(r.code, r.stderr).toBe(0);
    const report = JSON.parse(r.stdout) as { predictedSize: number; zip64: boolean; entries: unknown[]; parts: { partSize: number; singlePut: boolean } };
    expect(report.entries).toHaveLength(3);
    expect(report.zip64).toBe(false);
    expect(report.parts.partSize).toBe(5 * 1024 * 1024);
    expect(await listKeys(client, bucket)).toEqual(before);
    expect(await s3.listMultipartUploads(bucket)).toEqual([]);

    const real = await runCli([`s3://${bucket}/photos/`, `s3://${bucket}/out/dry.zip`, "--part-size", "5MiB", "-q"], { env: env() });
    expect(real.code, real.stderr).toBe(0);
    const head = await client.send(new HeadObjectCommand({ Bucket: bucket, Key: "out/dry.zip" }));
    expect(head.ContentLength).toBe(report.predictedSize);
  });

  it("local -> S3 and S3 -> local", async () => {
    const src = path.join(dir, "local-src");
    await writeTree(src, { "one.txt": "one\n", "nested/two.bin": bytes(50_000, 9) });
    const up = await runCli([src, `s3://${bucket}/out/local.zip`, "--method", "deflate"], { env: env() });
    expect(up.code, up.stderr).toBe(0);
    expect(up.stdout).toMatch(/^wrote s3:\/\/.*\/out\/local\.zip: 2 entries/);
    const file = await download("out/local.zip", path.join(dir, "local.zip"));
    await verifyZip(file, [
      { name: "one.txt", data: Buffer.from("one\n") },
      { name: "nested/two.bin", data: bytes(50_000, 9) },
    ], { readers: ["unzip", "python"] });

    const local = path.join(dir, "from-s3.zip");
    const down = await runCli([`s3://${bucket}/photos`, local], { env: env() });
    expect(down.code, down.stderr).toBe(0);
    await verifyZip(local, underPhotos(), { readers: ["unzip", "python"] });
    // A single key is zipped under its base name.
    const single = path.join(dir, "single.zip");
    expect((await runCli([`s3://${bucket}/photos/sub/c.txt`, single], { env: env() })).code).toBe(0);
    await verifyZip(single, [{ name: "c.txt", data: objects["photos/sub/c.txt"] }], { readers: ["python"] });
  });

  it("--password-env gives an AES archive that 7-Zip opens with that password", async () => {
    const r = await runCli([`s3://${bucket}/photos/`, `s3://${bucket}/out/secret.zip`, "--password-env", "EXPORT_PASSWORD"], {
      env: { ...env(), EXPORT_PASSWORD: "s3cret pass" },
    });
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout + r.stderr).not.toContain("s3cret pass");
    const file = await download("out/secret.zip", path.join(dir, "secret.zip"));
    expect((await exec("7z", ["t", "-ps3cret pass", file])).stdout).toMatch(/Everything is Ok/);
    await expect(exec("7z", ["t", "-pwrong", file])).rejects.toThrow();
  });

  it("a missing key exits 3, a missing bucket exits 3, and nothing is written", async () => {
    const r = await runCli([`s3://${bucket}/photos/nope.jpg`, `s3://${bucket}/out/missing.zip`], { env: env() });
    expect(r.code).toBe(3);
    expect(r.stderr).toMatch(/not found.*nope\.jpg/);
    const b = await runCli([`s3://${bucket}-does-not-exist/x/`, `s3://${bucket}/out/missing.zip`], { env: env() });
    expect(b.code).toBe(3);
    expect(b.stderr).toMatch(/ERR_S3_NO_SUCH_BUCKET/);
    expect(await listKeys(client, bucket)).not.toContain("out/missing.zip");
    expect(await s3.listMultipartUploads(bucket)).toEqual([]);
  });

  it("a user without rights gets exit 4", async () => {
    const r = await runCli([`s3://${bucket}/photos/`, `s3://${bucket}/out/denied.zip`], { env: childEnv(true) });
    expect(r.code).toBe(4);
    expect(r.stderr).toMatch(/ERR_S3_ACCESS_DENIED/);
  });

  it("--jobs: a failing job does not stop the others; exit non-zero at the end", async () => {
    const jobs = path.join(dir, "jobs.ndjson");
    await writeFile(
      jobs,
      [
        { src: `s3://${bucket}/photos/sub/`, dest: `s3://${bucket}/out/job-sub.zip` },
        { src: `s3://${bucket}/no-such-prefix/`, dest: `s3://${bucket}/out/job-missing.zip` },
        { src: [`s3://${bucket}/other/`, `s3://${bucket}/photos/a.jpg`], dest: `s3://${bucket}/out/job-mixed.zip`, options: { method: "deflate" } },
      ]
        .map((j) => JSON.stringify(j))
        .join("\n"),
    );
    const r = await runCli(["--jobs", jobs, "--parallel", "2", "--json"], { env: env() });
    expect(r.code).toBe(1);
    const lines = r.stdout.trim().split("\n").map((l) => JSON.parse(l) as { job?: number; ok?: boolean; exitCode?: number; summary?: unknown });
    expect(lines.find((l) => l.job === 1)).toMatchObject({ ok: true, entries: 2 });
    expect(lines.find((l) => l.job === 2)).toMatchObject({ ok: false, code: "ERR_S3_EMPTY_SOURCE", exitCode: 3 });
    expect(lines.find((l) => l.job === 3)).toMatchObject({ ok: true, entries: 2 });
    expect(lines.at(-1)).toEqual({ summary: { jobs: 3, ok: 2, failed: 1 } });
    const keys = await listKeys(client, bucket);
    expect(keys).toEqual(expect.arrayContaining(["out/job-sub.zip", "out/job-mixed.zip"]));
    expect(keys).not.toContain("out/job-missing.zip");
    const mixed = await download("out/job-mixed.zip", path.join(dir, "job-mixed.zip"));
    await verifyZip(mixed, [
      { name: "x.txt", data: objects["other/x.txt"] },
      { name: "a.jpg", data: objects["photos/a.jpg"] },
    ], { readers: ["python"] });
  });

  it("cleanup lists, then aborts, an incomplete upload older than the given age", async () => {
    const created = await client.send(new CreateMultipartUploadCommand({ Bucket: bucket, Key: "stale/left-behind.zip" }));
    await client.send(new CreateMultipartUploadCommand({ Bucket: bucket, Key: "elsewhere/keep.zip" }));
    await new Promise((r) => setTimeout(r, 1500)); // the gateway's timestamps have 1 s resolution

    const young = await runCli(["cleanup", `s3://${bucket}/stale/`, "--older-than", "24h"], { env: env() });
    expect(young.code, young.stderr).toBe(0);
    expect(young.stdout).toMatch(/^0 incomplete uploads aborted$/m);

    const dry = await runCli(["cleanup", `s3://${bucket}/stale/`, "--older-than", "1s", "--dry-run"], { env: env() });
    expect(dry.code, dry.stderr).toBe(0);
    expect(dry.stdout).toContain(`would abort s3://${bucket}/stale/left-behind.zip upload ${created.UploadId}`);
    expect((await s3.listMultipartUploads(bucket)).map((u) => u.key).sort()).toEqual(["elsewhere/keep.zip", "stale/left-behind.zip"]);

    // Under one hour, uploads of jobs still running would go too: refused without --force.
    const refused = await runCli(["cleanup", `s3://${bucket}/stale/`, "--older-than", "1s"], { env: env() });
    expect(refused.code).toBe(2);
    expect(refused.stderr).toMatch(/--older-than 1s is under 1h: .* add --force/);
    expect((await s3.listMultipartUploads(bucket)).map((u) => u.key).sort()).toEqual(["elsewhere/keep.zip", "stale/left-behind.zip"]);

    const real = await runCli(["cleanup", `s3://${bucket}/stale/`, "--older-than", "1s", "--force", "--json"], { env: env() });
    expect(real.code, real.stderr).toBe(0);
    const out = JSON.parse(real.stdout) as { uploads: { key: string; uploadId: string }[] };
    expect(out.uploads.map((u) => u.uploadId)).toEqual([created.UploadId]);
    expect((await s3.listMultipartUploads(bucket)).map((u) => u.key)).toEqual(["elsewhere/keep.zip"]);
  });

  it("SIGINT during an upload aborts it: exit 6, no object and no incomplete upload", async () => {
    const big = path.join(dir, "big");
    await mkdir(big, { recursive: true });
    await writeFile(path.join(big, "zeros.bin"), "");
    await truncate(path.join(big, "zeros.bin"), 2 * 1024 ** 3);
    let pid = 0;
    let sent = false;
    const r = await runCli([big, `s3://${bucket}/out/interrupted.zip`, "--part-size", "5MiB"], {
      env: env(),
      onSpawn: (p) => (pid = p),
      onStderr: (chunk) => {
        if (!sent && chunk.includes("zipstream:")) {
          sent = true;
          process.kill(pid, "SIGINT");
        }
      },
    });
    expect(sent).toBe(true);
    expect(r.code, r.stderr).toBe(6);
    expect(await listKeys(client, bucket)).not.toContain("out/interrupted.zip");
    expect((await s3.listMultipartUploads(bucket)).filter((u) => u.key === "out/interrupted.zip")).toEqual([]);
    expect(existsSync(path.join(big, "zeros.bin"))).toBe(true);
    expect((await stat(path.join(big, "zeros.bin"))).size).toBe(2 * 1024 ** 3);
  });
});
