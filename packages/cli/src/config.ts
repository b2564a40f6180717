import type { S3Client } from "@aws-sdk/client-s3";
import { UsageError } from "./exit-codes.js";

/** S3 client settings from flags, falling back to the AWS environment variables. */
export interface S3Settings {
  /** --endpoint, else AWS_ENDPOINT_URL_S3, else AWS_ENDPOINT_URL. */
  endpoint?: string;
  /** --region, else AWS_REGION, else AWS_DEFAULT_REGION; "us-east-1" when an endpoint is set and none is found. */
  region?: string;
  /** --profile, else AWS_PROFILE (read by the default chain itself). */
  profile?: string;
  /** --path-style or S3_FORCE_PATH_STYLE=1; implied by a custom endpoint. */
  pathStyle?: boolean;
  /** --expected-bucket-owner as given: one account for every bucket, or `BUCKET=ID` each (parsed with the client). */
  expectedBucketOwner?: string[];
}

export function resolveS3Settings(
  flags: { endpoint?: string; region?: string; profile?: string; "path-style"?: boolean; "expected-bucket-owner"?: string[] },
  env: NodeJS.ProcessEnv = process.env,
): S3Settings {
  const endpoint = flags.endpoint ?? env["AWS_ENDPOINT_URL_S3"] ?? env["AWS_ENDPOINT_URL"] ?? undefined;
  let region = flags.region ?? env["AWS_REGION"] ?? env["AWS_DEFAULT_REGION"] ?? undefined;
  // Gateways such as Ceph RGW or MinIO ignore the region, but the SDK refuses to sign without one.
  if (region === undefined && endpoint !== undefined) region = "us-east-1";
  const pathStyle =
    flags["path-style"] === true || env["S3_FORCE_PATH_STYLE"] === "1" || env["S3_FORCE_PATH_STYLE"] === "true" || endpoint !== undefined;
  return { endpoint, region, profile: flags.profile, pathStyle, expectedBucketOwner: flags["expected-bucket-owner"] };
}

/**
 * Creates the S3 client. Credentials follow the AWS default chain (environment, shared config and
 * credentials files with AWS_PROFILE, SSO, web identity, container and instance metadata); an
 * explicit --profile reads that profile from the shared files.
 *
 * Checksums are computed and validated only when an operation requires them: newer SDKs add
 * CRC32 trailers by default, which some S3-compatible gateways (Ceph RGW among them) reject on
 * UploadPart; AWS accepts both.
 */
export async function createS3Client(settings: S3Settings): Promise<S3Client> {
  // Loaded on demand: the SDK takes most of the start-up time, and local-only runs never need it.
  const [{ S3Client }, { fromIni, fromNodeProviderChain }, { parseExpectedBucketOwner, withExpectedBucketOwner }] = await Promise.all([
    import("@aws-sdk/client-s3"),
    import("@aws-sdk/credential-providers"),
    import("@zipstream/s3"),
  ]);
  let owners;
  try {
    owners = parseExpectedBucketOwner(settings.expectedBucketOwner ?? [], "--expected-bucket-owner");
  } catch (err) {
    throw new UsageError((err as Error).message);
  }
  // Every command (zip, verify, cleanup, the distributed ones) uses this one client, so the
  // bucket-owner condition set here covers every request the CLI makes.
  const client = new S3Client({
    region: settings.region,
    endpoint: settings.endpoint,
    forcePathStyle: settings.pathStyle,
    credentials: settings.profile !== undefined ? fromIni({ profile: settings.profile }) : fromNodeProviderChain(),
    requestChecksumCalculation: "WHEN_REQUIRED",
    responseChecksumValidation: "WHEN_REQUIRED",
  });
  return withExpectedBucketOwner(client, owners);
}
