/**
 * The distributed state machine: synthesized (least-privilege IAM on the plan prefix,
 * MaxConcurrency from CDK context), its ASL checked by asl-validator, and executed by a real ASL
 * interpreter (aws-local-stepfunctions) with the Lambda tasks bound to the real handlers of
 * @zipstream/lambda running against the local S3 gateway: a run that writes the archive, and a
 * run whose segment keeps failing, which goes through Abort and leaves nothing.
 */
import { App } from "aws-cdk-lib";
import { Match, Template } from "aws-cdk-lib/assertions";
import aslValidator from "asl-validator";
import { StateMachine } from "aws-local-stepfunctions";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createDistributedHandlers } from "../../packages/lambda/dist/index.js";
import { getTestS3, type TestS3 } from "../../test/testkit/src/index.js";
import { distributedDefinition, ZipstreamStateMachine } from "../lib/distributed.js";
import { ZipstreamStack } from "../lib/zipstream-stack.js";

// aws-local-stepfunctions 3 targets Node >= 22 and calls Promise.withResolvers (added in Node 22);
// this suite runs on the machine's Node 20, so that one function is supplied here.
(Promise as unknown as { withResolvers?: unknown }).withResolvers ??= function withResolvers<T>() {
  let resolve!: (v: T) => void;
  let reject!: (e: unknown) => void;
  const promise = new Promise<T>((a, b) => {
    resolve = a;
    reject = b;
  });
  return { promise, resolve, reject };
};

const FAKE = {
  plan: "arn:aws:lambda:us-east-1:123456789012:function:zs-plan",
  segment: "arn:aws:lambda:us-east-1:123456789012:function:zs-segment",
  finalize: "arn:aws:lambda:us-east-1:123456789012:function:zs-finalize",
  abort: "arn:aws:lambda:us-east-1:123456789012:function:zs-abort",
};

let codePath: string;
beforeAll(() => {
  codePath = mkdtempSync(join(tmpdir(), "zipstream-infra-sfn-"));
  writeFileSync(join(codePath, "index.mjs"), "export const handler = async () => ({});\n");
});
afterAll(() => rmSync(codePath, { recursive: true, force: true }));

describe("state machine (synth)", () => {
  it("four handlers of one bundle, MaxConcurrency from context, IAM extended to the plan prefix only", () => {
    const app = new App({ context: { maxConcurrency: 7 } });
    const stack = new ZipstreamStack(app, "Dist", { codePath, sources: [{ bucket: "src-bucket", prefix: "in/" }], destination: { bucketName: "dest-bucket", create: false, prefix: "out/" } });
    new ZipstreamStateMachine(stack, "Distributed", { codePath, planPrefix: "plans/" });
    const t = Template.fromStack(stack);
    for (const h of ["planHandler", "segmentHandler", "finalizeHandler", "abortHandler"]) t.hasResourceProperties("AWS::Lambda::Function", { Handler: `index.${h}` });
    t.resourceCountIs("AWS::StepFunctions::StateMachine", 1);
    const sm = t.findResources("AWS::StepFunctions::StateMachine");
    const body = JSON.stringify(Object.values(sm)[0]!.Properties.DefinitionString);
    expect(body).toContain('\\"MaxConcurrency\\":7');
    expect(body).toContain('\\"Mode\\":\\"DISTRIBUTED\\"');
    t.hasResourceProperties("AWS::IAM::Policy", {
      PolicyDocument: {
        Statement: Match.arrayWith([
          Match.objectLike({ Sid: "PlanFiles", Action: ["s3:GetObject", "s3:PutObject", "s3:DeleteObject"], Resource: Match.anyValue() }),
          Match.objectLike({ Sid: "ListPlanFiles", Action: "s3:ListBucket", Condition: { StringLike: { "s3:prefix": ["plans/*"] } } }),
        ]),
      },
    });
    const statements = Object.values(t.findResources("AWS::IAM::Policy")).flatMap((p) => p.Properties.PolicyDocument.Statement as { Sid?: string; Resource: unknown }[]);
    expect(JSON.stringify(statements.find((st) => st.Sid === "PlanFiles")!.Resource)).toContain("/plans/*");
    expect(() => distributedDefinition(FAKE, 0)).toThrow(/maxConcurrency/);
  });

  it("a plan prefix is a folder: \"plans\" grants plans/*, never plans-private/*", () => {
    const stack = new ZipstreamStack(new App(), "DistPrefix", { codePath, sources: [{ bucket: "src-bucket" }] });
    new ZipstreamStateMachine(stack, "Distributed", { codePath, planPrefix: "plans" });
    const statements = Object.values(Template.fromStack(stack).findResources("AWS::IAM::Policy")).flatMap((p) => p.Properties.PolicyDocument.Statement as { Sid?: string; Resource: unknown; Condition?: unknown }[]);
    expect(JSON.stringify(statements.find((st) => st.Sid === "PlanFiles")!.Resource)).toContain("/plans/*");
    expect(statements.find((st) => st.Sid === "ListPlanFiles")!.Condition).toEqual({ StringLike: { "s3:prefix": ["plans/*"] } });
  });

  it("the distributed functions share the single function's environment (password names, bucket-owner condition)", () => {
    const stack = new ZipstreamStack(new App(), "DistEnv", { codePath, sources: [{ bucket: "src-bucket" }], expectedBucketOwner: "111122223333" });
    new ZipstreamStateMachine(stack, "Distributed", { codePath });
    const fns = Object.values(Template.fromStack(stack).findResources("AWS::Lambda::Function")) as { Properties: { Handler: string; Environment?: { Variables: Record<string, unknown> } } }[];
    expect(fns.length).toBe(5);
    for (const f of fns) expect({ handler: f.Properties.Handler, owner: f.Properties.Environment?.Variables.ZIPSTREAM_EXPECTED_BUCKET_OWNER }).toEqual({ handler: f.Properties.Handler, owner: "111122223333" });
  });

  it("asl-validator accepts the definition; retries back off on throttling and S3 failures", () => {
    const def = distributedDefinition(FAKE, 40);
    const { isValid, errorsText } = aslValidator(def);
    expect(isValid, errorsText("\n")).toBe(true);
    const seg = (def.States as Record<string, any>).Segments.ItemProcessor.States.Segment;
    expect(seg.Retry[0]).toMatchObject({ BackoffRate: 2, MaxDelaySeconds: 60, JitterStrategy: "FULL" });
    expect(seg.Retry[0].ErrorEquals).toEqual(expect.arrayContaining(["Lambda.TooManyRequestsException", "ERR_S3_UPLOAD", "ERR_S3_READ"]));
  });
});

