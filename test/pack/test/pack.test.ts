/**
 * The release path, as a user meets it: `pnpm -r pack` of the four published packages (prepack
 * builds them), then each tarball installed with plain `npm` into fresh projects outside the
 * workspace, on Node 22 and Node 24, against the real S3 server of the other suites:
 *   - `import` and `require()` of every package, each writing an archive that `unzip -t` accepts;
 *   - the CLI through `npx @zipstream/cli` and through a global install of the tarballs;
 *   - `tsc --noEmit` of a consumer under moduleResolution node16, nodenext and bundler;
 *   - `publint --strict` and `attw --pack` on every tarball, with nothing reported;
 *   - a consumer pinning the lowest `@aws-sdk/client-s3` of the peer range: one SDK copy, its
 *     S3Client type-checks against zipS3Keys and zips at run time;
 *   - `pnpm publish --dry-run` of the workspace (docs/releasing.md).
 * npm needs the registry; it uses its cache (~/.npm) with --prefer-offline, so a second run
 * downloads nothing.
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { execFile } from "node:child_process";
import { cpSync, existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { createRequire } from "node:module";
import { tmpdir } from "node:os";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { getTestS3, type TestS3 } from "@zipstream/testkit";

const here = dirname(fileURLToPath(import.meta.url));
const ROOT = resolve(here, "../../..");
const FIXTURES = resolve(here, "../consumer");
const PACKAGES = ["core", "s3", "lambda", "cli"] as const;
const require = createRequire(import.meta.url);
const VERSION = Object.fromEntries(
  PACKAGES.map((p) => [p, JSON.parse(readFileSync(join(ROOT, "packages", p, "package.json"), "utf8")).version as string]),
) as Record<(typeof PACKAGES)[number], string>;
/** What `zipstream --version` must print: the version the package is published under. */
const CLI_VERSION = VERSION.cli;

interface Run {
  code: number | null;
  stdout: string;
  stderr: string;
}

/** Runs a command; never throws, so a test can show what a failing command printed. */
function run(cmd: string, args: string[], opts: { cwd: string; env?: NodeJS.ProcessEnv; timeoutMs?: number }): Promise<Run> {
  return new Promise((done) => {
    execFile(
      cmd,
      args,
      { cwd: opts.cwd, env: opts.env ?? process.env, maxBuffer: 64 * 1024 * 1024, timeout: opts.timeoutMs ?? 240_000 },
      (err, stdout, stderr) => {
        const code = err ? (typeof (err as { code?: unknown }).code === "number" ? (err as { code: number }).code : null) : 0;
        done({ code, stdout: String(stdout), stderr: String(stderr) + (err && code === null ? `\n${err.message}` : "") });
      },
    );
  });
}

/** Like {@link run}, failing the test with the command's output when it exits non-zero. */
async function ok(cmd: string, args: string[], opts: Parameters<typeof run>[2]): Promise<Run> {
  const r = await run(cmd, args, opts);
  if (r.code !== 0) throw new Error(`${cmd} ${args.join(" ")} (in ${opts.cwd}) exited ${r.code}\n${r.stdout}\n${r.stderr}`);
  return r;
}

/** Environment whose PATH starts with the directory of `node`: npm, npx and bins run on it. */
function envFor(node: string, extra: NodeJS.ProcessEnv = {}): NodeJS.ProcessEnv {
  return { ...process.env, PATH: `${dirname(node)}:${process.env.PATH}`, npm_config_update_notifier: "false", ...extra };
}

const NPM_FLAGS = ["--no-fund", "--no-audit", "--prefer-offline", "--loglevel=error"];

/** `unzip -t` of an archive; returns the member names it tested. */
async function unzipTest(archive: string): Promise<string[]> {
  const r = await ok("unzip", ["-t", archive], { cwd: dirname(archive) });
  expect(r.stdout).toMatch(/No errors detected/);
  return [...r.stdout.matchAll(/^\s+testing: (.+?)\s+OK$/gm)].map((m) => m[1]!);
}

