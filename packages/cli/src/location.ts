import { UsageError } from "./exit-codes.js";

/** A source or destination given on the command line. */
export type Location =
  | { kind: "s3"; bucket: string; key: string; text: string }
  | { kind: "local"; path: string; text: string };

/**
 * `s3://bucket/prefix-or-key` is S3 (the key may be empty: the whole bucket); anything else is a
 * local path. A bucket name is required.
 */
export function parseLocation(text: string): Location {
  if (/^s3:\/\//i.test(text)) {
    const rest = text.slice(5);
    const slash = rest.indexOf("/");
    const bucket = slash < 0 ? rest : rest.slice(0, slash);
    const key = slash < 0 ? "" : rest.slice(slash + 1);
    if (bucket === "") throw new UsageError(`no bucket in ${JSON.stringify(text)} (expected s3://bucket/key)`);
    return { kind: "s3", bucket, key, text };
  }
  if (/^[a-z][a-z0-9+.-]*:\/\//i.test(text)) {
    throw new UsageError(`unsupported URL scheme in ${JSON.stringify(text)}: use s3://bucket/key or a local path`);
  }
  if (text === "") throw new UsageError("empty path");
  return { kind: "local", path: text, text };
}
