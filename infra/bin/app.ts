/**
 * CDK app: `node dist/bin/app.js -c key=value ...` (after `tsc -p tsconfig.build.json`), or through
 * the CDK CLI with `cdk.json` (`npx aws-cdk@2 deploy -c key=value ...`). Context keys:
 *
 *   sources          comma-separated bucket[/prefix] the function may read (required)
 *   destBucket       destination bucket name (default: a new bucket with a generated name)
 *   importDestBucket "true": destBucket already exists, import it instead of creating it
 *   destPrefix       key prefix the function may write under (default: the whole bucket)
 *   memorySize       MB, default 2048          timeoutSeconds  default 900
 *   runtime          nodejs22.x (default) | nodejs24.x
 *   abortIncompleteUploadsAfterDays  default 1
 *   allowTags        "true" to allow s3:PutObjectTagging
 *   destKmsKeyArn    KMS key for SSE-KMS on the destination
 *   passwordSecretName  existing Secrets Manager secret holding the archive password
 *   createPasswordSecret "true" to create one;   passwordEnv  default ZIPSTREAM_PASSWORD
 *   expectedBucketOwner  account ID every bucket must belong to, or bucket=ID,bucket=ID
 *   codePath         bundle directory (default ../packages/lambda/dist-bundle)
 *   stackName        default Zipstream
 */
import { App } from "aws-cdk-lib";
import { existsSync } from "node:fs";
import { fileURLToPath } from "node:url";
import { resolve } from "node:path";
import { ZipstreamStack, type SourceLocation, type ZipstreamStackProps } from "../lib/zipstream-stack.js";
import { ZipstreamStateMachine } from "../lib/distributed.js";

/** `-c key=value` / `--context key=value` pairs, so plain `node` can synthesize like the CDK CLI. */
export function contextFromArgv(argv: readonly string[]): Record<string, string> {
  const out: Record<string, string> = {};
  for (let i = 0; i < argv.length; i++) {
    if ((argv[i] === "-c" || argv[i] === "--context") && argv[i + 1]) {
      const [k, ...v] = argv[++i]!.split("=");
      out[k!] = v.join("=");
    }
  }
  return out;
}

/** Reads the stack's props from CDK context (strings from the command line, or JSON values). */
export function propsFromContext(get: (key: string) => unknown, defaultCodePath: string): ZipstreamStackProps {
  const str = (k: string) => {
    const v = get(k);
    return v === undefined || v === null || v === "" ? undefined : String(v);
  };
  const num = (k: string) => {
    const v = str(k);
    if (v === undefined) return undefined;
    const n = Number(v);
    if (!Number.isFinite(n)) throw new Error(`context ${k} must be a number, got "${v}"`);
    return n;
  };
  const bool = (k: string) => str(k) === "true";
  const sourcesText = str("sources");
  if (!sourcesText) throw new Error("context 'sources' is required, e.g. -c sources=my-bucket/exports/,other-bucket");
  const sources: SourceLocation[] = sourcesText
    .split(",")
    .map((s) => s.trim())
    .filter(Boolean)
    .map((s) => {
      const slash = s.indexOf("/");
      return slash < 0 ? { bucket: s } : { bucket: s.slice(0, slash), prefix: s.slice(slash + 1) };
    });
  const runtime = str("runtime");
  if (runtime !== undefined && runtime !== "nodejs22.x" && runtime !== "nodejs24.x") {
    throw new Error(`context runtime must be nodejs22.x or nodejs24.x, got "${runtime}"`);
  }
  const destBucket = str("destBucket");
  const passwordSecretName = str("passwordSecretName");
  const opt = <T>(v: T | undefined, k: string) => (v === undefined ? {} : { [k]: v });
  return {
    codePath: str("codePath") ?? defaultCodePath,
    sources,
    destination: { ...opt(destBucket, "bucketName"), create: !bool("importDestBucket"), ...opt(str("destPrefix"), "prefix") },
    ...opt(num("memorySize"), "memorySize"),
    ...opt(num("timeoutSeconds"), "timeoutSeconds"),
    ...opt(runtime as ZipstreamStackProps["runtime"], "runtime"),
    ...opt(num("abortIncompleteUploadsAfterDays"), "abortIncompleteUploadsAfterDays"),
    allowTags: bool("allowTags"),
    ...opt(str("destKmsKeyArn"), "destinationKmsKeyArn"),
    ...(passwordSecretName ? { passwordSecret: { name: passwordSecretName } } : bool("createPasswordSecret") ? { passwordSecret: { create: true } } : {}),
    ...opt(str("passwordEnv"), "passwordEnv"),
    ...opt(owners(str("expectedBucketOwner")), "expectedBucketOwner"),
  };
}

/** `ID` for every bucket, or `bucket=ID,bucket=ID`. */
function owners(v: string | undefined): ZipstreamStackProps["expectedBucketOwner"] {
  if (v === undefined || !v.includes("=")) return v;
  return Object.fromEntries(v.split(",").map((t) => t.trim().split("=") as [string, string]));
}

function main(): void {
  const here = fileURLToPath(new URL(".", import.meta.url));
  // dist/bin/app.js (compiled) → infra/; bin/app.ts (vitest) → infra/.
  const infraDir = resolve(here, here.includes(`${"/dist/"}`) ? "../.." : "..");
  const app = new App({ context: contextFromArgv(process.argv.slice(2)), outdir: process.env.CDK_OUTDIR ?? resolve(infraDir, "cdk.out") });
  const props = propsFromContext((k) => app.node.tryGetContext(k), resolve(infraDir, "../packages/lambda/dist-bundle"));
  if (!existsSync(resolve(props.codePath, "index.mjs"))) {
    throw new Error(`no Lambda bundle at ${props.codePath}/index.mjs: run \`pnpm --filter @zipstream/lambda run bundle\` first`);
  }
  const stack = new ZipstreamStack(app, String(app.node.tryGetContext("stackName") ?? "Zipstream"), {
    ...props,
    env: { account: process.env.CDK_DEFAULT_ACCOUNT, region: process.env.CDK_DEFAULT_REGION },
  });
  // -c distributed=true: the Step Functions state machine of docs/distributed.md (MaxConcurrency
  // from -c maxConcurrency=N, plans under -c planPrefix=...).
  if (String(app.node.tryGetContext("distributed")) === "true") {
    const planPrefix = app.node.tryGetContext("planPrefix");
    new ZipstreamStateMachine(stack, "Distributed", { codePath: props.codePath, ...(planPrefix ? { planPrefix: String(planPrefix) } : {}) });
  }
  const assembly = app.synth();
  process.stderr.write(`synthesized ${assembly.stacks.map((s) => s.templateFile).join(", ")} into ${assembly.directory}\n`);
}

if (process.argv[1] && resolve(process.argv[1]) === fileURLToPath(import.meta.url)) main();
