// The Node-stream chunk reader is core's (one reader for sources and S3 bodies): see
// packages/core/src/chunks.ts.
export { chunksOf, isNodeReadable } from "@zipstream/core";
