#!/usr/bin/env node
import { main } from "./main.js";

// SIGINT/SIGTERM abort the run through its AbortSignal: the encoder stops, the multipart upload
// is aborted and a local partial file is removed before the process exits with code 6.
// A second signal exits at once (130), for a user who does not want to wait for the cleanup.
const controller = new AbortController();
let signals = 0;
for (const sig of ["SIGINT", "SIGTERM"] as const) {
  process.on(sig, () => {
    signals++;
    if (signals > 1) process.exit(130);
    process.stderr.write(`zipstream: ${sig}: aborting (press Ctrl-C again to exit at once)\n`);
    controller.abort(new Error(`interrupted by ${sig}`));
  });
}

const code = await main(process.argv.slice(2), {
  stdout: process.stdout,
  stderr: process.stderr,
  env: process.env,
  signal: controller.signal,
});
process.exitCode = code;
