import { lstat, readdir, readlink, realpath, stat } from "node:fs/promises";
import path from "node:path";
import type { Readable } from "node:stream";
import type { S3Client } from "@aws-sdk/client-s3";
import { ZipError, type ZipEntry } from "@zipstream/core";
import type { JobOptions } from "./args.js";
import type { Location } from "./location.js";

/** One member to be zipped, resolved before anything is written. */
export interface PlannedEntry {
  /** Name inside the archive. */
  name: string;
  /** Uncompressed size from the listing or `stat`. */
  size: number;
  /** Where the bytes come from, for logs and the manifest: a local path or `s3://bucket/key`. */
  source: string;
  local?: { path: string; mtime: Date; mode: number };
  /** A symbolic link stored as a link (its target as read by readlink), not as the file it names. */
  link?: { target: string; mtime: Date };
  s3?: { bucket: string; key: string; etag?: string; mtime?: Date };
}

export interface Collected {
  entries: PlannedEntry[];
  /** Sources skipped under `--on-missing skip`. */
  skipped: string[];
  /** Things left out that the user should hear about (symlink loops). */
  warnings: string[];
}

/** True when `p` is `root` or inside it (both absolute and normalized). */
function isInside(p: string, root: string): boolean {
  const rel = path.relative(root, p);
  return rel === "" || (!rel.startsWith(`..${path.sep}`) && rel !== ".." && !path.isAbsolute(rel));
}

/** `a/b/c` normalized to a relative, `/`-separated name without `.`/`..` or leading `/`. */
function cleanName(p: string): string {
  return p
    .split(/[\\/]+/)
    .filter((s) => s !== "" && s !== "." && s !== "..")
    .join("/");
}

/**
 * The name of a member. `relative`: relative to the directory or prefix given (a single file or
 * key: its base name); `full`: the whole key or path as given; `basename`: the last segment only.
 * `--strip-prefix P` takes the full key or path and removes P from its start.
 */
export function entryName(full: string, base: string, opts: Pick<JobOptions, "names" | "stripPrefix">): string {
  if (opts.stripPrefix !== undefined) {
    return cleanName(full.startsWith(opts.stripPrefix) ? full.slice(opts.stripPrefix.length) : full);
  }
  switch (opts.names) {
    case "full":
      return cleanName(full);
    case "basename":
      return cleanName(full).split("/").pop() ?? "";
    default:
      return cleanName(full.startsWith(base) ? full.slice(base.length) : full);
  }
}

function notFound(code: "ENOENT" | "ERR_S3_NO_SUCH_KEY", message: string): ZipError {
  return new ZipError(code, message);
}

