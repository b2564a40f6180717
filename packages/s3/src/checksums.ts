import { GetObjectAttributesCommand, HeadObjectCommand, type S3Client } from "@aws-sdk/client-s3";
import { crc32Combine } from "@zipstream/core";
import { mapS3Error } from "./errors.js";
import type { ResolvedObject } from "./sources.js";

/** Where a member's CRC-32 came from (cheapest first). */
export type CrcSource =
  /** S3's full-object CRC32 checksum of the source (HeadObject, ChecksumMode ENABLED): no byte read. */
  | "s3-object"
  /** Folded from the per-part CRC32 checksums of a multipart source (GetObjectAttributes): no byte read. */
  | "s3-parts"
  /** Computed by S3 while copying the member into the archive (UploadPartCopy): no byte read. */
  | "s3-copy"
  /** Computed here over the bytes read (a member uploaded from here, or a CRC read pass). */
  | "read";

/** S3's base64 form of a CRC-32 (big-endian bytes), as in `x-amz-checksum-crc32`. */
export function crc32ToBase64(crc: number): string {
  const b = Buffer.alloc(4);
  b.writeUInt32BE(crc >>> 0);
  return b.toString("base64");
}

/** The CRC-32 in an `x-amz-checksum-crc32` value; undefined when absent or not 4 bytes. */
export function crc32FromBase64(value: string | undefined): number | undefined {
  if (value === undefined || value === "") return undefined;
  const b = Buffer.from(value, "base64");
  return b.length === 4 ? b.readUInt32BE(0) : undefined;
}

/**
 * The CRC-32 of a source object from its S3 checksums, without reading it, or undefined.
 *
 * 1. HeadObject with ChecksumMode ENABLED: a `ChecksumCRC32` of type FULL_OBJECT is the object's
 *    CRC-32 (the AWS SDK uploads with CRC32 by default since early 2025).
 * 2. A multipart object with a COMPOSITE CRC32 (the checksum of the parts' checksums, not of the
 *    bytes): its parts' CRC32s and sizes from GetObjectAttributes (ObjectParts, paged by 1,000)
 *    are folded with the CRC-32 combine. ObjectParts is asked for alone: Ceph 20 honours only
 *    the first attribute of the list.
 *
 * The answer is pinned to the ETag resolved for the object: a different ETag is a changed object
 * (ERR_S3_SOURCE_CHANGED through the caller's confirmation), so a mismatch returns undefined.
 */
export async function sourceCrc32(client: S3Client, o: ResolvedObject, signal: AbortSignal): Promise<{ crc: number; source: CrcSource } | undefined> {
  let head;
  try {
    head = await client.send(new HeadObjectCommand({ Bucket: o.bucket, Key: o.key, VersionId: o.versionId, ChecksumMode: "ENABLED", IfMatch: o.etag || undefined }), {
      abortSignal: signal,
    });
  } catch (err) {
    throw mapS3Error(err, "ERR_S3_READ", { bucket: o.bucket, key: o.key, action: "HeadObject (checksum)" });
  }
  if (head.ChecksumCRC32 === undefined) return undefined;
  if (head.ChecksumType !== "COMPOSITE") {
    const whole = crc32FromBase64(head.ChecksumCRC32);
    return whole === undefined ? undefined : { crc: whole, source: "s3-object" };
  }
  // Composite: fold the parts.
  let crc = 0;
  let total = 0;
  let marker: string | undefined;
  for (;;) {
    let attrs;
    try {
      attrs = await client.send(
        new GetObjectAttributesCommand({ Bucket: o.bucket, Key: o.key, VersionId: o.versionId, ObjectAttributes: ["ObjectParts"], MaxParts: 1000, PartNumberMarker: marker }),
        { abortSignal: signal },
      );
    } catch {
      return undefined; // no GetObjectAttributes here (Ceph 16): read the bytes instead
    }
    const parts = attrs.ObjectParts?.Parts ?? [];
    for (const p of parts) {
      const c = crc32FromBase64(p.ChecksumCRC32);
      if (c === undefined || p.Size === undefined) return undefined;
      crc = crc32Combine(crc, c, p.Size);
      total += p.Size;
    }
    if (!attrs.ObjectParts?.IsTruncated || parts.length === 0) break;
    marker = attrs.ObjectParts.NextPartNumberMarker;
  }
  return total === o.size ? { crc, source: "s3-parts" } : undefined;
}
