// lambda-local: invoke the zipstream Lambda handler on this machine, as the Lambda runtime would.
//
//   pnpm start -- '{"src":{"bucket":"photos","prefix":"2024/"},"dest":{"bucket":"exports","key":"2024.zip"}}'
//
// The handler reads S3 settings from the same environment as on Lambda (AWS_REGION,
// AWS_ENDPOINT_URL, S3_FORCE_PATH_STYLE, the default credential chain); S3_ENDPOINT is mapped to
// AWS_ENDPOINT_URL for a local gateway. The fake context gives the handler a time budget
// (TIMEOUT_MS, default 60 s) and a memory size (MEMORY_MB, default 512), which size its parts.
// Structured JSON logs go to stdout; the result is printed last.
// @ts-check
import { randomUUID } from "node:crypto";
import { pathToFileURL } from "node:url";
import { handler } from "@zipstream/lambda";

/**
 * A context object shaped like the one the Node.js Lambda runtime passes.
 * @param {{ timeoutMs?: number, memoryMB?: number, functionName?: string }} [o]
 */
export function fakeContext({ timeoutMs = 60_000, memoryMB = 512, functionName = "zipstream-local" } = {}) {
  const deadline = Date.now() + timeoutMs;
  return {
    awsRequestId: randomUUID(),
    functionName,
    functionVersion: "$LATEST",
    invokedFunctionArn: `arn:aws:lambda:us-east-1:000000000000:function:${functionName}`,
    memoryLimitInMB: String(memoryMB),
    logGroupName: `/aws/lambda/${functionName}`,
    logStreamName: `local/${new Date().toISOString().slice(0, 10)}`,
    callbackWaitsForEmptyEventLoop: true,
    getRemainingTimeInMillis: () => Math.max(0, deadline - Date.now()),
  };
}

/**
 * Runs the handler once with `event` and a fresh context.
 * @param {unknown} event `{ src, dest, options }` as the deployed function receives it
 * @param {{ timeoutMs?: number, memoryMB?: number }} [o]
 */
export async function invokeLocally(event, o = {}) {
  if (process.env.S3_ENDPOINT && !process.env.AWS_ENDPOINT_URL) {
    process.env.AWS_ENDPOINT_URL = process.env.S3_ENDPOINT;
    process.env.S3_FORCE_PATH_STYLE ??= "1";
  }
  return handler(event, fakeContext(o));
}

if (process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href) {
  const json = process.argv[2];
  if (!json) {
    console.error("usage: node main.js '<event JSON>'");
    process.exit(2);
  }
  try {
    const result = await invokeLocally(JSON.parse(json), {
      timeoutMs: Number(process.env.TIMEOUT_MS ?? 60_000),
      memoryMB: Number(process.env.MEMORY_MB ?? 512),
    });
    console.log(JSON.stringify({ result }));
  } catch (err) {
    // What the Lambda runtime reports for a failed invocation: errorType, errorMessage.
    const e = /** @type {{ name?: string, code?: string, message?: string }} */ (err);
    console.log(JSON.stringify({ errorType: e.name, errorCode: e.code, errorMessage: e.message }));
    process.exitCode = 1;
  }
}
