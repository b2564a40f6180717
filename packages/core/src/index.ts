/**
 * `@zipstream/core`: a streaming ZIP encoder with flat memory.
 *
 * @example
 * ```ts
 * import { zipStream, predictZipSize } from "@zipstream/core";
 * const out = zipStream([{ name: "a.txt", source: "hello" }], { method: "store" });
 * out.pipe(createWriteStream("a.zip"));
 * ```
 * @module
 */
import zlib from "node:zlib";

export { zipStream, ZipReadable, type ZipStats } from "./zip-stream.js";
export { predictZipSize, layoutZip, localHeaderWithCrc32, deflateBound, AES_OVERHEAD, AES_EXTRA_LENGTH, type ZipLayout, type ZipLayoutEntry } from "./plan.js";
export { crc32Combine, crc32Concat } from "./crc32.js";
export { ZipError, isZipError, type ZipErrorCode, type ZipErrorOptions } from "./errors.js";
export type * from "./types.js";
export { dosDateTime } from "./records.js";

/** CRC-32 (the ZIP polynomial) of `data`, continuing from `value` (default 0). Uses `zlib.crc32`. */
export function crc32(data: Uint8Array | string, value = 0): number {
  return zlib.crc32(data, value);
}
