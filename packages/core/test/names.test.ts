// Names that collide on disk, names that are not members, symlinks that leave the archive, and
// mode bits that would change an entry's type (issue 13). Every case is checked on the writer
// and on predictZipSize, which share the name registry.
import { describe, expect, it } from "vitest";
import { predictZipSize, zipStream, type ZipEntry, type ZipOptions } from "../src/index.js";
import { NameRegistry, resolveOptions } from "../src/plan.js";
import { collect, collectError, parseZip, pythonRead } from "./helpers.js";

const files = (...names: string[]): ZipEntry[] => names.map((name, i) => ({ name, source: `content ${i}` }));

/** The writer's error code (or "ok") and the predictor's, which must agree. */
async function outcome(entries: ZipEntry[], options?: ZipOptions): Promise<string> {
  let predicted: string;
  try {
    predictZipSize(entries, options);
    predicted = "ok";
  } catch (e: any) {
    predicted = e.code ?? String(e);
  }
  let written: string;
  try {
    await collect(zipStream(entries, options));
    written = "ok";
  } catch (e: any) {
    written = e.code ?? String(e);
  }
  expect(predicted, `predictor vs writer on ${JSON.stringify(entries.map((e) => e.name))}`).toBe(written);
  return written;
}

async function writtenNames(entries: ZipEntry[], options?: ZipOptions): Promise<string[]> {
  const zip = await collect(zipStream(entries, options));
  // The predictor accepts what the writer accepted (it throws otherwise).
  predictZipSize(entries, options);
  return parseZip(zip).entries.map((e) => e.name);
}

describe("empty and '.' segments", () => {
  it("are collapsed in the name written", async () => {
    const names = await writtenNames(files("./x", "reports//summary.csv", "a/./b", "d/.//e"), { method: "store" });
    expect(names).toEqual(["x", "reports/summary.csv", "a/b", "d/e"]);
    const dirs = await writtenNames([{ name: ".//dir//", type: "directory" }, { name: "./d2", type: "directory" }]);
    expect(dirs).toEqual(["dir/", "d2/"]);
  });

  it("then collide under duplicates: error (both writer and predictor)", async () => {
    for (const pair of [
      ["reports/summary.csv", "reports//summary.csv"],
      ["x", "./x"],
      ["a/b", "a/./b"],
      ["a/b", "a//./b"],
    ]) {
      expect(await outcome(files(...pair)), pair.join(" / ")).toBe("ERR_DUPLICATE_NAME");
    }
    // The writer fails before the second entry's header: its content is never emitted.
    const { error, bytes } = await collectError(zipStream(files("x", "./x"), { method: "store" }));
    expect(error.code).toBe("ERR_DUPLICATE_NAME");
    expect(bytes.includes(Buffer.from("content 1"))).toBe(false);
  });

  it("then are renamed under duplicates: rename", async () => {
    const names = await writtenNames(files("reports/summary.csv", "reports//summary.csv", "./reports/summary.csv"), { duplicates: "rename" });
    expect(names).toEqual(["reports/summary.csv", "reports/summary (1).csv", "reports/summary (2).csv"]);
  });

  it("'.' as a whole name, or as the last segment, is rejected with ERR_INVALID_NAME", async () => {
    for (const name of [".", "a/.", "./.", "a/b/.", "./", "a/./"]) {
      expect(await outcome(files(name)), JSON.stringify(name)).toBe("ERR_INVALID_NAME");
      expect(await outcome([{ name, type: "directory" }]), `directory ${JSON.stringify(name)}`).toBe("ERR_INVALID_NAME");
    }
    // Collapsing never turns a name into a drive-letter path or an empty one.
    for (const name of ["./C:/x", ".//", "././"]) expect(await outcome(files(name)), name).toBe("ERR_INVALID_NAME");
  });

  it("names with dots inside segments are untouched", async () => {
    expect(await writtenNames(files(".a", "a.", "a/..b/c", "...", "a/.../b"))).toEqual([".a", "a.", "a/..b/c", "...", "a/.../b"]);
  });
});

