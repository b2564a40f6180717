// library-call: zip every object under an S3 prefix into one archive with a single call.
//
//   pnpm start -- <bucket> <prefix> <dest-key>
//
// S3 settings come from the environment: AWS_REGION, the default credential chain, and for an
// S3-compatible store S3_ENDPOINT (or AWS_ENDPOINT_URL). Prints the ZipS3Result as JSON.
// @ts-check
import { pathToFileURL } from "node:url";
import { S3Client } from "@aws-sdk/client-s3";
import { zipS3Keys } from "@zipstream/s3";

/** An S3 client configured from the environment. */
export function s3ClientFromEnv(env = process.env) {
  const endpoint = env.S3_ENDPOINT ?? env.AWS_ENDPOINT_URL;
  return new S3Client({
    region: env.AWS_REGION ?? "us-east-1",
    endpoint,
    forcePathStyle: endpoint !== undefined, // local gateways have no per-bucket DNS names
    // Checksums only where S3 requires them: S3-compatible gateways reject the SDK's default trailers.
    requestChecksumCalculation: "WHEN_REQUIRED",
    responseChecksumValidation: "WHEN_REQUIRED",
  });
}

/**
 * Zips `s3://bucket/prefix*` into `s3://bucket/destKey`; entry names are the keys relative to the prefix.
 * @param {S3Client} client
 * @param {string} bucket
 * @param {string} prefix
 * @param {string} destKey
 */
export async function zipPrefix(client, bucket, prefix, destKey) {
  return zipS3Keys({
    client,
    src: { bucket, prefix },
    dest: { bucket, key: destKey, contentDisposition: `attachment; filename="${destKey.split("/").pop()}"` },
    method: "store", // already-compressed media: store is fastest and gives an exact size up front
  });
}

if (process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href) {
  const [bucket, prefix, destKey] = process.argv.slice(2);
  if (!bucket || prefix === undefined || !destKey) {
    console.error("usage: node main.js <bucket> <prefix> <dest-key>");
    process.exit(2);
  }
  const client = s3ClientFromEnv();
  const result = await zipPrefix(client, bucket, prefix, destKey);
  console.log(JSON.stringify(result, null, 2));
  client.destroy();
}
