import { S3Client, type S3ClientConfig } from "@aws-sdk/client-s3";

/**
 * S3 client settings from the standard environment, as the CLI reads them:
 * - `AWS_REGION` (set by Lambda), else `AWS_DEFAULT_REGION`, else `us-east-1`;
 * - `AWS_ENDPOINT_URL_S3` or `AWS_ENDPOINT_URL` for S3-compatible stores;
 * - credentials from the SDK's default chain (on Lambda: the execution role);
 * - `S3_FORCE_PATH_STYLE=1` for path-style URLs (local gateways without wildcard DNS).
 * Checksums are computed and validated only when S3 requires them: the SDK's default would send
 * stream bodies as aws-chunked uploads with trailing checksums, which several S3-compatible
 * stores (Ceph RGW 16, older MinIO) refuse.
 */
export function s3ConfigFromEnv(env: NodeJS.ProcessEnv = process.env): S3ClientConfig {
  const endpoint = env.AWS_ENDPOINT_URL_S3 || env.AWS_ENDPOINT_URL || undefined;
  const pathStyle = env.S3_FORCE_PATH_STYLE === "1" || env.S3_FORCE_PATH_STYLE === "true";
  return {
    region: env.AWS_REGION || env.AWS_DEFAULT_REGION || "us-east-1",
    ...(endpoint ? { endpoint } : {}),
    ...(pathStyle ? { forcePathStyle: true } : {}),
    requestChecksumCalculation: "WHEN_REQUIRED",
    responseChecksumValidation: "WHEN_REQUIRED",
  };
}

let cached: { key: string; client: S3Client } | undefined;

/**
 * One client per execution environment, reused by warm invocations (keeps connections alive);
 * rebuilt if the environment's S3 settings change.
 */
export function getS3Client(env: NodeJS.ProcessEnv = process.env): S3Client {
  const config = s3ConfigFromEnv(env);
  const key = JSON.stringify(config);
  if (cached?.key !== key) cached = { key, client: new S3Client(config) };
  return cached.client;
}
