/**
 * Buffer sizing from the function's memory size.
 *
 * `zipS3Keys` holds about `partSize × (concurrency + 1) + prefetch.bytes` bytes of buffers (parts
 * being uploaded, the part being filled, source bytes read ahead). The handler gives those buffers
 * half of the function's memory and leaves the other half to Node, the SDK and sockets:
 *
 * ```
 * budget           = 50 % of memoryLimitInMB                                 (MiB)
 * concurrency      = clamp(round(memoryLimitInMB / 512), 2, 16)              (Lambda's CPU and network scale with memory)
 * prefetch.bytes   = clamp(budget / 4, 2 MiB, 256 MiB)
 * partSize         = clamp((budget − prefetch.bytes) / (concurrency + 1), 5 MiB, 64 MiB), whole MiB
 * prefetch.objects = clamp(memoryLimitInMB / 64, 4, 64)
 * ```
 * 64 MiB parts already allow 640 GiB archives (10,000 parts), far more than a 15-minute function
 * can move, so larger parts would only cost memory. Examples: 128 MB → 16 MiB × 3 + 16 MiB;
 * 1024 MB → 64 MiB × 3 + 128 MiB; 2048 MB → 64 MiB × 5 + 256 MiB; 10240 MB → 64 MiB × 17 + 256 MiB.
 *
 * Explicit event options win; the values left to derive adapt around them (concurrency shrinks to
 * fit), and the result must stay within 80 % of the function's memory, else the event is refused.
 *
 * Entries cost memory too, until the archive is complete: about `ENTRY_MEMORY_BYTES` (512) per
 * source object plus its key and name (the resolved list, the entry, its central-directory
 * record). What the buffers leave, less 30 % for Node, the SDK and sockets, is the entries'
 * budget (at least 10 % of the memory):
 *
 * ```
 * entryMemory = max(10 % of memory, memory − peak − 30 % of memory)
 * ```
 * 128 MB → 25.6 MiB (about 46,000 objects with 15-character keys); 2048 MB → 858 MiB. The handler
 * passes it to `zipS3Keys` as `maxEntryMemory`, so a listing that outgrows it stops with
 * `ERR_S3_TOO_MANY_ENTRIES` before any upload instead of the function being killed for memory,
 * and refuses an event whose own keys already exceed it.
 */
import { ENTRY_MEMORY_BYTES, MIN_PART_SIZE } from "@zipstream/s3";
import type { EventIssue } from "./errors.js";

const MiB = 1024 * 1024;

/** Share of the function memory given to buffers by default. */
export const BUFFER_SHARE = 0.5;
/** Hard ceiling for explicit options: their buffers may use at most this share of the memory. */
export const MAX_EXPLICIT_SHARE = 0.8;
/** Largest part size derived automatically. */
export const MAX_DERIVED_PART_SIZE = 64 * MiB;
/** Share of the memory kept for Node, the SDK and sockets when the entries' budget is derived. */
export const RUNTIME_SHARE = 0.3;
/** Least share of the memory given to entries. */
export const MIN_ENTRY_SHARE = 0.1;

/** Bytes of bookkeeping one source object costs while a job runs: 512 plus its key and name as UTF-16. */
export function entryCost(key: string, name: string = key): number {
  return ENTRY_MEMORY_BYTES + 2 * (key.length + name.length);
}

export interface MemoryPlan {
  partSize: number;
  concurrency: number;
  prefetch: { objects: number; bytes: number };
  /** Buffer budget in bytes (50 % of the memory limit). */
  budget: number;
  /** Estimated peak buffer bytes: partSize × (concurrency + 1) + prefetch.bytes. */
  peak: number;
  /** Bytes the source objects' bookkeeping may use (`maxEntryMemory` of `zipS3Keys`); see the module comment. */
  entryMemory: number;
}

export interface MemoryOverrides {
  partSize?: number;
  concurrency?: number;
  prefetch?: { objects?: number; bytes?: number };
}

const clamp = (v: number, lo: number, hi: number) => Math.min(hi, Math.max(lo, v));

/**
 * Derives buffer sizes for a function of `memoryLimitInMB` megabytes, honouring explicit overrides.
 * Returns issues (paths under `options`) when the explicit values cannot fit.
 */
export function planMemory(memoryLimitInMB: number, overrides: MemoryOverrides = {}): { plan: MemoryPlan; issues: EventIssue[] } {
  const memory = Math.max(128, Math.floor(memoryLimitInMB)) * MiB;
  const budget = Math.floor(memory * BUFFER_SHARE);

  const prefetchBytes = overrides.prefetch?.bytes ?? clamp(Math.floor(budget / 4 / MiB) * MiB, 2 * MiB, 256 * MiB);
  const prefetchObjects = overrides.prefetch?.objects ?? clamp(Math.floor(memoryLimitInMB / 64), 4, 64);
  let concurrency = overrides.concurrency ?? clamp(Math.round(memoryLimitInMB / 512), 2, 16);
  let partSize =
    overrides.partSize ??
    clamp(Math.floor((budget - prefetchBytes) / (concurrency + 1) / MiB) * MiB, MIN_PART_SIZE, MAX_DERIVED_PART_SIZE);
  if (overrides.concurrency === undefined) {
    // An explicit (large) part size: fewer parts in flight rather than more memory.
    const fit = Math.floor((budget - prefetchBytes) / partSize) - 1;
    concurrency = clamp(Math.min(concurrency, fit), 1, concurrency);
  }
  const peak = partSize * (concurrency + 1) + prefetchBytes;
  const issues: EventIssue[] = [];
  const ceiling = Math.floor(memory * MAX_EXPLICIT_SHARE);
  if (peak > ceiling) {
    const named = (["partSize", "concurrency", "prefetch"] as const).filter((k) => overrides[k] !== undefined);
    issues.push({
      path: named.length === 1 ? `options.${named[0]}` : "options",
      message:
        `buffers of partSize × (concurrency + 1) + prefetch.bytes = ${(peak / MiB).toFixed(0)} MiB exceed ` +
        `${MAX_EXPLICIT_SHARE * 100} % of the function's ${memoryLimitInMB} MB; lower ${named.join(", ") || "the options"} or raise the memory size`,
    });
  }
  partSize = Math.max(partSize, MIN_PART_SIZE);
  const entryMemory = Math.max(Math.floor(memory * MIN_ENTRY_SHARE), memory - peak - Math.floor(memory * RUNTIME_SHARE));
  return { plan: { partSize, concurrency, prefetch: { objects: prefetchObjects, bytes: prefetchBytes }, budget, peak, entryMemory }, issues };
}
