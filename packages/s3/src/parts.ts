import { intOption } from "@zipstream/core";
// The S3 multipart limits live in limits.ts (the light `@zipstream/s3/limits` entry).
import { MAX_OBJECT_SIZE, MAX_PARTS, MAX_PART_SIZE, MIN_PART_SIZE } from "./limits.js";
export { MAX_OBJECT_SIZE, MAX_PARTS, MAX_PART_SIZE, MIN_PART_SIZE };
/** Default first part size: 8 MiB. */
export const DEFAULT_PART_SIZE = 8 * 1024 * 1024;

const MiB = 1024 * 1024;

/** Options of {@link planParts}. */
export interface PlanPartsOptions {
  /**
   * Part size in bytes (the first part's size when sizes grow). At least 5 MiB, at most 5 GiB.
   * Default: for a known total, the smallest whole number of MiB >= 8 MiB that keeps the upload
   * within 10,000 parts; for an unknown total, 8 MiB growing (see {@link PartPlan.growEvery}).
   * When a known total would need more than 10,000 parts of this size, the size is raised.
   */
  partSize?: number;
  /**
   * Every part but the last has the same size (Cloudflare R2 requires it). With an unknown total
   * the archive is then limited to `partSize` x 10,000 bytes. Default false.
   */
  equalParts?: boolean;
}

/** How an upload is cut into parts. Pure data plus {@link PartPlan.sizeOf}. */
export interface PartPlan {
  /** The archive's size when known up front. */
  totalSize?: number;
  /** Size of part 1 (and of every part when sizes do not grow). */
  partSize: number;
  /** Number of parts when the total is known (1 for a single PutObject). */
  partCount?: number;
  /** True when the whole archive is known to fit one request: it is sent as a single PutObject. */
  singlePut: boolean;
  /**
   * When the total is unknown and parts are not equal: part sizes double every `growEvery` parts
   * (capped at 5 GiB), chosen so that 10,000 parts reach 50 TB. Part n is
   * `min(5 GiB, partSize * 2^floor((n-1)/growEvery))`, so a part is at most about 1/growEvery of
   * the bytes already uploaded: memory grows with the archive only that slowly.
   */
  growEvery?: number;
  /** Largest archive this plan can upload, in bytes. */
  maxBytes: number;
  /** Size in bytes of part `partNumber` (1-based); the last part may be shorter. */
  sizeOf(partNumber: number): number;
}

/** Total bytes that MAX_PARTS parts can carry with sizes starting at `start`, doubling every `k`. */
function growingCapacity(start: number, k: number): number {
  let total = 0;
  for (let group = 0; group * k < MAX_PARTS; group++) {
    const size = Math.min(MAX_PART_SIZE, start * 2 ** group);
    total += size * Math.min(k, MAX_PARTS - group * k);
  }
  return total;
}

/** Largest doubling period whose 10,000 parts still reach 50 TB (the slowest safe growth). */
function growPeriod(start: number): number {
  let lo = 1;
  let hi = MAX_PARTS;
  while (lo < hi) {
    const mid = Math.ceil((lo + hi) / 2);
    if (growingCapacity(start, mid) >= MAX_OBJECT_SIZE) lo = mid;
    else hi = mid - 1;
  }
  return lo;
}

/**
 * Plans part sizes for an upload of `totalSize` bytes (or of unknown size when `undefined`).
 *
 * - Known total: one part size for every part but the last, at least 5 MiB (default 8 MiB),
 *   raised to a whole number of MiB when needed to stay within 10,000 parts; an archive no larger
 *   than one part is a single PutObject.
 * - Unknown total: sizes grow (doubling every {@link PartPlan.growEvery} parts up to 5 GiB) so that
 *   any archive up to 50 TB fits, or stay equal when `equalParts` is set.
 *
 * @throws TypeError for an invalid `partSize` or `totalSize`.
 * @throws RangeError when a known total cannot fit 10,000 parts of 5 GiB.
 */
export function planParts(totalSize: number | undefined, options: PlanPartsOptions = {}): PartPlan {
  const requested = intOption("partSize", options.partSize, MIN_PART_SIZE, MAX_PART_SIZE);
  const equal = options.equalParts ?? false;
  if (totalSize !== undefined) {
    intOption("totalSize", totalSize, 0);
    if (totalSize > MAX_PART_SIZE * MAX_PARTS) {
      throw new RangeError(`an archive of ${totalSize} bytes cannot be uploaded in ${MAX_PARTS} parts of at most 5 GiB`);
    }
    let partSize = requested ?? DEFAULT_PART_SIZE;
    const needed = Math.ceil(totalSize / MAX_PARTS);
    if (partSize < needed) {
      // Round up to whole MiB: parts stay aligned and the plan reads well in logs.
      partSize = Math.min(MAX_PART_SIZE, Math.ceil(needed / MiB) * MiB);
    }
    const partCount = totalSize <= partSize ? 1 : Math.ceil(totalSize / partSize);
    return {
      totalSize,
      partSize,
      partCount,
      singlePut: partCount === 1,
      maxBytes: partSize * MAX_PARTS,
      sizeOf: (n) => partSize,
    };
  }
  const partSize = requested ?? DEFAULT_PART_SIZE;
  if (equal) {
    return { partSize, singlePut: false, maxBytes: partSize * MAX_PARTS, sizeOf: () => partSize };
  }
  const growEvery = growPeriod(partSize);
  return {
    partSize,
    singlePut: false,
    growEvery,
    maxBytes: growingCapacity(partSize, growEvery),
    sizeOf: (n) => Math.min(MAX_PART_SIZE, partSize * 2 ** Math.floor((n - 1) / growEvery)),
  };
}
