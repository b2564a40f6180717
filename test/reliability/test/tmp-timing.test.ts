import { zipS3Keys } from "@zipstream/s3";
import { it } from "vitest";
import { FaultProxy } from "../src/index.js";
import { createBucket, download, expectArchive, makeClient, s3Env, seedObjects, uniqueBucket, listUploads } from "./helpers.js";
const MiB = 1 << 20;
it("timing", { timeout: 600_000 }, async () => {
  const env = s3Env();
  const direct = makeClient(env).client;
  const bucket = uniqueBucket("timing");
  await createBucket(direct, bucket);
  let t = Date.now();
  const objs = await seedObjects(direct, bucket, [
    ...Array.from({ length: 12 }, (_, i) => ({ key: `src/small-${i}.bin`, size: 1 + ((i * 7919) % 60_000), seed: 100 + i })),
    { key: "src/big-a.bin", size: 5 * MiB + 12_345, seed: 900 },
    { key: "src/big-b.bin", size: MiB + 333, seed: 901 },
  ]);
  console.log("seed", Date.now() - t);
  const proxy = await FaultProxy.start({ upstream: env.endpoint, seed: 1 });
  for (const ep of [env.endpoint, proxy.endpoint, env.endpoint, proxy.endpoint]) {
    const { client } = makeClient(env, { endpoint: ep });
    t = Date.now();
    await zipS3Keys({ client, src: { bucket, keys: objs.map((o) => o.key) }, dest: { bucket, key: "o.zip" }, partSize: 5 * MiB, concurrency: 3, prefetch: { objects: 6, bytes: 4 * MiB, rangeSize: 512 * 1024 } });
    const z = Date.now() - t;
    t = Date.now();
    await listUploads(direct, bucket, "out/");
    const f = await download(direct, bucket, "o.zip");
    const d = Date.now() - t;
    t = Date.now();
    await expectArchive(f.path, new Map(objs.map((o) => [o.key, o])));
    console.log(ep === proxy.endpoint ? "proxy" : "direct", "zip", z, "dl", d, "verify", Date.now() - t);
  }
  await proxy.close();
});
