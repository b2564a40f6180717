import { Aws, CfnOutput, Duration, RemovalPolicy, Stack, type StackProps } from "aws-cdk-lib";
import * as iam from "aws-cdk-lib/aws-iam";
import * as lambda from "aws-cdk-lib/aws-lambda";
import * as logs from "aws-cdk-lib/aws-logs";
import * as s3 from "aws-cdk-lib/aws-s3";
import * as secretsmanager from "aws-cdk-lib/aws-secretsmanager";
import type { Construct } from "constructs";

/** A place the function may read from: a bucket, optionally limited to keys under a prefix. */
export interface SourceLocation {
  bucket: string;
  /**
   * Key prefix, e.g. "exports/". Empty or absent: the whole bucket. A prefix is a folder: a
   * trailing "/" is added when missing, so "exports" grants `exports/*` and never `exports-private/*`.
   */
  prefix?: string;
}

export interface ZipstreamStackProps extends StackProps {
  /** Directory holding the bundle `index.mjs` (from `pnpm --filter @zipstream/lambda run bundle`). */
  codePath: string;
  /** Buckets/prefixes the function may read. At least one. */
  sources: SourceLocation[];
  /**
   * Destination. With `bucketName` and `create` false, an existing bucket is imported by name
   * (its lifecycle rule is then yours to add; see the README). Default: a new bucket.
   * `prefix` is a folder, like a source's: a trailing "/" is added when missing.
   */
  destination?: { bucketName?: string; create?: boolean; prefix?: string };
  /** Function memory in MB (128–10,240). Buffers use about half of it. Default 2048. */
  memorySize?: number;
  /** Function timeout in seconds (at most 900). Default 900 (15 minutes). */
  timeoutSeconds?: number;
  /** Lambda runtime: "nodejs22.x" (default) or "nodejs24.x". */
  runtime?: "nodejs22.x" | "nodejs24.x";
  /** Days after which the destination bucket's incomplete multipart uploads are aborted. Default 1. */
  abortIncompleteUploadsAfterDays?: number;
  /** Grant s3:PutObjectTagging on the destination (needed when events set `dest.tags`). Default false. */
  allowTags?: boolean;
  /** KMS key used for SSE-KMS on the destination: grants kms:GenerateDataKey and kms:Decrypt on it. */
  destinationKmsKeyArn?: string;
  /**
   * Archive password in Secrets Manager, read by the function at run time (cached for 5 minutes
   * per execution environment) and never placed in its configuration. The role may read only this
   * secret (`secretsmanager:GetSecretValue`). Events use it as `"password": { "env": "<passwordEnv>" }`;
   * that name is the only one the function accepts (`ZIPSTREAM_PASSWORDS`).
   * `{ create: true }` makes a new generated secret; `{ name }` uses an existing one (encrypted with
   * the AWS managed key; a customer managed key also needs kms:Decrypt, not granted here).
   */
  passwordSecret?: { create?: boolean; name?: string };
  /** The password's name in events. Default "ZIPSTREAM_PASSWORD". */
  passwordEnv?: string;
  /** CloudWatch log retention. Default one month. */
  logRetention?: logs.RetentionDays;
  /**
   * The account that must own the buckets (`ZIPSTREAM_EXPECTED_BUCKET_OWNER`): every S3 request
   * of the function carries it, and S3 refuses (403) a bucket another account owns, e.g. one
   * deleted and re-created under the same name. One ID for every bucket, such as
   * `Stack.of(this).account`, or `{ [bucketName]: accountId }` per bucket. Default: no condition.
   */
  expectedBucketOwner?: string | Record<string, string>;
}

/**
 * Normalizes a prefix for IAM: no leading slash, and a trailing one, so that the `prefix*`
 * patterns below cover exactly that folder ("exports" must not grant "exports-private/...");
 * "" means the whole bucket.
 */
export function cleanPrefix(prefix: string | undefined): string {
  const p = (prefix ?? "").replace(/^\/+/, "");
  return p === "" || p.endsWith("/") ? p : `${p}/`;
}

/**
 * The zipstream Lambda function with least-privilege access: read on the configured source
 * buckets/prefixes, write and abort-multipart on the destination prefix, logs to its own group.
 */
export class ZipstreamStack extends Stack {
  readonly function: lambda.Function;
  readonly destinationBucket: s3.IBucket;
  readonly role: iam.Role;
  /** The function's environment (password names, bucket-owner condition), shared by the distributed functions. */
  readonly functionEnvironment: Readonly<Record<string, string>>;

