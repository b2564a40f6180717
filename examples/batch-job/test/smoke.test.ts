import { spawnSync } from "node:child_process";
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import path from "node:path";
import type { S3Client } from "@aws-sdk/client-s3";
import { verifyZip } from "@zipstream/interop";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { bucketWith, bytes, dropBucket, getBytes, listUploads, s3available, s3vars, setup, testClient } from "@zipstream/testkit/examples";

const MAIN = path.join(import.meta.dirname, "..", "main.js");

describe.skipIf(!s3available)("example batch-job", () => {
  let client: S3Client;
  let bucket: string;
  const objects: Record<string, Uint8Array> = {
    "customers/alice/a.pdf": bytes(120_000, 1),
    "customers/alice/b.pdf": bytes(80_000, 2),
    "customers/bob/c.pdf": bytes(60_000, 3),
    "customers/carol/d.pdf": bytes(1_000, 4),
  };

  beforeAll(async () => {
    await setup();
    client = testClient();
    bucket = await bucketWith("batch", objects);
  });
  afterAll(async () => {
    await dropBucket(bucket);
    client.destroy();
  });

  it("writes one archive per prefix, reports a failed prefix and exits 1 at the end", async () => {
    const r = spawnSync(
      process.execPath,
      [MAIN, bucket, "archives/", "customers/alice/", "customers/nobody/", "customers/bob/", "customers/carol/"],
      {
        encoding: "utf8",
        env: { ...process.env, PARALLEL: "2", ...s3vars() },
      },
    );
    expect(r.status, r.stderr).toBe(1);
    expect(r.stderr).toMatch(/3 archives written, 1 failed/);
    const lines = r.stdout.trim().split("\n").map((l) => JSON.parse(l) as { prefix: string; ok: boolean; key: string; entries?: number; code?: string });
    expect(lines).toHaveLength(4);
    expect(lines.find((l) => l.prefix === "customers/nobody/")).toMatchObject({ ok: false, code: "ERR_S3_EMPTY_SOURCE" });

    const dir = await mkdtemp(path.join(tmpdir(), "example-batch-"));
    try {
      for (const who of ["alice", "bob", "carol"]) {
        const line = lines.find((l) => l.prefix === `customers/${who}/`)!;
        expect(line.ok).toBe(true);
        expect(line.key).toBe(`archives/customers-${who}.zip`);
        const file = path.join(dir, `${who}.zip`);
        await writeFile(file, await getBytes(bucket, line.key));
        const expected = Object.entries(objects)
          .filter(([k]) => k.startsWith(`customers/${who}/`))
          .map(([k, data]) => ({ name: k.slice(`customers/${who}/`.length), data }));
        await verifyZip(file, expected, { readers: ["python"] });
      }
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
    expect(await listUploads(bucket)).toEqual([]);
  });
});
