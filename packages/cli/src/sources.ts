import { lstat, readdir, readlink, realpath, stat } from "node:fs/promises";
import path from "node:path";
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
    if (code === "ENOENT") throw new ZipError("ERR_LOCAL_SOURCE_MISSING", `source not found: ${loc.text}`, { cause: err });
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

/** The S3 locations as `@zipstream/s3` takes them, with the CLI's entry names. */
async function collectS3(client: S3Client, locs: Extract<Location, { kind: "s3" }>[], opts: JobOptions, out: Collected, signal?: AbortSignal): Promise<void> {
  const { resolveLocations } = await import("@zipstream/s3");
  const found = await resolveLocations(locs, {
    client,
    onMissing: opts.onMissing,
    signal,
    // A listed object is named relative to its prefix; an object named directly, to its "directory".
    name: (key, src) => entryName(key, src.prefix ?? key.slice(0, key.lastIndexOf("/") + 1), opts),
  });
  for (const o of found.objects) {
    out.entries.push({ name: o.name, size: o.size, source: `s3://${o.bucket}/${o.key}`, s3: { bucket: o.bucket, key: o.key, etag: o.etag, mtime: o.lastModified } });
  }
  out.skipped.push(...found.skipped);
}

/** Resolves every source into planned entries (listing S3 prefixes, walking directories). */
export async function collectSources(
  sources: Location[],
  opts: JobOptions,
  getClient: () => S3Client,
  signal?: AbortSignal,
): Promise<Collected> {
  const out: Collected = { entries: [], skipped: [], warnings: [] };
  // Consecutive S3 locations are resolved together (their HEADs run concurrently); the order of
  // the sources is kept.
  for (let i = 0; i < sources.length; ) {
    const loc = sources[i]!;
    if (loc.kind === "local") {
      await collectLocal(loc, opts, out);
      i++;
      continue;
    }
    const run: Extract<Location, { kind: "s3" }>[] = [];
    for (let l = sources[i]; l?.kind === "s3"; l = sources[++i]) run.push(l);
    await collectS3(getClient(), run, opts, out, signal);
  }
  return out;
}

/** Core entries for the planned members, and what to close once the archive is done. */
export interface PlannedZipEntries {
  entries: ZipEntry[];
  /** Stops the S3 read-ahead (GETs in flight). */
  close(): void;
}

/**
 * Core entries for the planned members. Local files open only when their turn comes (`path`);
 * S3 objects are read by `@zipstream/s3` (`s3ZipEntries`): in order with read-ahead within the
 * `--prefetch-*` budget, every GET pinned to the listed ETag (an object replaced mid-run fails
 * with ERR_S3_SOURCE_CHANGED instead of mixing two versions), size-checked, and a body cut
 * mid-way resumed from the next byte.
 */
export async function toZipEntries(planned: PlannedEntry[], opts: JobOptions, getClient: () => S3Client, signal?: AbortSignal): Promise<PlannedZipEntries> {
  const remote = planned.filter((p) => !p.link && !p.local);
  let s3: { entries: ZipEntry[]; close(): void } = { entries: [], close: () => {} };
  if (remote.length > 0) {
    const { s3ZipEntries } = await import("@zipstream/s3");
    s3 = s3ZipEntries(
      remote.map((p) => ({ bucket: p.s3!.bucket, key: p.s3!.key, name: p.name, size: p.size, etag: p.s3!.etag ?? "", lastModified: p.s3!.mtime })),
      { client: getClient(), prefetch: { objects: opts.prefetchObjects, bytes: opts.prefetchBytes }, signal },
    );
  }
  let next = 0;
  const entries = planned.map((p): ZipEntry => {
    if (p.link) return { name: p.name, type: "symlink", source: p.link.target, mtime: p.link.mtime };
    if (p.local) return { name: p.name, path: p.local.path, size: p.size, mtime: p.local.mtime, mode: p.local.mode };
    return s3.entries[next++]!;
  });
  return { entries, close: () => s3.close() };
}