  constructor(scope: Construct, id: string, props: ZipstreamStackProps) {
    super(scope, id, props);
    if (props.sources.length === 0) throw new Error("ZipstreamStack: at least one source bucket is required");
    const memorySize = props.memorySize ?? 2048;
    const timeoutSeconds = props.timeoutSeconds ?? 900;
    if (!Number.isInteger(memorySize) || memorySize < 128 || memorySize > 10_240) {
      throw new Error(`ZipstreamStack: memorySize must be an integer from 128 to 10240 MB, got ${memorySize}`);
    }
    if (!Number.isInteger(timeoutSeconds) || timeoutSeconds < 30 || timeoutSeconds > 900) {
      throw new Error(`ZipstreamStack: timeoutSeconds must be an integer from 30 to 900, got ${timeoutSeconds}`);
    }
    const abortDays = props.abortIncompleteUploadsAfterDays ?? 1;
    if (!Number.isInteger(abortDays) || abortDays < 1) {
      throw new Error(`ZipstreamStack: abortIncompleteUploadsAfterDays must be a positive integer, got ${abortDays}`);
    }

    // ---- Destination bucket.
    const dest = props.destination ?? {};
    const destPrefix = cleanPrefix(dest.prefix);
    if (dest.create === false) {
      if (!dest.bucketName) throw new Error("ZipstreamStack: destination.bucketName is required to import an existing bucket");
      this.destinationBucket = s3.Bucket.fromBucketName(this, "Destination", dest.bucketName);
    } else {
      this.destinationBucket = new s3.Bucket(this, "Destination", {
        ...(dest.bucketName ? { bucketName: dest.bucketName } : {}),
        blockPublicAccess: s3.BlockPublicAccess.BLOCK_ALL,
        encryption: s3.BucketEncryption.S3_MANAGED,
        enforceSSL: true,
        // A function killed mid-upload (or a job stopped too late) leaves parts that cost storage
        // and are invisible in listings; S3 itself removes them after this many days.
        lifecycleRules: [
          { id: "abort-incomplete-multipart-uploads", enabled: true, abortIncompleteMultipartUploadAfter: Duration.days(abortDays) },
        ],
        removalPolicy: RemovalPolicy.RETAIN,
      });
    }

    // ---- Role: no managed policy (AWSLambdaBasicExecutionRole grants logs on "*").
    this.role = new iam.Role(this, "Role", {
      assumedBy: new iam.ServicePrincipal("lambda.amazonaws.com"),
      description: "zipstream: read sources, write archives",
    });
    const s3Arn = (path: string) => `arn:${Aws.PARTITION}:s3:::${path}`;

    // Group sources by bucket; a source without a prefix opens its whole bucket.
    const byBucket = new Map<string, Set<string>>();
    for (const s of props.sources) {
      if (!s.bucket || s.bucket.includes("/") || s.bucket.includes("*")) throw new Error(`ZipstreamStack: invalid source bucket "${s.bucket}"`);
      if ((s.prefix ?? "").includes("*")) throw new Error(`ZipstreamStack: source prefixes are literal; "*" is not allowed ("${s.prefix}")`);
      const set = byBucket.get(s.bucket) ?? new Set<string>();
      set.add(cleanPrefix(s.prefix));
      byBucket.set(s.bucket, set);
    }
    const objectArns: string[] = [];
    let n = 0;
    for (const [bucket, prefixes] of byBucket) {
      const whole = prefixes.has("");
      const list = whole ? [""] : [...prefixes].sort();
      for (const p of list) objectArns.push(s3Arn(`${bucket}/${p}*`));
      // ListBucket scoped by s3:prefix: the function can list only under its prefixes. (Listing
      // also turns a missing key's 403 into the 404 that onMissing needs.)
      this.role.addToPolicy(
        new iam.PolicyStatement({
          sid: `ListSource${n++}`,
          actions: ["s3:ListBucket"],
          resources: [s3Arn(bucket)],
          ...(whole ? {} : { conditions: { StringLike: { "s3:prefix": list.map((p) => `${p}*`) } } }),
        }),
      );
    }
    this.role.addToPolicy(
      new iam.PolicyStatement({ sid: "ReadSources", actions: ["s3:GetObject", "s3:GetObjectVersion"], resources: objectArns }),
    );
    // PutObject covers CreateMultipartUpload, UploadPart and CompleteMultipartUpload;
    // AbortMultipartUpload removes a failed job's upload.
    const writeActions = ["s3:PutObject", "s3:AbortMultipartUpload", "s3:ListMultipartUploadParts"];
    if (props.allowTags) writeActions.push("s3:PutObjectTagging");
    this.role.addToPolicy(
      new iam.PolicyStatement({
        sid: "WriteArchives",
        actions: writeActions,
        resources: [`${this.destinationBucket.bucketArn}/${destPrefix}*`],
      }),
    );
    // A job stopped while its archive was being completed deletes the object it just wrote
    // (DeleteObject, or DeleteObjectVersion with the VersionId it got on a versioned bucket);
    // without these the archive would stay and the job could only report it. Same prefix only.
    this.role.addToPolicy(
      new iam.PolicyStatement({
        sid: "RemoveFailedArchives",
        actions: ["s3:DeleteObject", "s3:DeleteObjectVersion"],
        resources: [`${this.destinationBucket.bucketArn}/${destPrefix}*`],
      }),
    );
    if (props.destinationKmsKeyArn) {
      // Multipart uploads with SSE-KMS need Decrypt as well as GenerateDataKey.
      this.role.addToPolicy(
        new iam.PolicyStatement({ sid: "DestinationKms", actions: ["kms:GenerateDataKey", "kms:Decrypt"], resources: [props.destinationKmsKeyArn] }),
      );
    }

    // ---- Logs: the function's own group, written through the role only.
    const logGroup = new logs.LogGroup(this, "Logs", {
      retention: props.logRetention ?? logs.RetentionDays.ONE_MONTH,
      removalPolicy: RemovalPolicy.DESTROY,
    });
    this.role.addToPolicy(
      new iam.PolicyStatement({ sid: "WriteLogs", actions: ["logs:CreateLogStream", "logs:PutLogEvents"], resources: [`${logGroup.logGroupArn}`] }),
    );

    // ---- Password secret, read by the function at run time. Its value never enters the
    // function's configuration (which lambda:GetFunctionConfiguration would reveal): the
    // environment holds only the name events use and the secret's id.
    const passwordEnv = props.passwordEnv ?? "ZIPSTREAM_PASSWORD";
    if (!/^(?!AWS_|_)[A-Za-z_][A-Za-z0-9_]*$/.test(passwordEnv)) {
      throw new Error(`ZipstreamStack: passwordEnv must be a name like ZIPSTREAM_PASSWORD (not AWS_* or _*), got "${passwordEnv}"`);
    }
    const environment: Record<string, string> = { NODE_OPTIONS: "--enable-source-maps" };
    this.functionEnvironment = environment;
    const owners = props.expectedBucketOwner;
    if (owners !== undefined) {
      environment.ZIPSTREAM_EXPECTED_BUCKET_OWNER = typeof owners === "string" ? owners : Object.entries(owners).map(([b, id]) => `${b}=${id}`).join(",");
    }
    let secret: secretsmanager.ISecret | undefined;
    let secretId: string | undefined;
    if (props.passwordSecret?.name) {
      secret = secretsmanager.Secret.fromSecretNameV2(this, "PasswordSecret", props.passwordSecret.name);
      secretId = props.passwordSecret.name;
    } else if (props.passwordSecret?.create) {
      secret = new secretsmanager.Secret(this, "PasswordSecret", {
        description: "zipstream archive password (AES-256, WinZip AE-2)",
        generateSecretString: { passwordLength: 32, excludePunctuation: true },
      });
      secretId = secret.secretArn;
    }
    if (secret && secretId) {
      environment.ZIPSTREAM_PASSWORDS = `${passwordEnv}=${secretId}`;
      // An imported name has no full ARN: match the 6 random characters Secrets Manager appends.
      const arn = secret.secretFullArn ?? `${secret.secretArn}-??????`;
      this.role.addToPolicy(new iam.PolicyStatement({ sid: "ReadPasswordSecret", actions: ["secretsmanager:GetSecretValue"], resources: [arn] }));
    }

    const runtime = props.runtime === "nodejs24.x" ? lambda.Runtime.NODEJS_24_X : lambda.Runtime.NODEJS_22_X;
    this.function = new lambda.Function(this, "Function", {
      description: "zipstream: zip S3 objects into one archive in S3",
      runtime,
      architecture: lambda.Architecture.ARM_64,
      handler: "index.handler",
      code: lambda.Code.fromAsset(props.codePath),
      memorySize,
      timeout: Duration.seconds(timeoutSeconds),
      role: this.role,
      logGroup,
      environment,
      // A timed-out or failed job is reported with its error; re-running a multi-gigabyte job
      // automatically is the caller's decision (S3 calls are already retried inside).
      retryAttempts: 0,
    });

    new CfnOutput(this, "FunctionName", { value: this.function.functionName });
    new CfnOutput(this, "DestinationBucketName", { value: this.destinationBucket.bucketName });
    if (secret) new CfnOutput(this, "PasswordSecretArn", { value: secret.secretArn });
  }
}