describe("collisions: case-only and Unicode-normalisation pairs", () => {
  const nfc = "caf\u00e9.txt";
  const nfd = "cafe\u0301.txt";

  it("are duplicates by default (collisions: portable), naming both names", async () => {
    for (const pair of [["A.txt", "a.txt"], ["Dir/x", "dir/X"], [nfc, nfd], ["CAFE\u0301.TXT", nfc]]) {
      expect(await outcome(files(...pair)), pair.join(" / ")).toBe("ERR_DUPLICATE_NAME");
    }
    const { error } = await collectError(zipStream(files("README.md", "readme.md")));
    expect(error.entry).toBe("readme.md");
    expect(error.message).toContain('"README.md"');
    expect(error.message).toContain('"readme.md"');
    // A directory and a file under another case of it.
    expect(await outcome([{ name: "Docs", type: "directory" }, { name: "docs/", type: "directory" }])).toBe("ERR_DUPLICATE_NAME");
  });

  it("are renamed under duplicates: rename, with the renamed name checked the same way", async () => {
    const names = await writtenNames(files("A.txt", "a.txt", "a (1).TXT", nfc, nfd), { duplicates: "rename" });
    expect(names).toEqual(["A.txt", "a (1).txt", "a (1) (1).TXT", nfc, "cafe\u0301 (1).txt"]);
    const py = await pythonRead(await collect(zipStream(files("A.txt", "a.txt"), { duplicates: "rename" })));
    expect(py.bad).toBeNull();
    expect(py.entries.map((e) => e.name)).toEqual(["A.txt", "a (1).txt"]);
  });

  it("are kept apart with collisions: exact, and written as given", async () => {
    expect(await writtenNames(files("A.txt", "a.txt", nfc, nfd), { collisions: "exact" })).toEqual(["A.txt", "a.txt", nfc, nfd]);
    expect(await outcome(files("A.txt", "A.txt"), { collisions: "exact" })).toBe("ERR_DUPLICATE_NAME");
  });

  it("names that differ on those file systems too stay apart (no false collisions)", async () => {
    expect(await outcome(files("stra\u00dfe", "strasse", "a.txt", "a.txt.", "\u00e9", "e"))).toBe("ok");
  });

  it("the option is validated up front", () => {
    expect(() => zipStream([], { collisions: "insensitive" as never })).toThrow(/"collisions"/);
    expect(() => predictZipSize([], { collisions: 1 as never })).toThrow(TypeError);
  });

  it("costs no memory per entry over exact comparison (the normalised name is hashed, never stored)", async () => {
    const names = Array.from({ length: 20_000 }, (_, i) => `D${i % 7}/f\u00e9-${i}.TXT`);
    const held: Record<string, number> = {};
    for (const collisions of ["portable", "exact"] as const) {
      const registry = new NameRegistry(resolveOptions({ collisions }));
      for (const name of names) {
        const r = registry.resolve(name);
        registry.commit(r.hash, r.bytes);
      }
      held[collisions] = registry.memoryBytes;
    }
    expect(held.portable).toBe(held.exact);
    expect(held.portable / names.length).toBeLessThan(100);
    // And all 20,000 are told apart, while a case- and NFD-variant of one of them is caught.
    const entries = names.map((name): ZipEntry => ({ name, source: "" }));
    expect(await outcome(entries, { method: "store" })).toBe("ok");
    expect(await outcome([...entries, { name: "d3/FE\u0301-3.txt", source: "" }], { method: "store" })).toBe("ERR_DUPLICATE_NAME");
  });
});