async function collectLocal(loc: Extract<Location, { kind: "local" }>, opts: JobOptions, out: Collected): Promise<void> {
  let st;
  try {
    st = await stat(loc.path);
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (code === "ENOENT" && opts.onMissing === "skip") {
      out.skipped.push(loc.text);
      return;
    }
    if (code === "ENOENT") throw notFound("ENOENT", `source not found: ${loc.text}`);
    throw err;
  }
  const asGiven = loc.path.split(path.sep).join("/");
  if (st.isFile()) {
    const base = asGiven.includes("/") ? asGiven.slice(0, asGiven.lastIndexOf("/") + 1) : "";
    out.entries.push({
      name: entryName(asGiven, base, opts),
      size: st.size,
      source: loc.path,
      local: { path: loc.path, mtime: st.mtime, mode: st.mode & 0o777 },
    });
    return;
  }
  if (!st.isDirectory()) throw new ZipError("ERR_INVALID_ENTRY", `not a file or directory: ${loc.text}`);
  const base = asGiven.endsWith("/") ? asGiven : `${asGiven}/`;
  // The tree the user named, for "does this link leave it": lexically for links stored as links
  // (their text is what an extractor will follow), by real path for links that are followed.
  const rootLexical = path.resolve(loc.path);
  const rootReal = await realpath(loc.path);
  const outsideHint = "--allow-outside-symlinks";
  // Depth-first in sorted order so archives are reproducible across file systems. `ancestors`
  // holds the device:inode of every directory on the current path: entering one of them again is a
  // loop (two `ln -s .` links would otherwise make 2^depth paths), whether through a followed
  // link or a bind mount.
  const walk = async (dir: string, rel: string, ancestors: Set<string>): Promise<void> => {
    const names = (await readdir(dir)).sort();
    for (const n of names) {
      const p = path.join(dir, n);
      const relName = `${rel}${n}`;
      const full = `${base}${relName}`;
      let s = await lstat(p);
      if (s.isSymbolicLink()) {
        if (!opts.followSymlinks) {
          // Stored as a link, like `zip -y` and tar: its target is not read.
          const target = await readlink(p);
          const lands = path.resolve(path.dirname(path.resolve(p)), target);
          if (!opts.allowOutsideSymlinks && (path.isAbsolute(target) || !isInside(lands, rootLexical))) {
            throw new ZipError(
              "ERR_INVALID_ENTRY",
              `symlink ${p} points outside the source tree (-> ${target}); it is not archived unless ${outsideHint} is given`,
            );
          }
          out.entries.push({ name: entryName(full, base, opts), size: Buffer.byteLength(target), source: p, link: { target, mtime: s.mtime } });
          continue;
        }
        let real: string;
        try {
          real = await realpath(p);
          s = await stat(p);
        } catch {
          out.warnings.push(`symlink ${p} is dangling: left out`);
          continue;
        }
        if (!opts.allowOutsideSymlinks && !isInside(real, rootReal)) {
          throw new ZipError(
            "ERR_INVALID_ENTRY",
            `symlink ${p} leads outside the source tree (-> ${real}); it is not followed unless ${outsideHint} is given`,
          );
        }
      }
      if (s.isDirectory()) {
        const id = `${s.dev}:${s.ino}`;
        if (ancestors.has(id)) {
          out.warnings.push(`${p} leads back to a directory it is inside (a symlink or mount loop): not entered again`);
          continue;
        }
        ancestors.add(id);
        await walk(p, `${relName}/`, ancestors);
        ancestors.delete(id);
      } else if (s.isFile()) {
        out.entries.push({
          name: entryName(full, base, opts),
          size: s.size,
          source: p,
          local: { path: p, mtime: s.mtime, mode: s.mode & 0o777 },
        });
      }
    }
  };
  await walk(loc.path, "", new Set([`${st.dev}:${st.ino}`]));
}

async function listPrefix(client: S3Client, bucket: string, prefix: string, signal?: AbortSignal) {
  const found: { key: string; size: number; etag?: string; mtime?: Date }[] = [];
  const { ListObjectsV2Command } = await import("@aws-sdk/client-s3");
  let token: string | undefined;
  do {
    const page = await client.send(
      new ListObjectsV2Command({ Bucket: bucket, Prefix: prefix || undefined, ContinuationToken: token }),
      { abortSignal: signal },
    );
    for (const o of page.Contents ?? []) {
      if (o.Key === undefined) continue;
      // Zero-byte "folder" markers created by consoles are not members.
      if (o.Key.endsWith("/") && (o.Size ?? 0) === 0) continue;
      found.push({ key: o.Key, size: o.Size ?? 0, etag: o.ETag, mtime: o.LastModified });
    }
    token = page.IsTruncated ? page.NextContinuationToken : undefined;
  } while (token !== undefined);
  return found;
}

function sdkName(err: unknown): string | undefined {
  const e = err as { name?: string; Code?: string; $metadata?: { httpStatusCode?: number } };
  if (e?.$metadata?.httpStatusCode === 404 && (e.name === "NotFound" || e.name === "Unknown")) return "NotFound";
  return e?.Code ?? e?.name;
}

/** Wraps an SDK failure in a ZipError with the `ERR_S3_*` code @zipstream/s3 uses for it. */
export function s3Failure(err: unknown, bucket: string, key: string, action: string): ZipError {
  if (err instanceof ZipError) return err;
  const name = sdkName(err);
  const status = (err as { $metadata?: { httpStatusCode?: number } })?.$metadata?.httpStatusCode;
  const at = `s3://${bucket}/${key}`;
  let e: ZipError;
  if (name === "NoSuchBucket") e = new ZipError("ERR_S3_NO_SUCH_BUCKET", `${action} ${at}: bucket "${bucket}" does not exist`, { cause: err });
  else if (name === "NoSuchKey" || name === "NotFound" || status === 404) e = new ZipError("ERR_S3_NO_SUCH_KEY", `${action} ${at}: no such key`, { cause: err });
  else if (name === "AccessDenied" || status === 403) e = new ZipError("ERR_S3_ACCESS_DENIED", `${action} ${at}: access denied`, { cause: err });
  else if (name === "PreconditionFailed" || status === 412) e = new ZipError("ERR_S3_SOURCE_CHANGED", `${action} ${at}: the object changed while it was read`, { cause: err });
  else if (name === "AbortError") e = new ZipError("ERR_ABORTED", `${action} ${at}: aborted`, { cause: err });
  else e = new ZipError("ERR_S3_READ", `${action} ${at} failed: ${(err as Error)?.message ?? String(err)}`, { cause: err });
  (e as { bucket?: string }).bucket = bucket;
  return e;
}

