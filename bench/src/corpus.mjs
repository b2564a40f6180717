// The benchmark corpus: real files from this machine (text from /usr/share, binaries from
// /usr/lib) and incompressible random data, copied into one directory so that every run reads
// the same bytes from the same disk. Built once, then reused (its manifest records sizes).
import { createHash, randomFillSync } from "node:crypto";
import { copyFileSync, existsSync, mkdirSync, openSync, readSync, closeSync, readdirSync, readFileSync, statSync, writeFileSync, lstatSync } from "node:fs";
import { join, relative } from "node:path";

const MiB = 1024 * 1024;

/** Walks `root` and yields regular files (no symlinks), sorted for determinism. */
function* walk(root) {
  let names;
  try { names = readdirSync(root).sort(); } catch { return; }
  for (const n of names) {
    const p = join(root, n);
    let st;
    try { st = lstatSync(p); } catch { continue; }
    if (st.isDirectory()) yield* walk(p);
    else if (st.isFile()) yield { path: p, size: st.size };
  }
}

function looksLikeText(path) {
  const fd = openSync(path, "r");
  try {
    const b = Buffer.alloc(8192);
    const n = readSync(fd, b, 0, b.length, 0);
    if (n === 0) return false;
    for (let i = 0; i < n; i++) if (b[i] === 0) return false;
    // gzip, png, etc. start with non-text magic; most text starts with a printable byte
    return b[0] >= 9 && b[0] < 128;
  } finally { closeSync(fd); }
}

/**
 * Builds (or reuses) the corpus in `dir`. `scale` 1 gives about 1 GiB in a few hundred files:
 * 400 MiB of text, 400 MiB of binaries, 200 MiB of random bytes (the text budget is reached only
 * where the machine has that much text; a Debian image has about 390 MiB).
 */
export function buildCorpus(dir, scale = 1) {
  const manifestPath = join(dir, "manifest.json");
  if (existsSync(manifestPath)) {
    const m = JSON.parse(readFileSync(manifestPath, "utf8"));
    if (m.scale === scale) return m;
  }
  mkdirSync(dir, { recursive: true });
  const files = [];
  const take = (kind, candidates, budget, minSize) => {
    let total = 0;
    for (const c of candidates) {
      if (total >= budget) break;
      if (c.size < minSize || c.size > 64 * MiB) continue;
      if (kind === "text" && !looksLikeText(c.path)) continue;
      if (kind === "binary" && looksLikeText(c.path)) continue;
      const name = `${kind}/${files.length.toString().padStart(4, "0")}-${c.path.split("/").pop()}`;
      mkdirSync(join(dir, kind), { recursive: true });
      copyFileSync(c.path, join(dir, name));
      files.push({ name, path: join(dir, name), size: c.size, kind });
      total += c.size;
    }
    return total;
  };
  // /usr/share alone holds only ~110 MiB of text files of 64 KiB or more on a Debian image, so
  // text continues from headers and from the text files (scripts, sources) under /usr/lib.
  function* textRoots() { yield* walk("/usr/share"); yield* walk("/usr/include"); yield* walk("/usr/lib"); }
  take("text", textRoots(), 400 * MiB * scale, 64 * 1024);
  take("binary", walk("/usr/lib"), 400 * MiB * scale, 512 * 1024);
  // Random data: sizes from 1 to 24 MiB, seeded so that rebuilding gives the same sizes.
  let seed = 12345, total = 0;
  mkdirSync(join(dir, "random"), { recursive: true });
  while (total < 200 * MiB * scale) {
    seed = (seed * 1103515245 + 12345) >>> 0;
    const size = Math.min(MiB + (seed % (23 * MiB)), 200 * MiB * scale - total + MiB);
    const name = `random/${files.length.toString().padStart(4, "0")}.bin`;
    const buf = Buffer.allocUnsafe(size);
    randomFillSync(buf);
    writeFileSync(join(dir, name), buf);
    files.push({ name, path: join(dir, name), size, kind: "random" });
    total += size;
  }
  const m = { scale, files, bytes: files.reduce((n, f) => n + f.size, 0) };
  writeFileSync(manifestPath, JSON.stringify(m));
  return m;
}

/** A small corpus for smoke tests: a few files of each kind. */
export function smallCorpus(dir) {
  mkdirSync(dir, { recursive: true });
  const files = [];
  const text = Buffer.from("zipstream benchmark smoke corpus line\n".repeat(5000));
  const rnd = Buffer.allocUnsafe(300 * 1024); randomFillSync(rnd);
  const empty = Buffer.alloc(0);
  for (const [name, buf] of [["a/text.txt", text], ["b/random.bin", rnd], ["c/empty", empty], ["d/été ☕.txt", text.subarray(0, 777)]]) {
    const p = join(dir, name.replace(/\//g, "_"));
    writeFileSync(p, buf);
    files.push({ name, path: p, size: buf.length, sha256: createHash("sha256").update(buf).digest("hex") });
  }
  return { scale: 0, files, bytes: files.reduce((n, f) => n + f.size, 0) };
}

export function corpusSummary(m) {
  const by = {};
  for (const f of m.files) { by[f.kind ?? "file"] ??= { files: 0, bytes: 0 }; by[f.kind ?? "file"].files++; by[f.kind ?? "file"].bytes += f.size; }
  return by;
}
export { relative };
