import { S3Client, type S3ClientConfig } from "@aws-sdk/client-s3";
import { type ExpectedBucketOwner, parseExpectedBucketOwner, withExpectedBucketOwner } from "@zipstream/s3";
import { LambdaZipError } from "./errors.js";

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

/**
 * The bucket-owner condition configured at deploy time in `ZIPSTREAM_EXPECTED_BUCKET_OWNER`: one
 * account ID for every bucket, or a comma-separated `BUCKET=ID` list. Deploy time, not the event:
 * the condition protects the operator's data, so a caller must not be able to loosen it.
 */
export function expectedOwnersFromEnv(env: NodeJS.ProcessEnv = process.env): ExpectedBucketOwner | undefined {
  return parseExpectedBucketOwner((env.ZIPSTREAM_EXPECTED_BUCKET_OWNER ?? "").split(","), "ZIPSTREAM_EXPECTED_BUCKET_OWNER");
}

let cached: { key: string; client: S3Client } | undefined;

/**
 * One client per execution environment, reused by warm invocations (keeps connections alive);
 * rebuilt if the environment's S3 settings change. With `ZIPSTREAM_EXPECTED_BUCKET_OWNER` every
 * request it sends carries the bucket-owner condition (see {@link expectedOwnersFromEnv}).
 */
export function getS3Client(env: NodeJS.ProcessEnv = process.env): S3Client {
  const config = s3ConfigFromEnv(env);
  const owners = expectedOwnersFromEnv(env);
  const key = JSON.stringify([config, owners]);
  if (cached?.key !== key) cached = { key, client: withExpectedBucketOwner(new S3Client(config), owners) };
  return cached.client;
}

/**
 * Passwords an event may name in `password.env`, configured at deploy time in
 * `ZIPSTREAM_PASSWORDS`: a comma-separated list of `NAME` (the value of environment variable
 * NAME) or `NAME=SECRET_ID` (the SecretString of that AWS Secrets Manager secret, name or ARN,
 * read at run time). Any other name is refused, so an event cannot turn another variable
 * (`DB_PASSWORD`, `PATH`...) into an archive password.
 */
export function configuredPasswords(env: NodeJS.ProcessEnv = process.env): Map<string, { secretId?: string }> {
  const out = new Map<string, { secretId?: string }>();
  for (const item of (env.ZIPSTREAM_PASSWORDS ?? "").split(",")) {
    const t = item.trim();
    if (t === "") continue;
    const eq = t.indexOf("=");
    const name = eq < 0 ? t : t.slice(0, eq).trim();
    const secretId = eq < 0 ? undefined : t.slice(eq + 1).trim();
    out.set(name, secretId ? { secretId } : {});
  }
  return out;
}

/** Minimal view of a Secrets Manager client (`@aws-sdk/client-secrets-manager`), for injection. */
export interface SecretsReader {
  getSecretString(secretId: string): Promise<string>;
}

let secretsClient: { key: string; reader: SecretsReader } | undefined;

/**
 * A Secrets Manager reader from the environment (region as for S3; endpoint from
 * `AWS_ENDPOINT_URL_SECRETS_MANAGER` when set), loaded only when a secret is configured.
 */
export async function getSecretsReader(env: NodeJS.ProcessEnv = process.env): Promise<SecretsReader> {
  const region = env.AWS_REGION || env.AWS_DEFAULT_REGION || "us-east-1";
  const endpoint = env.AWS_ENDPOINT_URL_SECRETS_MANAGER || undefined;
  const key = JSON.stringify([region, endpoint]);
  if (secretsClient?.key !== key) {
    const { SecretsManagerClient, GetSecretValueCommand } = await import("@aws-sdk/client-secrets-manager");
    const client = new SecretsManagerClient({ region, ...(endpoint ? { endpoint } : {}) });
    secretsClient = {
      key,
      reader: {
        async getSecretString(secretId) {
          const out = await client.send(new GetSecretValueCommand({ SecretId: secretId }));
          if (typeof out.SecretString !== "string" || out.SecretString === "") {
            throw new Error(`secret ${secretId} has no SecretString (a binary secret cannot be a password)`);
          }
          return out.SecretString;
        },
      },
    };
  }
  return secretsClient.reader;
}

const secretCache = new Map<string, { value: string; until: number }>();

/**
 * A secret's value, cached per execution environment for `ttlMs` (default 5 minutes), so warm
 * invocations do not call Secrets Manager each time while a rotated password is still picked up.
 */
export async function readSecret(reader: SecretsReader, secretId: string, ttlMs = 300_000, now = Date.now()): Promise<string> {
  const hit = secretCache.get(secretId);
  if (hit !== undefined && hit.until > now) return hit.value;
  const value = await reader.getSecretString(secretId);
  secretCache.set(secretId, { value, until: now + ttlMs });
  return value;
}

/** Empties the secret cache (tests, or after a known rotation). */
export function clearSecretCache(): void {
  secretCache.clear();
}

/** A non-negative number from the environment, or undefined when unset, empty or not one. */
export function envNumber(env: NodeJS.ProcessEnv, name: string): number | undefined {
  const v = env[name];
  if (v === undefined || v === "") return undefined;
  const n = Number(v);
  return Number.isFinite(n) && n >= 0 ? n : undefined;
}

/** Where the password an event names comes from (see {@link configuredPasswords}), or why it cannot be used. */
export type PasswordSource = { value: string } | { secretId: string } | { problem: string };

/**
 * The password named `name`, by the deploy-time rule both handlers follow: only names in
 * `ZIPSTREAM_PASSWORDS` are accepted; a name bound to a Secrets Manager secret gives its id (read
 * it with {@link readPasswordSecret}), any other the environment variable's value.
 */
export function passwordSource(name: string, env: NodeJS.ProcessEnv): PasswordSource {
  const configured = configuredPasswords(env);
  const conf = configured.get(name);
  if (conf === undefined) {
    return {
      problem:
        `"${name}" is not a password configured for this function ` +
        (configured.size > 0 ? `(ZIPSTREAM_PASSWORDS allows ${[...configured.keys()].join(", ")})` : "(ZIPSTREAM_PASSWORDS is empty)"),
    };
  }
  if (conf.secretId !== undefined) return { secretId: conf.secretId };
  const value = env[name];
  return value === undefined || value === "" ? { problem: `environment variable ${name} is not set or empty` } : { value };
}

/**
 * Reads a password secret at run time (never from the function's configuration), cached for
 * `ttlMs` (default `ZIPSTREAM_SECRET_TTL_MS`, else 300,000 ms). A failure is ERR_PASSWORD_SECRET,
 * thrown before anything is written.
 */
export async function readPasswordSecret(secretId: string, env: NodeJS.ProcessEnv, reader?: SecretsReader, ttlMs?: number): Promise<string> {
  try {
    return await readSecret(reader ?? (await getSecretsReader(env)), secretId, ttlMs ?? envNumber(env, "ZIPSTREAM_SECRET_TTL_MS") ?? 300_000);
  } catch (cause) {
    throw new LambdaZipError(
      "ERR_PASSWORD_SECRET",
      `Reading the archive password from Secrets Manager (secret ${secretId}) failed: ${cause instanceof Error ? cause.message : String(cause)}; nothing was written`,
      { cause },
    );
  }
}
