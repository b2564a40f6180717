import { PutObjectCommand } from "@aws-sdk/client-s3";
import { it } from "vitest";
import { getTestS3 } from "../src/index.js";
it("bench", async () => {
  const s3 = await getTestS3();
  const N = Number(process.env.BN ?? 2000);
  const body = new Uint8Array(16384).fill(7);
  const b = await s3.newBucket("bench");
  let t0 = performance.now();
  await s3.putObjects(b, (function* () { for (let i = 0; i < N; i++) yield { key: `raw/${i}`, body }; })(), 16);
  let s = (performance.now() - t0) / 1000;
  console.log(`RAW ${N} x 16 KiB at c=16: ${s.toFixed(1)} s = ${(N / s).toFixed(0)} PUT/s`);
  if (process.env.SDK) {
    const c = s3.client();
    let i = 0; t0 = performance.now();
    await Promise.all(Array.from({ length: 16 }, async () => { while (i < N) { const k = i++; await c.send(new PutObjectCommand({ Bucket: b, Key: `sdk/${k}`, Body: body })); } }));
    s = (performance.now() - t0) / 1000;
    console.log(`SDK ${N} x 16 KiB at c=16: ${s.toFixed(1)} s = ${(N / s).toFixed(0)} PUT/s`);
  }
  t0 = performance.now();
  await s3.cleanup();
  console.log(`cleanup of ${N * (process.env.SDK ? 2 : 1)} objects: ${((performance.now() - t0) / 1000).toFixed(1)} s`);
}, 600_000);
