import { App } from "aws-cdk-lib";
import { Match, Template } from "aws-cdk-lib/assertions";
import { mkdtempSync, writeFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { contextFromArgv, propsFromContext } from "../bin/app.js";
import { ZipstreamStack, type ZipstreamStackProps } from "../lib/zipstream-stack.js";

// A stand-in bundle: synthesis only hashes and stages the directory, so the test needs neither
// the real bundle nor an AWS account.
let codePath: string;
let outdir: string;
beforeAll(() => {
  codePath = mkdtempSync(join(tmpdir(), "zipstream-infra-code-"));
  writeFileSync(join(codePath, "index.mjs"), "export const handler = async () => ({});\n");
  outdir = mkdtempSync(join(tmpdir(), "zipstream-infra-out-"));
});
afterAll(() => {
  rmSync(codePath, { recursive: true, force: true });
  rmSync(outdir, { recursive: true, force: true });
});

let defaults: ReturnType<typeof synth> | undefined;
/** The default configuration (with a destination prefix), synthesized once for several tests. */
function synthDefaults() {
  defaults ??= synth({ destination: { prefix: "archives/" } });
  return defaults;
}

function synth(props: Partial<ZipstreamStackProps> = {}) {
  // No construct stack traces or tree metadata: they cost most of the synthesis time and the
  // assertions do not read them.
  const app = new App({ outdir, stackTraces: false, treeMetadata: false });
  const stack = new ZipstreamStack(app, "Test", {
    codePath,
    sources: [{ bucket: "src-a", prefix: "exports/" }, { bucket: "src-b" }, { bucket: "src-a", prefix: "more/" }],
    ...props,
  });
  return { stack, template: Template.fromStack(stack) };
}

/** `arn:${AWS::Partition}:s3:::<path>` as CloudFormation renders it. */
const s3Arn = (path: string) => ({ "Fn::Join": ["", ["arn:", { Ref: "AWS::Partition" }, `:s3:::${path}`]] });

type Statement = { Sid?: string; Effect: string; Action: string | string[]; Resource: unknown; Condition?: unknown };
function roleStatements(template: Template): Statement[] {
  const policies = template.findResources("AWS::IAM::Policy");
  return Object.values(policies).flatMap((p) => (p as { Properties: { PolicyDocument: { Statement: Statement[] } } }).Properties.PolicyDocument.Statement);
}

describe("ZipstreamStack", () => {
  it("deploys the bundle on Node.js 22, arm64, with the default 2048 MB and 15 minutes", () => {
    const { template } = synthDefaults();
    template.resourceCountIs("AWS::Lambda::Function", 1);
    template.hasResourceProperties("AWS::Lambda::Function", {
      Runtime: "nodejs22.x",
      Architectures: ["arm64"],
      Handler: "index.handler",
      MemorySize: 2048,
      Timeout: 900,
      Environment: { Variables: { NODE_OPTIONS: "--enable-source-maps" } },
    });
    template.hasResourceProperties("AWS::Lambda::EventInvokeConfig", { MaximumRetryAttempts: 0 });
  });

  it("rejects out-of-range memory and timeout", () => {
    expect(() => synth({ memorySize: 64 })).toThrow(/memorySize/);
    expect(() => synth({ timeoutSeconds: 901 })).toThrow(/timeoutSeconds/);
    expect(() => synth({ sources: [] })).toThrow(/source/);
    expect(() => synth({ sources: [{ bucket: "b", prefix: "a*" }] })).toThrow(/literal/);
  });

  it("grants exactly the least-privilege statements, no wildcard actions or resources", () => {
    const { stack, template } = synthDefaults();
    const destLogical = stack.getLogicalId(stack.destinationBucket.node.defaultChild as never);
    const statements = roleStatements(template);
    expect(statements).toEqual([
      {
        Sid: "ListSource0",
        Effect: "Allow",
        Action: "s3:ListBucket",
        Resource: s3Arn("src-a"),
        Condition: { StringLike: { "s3:prefix": ["exports/*", "more/*"] } },
      },
      // A source without prefix is the whole bucket: listing needs no condition.
      { Sid: "ListSource1", Effect: "Allow", Action: "s3:ListBucket", Resource: s3Arn("src-b") },
      {
        Sid: "ReadSources",
        Effect: "Allow",
        Action: ["s3:GetObject", "s3:GetObjectVersion"],
        Resource: [s3Arn("src-a/exports/*"), s3Arn("src-a/more/*"), s3Arn("src-b/*")],
      },
      {
        Sid: "WriteArchives",
        Effect: "Allow",
        Action: ["s3:PutObject", "s3:AbortMultipartUpload", "s3:ListMultipartUploadParts"],
        Resource: { "Fn::Join": ["", [{ "Fn::GetAtt": [destLogical, "Arn"] }, "/archives/*"]] },
      },
      {
        Sid: "RemoveFailedArchives",
        Effect: "Allow",
        Action: ["s3:DeleteObject", "s3:DeleteObjectVersion"],
        Resource: { "Fn::Join": ["", [{ "Fn::GetAtt": [destLogical, "Arn"] }, "/archives/*"]] },
      },
      {
        Sid: "WriteLogs",
        Effect: "Allow",
        Action: ["logs:CreateLogStream", "logs:PutLogEvents"],
        Resource: { "Fn::GetAtt": [expect.stringMatching(/^Logs/), "Arn"] },
      },
    ]);

    // Nothing broad anywhere in the role's policies, and no managed policy (which would grant logs on "*").
    const text = JSON.stringify(statements);
    expect(text).not.toMatch(/"s3:\*"|"\*"|"logs:\*"/);
    for (const s of statements) {
      expect(s.Effect).toBe("Allow");
      for (const a of [s.Action].flat()) expect(a).not.toMatch(/\*/);
    }
    const roles = template.findResources("AWS::IAM::Role");
    expect(Object.keys(roles)).toHaveLength(1);
    const role = Object.values(roles)[0] as { Properties: Record<string, unknown> };
    expect(role.Properties.ManagedPolicyArns).toBeUndefined();
    expect(role.Properties.AssumeRolePolicyDocument).toEqual({
      Version: "2012-10-17",
      Statement: [{ Action: "sts:AssumeRole", Effect: "Allow", Principal: { Service: "lambda.amazonaws.com" } }],
    });
  });

  it("adds tagging and KMS only when asked", () => {
    const { template } = synth({ allowTags: true, destinationKmsKeyArn: "arn:aws:kms:eu-west-1:111122223333:key/abc" });
    const statements = roleStatements(template);
    expect(statements.find((s) => s.Sid === "WriteArchives")!.Action).toEqual([
      "s3:PutObject",
      "s3:AbortMultipartUpload",
      "s3:ListMultipartUploadParts",
      "s3:PutObjectTagging",
    ]);
    expect(statements.find((s) => s.Sid === "DestinationKms")).toEqual({
      Sid: "DestinationKms",
      Effect: "Allow",
      Action: ["kms:GenerateDataKey", "kms:Decrypt"],
      Resource: "arn:aws:kms:eu-west-1:111122223333:key/abc",
    });
  });

  it("creates a private destination bucket whose lifecycle rule aborts incomplete multipart uploads", () => {
    const { template } = synth({ abortIncompleteUploadsAfterDays: 3, memorySize: 4096, timeoutSeconds: 300, runtime: "nodejs24.x" });
    // Memory, timeout and runtime are parameters too.
    template.hasResourceProperties("AWS::Lambda::Function", { Runtime: "nodejs24.x", MemorySize: 4096, Timeout: 300 });
    template.resourceCountIs("AWS::S3::Bucket", 1);
    template.hasResourceProperties("AWS::S3::Bucket", {
      LifecycleConfiguration: {
        Rules: [{ Id: "abort-incomplete-multipart-uploads", Status: "Enabled", AbortIncompleteMultipartUpload: { DaysAfterInitiation: 3 } }],
      },
      PublicAccessBlockConfiguration: { BlockPublicAcls: true, BlockPublicPolicy: true, IgnorePublicAcls: true, RestrictPublicBuckets: true },
    });
    template.hasResource("AWS::S3::Bucket", { DeletionPolicy: "Retain" });
  });

  it("imports an existing destination bucket by name and scopes writes to it", () => {
    const { template } = synth({ destination: { bucketName: "existing-dest", create: false } });
    template.resourceCountIs("AWS::S3::Bucket", 0);
    const write = roleStatements(template).find((s) => s.Sid === "WriteArchives")!;
    expect(write.Resource).toEqual(s3Arn("existing-dest/*"));
  });

  it("reads the password secret at run time: no value in the configuration, GetSecretValue on that secret only", () => {
    const { stack, template } = synth({ passwordSecret: { create: true } });
    template.resourceCountIs("AWS::SecretsManager::Secret", 1);
    const secretLogical = Object.keys(template.findResources("AWS::SecretsManager::Secret"))[0]!;
    const fn = Object.values(template.findResources("AWS::Lambda::Function"))[0] as {
      Properties: { Environment: { Variables: Record<string, unknown> } };
    };
    const vars = fn.Properties.Environment.Variables;
    // No dynamic reference anywhere: lambda:GetFunctionConfiguration must not reveal the password.
    expect(JSON.stringify(vars)).not.toContain("resolve:secretsmanager");
    expect(vars.ZIPSTREAM_PASSWORD).toBeUndefined();
    expect(vars.ZIPSTREAM_PASSWORDS).toEqual({ "Fn::Join": ["", ["ZIPSTREAM_PASSWORD=", { Ref: secretLogical }]] });
    const read = roleStatements(template).filter((s) => JSON.stringify(s).includes("secretsmanager"));
    expect(read).toEqual([{ Sid: "ReadPasswordSecret", Effect: "Allow", Action: "secretsmanager:GetSecretValue", Resource: { Ref: secretLogical } }]);
    expect(stack.role).toBeDefined();

    const imported = synth({ passwordSecret: { name: "prod/zip-password" }, passwordEnv: "ZIP_PW" }).template;
    imported.resourceCountIs("AWS::SecretsManager::Secret", 0);
    const importedFn = Object.values(imported.findResources("AWS::Lambda::Function"))[0] as {
      Properties: { Environment: { Variables: Record<string, unknown> } };
    };
    expect(importedFn.Properties.Environment.Variables.ZIPSTREAM_PASSWORDS).toBe("ZIP_PW=prod/zip-password");
    expect(importedFn.Properties.Environment.Variables.ZIP_PW).toBeUndefined();
    const importedRead = roleStatements(imported).find((s) => s.Sid === "ReadPasswordSecret")!;
    // The partial ARN of a secret named "prod/zip-password" (Secrets Manager appends 6 random characters).
    expect(JSON.stringify(importedRead.Resource)).toMatch(/secret:prod\/zip-password-\?\?\?\?\?\?/);
    expect(importedRead.Action).toBe("secretsmanager:GetSecretValue");
    expect(() => synth({ passwordSecret: { create: true }, passwordEnv: "AWS_SECRET_ACCESS_KEY" })).toThrow(/passwordEnv/);
  });

  it("scopes prefixes as folders: a source prefix \"exports\" grants exports/*, never exports-private/*", () => {
    const { stack, template } = synth({ sources: [{ bucket: "src-a", prefix: "exports" }], destination: { prefix: "archives" } });
    const statements = roleStatements(template);
    expect(statements.find((s) => s.Sid === "ReadSources")!.Resource).toEqual(s3Arn("src-a/exports/*"));
    expect(statements.find((s) => s.Sid === "ListSource0")!.Condition).toEqual({ StringLike: { "s3:prefix": ["exports/*"] } });
    const destLogical = stack.getLogicalId(stack.destinationBucket.node.defaultChild as never);
    for (const sid of ["WriteArchives", "RemoveFailedArchives"]) {
      expect(statements.find((s) => s.Sid === sid)!.Resource).toEqual({ "Fn::Join": ["", [{ "Fn::GetAtt": [destLogical, "Arn"] }, "/archives/*"]] });
    }
    expect(JSON.stringify(statements)).not.toMatch(/exports\*|archives\*/);
  });

  it("lets the role remove what a failed job wrote, on the destination prefix only", () => {
    const { template } = synth({ destination: { bucketName: "existing-dest", create: false, prefix: "out/" } });
    const statements = roleStatements(template);
    expect(statements.find((s) => s.Sid === "RemoveFailedArchives")).toEqual({
      Sid: "RemoveFailedArchives",
      Effect: "Allow",
      Action: ["s3:DeleteObject", "s3:DeleteObjectVersion"],
      Resource: s3Arn("existing-dest/out/*"),
    });
    expect(statements.find((s) => s.Sid === "WriteArchives")!.Action).toContain("s3:AbortMultipartUpload");
  });

  it("puts the bucket-owner condition in the environment, for one account or per bucket", () => {
    const vars = (props: Record<string, unknown>) =>
      (Object.values(synth(props).template.findResources("AWS::Lambda::Function"))[0] as { Properties: { Environment: { Variables: Record<string, unknown> } } }).Properties.Environment.Variables;
    expect(vars({}).ZIPSTREAM_EXPECTED_BUCKET_OWNER).toBeUndefined();
    expect(vars({ expectedBucketOwner: "111122223333" }).ZIPSTREAM_EXPECTED_BUCKET_OWNER).toBe("111122223333");
    expect(vars({ expectedBucketOwner: { "src-bucket": "111122223333", "out-bucket": "444455556666" } }).ZIPSTREAM_EXPECTED_BUCKET_OWNER).toBe("src-bucket=111122223333,out-bucket=444455556666");
  });

  it("has no secret and no password variable by default", () => {
    const { template } = synthDefaults();
    template.resourceCountIs("AWS::SecretsManager::Secret", 0);
    template.hasResourceProperties("AWS::Lambda::Function", {
      Environment: { Variables: Match.not(Match.objectLike({ ZIPSTREAM_PASSWORD: Match.anyValue() })) },
    });
  });
});

describe("app context", () => {
  it("parses -c pairs and sources into props", () => {
    const ctx = contextFromArgv(["-c", "sources=a/x/,b", "--context", "memorySize=1024", "-c", "destPrefix=out/", "-c", "createPasswordSecret=true"]);
    const props = propsFromContext((k) => ctx[k], "/bundle");
    expect(props).toMatchObject({
      codePath: "/bundle",
      sources: [{ bucket: "a", prefix: "x/" }, { bucket: "b" }],
      memorySize: 1024,
      destination: { create: true, prefix: "out/" },
      passwordSecret: { create: true },
    });
    expect(propsFromContext((k) => ({ sources: "a", expectedBucketOwner: "111122223333" })[k], "/bundle").expectedBucketOwner).toBe("111122223333");
    expect(propsFromContext((k) => ({ sources: "a", expectedBucketOwner: "a=111122223333, out=444455556666" })[k], "/bundle").expectedBucketOwner).toEqual({ a: "111122223333", out: "444455556666" });
    expect(() => propsFromContext(() => undefined, "/bundle")).toThrow(/sources/);
    expect(() => propsFromContext((k) => ({ sources: "a", memorySize: "lots" })[k], "/bundle")).toThrow(/memorySize/);
  });
});
