/**
 * `@zipstream/cli`: the `zipstream` command as a library. `main(argv)` runs the command and
 * resolves with its exit code; the pieces below are exported for embedding and tests.
 */
export { main, parseJobsFile, VERSION, type MainIO } from "./main.js";
export { EXIT, exitCodeFor, UsageError, type ExitCode } from "./exit-codes.js";
export { parseSize, parseDuration } from "./units.js";
export { parseLocation, type Location } from "./location.js";
export { resolveJobOptions, type JobOptions } from "./args.js";
export { createS3Client, resolveS3Settings, type S3Settings } from "./config.js";
export { runJob, dryRun, type Job, type JobResult, type DryRunReport, type ManifestEntry } from "./run.js";
