import { Aws, Duration } from "aws-cdk-lib";
import * as iam from "aws-cdk-lib/aws-iam";
import * as lambda from "aws-cdk-lib/aws-lambda";
import * as sfn from "aws-cdk-lib/aws-stepfunctions";
import { Construct } from "constructs";
import { cleanPrefix, type ZipstreamStack } from "./zipstream-stack.js";

/** Lambda ARNs of the four distributed handlers. */
export interface DistributedArns {
  plan: string;
  segment: string;
  finalize: string;
  abort: string;
}

/**
 * Errors worth another attempt, with exponential backoff and jitter: Lambda throttling and
 * service faults, and the library's S3 failures after its own retries (S3 `SlowDown` and 503s
 * end there: `mapS3Error` maps them to ERR_S3_UPLOAD / ERR_S3_READ). A segment or a finalize
 * rerun is idempotent (same parts, same bytes), so retrying them is safe.
 */
const RETRYABLE = ["Lambda.TooManyRequestsException", "Lambda.ServiceException", "Lambda.SdkClientException", "Lambda.AWSLambdaException", "ERR_S3_UPLOAD", "ERR_S3_READ"];
const retry = (extra: string[] = []) => [
  { ErrorEquals: [...RETRYABLE, ...extra], IntervalSeconds: 2, BackoffRate: 2, MaxAttempts: 6, MaxDelaySeconds: 60, JitterStrategy: "FULL" },
];

/**
 * The state machine in Amazon States Language: Plan → a Distributed Map over the plan's segment
 * indexes (each item `{ plan, segment, passwordEnv }`, never the members) → Finalize; a failure
 * of the Map or of Finalize runs Abort (upload aborted once, plan files removed) and fails the
 * execution. A failed Plan cleans up after itself and just fails.
 */
export function distributedDefinition(arns: DistributedArns, maxConcurrency: number): Record<string, unknown> {
  if (!Number.isInteger(maxConcurrency) || maxConcurrency < 1 || maxConcurrency > 10_000) {
    throw new Error(`maxConcurrency must be an integer from 1 to 10000, got ${maxConcurrency}`);
  }
  const toAbort = [{ ErrorEquals: ["States.ALL"], ResultPath: "$.error", Next: "Abort" }];
  return {
    Comment: "zipstream: one archive from many workers (docs/distributed.md)",
    StartAt: "Plan",
    States: {
      Plan: { Type: "Task", Resource: arns.plan, ResultPath: "$.planned", Retry: retry(), Next: "Segments" },
      Segments: {
        Type: "Map",
        ItemsPath: "$.planned.segments",
        ItemSelector: { "plan.$": "$.planned.plan", "segment.$": "$$.Map.Item.Value", "passwordEnv.$": "$.planned.passwordEnv" },
        MaxConcurrency: maxConcurrency,
        ItemProcessor: {
          ProcessorConfig: { Mode: "DISTRIBUTED", ExecutionType: "STANDARD" },
          StartAt: "Segment",
          States: { Segment: { Type: "Task", Resource: arns.segment, Retry: retry(["ERR_TIMEOUT"]), End: true } },
        },
        ResultPath: null,
        Catch: toAbort,
        Next: "Finalize",
      },
      Finalize: { Type: "Task", Resource: arns.finalize, Parameters: { "plan.$": "$.planned.plan" }, Retry: retry(["ERR_TIMEOUT"]), Catch: toAbort, End: true },
      Abort: { Type: "Task", Resource: arns.abort, Parameters: { "plan.$": "$.planned.plan" }, ResultPath: "$.aborted", Retry: retry(), Next: "Failed" },
      Failed: { Type: "Fail", Error: "ZipstreamArchiveFailed", Cause: "a segment or the finalizer failed; the archive was abandoned (upload aborted, plan removed)" },
    },
  };
}

