/**
 * `@zipstream/lambda`: an AWS Lambda handler that zips S3 objects into one archive in S3 with
 * `zipS3Keys`. Deploy the bundle (`pnpm --filter @zipstream/lambda run bundle`) with handler
 * `index.handler`; see the README for the event format, environment and limits.
 */
export { handler, createHandler, safetyMargin, toSources, nameMapper } from "./handler.js";
export type { LambdaContext, ZipJobResult, HandlerOptions } from "./handler.js";
export { parseEvent, validateEvent, eventSchema, formatPath, countEventKeys, MIN_PART_SIZE, MAX_PART_SIZE, MAX_EVENT_KEYS } from "./schema.js";
export type { ZipEvent, ZipEventOptions, EventSourceObject } from "./schema.js";
export { planMemory, entryCost, BUFFER_SHARE, MAX_EXPLICIT_SHARE, MAX_DERIVED_PART_SIZE, RUNTIME_SHARE, MIN_ENTRY_SHARE } from "./memory.js";
export type { MemoryPlan, MemoryOverrides } from "./memory.js";
export { LambdaZipError, invalidEvent } from "./errors.js";
export type { EventIssue } from "./errors.js";
export { createLogger } from "./log.js";
export type { Logger, LogLevel, LoggerOptions } from "./log.js";
export { s3ConfigFromEnv, getS3Client, expectedOwnersFromEnv, configuredPasswords, getSecretsReader, readSecret, clearSecretCache } from "./config.js";
export type { SecretsReader } from "./config.js";
export { createDistributedHandlers, createContinuingHandler, continuingHandler, planHandler, segmentHandler, finalizeHandler, abortHandler } from "./distributed.js";
export type { PlanEvent, PlanOutput, SegmentEvent, DistributedHandlerOptions, ContinueResult } from "./distributed.js";