describe("state machine executed by aws-local-stepfunctions against the gateway", () => {
  let s3: TestS3;
  let bucket: string;
  const MiB = 1024 * 1024;
  const ctx = { awsRequestId: "sfn", getRemainingTimeInMillis: () => 300_000 };

  beforeAll(async () => {
    s3 = await getTestS3();
    bucket = await s3.newBucket("sfn");
    await s3.putObjects(bucket, [
      { key: "in/a.txt", body: "a\n".repeat(2000) },
      { key: "in/b.bin", body: new Uint8Array(12 * MiB).fill(7) },
      { key: "in/c.txt", body: "c\n".repeat(500) },
      { key: "in/d.bin", body: new Uint8Array(12 * MiB).fill(9) },
    ]);
  });
  afterAll(async () => {
    await s3?.cleanup();
  });

  function run(input: Record<string, unknown>, calls: string[]) {
    const client = s3.client();
    const h = createDistributedHandlers({ client });
    const bind = (name: string, f: (e: any) => Promise<unknown>) => async (e: any): Promise<never> => {
      calls.push(name);
      return (await f(e)) as never;
    };
    const machine = new StateMachine(distributedDefinition(FAKE, 3) as never);
    return machine.run(input as never, {
      overrides: {
        taskResourceLocalHandlers: {
          Plan: bind("plan", (e) => h.plan(e, ctx)),
          Segment: bind("segment", (e) => h.segment(e, ctx)),
          Finalize: bind("finalize", (e) => h.finalize(e, ctx)),
          Abort: bind("abort", (e) => h.abort(e)),
        },
        retryIntervalOverrides: { Plan: 0, Segment: 0, Finalize: 0, Abort: 0 },
      },
    });
  }

  const event = (key: string, prefix = "in/") => ({
    src: { bucket, prefix },
    dest: { bucket, key },
    options: { copyMinSize: 5 * MiB, partSize: 5 * MiB },
    plan: { bucket, key: `plans/${key}.json` },
    segment: { bytes: 8 * MiB },
  });

  it("Plan → Map over segments → Finalize writes the archive; plan files removed", async () => {
    const calls: string[] = [];
    const out = (await run(event("sfn.zip"), calls).result) as { bucket: string; key: string; entries: number; size: number };
    expect(out).toMatchObject({ bucket, key: "sfn.zip", entries: 4 });
    expect(calls[0]).toBe("plan");
    expect(calls.filter((c) => c === "segment").length).toBeGreaterThanOrEqual(2);
    expect(calls.at(-1)).toBe("finalize");
    const bytes = await s3.getObjectBytes(bucket, "sfn.zip");
    expect(bytes.length).toBe(out.size);
    expect(bytes.subarray(0, 4).toString("hex")).toBe("504b0304");
    expect(await s3.listMultipartUploads(bucket)).toEqual([]);
  });

  it("a segment that keeps failing: Catch → Abort → the execution fails, nothing left", async () => {
    await s3.putObjects(bucket, [{ key: "gone/y.txt", body: "y" }]);
    const calls: string[] = [];
    // A reference with its size and ETag is planned without a HEAD; the object is not there, so
    // every run of its segment fails (ERR_S3_NO_SUCH_KEY is not in the Retry list).
    const input = {
      ...event("gone.zip"),
      src: [{ bucket, key: "gone/y.txt" }, { bucket, key: "gone/x.bin", size: 12 * MiB, etag: '"0123456789abcdef0123456789abcdef"' }],
    };
    const err = await run(input, calls).result.catch((e: unknown) => e as Error);
    // The Fail state's Error and Cause, after Abort ran.
    expect((err as { cause?: Error }).cause?.name).toBe("ZipstreamArchiveFailed");
    expect((err as Error).message).toMatch(/archive was abandoned/);
    expect(calls).toEqual(expect.arrayContaining(["plan", "segment", "abort"]));
    expect(calls).not.toContain("finalize");
    expect(await s3.listMultipartUploads(bucket)).toEqual([]);
    expect(await s3.getObjectBytes(bucket, "gone.zip").catch(() => null)).toBeNull();
    expect(await s3.getObjectBytes(bucket, "plans/gone.zip.json").catch(() => null)).toBeNull();
  });
});
