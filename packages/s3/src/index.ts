/**
 * `@zipstream/s3`: zip S3 objects into an S3 object, streaming, with bounded memory.
 * @packageDocumentation
 */
export {
  zipS3Keys,
  planAssemblyReport,
  type ZipS3Options,
  type ZipS3Result,
  type ZipS3Progress,
  type ZipS3EntryInfo,
  type Assembly,
  type AssemblyReport,
} from "./zip-s3-keys.js";
export { COPY_MIN_SIZE_WITH_CHECKSUMS, COPY_MIN_SIZE_WITHOUT_CHECKSUMS } from "./copy-assembly.js";
export type { CrcSource } from "./checksums.js";
export { uploadStream, validateDest, type UploadOptions, type UploadResult, type UploadProgress, type S3Dest } from "./upload.js";
export {
  planParts,
  type PartPlan,
  type PlanPartsOptions,
  MIN_PART_SIZE,
  MAX_PART_SIZE,
  MAX_PARTS,
  MAX_OBJECT_SIZE,
  DEFAULT_PART_SIZE,
} from "./parts.js";
export { listIncompleteUploads, abortIncompleteUploads, type IncompleteUpload, type IncompleteUploadsOptions } from "./cleanup.js";
export { S3ZipError, s3SourceFailure, type S3ZipErrorCode, type LeftBehind } from "./errors.js";
export { type ExpectedBucketOwner, parseExpectedBucketOwner, validateExpectedBucketOwner, withExpectedBucketOwner } from "./owners.js";
export { type S3Source, type S3ObjectRef, type SourceSse, type NameFn, type ResolvedObject, relativeName, ENTRY_MEMORY_BYTES } from "./sources.js";
export {
  resolveLocations,
  s3ZipEntries,
  type S3Location,
  type ResolveLocationsOptions,
  type ResolvedLocations,
  type S3EntriesOptions,
  type S3Entries,
} from "./locations.js";
export {
  type PrefetchOptions,
  DEFAULT_PREFETCH_OBJECTS,
  DEFAULT_PREFETCH_BYTES,
  DEFAULT_RANGE_SIZE,
  MIN_PREFETCH_OBJECTS,
  MIN_PREFETCH_BYTES,
} from "./prefetch.js";
export {
  verifyS3Zip,
  FIRST_READ,
  MERGE_GAP,
  MIN_READ,
  SAMPLE_SIZE,
  DEEP_RANGE,
  type VerifyS3ZipOptions,
  type VerifyReport,
  type VerifyProblem,
  type VerifyProblemCode,
  type VerifyWarningCode,
  type VerifyProgress,
  type VerifyExpect,
  type VerifyManifest,
  type LocalHeaderMode,
} from "./verify.js";
export {
  planArchive,
  runSegment,
  finalizeArchive,
  abortArchive,
  resumeArchive,
  pendingSegments,
  loadPlan,
  buildPlanDocs,
  planFiles,
  type ArchivePlan,
  type ArchivePlanOptions,
  type ArchiveRunOptions,
  type ArchiveResult,
  type AbortArchiveResult,
  type SegmentResult,
  type PlanLocation,
  type PlanRef,
  type PlanDocs,
} from "./archive-plan.js";
export { segmentPlan, DEFAULT_SEGMENT_LIMITS, type SegmentLimits, type SegmentRange, type Segmentation, type SegmentDoc } from "./archive-segments.js";