export interface ZipstreamStateMachineProps {
  /** The bundle directory (the same as the stack's function). */
  codePath: string;
  /** Segments running at once. Default: CDK context `maxConcurrency`, else 40. */
  maxConcurrency?: number;
  /** Key prefix of the plans in the destination bucket. Default: the whole destination prefix. */
  planPrefix?: string;
  /** Memory of the plan and finalize functions (they hold the member list): default 3008 MB. */
  coordinatorMemorySize?: number;
  /** Memory of a segment function: default 2048 MB. */
  segmentMemorySize?: number;
}

/**
 * The four handlers of the bundle as functions sharing the stack's role (extended to the plan
 * prefix), and the Step Functions state machine that runs them.
 */
export class ZipstreamStateMachine extends Construct {
  readonly stateMachine: sfn.StateMachine;
  readonly functions: Record<keyof DistributedArns, lambda.Function>;

  constructor(stack: ZipstreamStack, id: string, props: ZipstreamStateMachineProps) {
    super(stack, id);
    const ctx = this.node.tryGetContext("maxConcurrency");
    const maxConcurrency = props.maxConcurrency ?? (ctx === undefined ? 40 : Number(ctx));
    // A folder, as the stack's prefixes: "plans" must not grant "plans-private/...".
    const planPrefix = cleanPrefix(props.planPrefix);
    const code = lambda.Code.fromAsset(props.codePath);
    const fn = (name: keyof DistributedArns, handler: string, memorySize: number) =>
      new lambda.Function(this, `${name[0]!.toUpperCase()}${name.slice(1)}Function`, {
        description: `zipstream distributed: ${name}`,
        runtime: lambda.Runtime.NODEJS_22_X,
        architecture: lambda.Architecture.ARM_64,
        handler: `index.${handler}`,
        code,
        memorySize,
        timeout: Duration.minutes(15),
        role: stack.role,
        // The same password names and bucket-owner condition as the single function.
        environment: { ...stack.functionEnvironment },
        // The state machine retries (with backoff), not Lambda's async machinery.
        retryAttempts: 0,
      });
    this.functions = {
      plan: fn("plan", "planHandler", props.coordinatorMemorySize ?? 3008),
      segment: fn("segment", "segmentHandler", props.segmentMemorySize ?? 2048),
      finalize: fn("finalize", "finalizeHandler", props.coordinatorMemorySize ?? 3008),
      abort: fn("abort", "abortHandler", 512),
    };
    // The plan's files: the manifest and everything under "<manifest>.d/" (segments, results,
    // compress-mode temporary objects), read, written and removed by these functions only.
    const bucket = stack.destinationBucket;
    stack.role.addToPolicy(
      new iam.PolicyStatement({ sid: "PlanFiles", actions: ["s3:GetObject", "s3:PutObject", "s3:DeleteObject"], resources: [`${bucket.bucketArn}/${planPrefix}*`] }),
    );
    stack.role.addToPolicy(
      new iam.PolicyStatement({
        sid: "ListPlanFiles",
        actions: ["s3:ListBucket"],
        resources: [bucket.bucketArn],
        conditions: { StringLike: { "s3:prefix": [`${planPrefix}*`] } },
      }),
    );
    const definition = distributedDefinition(
      { plan: this.functions.plan.functionArn, segment: this.functions.segment.functionArn, finalize: this.functions.finalize.functionArn, abort: this.functions.abort.functionArn },
      maxConcurrency,
    );
    this.stateMachine = new sfn.StateMachine(this, "StateMachine", {
      definitionBody: sfn.DefinitionBody.fromString(JSON.stringify(definition)),
      timeout: Duration.hours(24),
    });
    for (const f of Object.values(this.functions)) f.grantInvoke(this.stateMachine);
    // A Distributed Map runs its items as child executions of this state machine (its own ARN
    // would be a circular reference here: scoped to this account and region instead).
    const states = `arn:${Aws.PARTITION}:states:${Aws.REGION}:${Aws.ACCOUNT_ID}`;
    this.stateMachine.addToRolePolicy(new iam.PolicyStatement({ actions: ["states:StartExecution"], resources: [`${states}:stateMachine:*`] }));
    this.stateMachine.addToRolePolicy(new iam.PolicyStatement({ actions: ["states:DescribeExecution", "states:StopExecution"], resources: [`${states}:execution:*`] }));
  }
}
