/**
 * Classifies an S3 REST request (path-style addressing: `/bucket/key?query`) into the SDK
 * operation name that produced it. Only method, path and query are used, so the proxy can decide
 * a fault before the request body arrives.
 */
export type S3Operation =
  | "ListBuckets"
  | "CreateBucket"
  | "DeleteBucket"
  | "HeadBucket"
  | "GetBucketLocation"
  | "ListObjects"
  | "ListObjectsV2"
  | "ListObjectVersions"
  | "DeleteObjects"
  | "GetObject"
  | "HeadObject"
  | "PutObject"
  | "CopyObject"
  | "DeleteObject"
  | "GetObjectTagging"
  | "PutObjectTagging"
  | "CreateMultipartUpload"
  | "UploadPart"
  | "UploadPartCopy"
  | "CompleteMultipartUpload"
  | "AbortMultipartUpload"
  | "ListParts"
  | "ListMultipartUploads"
  | "Other";

/**
 * @param method - HTTP method.
 * @param url - request target as received (`/bucket/key?query`).
 * @param headers - request headers (only `x-amz-copy-source` is consulted).
 */
export function classifyS3Request(
  method: string,
  url: string,
  headers: Record<string, string | string[] | undefined> = {},
): S3Operation {
  const u = new URL(url, "http://proxy.invalid");
  const q = u.searchParams;
  // Path-style: first segment is the bucket, the rest (possibly empty) the key.
  const path = u.pathname.replace(/^\/+/, "");
  const slash = path.indexOf("/");
  const bucket = slash < 0 ? path : path.slice(0, slash);
  const key = slash < 0 ? "" : path.slice(slash + 1);
  const copy = headers["x-amz-copy-source"] !== undefined;
  const m = method.toUpperCase();

  if (bucket === "") return m === "GET" ? "ListBuckets" : "Other";
  if (key === "") {
    switch (m) {
      case "GET":
        if (q.has("uploads")) return "ListMultipartUploads";
        if (q.has("versions")) return "ListObjectVersions";
        if (q.has("location")) return "GetBucketLocation";
        if (q.get("list-type") === "2") return "ListObjectsV2";
        if ([...q.keys()].some((k) => !["prefix", "delimiter", "marker", "max-keys", "encoding-type"].includes(k))) {
          return "Other";
        }
        return "ListObjects";
      case "HEAD":
        return "HeadBucket";
      case "PUT":
        return [...q.keys()].length === 0 ? "CreateBucket" : "Other";
      case "DELETE":
        return [...q.keys()].length === 0 ? "DeleteBucket" : "Other";
      case "POST":
        return q.has("delete") ? "DeleteObjects" : "Other";
      default:
        return "Other";
    }
  }
  switch (m) {
    case "GET":
      if (q.has("uploadId")) return "ListParts";
      if (q.has("tagging")) return "GetObjectTagging";
      if (q.has("acl") || q.has("attributes") || q.has("retention") || q.has("legal-hold")) return "Other";
      return "GetObject";
    case "HEAD":
      return "HeadObject";
    case "PUT":
      if (q.has("partNumber") && q.has("uploadId")) return copy ? "UploadPartCopy" : "UploadPart";
      if (q.has("tagging")) return "PutObjectTagging";
      if (q.has("acl") || q.has("retention") || q.has("legal-hold")) return "Other";
      return copy ? "CopyObject" : "PutObject";
    case "POST":
      if (q.has("uploads")) return "CreateMultipartUpload";
      if (q.has("uploadId")) return "CompleteMultipartUpload";
      return "Other";
    case "DELETE":
      if (q.has("uploadId")) return "AbortMultipartUpload";
      if (q.has("tagging")) return "Other";
      return "DeleteObject";
    default:
      return "Other";
  }
}