describe("symlinks", () => {
  const link = (name: string, target: unknown): ZipEntry => ({ name, type: "symlink", source: target as string });

  it("absolute targets are refused unless allowUnsafeSymlinks", async () => {
    for (const target of ["/etc/passwd", "//server/share", "C:/Windows", "c:x", "\\\\server\\share", "\\x"]) {
      expect(await outcome([link("l", target)]), target).toBe("ERR_INVALID_ENTRY");
      expect(await outcome([link("l", target)], { allowUnsafeSymlinks: true }), target).toBe("ok");
    }
  });

  it("targets climbing out of the archive are refused; those that stay inside are kept", async () => {
    const refused: [string, string][] = [
      ["l", ".."],
      ["l", "../x"],
      ["a/l", "../../x"],
      ["a/b/l", "../../../etc/passwd"],
      ["a/l", "x/../../../y"],
      ["a/l", "../x/../../y"],
      ["a/l", "..\\..\\x"],
      ["l", Buffer.from("../x") as unknown as string],
    ];
    for (const [name, target] of refused) {
      expect(await outcome([link(name, target)]), `${name} -> ${target}`).toBe("ERR_INVALID_ENTRY");
      expect(await outcome([link(name, target)], { allowUnsafeSymlinks: true }), `${name} -> ${target}`).toBe("ok");
    }
    const kept: [string, string][] = [
      ["l", "x"],
      ["l", "./x/y"],
      ["a/l", "../x"],
      ["a/b/l", "../../x"],
      ["a/l", "b/../c"],
      ["a/l", ".."],
    ];
    for (const [name, target] of kept) expect(await outcome([link(name, target)]), `${name} -> ${target}`).toBe("ok");
  });

  it("the error names the entry and the target, and nothing is written", async () => {
    const { error, bytes } = await collectError(zipStream([{ name: "ok", source: "x" }, link("evil", "/etc/passwd")], { method: "store" }));
    expect(error.code).toBe("ERR_INVALID_ENTRY");
    expect(error.entry).toBe("evil");
    expect(error.message).toMatch(/"\/etc\/passwd" is absolute/);
    expect(error.message).toMatch(/allowUnsafeSymlinks/);
    expect(bytes.includes(Buffer.from("/etc/passwd"))).toBe(false);
  });

  it("a target that is not a string or bytes cannot be checked: refused unless allowUnsafeSymlinks", async () => {
    const streamed = (): ZipEntry => ({ name: "l", type: "symlink", source: async function* () { yield Buffer.from("../../x"); } });
    expect(await outcome([streamed()])).toBe("ERR_INVALID_ENTRY");
    expect(await outcome([streamed()], { allowUnsafeSymlinks: true })).toBe("ok");
  });

  it("an entry beneath an earlier symlink entry is refused (the link would redirect it)", async () => {
    for (const entries of [
      [link("a/l", ".."), { name: "a/l/l2", type: "symlink" as const, source: ".." }],
      [link("l", "sub"), { name: "l/x", source: "x" }],
      [link("l", "sub"), { name: "l/d", type: "directory" as const }],
      [link("L", "sub"), { name: "l/x", source: "x" }],
    ] as ZipEntry[][]) {
      expect(await outcome(entries), entries.map((e) => e.name).join(", ")).toBe("ERR_INVALID_ENTRY");
      expect(await outcome(entries, { allowUnsafeSymlinks: true })).toBe("ok");
    }
    // Siblings and entries before the link are fine.
    expect(await outcome([{ name: "l2/x", source: "x" }, link("l", "l2"), { name: "lx", source: "y" }, { name: "l2/y", source: "z" }])).toBe("ok");
  });

  it("the option is validated up front", () => {
    expect(() => zipStream([], { allowUnsafeSymlinks: "yes" as never })).toThrow(/"allowUnsafeSymlinks"/);
  });
});

describe("mode bits never change an entry's type", () => {
  it("a file entry with symlink type bits (0o120777) is refused, even with allowUnsafeSymlinks", async () => {
    const e: ZipEntry = { name: "passwd", source: "/etc/passwd", mode: 0o120777 };
    for (const options of [{}, { allowUnsafeSymlinks: true }]) {
      const { error } = await collectError(zipStream([e], options));
      expect(error.code).toBe("ERR_INVALID_ENTRY");
      expect(error.message).toMatch(/symlink/);
      expect(() => predictZipSize([e], options)).toThrow(expect.objectContaining({ code: "ERR_INVALID_ENTRY" }));
    }
  });

  it("other non-regular type bits on a file, and non-directory bits on a directory, are refused", async () => {
    const refused: ZipEntry[] = [
      { name: "f", source: "x", mode: 0o040755 }, // directory
      { name: "f", source: "x", mode: 0o020644 }, // character device
      { name: "f", source: "x", mode: 0o060644 }, // block device
      { name: "f", source: "x", mode: 0o010644 }, // FIFO
      { name: "f", source: "x", mode: 0o140644 }, // socket
      { name: "f", source: "x", mode: 0o170644 }, // not a type at all
      { name: "d", type: "directory", mode: 0o100755 },
      { name: "d", type: "directory", mode: 0o120777 },
      { name: "l", type: "symlink", source: "x", mode: 0o100777 },
    ];
    for (const e of refused) expect(await outcome([e]), `${e.type ?? "file"} ${e.mode!.toString(8)}`).toBe("ERR_INVALID_ENTRY");
  });

  it("the entry's own type bits, or none, are accepted and written", async () => {
    const zip = await collect(
      zipStream([
        { name: "f", source: "x", mode: 0o100600 },
        { name: "g", source: "x", mode: 0o4755 },
        { name: "d", type: "directory", mode: 0o040700 },
        { name: "l", type: "symlink", source: "f", mode: 0o120755 },
      ]),
    );
    expect(parseZip(zip).entries.map((e) => (e.externalAttributes >>> 16).toString(8))).toEqual(["100600", "104755", "40700", "120755"]);
  });
});