let work: string;
let tarballs: Record<(typeof PACKAGES)[number], string>;
let node22: string;
let node24: string;
let pnpm: string;
let s3: TestS3;
let bucket: string;
let tree: string;
const TREE_FILES = ["a.txt", "sub/b.txt", "sub/deeper/c.bin"];
// big.bin is over zipS3Keys' default copyMinSize (16 MiB), so the default assembly "auto" has S3
// copy it (UploadPartCopy): each consumer's SDK runs both the streaming and the copy path.
const SRC_KEYS = ["src/one.txt", "src/two/three.txt", "src/four.bin", "src/big.bin"];
const BIG = 17 * 1024 * 1024;

beforeAll(async () => {
  // The project's toolchain: the pinned pnpm, and Node 22 and 24 (fetched into .tmp/ if needed).
  const tools = await ok(
    "bash",
    ["-c", 'source scripts/toolchain.sh >&2 && command -v pnpm && zs_node 22 && zs_node 24'],
    { cwd: ROOT },
  );
  [pnpm, node22, node24] = tools.stdout.trim().split("\n") as [string, string, string];
  expect((await ok(node22, ["--version"], { cwd: ROOT })).stdout).toMatch(/^v22\./);
  expect((await ok(node24, ["--version"], { cwd: ROOT })).stdout).toMatch(/^v24\./);

  work = mkdtempSync(join(tmpdir(), "zipstream-pack-"));
  const dest = join(work, "tarballs");
  // One package at a time: a prepack cleans dist/ that the next package's build reads.
  await ok(pnpm, ["-r", "--filter", "./packages/*", "--workspace-concurrency=1", "pack", "--pack-destination", dest], {
    cwd: ROOT,
    env: envFor(node24),
  });
  const files = readdirSync(dest).sort();
  expect(files).toEqual(PACKAGES.map((p) => `zipstream-${p}-${VERSION[p]}.tgz`).sort());
  tarballs = Object.fromEntries(PACKAGES.map((p) => [p, join(dest, `zipstream-${p}-${VERSION[p]}.tgz`)])) as typeof tarballs;

  s3 = await getTestS3();
  bucket = await s3.newBucket("zs-pack");
  await s3.putObjects(
    bucket,
    SRC_KEYS.map((key, i) => ({ key, body: key.endsWith("big.bin") ? new Uint8Array(BIG).fill(i + 1) : `object ${i} `.repeat(100 * (i + 1)) })),
  );

  tree = join(work, "tree");
  for (const f of TREE_FILES) {
    mkdirSync(dirname(join(tree, f)), { recursive: true });
    writeFileSync(join(tree, f), `file ${f}\n`.repeat(50));
  }
}, 900_000); // ~40 s on an idle 2-core machine; four builds and a bundle take far longer on a loaded one

afterAll(async () => {
  await s3?.cleanup();
  if (work && process.env.ZIPSTREAM_KEEP_PACK !== "1") rmSync(work, { recursive: true, force: true });
});

/** Environment for consumer scripts: the S3 server and the fixtures' inputs. */
function s3Env(node: string): NodeJS.ProcessEnv {
  return envFor(node, {
    S3_ENDPOINT: s3.endpoint,
    AWS_REGION: s3.region,
    AWS_ACCESS_KEY_ID: s3.credentials.accessKeyId,
    AWS_SECRET_ACCESS_KEY: s3.credentials.secretAccessKey,
    PACK_BUCKET: bucket,
    PACK_TREE: tree,
  });
}

/** A fresh npm project outside the workspace, with the fixtures copied in. */
function newProject(name: string): string {
  const dir = join(work, name);
  mkdirSync(dir);
  writeFileSync(join(dir, "package.json"), JSON.stringify({ name, version: "1.0.0", private: true }, null, 2));
  cpSync(FIXTURES, dir, { recursive: true });
  return dir;
}

function tarList(tgz: string): Promise<string[]> {
  return ok("tar", ["-tzf", tgz], { cwd: work }).then((r) => r.stdout.trim().split("\n"));
}

