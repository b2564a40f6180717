import { describe, expect, it } from "vitest";
import { isZipError } from "@zipstream/core";
import { LambdaZipError, parseEvent, validateEvent, toSources, nameMapper, planMemory, safetyMargin } from "../src/index.js";

const MiB = 1024 * 1024;
const ok = { src: { bucket: "data", prefix: "exports/" }, dest: { bucket: "out", key: "a.zip" } };

function issuesOf(event: unknown) {
  return validateEvent(event).issues;
}

describe("event schema", () => {
  it("accepts every source form and the JSON subset of options", () => {
    const ev = parseEvent({
      src: [
        { bucket: "a", prefix: "p/" },
        { bucket: "b", keys: ["x", "y/z"] },
        [{ bucket: "c", key: "k1", name: "renamed", versionId: "v1" }],
        { bucket: "d", key: "k2" },
        { bucket: "d", key: "k3", size: 3, etag: '"e"' },
      ],
      dest: {
        bucket: "out",
        key: "x.zip",
        contentType: "application/zip",
        contentDisposition: "attachment",
        storageClass: "STANDARD_IA",
        serverSideEncryption: "aws:kms",
        sseKmsKeyId: "key",
        metadata: { a: "1" },
        tags: { t: "v" },
        cacheControl: "no-cache",
      },
      options: {
        method: "deflate",
        level: 9,
        partSize: 8 * MiB,
        equalParts: true,
        concurrency: 2,
        prefetch: { objects: 4, bytes: 16 * MiB },
        onMissing: "skip",
        duplicates: "rename",
        zip64: "always",
        allowEmpty: true,
        stripPrefix: "p/",
        flatten: false,
        namePrefix: "export/",
        password: { env: "ZIP_PASSWORD" },
      },
    });
    expect(ev.options?.password).toEqual({ env: "ZIP_PASSWORD" });
    // Consecutive single-object refs are grouped; order is kept.
    expect(toSources(ev)).toEqual([
      { bucket: "a", prefix: "p/" },
      { bucket: "b", keys: ["x", "y/z"] },
      [{ bucket: "c", key: "k1", name: "renamed", versionId: "v1" }],
      [
        { bucket: "d", key: "k2" },
        { bucket: "d", key: "k3", size: 3, etag: '"e"' },
      ],
    ]);
    expect(toSources(parseEvent(ok))).toEqual([{ bucket: "data", prefix: "exports/" }]);
  });

  it("lists every problem with its path in one ERR_INVALID_EVENT", () => {
    let caught: unknown;
    try {
      parseEvent({
        src: [{ bucket: "a", keys: ["ok", ""] }, { bucket: "", prefix: "p" }, [{ bucket: "c" }], { bucket: "d", prefix: "x", keys: ["y"] }],
        dest: { bucket: "out" },
        options: { method: "zstd", level: 11, partSize: 1024, concurrency: 0, prefetch: { objects: 0 }, onMissing: "ignore", colour: "red" },
        extra: 1,
      });
    } catch (e) {
      caught = e;
    }
    expect(isZipError(caught, "ERR_INVALID_EVENT")).toBe(true);
    const err = caught as LambdaZipError;
    expect(err).toBeInstanceOf(LambdaZipError);
    expect(err.name).toBe("ERR_INVALID_EVENT");
    const paths = err.issues!.map((i) => i.path);
    expect(paths).toEqual(
      expect.arrayContaining([
        "src[0].keys[1]",
        "src[1].bucket",
        "src[2][0]",
        "src[3]",
        "dest.key",
        "options.method",
        "options.level",
        "options.partSize",
        "options.concurrency",
        "options.prefetch.objects",
        "options.onMissing",
        "options.colour",
        "extra",
      ]),
    );
    expect(err.issues).toHaveLength(13);
    expect(new Set(paths).size).toBe(13);
    // The message carries every issue too, one per line.
    for (const p of paths) expect(err.message).toContain(`${p}:`);
    expect(err.issues!.find((i) => i.path === "src[3]")!.message).toMatch(/exactly one of 'prefix', 'keys' or 'key'/);
    expect(err.issues!.find((i) => i.path === "options.partSize")!.message).toMatch(/^partSize must be an integer from 5242880 to 5368709120; got 1024$/);
  });

  it("requires src and dest, and refuses an empty source list and non-objects", () => {
    expect(issuesOf({}).map((i) => i.path)).toEqual(["src", "dest"]);
    expect(issuesOf({ ...ok, src: [] })).toEqual([{ path: "src", message: "src must not be an empty list" }]);
    expect(issuesOf("zip it").map((i) => i.path)).toEqual([""]);
    expect(issuesOf(null)).toHaveLength(1);
    expect(issuesOf({ ...ok, src: { bucket: "a", prefix: "p", name: "n" } })).toEqual([
      { path: "src.name", message: "'name' is only allowed with 'key'" },
    ]);
  });

  it("never accepts an inline password, and never echoes it", () => {
    const secret = "hunter2-very-secret";
    let caught: unknown;
    try {
      parseEvent({ ...ok, options: { password: secret } });
    } catch (e) {
      caught = e;
    }
    const err = caught as LambdaZipError;
    expect(err.code).toBe("ERR_INVALID_EVENT");
    expect(err.issues).toEqual([{ path: "options.password", message: expect.stringMatching(/inline passwords are not accepted/) }]);
    expect(JSON.stringify(err.toJSON())).not.toContain(secret);
    expect(err.message).not.toContain(secret);
    expect(issuesOf({ ...ok, options: { password: { value: secret } } }).map((i) => i.path)).toEqual(["options.password", "options.password.env"]);
    expect(JSON.stringify(issuesOf({ ...ok, options: { password: { value: secret } } }))).not.toContain(secret);
    // The function's own credentials cannot become a password.
    expect(issuesOf({ ...ok, options: { password: { env: "AWS_SECRET_ACCESS_KEY" } } }).map((i) => i.path)).toEqual(["options.password.env"]);
    expect(issuesOf({ ...ok, options: { password: { env: "ZIP_PW" } } })).toEqual([]);
  });

  it("bounds key length (S3: 1,024 bytes of UTF-8)", () => {
    expect(issuesOf({ ...ok, dest: { bucket: "o", key: "é".repeat(513) } }).map((i) => i.path)).toEqual(["dest.key"]);
    expect(issuesOf({ ...ok, dest: { bucket: "o", key: "é".repeat(512) } })).toEqual([]);
  });
});

