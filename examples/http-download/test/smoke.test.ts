import { mkdtemp, rm, writeFile } from "node:fs/promises";
import type { AddressInfo } from "node:net";
import { tmpdir } from "node:os";
import path from "node:path";
import type { S3Client } from "@aws-sdk/client-s3";
import { verifyZip } from "@zipstream/interop";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createZipServer } from "../main.js";
import { bucketWith, bytes, dropBucket, s3available, setup, testClient } from "@zipstream/testkit/examples";

describe.skipIf(!s3available)("example http-download", () => {
  let client: S3Client;
  let bucket: string;
  let server: import("node:http").Server;
  let base: string;
  const objects: Record<string, Uint8Array> = {
    "gallery/1.jpg": bytes(400_000, 1),
    "gallery/2.jpg": bytes(250_000, 2),
    "gallery/captions/readme.txt": Buffer.from("captions\n"),
    "private/secret.txt": Buffer.from("not served under gallery/"),
  };

  beforeAll(async () => {
    await setup();
    client = testClient();
    bucket = await bucketWith("http", objects);
    server = createZipServer({ client, bucket });
    await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
    base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  });
  afterAll(async () => {
    await new Promise((resolve) => server.close(resolve));
    await dropBucket(bucket);
    client.destroy();
  });

  it("streams a valid zip with an exact Content-Length and an attachment disposition", async () => {
    const res = await fetch(`${base}/download?prefix=gallery/`);
    expect(res.status).toBe(200);
    expect(res.headers.get("content-type")).toBe("application/zip");
    expect(res.headers.get("content-disposition")).toBe('attachment; filename="gallery.zip"');
    const length = Number(res.headers.get("content-length"));
    const body = Buffer.from(await res.arrayBuffer());
    expect(length).toBeGreaterThan(650_000);
    expect(body.length).toBe(length);

    const dir = await mkdtemp(path.join(tmpdir(), "example-http-"));
    try {
      await writeFile(path.join(dir, "g.zip"), body);
      await verifyZip(path.join(dir, "g.zip"), [
        { name: "1.jpg", data: objects["gallery/1.jpg"] },
        { name: "2.jpg", data: objects["gallery/2.jpg"] },
        { name: "captions/readme.txt", data: objects["gallery/captions/readme.txt"] },
      ], { readers: ["unzip", "python"] });
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });

  it("answers 404 for an empty prefix and for other paths", async () => {
    expect((await fetch(`${base}/download?prefix=nothing-here/`)).status).toBe(404);
    expect((await fetch(`${base}/elsewhere`)).status).toBe(404);
  });
});
