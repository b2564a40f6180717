/**
 * `@zipstream/s3/limits`: the bounds of `zipS3Keys`' options, as plain constants with no imports,
 * so that the CLI and the Lambda schema check flags and events against the library's own limits
 * without loading the S3 stack (importing `@zipstream/s3` costs ~0.35 s at the CLI's start).
 *
 * @module
 */

/** S3 multipart limits (the AWS documentation's "Amazon S3 multipart upload limits"): smallest part but the last, 5 MiB. */
export const MIN_PART_SIZE = 5 * 1024 * 1024;
/** Largest part S3 accepts: 5 GiB. */
export const MAX_PART_SIZE = 5 * 1024 * 1024 * 1024;
/** Most parts in one multipart upload. */
export const MAX_PARTS = 10_000;
/** Largest object the plans are built to reach: S3's 50 TB object limit. */
export const MAX_OBJECT_SIZE = 50e12;
/** Smallest prefetch `objects` budget: the member being read. */
export const MIN_PREFETCH_OBJECTS = 1;
/** Smallest prefetch `bytes` budget (one range is always allowed beyond it, so any positive budget works). */
export const MIN_PREFETCH_BYTES = 1;
/** Most part uploads at once `zipS3Keys` accepts (`concurrency`). */
export const MAX_CONCURRENCY = 10_000;
/** Most HEAD requests at once `zipS3Keys` accepts (`headConcurrency`). */
export const MAX_HEAD_CONCURRENCY = 1000;