describe("name mapping as data", () => {
  it("is absent by default so zipS3Keys' own default applies", () => {
    expect(nameMapper({})).toBeUndefined();
  });
  it("strips a prefix, flattens, and prepends a folder", () => {
    const strip = nameMapper({ stripPrefix: "exports/2024/" })!;
    expect(strip("exports/2024/a/b.csv", { bucket: "x", key: "exports/2024/a/b.csv" })).toBe("a/b.csv");
    expect(strip("other/c.csv", { bucket: "x", key: "other/c.csv" })).toBe("other/c.csv");
    const flat = nameMapper({ flatten: true, namePrefix: "out/" })!;
    expect(flat("exports/2024/a/b.csv", { bucket: "x", key: "exports/2024/a/b.csv", prefix: "exports/" })).toBe("out/b.csv");
    const pre = nameMapper({ namePrefix: "june/" })!;
    expect(pre("exports/a.csv", { bucket: "x", key: "exports/a.csv", prefix: "exports/" })).toBe("june/a.csv");
    expect(pre("k/a.csv", { bucket: "x", key: "k/a.csv" })).toBe("june/k/a.csv");
  });
});

describe("memory plan", () => {
  it("follows the documented formula", () => {
    expect(planMemory(128).plan).toMatchObject({ partSize: 16 * MiB, concurrency: 2, prefetch: { objects: 4, bytes: 16 * MiB } });
    expect(planMemory(1024).plan).toMatchObject({ partSize: 64 * MiB, concurrency: 2, prefetch: { objects: 16, bytes: 128 * MiB } });
    expect(planMemory(2048).plan).toMatchObject({ partSize: 64 * MiB, concurrency: 4, prefetch: { objects: 32, bytes: 256 * MiB } });
    expect(planMemory(10240).plan).toMatchObject({ partSize: 64 * MiB, concurrency: 16, prefetch: { objects: 64, bytes: 256 * MiB } });
  });
  it("keeps buffers within half the memory for every Lambda size", () => {
    for (let mb = 128; mb <= 10240; mb += 64) {
      const { plan, issues } = planMemory(mb);
      expect(issues).toEqual([]);
      expect(plan.peak).toBeLessThanOrEqual(plan.budget);
      expect(plan.partSize).toBeGreaterThanOrEqual(5 * MiB);
      expect(plan.partSize % MiB).toBe(0);
    }
  });
  it("lets explicit options win, shrinking what is derived, within 80 % of memory", () => {
    // A large explicit part: fewer parts in flight.
    expect(planMemory(2048, { partSize: 256 * MiB }).plan).toMatchObject({ partSize: 256 * MiB, concurrency: 2 });
    expect(planMemory(2048, { partSize: 256 * MiB }).issues).toEqual([]);
    expect(planMemory(512, { concurrency: 8, partSize: 5 * MiB }).plan).toMatchObject({ concurrency: 8, partSize: 5 * MiB });
    const tooBig = planMemory(1024, { partSize: 512 * MiB });
    expect(tooBig.issues).toEqual([{ path: "options.partSize", message: expect.stringMatching(/exceed 80 % of the function's 1024 MB/) }]);
    expect(planMemory(1024, { partSize: 128 * MiB, concurrency: 8 }).issues[0]!.path).toBe("options");
  });
  it("keeps a safety margin of max(10 s, 5 %)", () => {
    expect(safetyMargin(900_000)).toBe(45_000);
    expect(safetyMargin(60_000)).toBe(10_000);
    expect(safetyMargin(60_000, 2_000)).toBe(3_000);
  });
});
