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
export { printableName, quoteName } from "./names.js";
export { chunksOf, isNodeReadable } from "./chunks.js";
// Helpers shared with the packages built on core (one pool, one integer-option check).
export { pool, type PoolOptions } from "./pool.js";
export { intOption } from "./options.js";

/** CRC-32 (the ZIP polynomial) of `data`, continuing from `value` (default 0). Uses `zlib.crc32`. */
export function crc32(data: Uint8Array | string, value = 0): number {
  return zlib.crc32(data, value);
}

// Reading archives back: record parsers (the inverse of the builders), the encoder's own name
// rules and duplicate detection, and AES checking. Low-level; `@zipstream/s3`'s verifyS3Zip is
// built on them, so an archive is judged by exactly the rules it was written by.
export * from "./parse.js";
export { checkName } from "./names.js";
export { NameRegistry } from "./plan.js";
export {
  createAesDecryptorAsync,
  type AesDecryptor,
  AES_SALT_LENGTH,
  AES_VERIFIER_LENGTH,
  AES_MAC_LENGTH,
} from "./aes/index.js";
export {
  METHOD_STORE,
  METHOD_DEFLATE,
  METHOD_AES,
  FLAG_ENCRYPTED,
  FLAG_DATA_DESCRIPTOR,
  FLAG_UTF8,
  VERSION_ZIP64,
} from "./records.js";
