#!/usr/bin/env node
// Runs a Lambda handler the way the Node.js runtime does: imports the module, builds a context
// object (request id, function name and ARN, memory size as a string, a deadline that
// getRemainingTimeInMillis counts down to), invokes the handler once with the event, and prints
// the outcome as one JSON line: {"result": ...} or {"error": {"errorType", "errorMessage", ...}}.
//
//   node scripts/invoke-local.mjs [--bundle FILE] [--memory MB] [--timeout-ms MS]
//        [--request-id ID] [--result FILE] EVENT.json|-
//
// Logs of the handler go to stdout as they would in CloudWatch; the outcome goes to --result FILE
// when given, else it is the last line of stdout. Exit status 0 on success, 1 on a handler error.
import { parseArgs } from "node:util";
import { readFile, writeFile } from "node:fs/promises";
import { randomUUID } from "node:crypto";
import { pathToFileURL, fileURLToPath } from "node:url";

const { values, positionals } = parseArgs({
  allowPositionals: true,
  options: {
    bundle: { type: "string", default: fileURLToPath(new URL("../dist-bundle/index.mjs", import.meta.url)) },
    memory: { type: "string", default: process.env.AWS_LAMBDA_FUNCTION_MEMORY_SIZE ?? "1024" },
    "timeout-ms": { type: "string", default: "900000" },
    "request-id": { type: "string" },
    "function-name": { type: "string", default: "zipstream-local" },
    result: { type: "string" },
  },
});
if (positionals.length !== 1) {
  process.stderr.write("usage: invoke-local.mjs [--bundle FILE] [--memory MB] [--timeout-ms MS] [--result FILE] EVENT.json|-\n");
  process.exit(2);
}
const eventText = positionals[0] === "-" ? await readStdin() : await readFile(positionals[0], "utf8");
const event = JSON.parse(eventText);

const functionName = values["function-name"];
const memory = values.memory;
const region = process.env.AWS_REGION ?? "us-east-1";
// What the runtime sets for the function process.
process.env.AWS_LAMBDA_FUNCTION_NAME ??= functionName;
process.env.AWS_LAMBDA_FUNCTION_MEMORY_SIZE ??= memory;
process.env.AWS_LAMBDA_FUNCTION_VERSION ??= "$LATEST";
process.env.AWS_EXECUTION_ENV ??= `AWS_Lambda_nodejs${process.versions.node.split(".")[0]}.x`;

const deadline = Date.now() + Number(values["timeout-ms"]);
const context = {
  callbackWaitsForEmptyEventLoop: true,
  functionName,
  functionVersion: "$LATEST",
  invokedFunctionArn: `arn:aws:lambda:${region}:123456789012:function:${functionName}`,
  memoryLimitInMB: memory, // a string, as in the real runtime
  awsRequestId: values["request-id"] ?? randomUUID(),
  logGroupName: `/aws/lambda/${functionName}`,
  logStreamName: `local/[$LATEST]${randomUUID().replaceAll("-", "")}`,
  getRemainingTimeInMillis: () => Math.max(0, deadline - Date.now()),
  done() {},
  fail() {},
  succeed() {},
};

const mod = await import(pathToFileURL(values.bundle).href);
let outcome;
let status = 0;
try {
  outcome = { result: await mod.handler(event, context) };
} catch (err) {
  status = 1;
  // The runtime reports errorType from error.name and errorMessage from error.message.
  outcome = {
    error: {
      errorType: err?.name ?? "Error",
      errorMessage: err?.message ?? String(err),
      ...(err?.code !== undefined ? { code: err.code } : {}),
      ...(err?.issues !== undefined ? { issues: err.issues } : {}),
    },
  };
}
const line = JSON.stringify(outcome);
if (values.result) await writeFile(values.result, line + "\n");
else process.stdout.write(line + "\n");
process.exitCode = status;

async function readStdin() {
  const chunks = [];
  for await (const c of process.stdin) chunks.push(c);
  return Buffer.concat(chunks).toString("utf8");
}
// The runtime would freeze the process here; a stray handle must not keep this runner alive.
setTimeout(() => process.exit(status), 2000).unref();
