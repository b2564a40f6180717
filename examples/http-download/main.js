// http-download: an HTTP endpoint that streams a zip of S3 objects straight to the browser.
//
//   BUCKET=photos PORT=8080 pnpm start      then open http://localhost:8080/download?prefix=2024/
//
// The archive is built while it is sent: nothing is buffered or written to disk, memory stays flat.
// With method "store" the size is known before the first byte (predictZipSize), so the response
// has a Content-Length and the browser shows a real progress bar and can detect a truncated body.
// S3 settings from the environment: AWS_REGION, credentials chain, S3_ENDPOINT / AWS_ENDPOINT_URL.
// @ts-check
import { createServer } from "node:http";
import { pipeline } from "node:stream/promises";
import { pathToFileURL } from "node:url";
import { GetObjectCommand, ListObjectsV2Command, S3Client } from "@aws-sdk/client-s3";
import { predictZipSize, zipStream } from "@zipstream/core";

/** @param {NodeJS.ProcessEnv} env */
function s3ClientFromEnv(env = process.env) {
  const endpoint = env.S3_ENDPOINT ?? env.AWS_ENDPOINT_URL;
  return new S3Client({
    region: env.AWS_REGION ?? "us-east-1",
    endpoint,
    forcePathStyle: endpoint !== undefined,
    requestChecksumCalculation: "WHEN_REQUIRED",
    responseChecksumValidation: "WHEN_REQUIRED",
  });
}

/**
 * Zip entries for every object under `prefix`. Each object is fetched only when its turn comes,
 * pinned to the listed ETag so that an object replaced mid-download fails instead of corrupting.
 * @param {S3Client} client @param {string} bucket @param {string} prefix
 * @returns {Promise<import("@zipstream/core").ZipEntry[]>}
 */
async function entriesUnder(client, bucket, prefix) {
  const entries = [];
  /** @type {string | undefined} */
  let token;
  do {
    /** @type {import("@aws-sdk/client-s3").ListObjectsV2CommandOutput} */
    const page = await client.send(new ListObjectsV2Command({ Bucket: bucket, Prefix: prefix, ContinuationToken: token }));
    for (const o of page.Contents ?? []) {
      const key = /** @type {string} */ (o.Key);
      if (key.endsWith("/")) continue; // folder markers
      entries.push({
        name: key.slice(prefix.length),
        size: o.Size ?? 0,
        mtime: o.LastModified,
        source: async () => {
          const res = await client.send(new GetObjectCommand({ Bucket: bucket, Key: key, IfMatch: o.ETag }));
          return /** @type {import("node:stream").Readable} */ (res.Body);
        },
      });
    }
    token = page.IsTruncated ? page.NextContinuationToken : undefined;
  } while (token);
  return entries;
}

/**
 * `GET /download?prefix=P` answers a zip of `s3://bucket/P*` (one bucket per server: never let a
 * request choose the bucket).
 * @param {{ client: S3Client, bucket: string }} o
 */
export function createZipServer({ client, bucket }) {
  return createServer(async (req, res) => {
    const url = new URL(req.url ?? "/", "http://localhost");
    if (req.method !== "GET" || url.pathname !== "/download") {
      res.writeHead(404).end("not found\n");
      return;
    }
    const prefix = url.searchParams.get("prefix") ?? "";
    const filename = `${prefix.replace(/\/+$/, "").split("/").pop() || bucket}.zip`.replace(/["\\\r\n]/g, "_");
    // Stop reading S3 as soon as the browser goes away.
    const controller = new AbortController();
    res.once("close", () => controller.abort());
    try {
      const entries = await entriesUnder(client, bucket, prefix);
      if (entries.length === 0) {
        res.writeHead(404).end("no object under this prefix\n");
        return;
      }
      const size = predictZipSize(entries, { method: "store" });
      res.writeHead(200, {
        "Content-Type": "application/zip",
        "Content-Disposition": `attachment; filename="${filename}"`,
        ...(size !== undefined ? { "Content-Length": String(size) } : {}),
      });
      await pipeline(zipStream(entries, { method: "store", signal: controller.signal }), res);
    } catch (err) {
      if (!res.headersSent) res.writeHead(502).end("could not build the archive\n");
      else res.destroy(); // mid-body: a short body tells the browser the download failed
      if (!controller.signal.aborted) console.error("download failed:", err);
    }
  });
}

if (process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href) {
  const bucket = process.env.BUCKET;
  if (!bucket) {
    console.error("set BUCKET to the bucket to serve");
    process.exit(2);
  }
  const port = Number(process.env.PORT ?? 8080);
  createZipServer({ client: s3ClientFromEnv(), bucket }).listen(port, "127.0.0.1", () => {
    console.log(`serving zips of s3://${bucket}/ at http://127.0.0.1:${port}/download?prefix=...`);
  });
}