describe("the packed tarballs", () => {
  it("hold the built dist, LICENSE, README and no workspace: ranges, source maps or sources", async () => {
    for (const p of PACKAGES) {
      const files = await tarList(tarballs[p]);
      for (const f of ["LICENSE", "README.md", "package.json", "dist/index.js", "dist/index.d.ts", "dist/index.cjs", "dist/index.d.cts"]) {
        expect(files, `${p}: ${f}`).toContain(`package/${f}`);
      }
      expect(files.filter((f) => f.endsWith(".map") || f.startsWith("package/src/") || f.startsWith("package/scripts/")), p).toEqual([]);
      const manifest = (await ok("tar", ["-xzOf", tarballs[p], "package/package.json"], { cwd: work })).stdout;
      expect(manifest, p).not.toMatch(/workspace:/);
      const pkg = JSON.parse(manifest);
      expect(pkg.engines.node, p).toBe(">=22.12");
      expect(pkg.repository.url, p).toBe("git+https://github.com/zipstream/zipstream.git");
      const readme = (await ok("tar", ["-xzOf", tarballs[p], "package/README.md"], { cwd: work })).stdout;
      // Starts with the install command; no relative links (they break on the registry's page).
      expect(readme.split("\n").slice(0, 8).join("\n"), p).toMatch(/```sh\n(npm install|npx) /);
      expect(readme, p).not.toMatch(/\]\((?!https?:|#)[^)]*\)/);
    }
  });

  it("@zipstream/lambda ships the deployment zip (index.mjs at its root), not the bundler script", async () => {
    const files = await tarList(tarballs.lambda);
    expect(files).toContain("package/dist-zip/lambda.zip");
    const dir = join(work, "lambda-zip");
    mkdirSync(dir);
    await ok("tar", ["-xzf", tarballs.lambda, "-C", dir, "package/dist-zip/lambda.zip"], { cwd: work });
    const members = await unzipTest(join(dir, "package/dist-zip/lambda.zip"));
    expect(members).toContain("index.mjs");
    expect(members).toContain("index.mjs.map");
  });

  it("publint --strict finds nothing", async () => {
    const bin = binOf("publint", "publint");
    for (const p of PACKAGES) {
      const r = await ok(node24, [bin, "--strict", tarballs[p]], { cwd: work });
      expect(r.stdout + r.stderr, p).toMatch(/All good!/);
    }
  });

  it("attw --pack (are the types wrong) finds no problem", async () => {
    const bin = binOf("@arethetypeswrong/cli", "attw");
    for (const p of PACKAGES) {
      // lambda.zip is a data file, not a module: attw judges module entry points only.
      const r = await ok(node24, [bin, tarballs[p], "--format", "json", "--exclude-entrypoints", "./lambda.zip"], { cwd: work });
      const report = JSON.parse(r.stdout);
      expect(report.analysis.problems, p).toEqual([]);
    }
  });
});

/** The bin script of a devDependency of this project (not every package exports package.json). */
function binOf(pkg: string, name: string): string {
  const manifestPath = join(here, "..", "node_modules", pkg, "package.json");
  const manifest = JSON.parse(readFileSync(manifestPath, "utf8"));
  const rel = typeof manifest.bin === "string" ? manifest.bin : manifest.bin[name];
  return join(dirname(manifestPath), rel);
}

for (const major of [22, 24] as const) {
  describe(`installed with npm, on Node ${major}`, () => {
    let dir: string;
    let node: string;
    beforeAll(async () => {
      node = major === 22 ? node22 : node24;
      dir = newProject(`consumer-node${major}`);
      await ok("npm", ["install", ...NPM_FLAGS, ...PACKAGES.map((p) => tarballs[p])], { cwd: dir, env: envFor(node) });
    });

    it("import of each package zips something unzip -t accepts", async () => {
      await ok(node, ["esm.mjs"], { cwd: dir, env: s3Env(node) });
      await checkResults(join(dir, "out", `esm-node${major}`));
    });

    it("require() of each package zips something unzip -t accepts, from the same module instance", async () => {
      await ok(node, ["cjs.cjs"], { cwd: dir, env: s3Env(node) });
      const out = join(dir, "out", `cjs-node${major}`);
      await checkResults(out);
      const identity = JSON.parse(readFileSync(join(out, "identity.json"), "utf8"));
      expect(identity).toEqual({ sameZipError: true, resolved: join(dir, "node_modules/@zipstream/core/dist/index.cjs") });
    });

    it("npx @zipstream/cli runs the installed CLI: --version, and a folder zipped", async () => {
      const version = await ok("npx", ["@zipstream/cli", "--version"], { cwd: dir, env: envFor(node) });
      expect(version.stdout.trim()).toBe(CLI_VERSION);
      const archive = join(dir, "npx-tree.zip");
      await ok("npx", ["@zipstream/cli", `${tree}/`, archive], { cwd: dir, env: envFor(node) });
      expect((await unzipTest(archive)).sort()).toEqual(TREE_FILES.slice().sort());
    });

    it("a global install of the tarballs gives a zipstream command", async () => {
      const prefix = join(work, `global-node${major}`);
      await ok("npm", ["install", "--global", "--prefix", prefix, ...NPM_FLAGS, tarballs.core, tarballs.s3, tarballs.cli], {
        cwd: work,
        env: envFor(node),
      });
      const bin = join(prefix, "bin", "zipstream");
      expect((await ok(bin, ["--version"], { cwd: work, env: envFor(node) })).stdout.trim()).toBe(CLI_VERSION);
      const archive = join(work, `global-node${major}.zip`);
      await ok(bin, [`${tree}/`, archive], { cwd: work, env: envFor(node) });
      expect((await unzipTest(archive)).sort()).toEqual(TREE_FILES.slice().sort());
    });
  });
}

/** Every archive a consumer script wrote passes unzip -t and holds what was zipped. */
async function checkResults(out: string): Promise<void> {
  const results = JSON.parse(readFileSync(join(out, "results.json"), "utf8"));
  expect(Object.keys(results.archives).sort()).toEqual(["cli", "core", "lambda", "s3"]);
  expect((await unzipTest(results.archives.core)).sort()).toEqual(["data/bytes.bin", "hello.txt"]);
  const srcNames = SRC_KEYS.map((k) => k.slice("src/".length)).sort();
  expect((await unzipTest(results.archives.s3)).sort()).toEqual(srcNames);
  expect((await unzipTest(results.archives.lambda)).sort()).toEqual(srcNames);
  expect((await unzipTest(results.archives.cli)).sort()).toEqual(TREE_FILES.slice().sort());
  expect(results.s3Entries).toBe(SRC_KEYS.length);
  expect(results.lambdaEntries).toBe(SRC_KEYS.length);
  expect([results.s3Assembly, results.lambdaAssembly]).toEqual(["copy", "copy"]);
  expect(results.cliExit).toBe(0);
  expect(results.missingKey).toEqual({ code: "ERR_S3_NO_SUCH_KEY", isZipError: true, isS3ZipError: true });
}

describe("a TypeScript consumer of the installed tarballs", () => {
  let dir: string;
  beforeAll(async () => {
    dir = newProject("consumer-ts");
    const ts = JSON.parse(readFileSync(require.resolve("typescript/package.json"), "utf8")).version;
    await ok("npm", ["install", ...NPM_FLAGS, ...PACKAGES.map((p) => tarballs[p]), `typescript@${ts}`, "@types/node@22"], {
      cwd: dir,
      env: envFor(node24),
    });
    const body = readFileSync(join(dir, "check.ts.txt"), "utf8");
    for (const ext of ["mts", "cts", "ts"]) writeFileSync(join(dir, `check.${ext}`), body);
  });

  // Our declaration files are type-checked once (skipLibCheck false checks every .d.ts, the
  // SDK's too: ~15 s); the other modes check resolution and use only.
  const modes: [string, object, string[]][] = [
    ["node16", { module: "node16", moduleResolution: "node16", skipLibCheck: false }, ["check.mts"]],
    // TypeScript >= 5.8 models require() of an ES module under nodenext, as Node >= 22.12 does it.
    ["nodenext", { module: "nodenext", moduleResolution: "nodenext", skipLibCheck: true }, ["check.mts", "check.cts"]],
    ["bundler", { module: "preserve", moduleResolution: "bundler", skipLibCheck: true }, ["check.ts"]],
  ];
  for (const [name, options, files] of modes) {
    it(`tsc --noEmit under moduleResolution ${name}`, async () => {
      const config = `tsconfig.${name}.json`;
      writeFileSync(
        join(dir, config),
        JSON.stringify({
          compilerOptions: { target: "es2022", strict: true, noEmit: true, types: ["node"], ...options },
          files,
        }),
      );
      const r = await run(node24, [join(dir, "node_modules/typescript/bin/tsc"), "-p", config], { cwd: dir });
      expect(r.stdout + r.stderr).toBe("");
      expect(r.code).toBe(0);
    });
  }
});

describe("a consumer pinning the lowest supported @aws-sdk/client-s3", () => {
  const lowest = JSON.parse(readFileSync(join(ROOT, "packages/s3/package.json"), "utf8")).peerDependencies["@aws-sdk/client-s3"].replace(/^\^/, "");
  let dir: string;
  beforeAll(async () => {
    dir = newProject("consumer-old-sdk");
    const ts = JSON.parse(readFileSync(require.resolve("typescript/package.json"), "utf8")).version;
    await ok(
      "npm",
      ["install", ...NPM_FLAGS, "--save-exact", `@aws-sdk/client-s3@${lowest}`, tarballs.core, tarballs.s3, `typescript@${ts}`, "@types/node@22"],
      { cwd: dir, env: envFor(node22) },
    );
  });

  it(`gets one SDK copy (${lowest})`, async () => {
    const r = await ok("npm", ["ls", "@aws-sdk/client-s3", "--all", "--parseable", "--long"], { cwd: dir, env: envFor(node22) });
    const copies = r.stdout.trim().split("\n").filter(Boolean);
    expect(copies).toHaveLength(1);
    expect(copies[0]).toContain(`@aws-sdk/client-s3@${lowest}`);
  });

  it("its S3Client type-checks against zipS3Keys (nodenext)", async () => {
    writeFileSync(join(dir, "old-sdk-check.mts"), [
      'import { S3Client } from "@aws-sdk/client-s3";',
      'import { zipS3Keys, type ZipS3Result } from "@zipstream/s3";',
      'const client = new S3Client({ region: "us-east-1", forcePathStyle: true });',
      'export const job: Promise<ZipS3Result> = zipS3Keys({ client, src: { bucket: "b", keys: ["k"] }, dest: { bucket: "d", key: "k.zip" } });',
      "",
    ].join("\n"));
    writeFileSync(
      join(dir, "tsconfig.json"),
      // skipLibCheck false: our declaration files are checked against this SDK's types too.
      JSON.stringify({ compilerOptions: { module: "nodenext", target: "es2022", strict: true, noEmit: true, skipLibCheck: false, types: ["node"] }, files: ["old-sdk-check.mts"] }),
    );
    const r = await run(node22, [join(dir, "node_modules/typescript/bin/tsc"), "-p", "tsconfig.json"], { cwd: dir });
    expect(r.stdout + r.stderr).toBe("");
    expect(r.code).toBe(0);
  });

  it("zips S3 objects at run time with that client, on Node 22", async () => {
    const r = await ok(node22, ["old-sdk.mjs"], { cwd: dir, env: s3Env(node22) });
    expect(JSON.parse(r.stdout.trim().split("\n").pop()!)).toEqual({ entries: SRC_KEYS.length, assembly: "copy" });
    expect((await unzipTest(join(dir, "out/old-sdk.zip"))).sort()).toEqual(SRC_KEYS.map((k) => k.slice(4)).sort());
  });
});

describe("the release procedure (docs/releasing.md)", () => {
  it("pnpm publish --dry-run publishes the four packages and nothing else", async () => {
    // --ignore-scripts: the prepack builds ran for the pack above (the same tree); this checks
    // what the publish selects and that pnpm accepts every manifest.
    const r = await ok(
      pnpm,
      ["-r", "--workspace-concurrency=1", "publish", "--dry-run", "--no-git-checks", "--ignore-scripts"],
      { cwd: ROOT, env: envFor(node24) },
    );
    const out = r.stdout + r.stderr;
    for (const p of PACKAGES) expect(out).toContain(`@zipstream/${p}@${VERSION[p]}`);
    expect(out).not.toMatch(/@zipstream\/(testkit|interop|reliability|bench|infra|example)/);
    expect(existsSync(join(ROOT, "packages/core/dist/index.cjs"))).toBe(true);
  });
});
