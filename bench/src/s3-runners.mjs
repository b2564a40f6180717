// One S3 pipeline run in its own process:
//   node s3-runners.mjs <zipstream|archiver-lib-storage|raw-copy> <src-bucket> <prefix> <dest-bucket> <dest-key> [method]
// Reads S3_ENDPOINT/AWS_* from the environment. Prints one JSON line: wall seconds, CPU seconds,
// peak RSS, bytes in, archive size.
import { S3Client, GetObjectCommand, ListObjectsV2Command } from "@aws-sdk/client-s3";
import { Upload } from "@aws-sdk/lib-storage";
import { PassThrough } from "node:stream";
import { once } from "node:events";

export function makeClient() {
  return new S3Client({
    endpoint: process.env.S3_ENDPOINT,
    region: process.env.AWS_REGION ?? "us-east-1",
    forcePathStyle: true,
    // Ceph 16 needs these; a checksum-capable server (BENCH_CHECKSUMS=1) gets the SDK's defaults.
    ...(process.env.BENCH_CHECKSUMS === "1" ? {} : { requestChecksumCalculation: "WHEN_REQUIRED", responseChecksumValidation: "WHEN_REQUIRED" }),
  });
}

export async function listAll(client, Bucket, Prefix) {
  const out = [];
  let ContinuationToken;
  do {
    const r = await client.send(new ListObjectsV2Command({ Bucket, Prefix, ContinuationToken }));
    for (const o of r.Contents ?? []) out.push({ key: o.Key, size: o.Size });
    ContinuationToken = r.IsTruncated ? r.NextContinuationToken : undefined;
  } while (ContinuationToken);
  return out;
}

const PART = 8 * 1024 * 1024;

const runners = {
  async zipstream(client, srcBucket, prefix, destBucket, destKey, method) {
    const { zipS3Keys } = await import("@zipstream/s3");
    const r = await zipS3Keys({ client, src: { bucket: srcBucket, prefix }, dest: { bucket: destBucket, key: destKey }, method, assembly: "stream" });
    return { size: r.size, entries: r.entries, bytesRead: r.bytesRead, bytesUploaded: r.bytesUploaded, bytesCopied: r.bytesCopied };
  },
  // Copy assembly: S3 copies the members (copyMinSize lowered to S3's 5 MiB part minimum, so
  // that every member that can be copied is).
  async "zipstream-copy"(client, srcBucket, prefix, destBucket, destKey) {
    const { zipS3Keys } = await import("@zipstream/s3");
    const r = await zipS3Keys({ client, src: { bucket: srcBucket, prefix }, dest: { bucket: destBucket, key: destKey }, assembly: "copy", copyMinSize: 5 * 1024 * 1024 });
    return { size: r.size, entries: r.entries, bytesRead: r.bytesRead, bytesUploaded: r.bytesUploaded, bytesCopied: r.bytesCopied, crcSources: r.crcSources, parts: r.parts };
  },
  // The recipe users glue together today: archiver piped into lib-storage's Upload, objects
  // appended one at a time (each GET issued when archiver has consumed the previous entry).
  async "archiver-lib-storage"(client, srcBucket, prefix, destBucket, destKey, method) {
    const { default: archiver } = await import("archiver");
    const objects = await listAll(client, srcBucket, prefix);
    const archive = archiver("zip", method === "store" ? { store: true } : { zlib: { level: 6 } });
    const body = new PassThrough({ highWaterMark: 1 << 20 });
    archive.pipe(body);
    const upload = new Upload({ client, params: { Bucket: destBucket, Key: destKey, Body: body, ContentType: "application/zip" }, partSize: PART, queueSize: 4 });
    const uploaded = upload.done();
    for (const o of objects) {
      const r = await client.send(new GetObjectCommand({ Bucket: srcBucket, Key: o.key }));
      const entry = once(archive, "entry");
      archive.append(r.Body, { name: o.key.slice(prefix.length) });
      await entry;
    }
    await archive.finalize();
    await uploaded;
    return { size: archive.pointer(), entries: objects.length };
  },
  // The limit: GET every object (8 at a time, kept in order) and multipart-upload the same bytes
  // concatenated, unzipped.
  async "raw-copy"(client, srcBucket, prefix, destBucket, destKey) {
    const objects = await listAll(client, srcBucket, prefix);
    const body = new PassThrough({ highWaterMark: 1 << 20 });
    const upload = new Upload({ client, params: { Bucket: destBucket, Key: destKey, Body: body }, partSize: PART, queueSize: 4 });
    const uploaded = upload.done();
    const inflight = [];
    const fetchOne = async (o) => Buffer.concat(await (await client.send(new GetObjectCommand({ Bucket: srcBucket, Key: o.key }))).Body.toArray());
    let next = 0, size = 0;
    while (next < objects.length || inflight.length) {
      while (inflight.length < 8 && next < objects.length) inflight.push(fetchOne(objects[next++]));
      const buf = await inflight.shift();
      size += buf.length;
      if (!body.write(buf)) await once(body, "drain");
    }
    body.end();
    await uploaded;
    return { size, entries: objects.length };
  },
};

if (import.meta.url === `file://${process.argv[1]}`) {
  const [name, srcBucket, prefix, destBucket, destKey, method = "store"] = process.argv.slice(2);
  const client = makeClient();
  const t0 = process.hrtime.bigint(), c0 = process.cpuUsage();
  const r = await runners[name](client, srcBucket, prefix, destBucket, destKey, method);
  const ns = Number(process.hrtime.bigint() - t0), cpu = process.cpuUsage(c0);
  process.stdout.write(JSON.stringify({ runner: name, method, seconds: ns / 1e9, cpuSeconds: (cpu.user + cpu.system) / 1e6, maxRssMiB: process.resourceUsage().maxRSS / 1024, ...r }) + "\n");
}