/**
 * `s3://bucket/` or `s3://bucket/dir/` is a prefix. Otherwise the key is tried as an object first
 * (HEAD); when there is none, `key/` is tried as a prefix; when that is empty too the key is
 * missing (ERR_S3_NO_SUCH_KEY, or skipped with `--on-missing skip`).
 */
async function collectS3(
  client: S3Client,
  loc: Extract<Location, { kind: "s3" }>,
  opts: JobOptions,
  out: Collected,
  signal?: AbortSignal,
): Promise<void> {
  const { bucket, key } = loc;
  const addPrefix = async (prefix: string): Promise<number> => {
    let found;
    try {
      found = await listPrefix(client, bucket, prefix, signal);
    } catch (err) {
      throw s3Failure(err, bucket, prefix, "listing");
    }
    for (const o of found) {
      out.entries.push({
        name: entryName(o.key, prefix, opts),
        size: o.size,
        source: `s3://${bucket}/${o.key}`,
        s3: { bucket, key: o.key, etag: o.etag, mtime: o.mtime },
      });
    }
    return found.length;
  };
  if (key === "" || key.endsWith("/")) {
    const n = await addPrefix(key);
    if (n === 0) {
      if (opts.onMissing === "skip") out.skipped.push(loc.text);
      else throw new ZipError("ERR_S3_EMPTY_SOURCE", `no object under ${loc.text}`);
    }
    return;
  }
  try {
    const { HeadObjectCommand } = await import("@aws-sdk/client-s3");
    const head = await client.send(new HeadObjectCommand({ Bucket: bucket, Key: key }), { abortSignal: signal });
    out.entries.push({
      name: entryName(key, key.slice(0, key.lastIndexOf("/") + 1), opts),
      size: head.ContentLength ?? 0,
      source: loc.text,
      s3: { bucket, key, etag: head.ETag, mtime: head.LastModified },
    });
    return;
  } catch (err) {
    const f = s3Failure(err, bucket, key, "reading");
    if (f.code !== "ERR_S3_NO_SUCH_KEY") throw f;
  }
  if ((await addPrefix(`${key}/`)) > 0) return;
  if (opts.onMissing === "skip") out.skipped.push(loc.text);
  else {
    const e = new ZipError("ERR_S3_NO_SUCH_KEY", `source not found: ${loc.text} (no such key, and no object under ${key}/)`);
    throw e;
  }
}

/** Resolves every source into planned entries (listing S3 prefixes, walking directories). */
export async function collectSources(
  sources: Location[],
  opts: JobOptions,
  getClient: () => S3Client,
  signal?: AbortSignal,
): Promise<Collected> {
  const out: Collected = { entries: [], skipped: [], warnings: [] };
  for (const loc of sources) {
    if (loc.kind === "local") await collectLocal(loc, opts, out);
    else await collectS3(getClient(), loc, opts, out, signal);
  }
  return out;
}

/**
 * Core entries for the planned members. Local files open only when their turn comes (`path`);
 * S3 objects are fetched lazily with `If-Match` on the listed ETag so that an object replaced
 * mid-run fails instead of mixing two versions.
 */
export function toZipEntries(planned: PlannedEntry[], getClient: () => S3Client, signal?: AbortSignal): ZipEntry[] {
  return planned.map((p): ZipEntry => {
    if (p.link) return { name: p.name, type: "symlink", source: p.link.target, mtime: p.link.mtime };
    if (p.local) return { name: p.name, path: p.local.path, size: p.size, mtime: p.local.mtime, mode: p.local.mode };
    const { bucket, key, etag, mtime } = p.s3!;
    return {
      name: p.name,
      size: p.size,
      mtime,
      source: async () => {
        try {
          const { GetObjectCommand } = await import("@aws-sdk/client-s3");
          const res = await getClient().send(new GetObjectCommand({ Bucket: bucket, Key: key, IfMatch: etag }), {
            abortSignal: signal,
          });
          return res.Body as Readable;
        } catch (err) {
          throw s3Failure(err, bucket, key, "reading");
        }
      },
    };
  });
}
