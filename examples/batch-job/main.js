// batch-job: a Node batch job that writes one archive per S3 prefix, a few at a time.
//
//   pnpm start -- <bucket> <dest-prefix> <prefix> [<prefix>...]
//
// Each `s3://bucket/<prefix>` becomes `s3://bucket/<dest-prefix><name>.zip`. At most
// PARALLEL (default 2) archives are built at once; a failed prefix does not stop the others, and
// the job exits 1 at the end if any failed. One JSON line per archive on stdout.
// S3 settings from the environment: AWS_REGION, credentials chain, S3_ENDPOINT / AWS_ENDPOINT_URL.
// @ts-check
import { pathToFileURL } from "node:url";
import { S3Client } from "@aws-sdk/client-s3";
import { zipS3Keys } from "@zipstream/s3";

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
 * Zips each prefix into its own archive with at most `parallel` running at once.
 * Memory: `parallel` times one zipS3Keys run (about concurrency x part size + prefetch window).
 * @param {{ client: S3Client, bucket: string, prefixes: string[], destPrefix: string, parallel?: number,
 *           onResult?: (r: { prefix: string, ok: boolean, key?: string, size?: number, entries?: number, error?: string, code?: string }) => void }} o
 */
export async function zipPrefixes({ client, bucket, prefixes, destPrefix, parallel = 2, onResult = () => {} }) {
  /** @type {{ prefix: string, ok: boolean, key: string, size?: number, entries?: number, code?: string, error?: string }[]} */
  const results = [];
  let next = 0;
  const worker = async () => {
    while (next < prefixes.length) {
      const prefix = prefixes[next++];
      const key = `${destPrefix}${prefix.replace(/\/+$/, "").replaceAll("/", "-")}.zip`;
      let r;
      try {
        const z = await zipS3Keys({ client, src: { bucket, prefix }, dest: { bucket, key } });
        r = { prefix, ok: true, key, size: z.size, entries: z.entries };
      } catch (err) {
        const e = /** @type {{ code?: string, message?: string }} */ (err);
        r = { prefix, ok: false, key, code: e.code, error: e.message };
      }
      results.push(r);
      onResult(r);
    }
  };
  await Promise.all(Array.from({ length: Math.min(parallel, prefixes.length) }, worker));
  return results;
}

if (process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href) {
  const [bucket, destPrefix, ...prefixes] = process.argv.slice(2);
  if (!bucket || destPrefix === undefined || prefixes.length === 0) {
    console.error("usage: node main.js <bucket> <dest-prefix> <prefix> [<prefix>...]");
    process.exit(2);
  }
  const client = s3ClientFromEnv();
  const results = await zipPrefixes({
    client,
    bucket,
    destPrefix,
    prefixes,
    parallel: Number(process.env.PARALLEL ?? 2),
    onResult: (r) => console.log(JSON.stringify(r)),
  });
  client.destroy();
  const failed = results.filter((r) => !r.ok).length;
  console.error(`${results.length - failed} archives written, ${failed} failed`);
  process.exitCode = failed > 0 ? 1 : 0;
}
