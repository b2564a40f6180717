import http from "node:http";
import type { AddressInfo } from "node:net";
import { afterAll, beforeAll, beforeEach, describe, expect, it } from "vitest";
import { FaultProxy, classifyS3Request, type S3Operation } from "../src/index.js";

/** A tiny upstream: GET returns `size` bytes (query ?size=), PUT/POST echo the body length. */
let upstream: http.Server;
let upstreamUrl: string;
let upstreamHits: { method: string; url: string; host: string | undefined; bodyBytes: number }[] = [];

beforeAll(async () => {
  upstream = http.createServer((req, res) => {
    let n = 0;
    req.on("data", (c: Buffer) => (n += c.length));
    req.on("end", () => {
      upstreamHits.push({ method: req.method!, url: req.url!, host: req.headers.host, bodyBytes: n });
      const size = Number(new URL(req.url!, "http://x").searchParams.get("size") ?? 1000);
      if (req.method === "GET") {
        const body = Buffer.alloc(size, 0x61);
        res.writeHead(200, { "content-length": size, etag: '"abc"' });
        // Several writes so a mid-body cut lands between chunks too.
        for (let i = 0; i < size; i += 16384) res.write(body.subarray(i, i + 16384));
        res.end();
      } else {
        res.writeHead(200, { "content-type": "text/plain", etag: '"put"' });
        res.end(String(n));
      }
    });
  });
  await new Promise<void>((r) => upstream.listen(0, "127.0.0.1", () => r()));
  upstreamUrl = `http://127.0.0.1:${(upstream.address() as AddressInfo).port}`;
});
afterAll(async () => {
  upstream.closeAllConnections();
  await new Promise((r) => upstream.close(r));
});
beforeEach(() => {
  upstreamHits = [];
});

interface Reply {
  status?: number;
  headers?: http.IncomingHttpHeaders;
  body?: Buffer;
  received: number;
  error?: Error;
}

function send(base: string, method: string, path: string, body?: Buffer, headers: Record<string, string> = {}): Promise<Reply> {
  return new Promise((resolve) => {
    const agent = new http.Agent({ keepAlive: false });
    const req = http.request(`${base}${path}`, { method, headers, agent });
    const out: Reply = { received: 0 };
    const chunks: Buffer[] = [];
    req.on("response", (res) => {
      out.status = res.statusCode;
      out.headers = res.headers;
      res.on("data", (c: Buffer) => {
        chunks.push(c);
        out.received += c.length;
      });
      res.on("end", () => resolve({ ...out, body: Buffer.concat(chunks) }));
      res.on("error", (e) => resolve({ ...out, error: e }));
      res.on("aborted", () => resolve({ ...out, error: new Error("aborted") }));
    });
    req.on("error", (e) => resolve({ ...out, error: e }));
    if (body) req.end(body);
    else req.end();
  });
}

const silent = { log: () => {} };

describe("classifyS3Request", () => {
  const cases: [string, string, S3Operation, Record<string, string>?][] = [
    ["GET", "/", "ListBuckets"],
    ["GET", "/b/k/x.txt?x-id=GetObject", "GetObject"],
    ["HEAD", "/b/k", "HeadObject"],
    ["HEAD", "/b", "HeadBucket"],
    ["GET", "/b?list-type=2&prefix=a", "ListObjectsV2"],
    ["GET", "/b?prefix=a", "ListObjects"],
    ["GET", "/b?uploads&prefix=a", "ListMultipartUploads"],
    ["GET", "/b/k?uploadId=u1", "ListParts"],
    ["PUT", "/b/k?x-id=PutObject", "PutObject"],
    ["PUT", "/b/k", "CopyObject", { "x-amz-copy-source": "/b/o" }],
    ["PUT", "/b", "CreateBucket"],
    ["POST", "/b/k?uploads&x-id=CreateMultipartUpload", "CreateMultipartUpload"],
    ["PUT", "/b/k?partNumber=3&uploadId=u1&x-id=UploadPart", "UploadPart"],
    ["PUT", "/b/k?partNumber=3&uploadId=u1", "UploadPartCopy", { "x-amz-copy-source": "/b/o" }],
    ["POST", "/b/k?uploadId=u1", "CompleteMultipartUpload"],
    ["DELETE", "/b/k?uploadId=u1&x-id=AbortMultipartUpload", "AbortMultipartUpload"],
    ["DELETE", "/b/k", "DeleteObject"],
    ["DELETE", "/b", "DeleteBucket"],
    ["POST", "/b?delete", "DeleteObjects"],
    ["GET", "/b/k?tagging", "GetObjectTagging"],
    ["PUT", "/b/k?tagging", "PutObjectTagging"],
  ];
  it.each(cases)("%s %s -> %s", (m, u, op, h) => {
    expect(classifyS3Request(m, u, h)).toBe(op);
  });
});

describe("FaultProxy", () => {
  it("forwards untouched at rate 0, keeping the Host header the client signed", async () => {
    const p = await FaultProxy.start({ upstream: upstreamUrl, seed: 1, ...silent });
    try {
      const g = await send(p.endpoint, "GET", "/b/k?size=100000");
      expect(g.status).toBe(200);
      expect(g.body!.length).toBe(100000);
      const put = await send(p.endpoint, "PUT", "/b/k2", Buffer.alloc(12345));
      expect(put.body!.toString()).toBe("12345");
      expect(upstreamHits.map((h) => h.host)).toEqual([p.endpoint.slice(7), p.endpoint.slice(7)]);
      expect(p.stats.requests).toBe(2);
      expect(p.stats.requestsByOperation).toEqual({ GetObject: 1, PutObject: 1 });
      expect(Object.values(p.stats.faults).every((n) => n === 0)).toBe(true);
    } finally {
      await p.close();
    }
  });

  it("answers 500 InternalError and 503 SlowDown with S3 XML bodies, without forwarding", async () => {
    const p = await FaultProxy.start({ upstream: upstreamUrl, seed: 2, rates: { internalError: 1 }, ...silent });
    try {
      const r = await send(p.endpoint, "PUT", "/b/k", Buffer.alloc(200000));
      expect(r.status).toBe(500);
      expect(r.body!.toString()).toMatch(/<Code>InternalError<\/Code>/);
      expect(r.headers!["content-type"]).toBe("application/xml");
      p.reset({ rates: { slowDown: 1 } });
      const s = await send(p.endpoint, "GET", "/b/k");
      expect(s.status).toBe(503);
      expect(s.body!.toString()).toMatch(/<Code>SlowDown<\/Code>/);
      const h = await send(p.endpoint, "HEAD", "/b/k");
      expect(h.status).toBe(503);
      expect(upstreamHits).toHaveLength(0);
      expect(p.stats.faults.slowDown).toBe(2);
      expect(p.stats.faultsByOperation).toEqual({ GetObject: { slowDown: 1 }, HeadObject: { slowDown: 1 } });
    } finally {
      await p.close();
    }
  });

  it("resets a GET in the middle of the body after sending the headers", async () => {
    const p = await FaultProxy.start({ upstream: upstreamUrl, seed: 3, rates: { resetGetBody: 1 }, ...silent });
    try {
      for (let i = 0; i < 5; i++) {
        const r = await send(p.endpoint, "GET", `/b/k${i}?size=300000`);
        expect(r.status).toBe(200);
        expect(r.headers!["content-length"]).toBe("300000");
        expect(r.error).toBeDefined();
        expect(r.received).toBeLessThan(300000);
      }
      expect(p.stats.faults.resetGetBody).toBe(5);
      // Not applicable to other operations: a PUT goes through.
      const put = await send(p.endpoint, "PUT", "/b/x", Buffer.alloc(10));
      expect(put.status).toBe(200);
    } finally {
      await p.close();
    }
  });

  it("resets an UploadPart request part-way through its body and never forwards it", async () => {
    const p = await FaultProxy.start({ upstream: upstreamUrl, seed: 4, rates: { resetUploadPart: 1 }, ...silent });
    try {
      const r = await send(p.endpoint, "PUT", "/b/k?partNumber=1&uploadId=abc", Buffer.alloc(1 << 20));
      expect(r.status).toBeUndefined();
      expect(r.error).toBeDefined();
      expect(upstreamHits).toHaveLength(0);
      expect(p.stats.faultsByOperation).toEqual({ UploadPart: { resetUploadPart: 1 } });
      const put = await send(p.endpoint, "PUT", "/b/k", Buffer.alloc(10));
      expect(put.status).toBe(200);
    } finally {
      await p.close();
    }
  });

  it("delays and then forwards", async () => {
    const p = await FaultProxy.start({
      upstream: upstreamUrl,
      seed: 5,
      rates: { delay: 1 },
      delayMs: { min: 20, max: 30 },
      ...silent,
    });
    try {
      const r = await send(p.endpoint, "GET", "/b/k?size=10");
      expect(r.status).toBe(200);
      expect(r.body!.length).toBe(10);
      expect(p.stats.faults.delay).toBe(1);
    } finally {
      await p.close();
    }
  });

  it("targets only the given operations", async () => {
    const p = await FaultProxy.start({
      upstream: upstreamUrl,
      seed: 6,
      rates: { internalError: 1 },
      operations: ["CompleteMultipartUpload"],
      ...silent,
    });
    try {
      expect((await send(p.endpoint, "GET", "/b/k")).status).toBe(200);
      expect((await send(p.endpoint, "PUT", "/b/k?partNumber=1&uploadId=u", Buffer.alloc(5))).status).toBe(200);
      expect((await send(p.endpoint, "POST", "/b/k?uploadId=u", Buffer.from("<x/>"))).status).toBe(500);
      p.faultsEnabled = false;
      expect((await send(p.endpoint, "POST", "/b/k?uploadId=u", Buffer.from("<x/>"))).status).toBe(200);
      expect(p.stats.faults.internalError).toBe(1);
      expect(p.stats.requests).toBe(4);
    } finally {
      await p.close();
    }
  });

  it("validates its options", async () => {
    await expect(FaultProxy.start({ upstream: upstreamUrl, rates: { internalError: 0.7, slowDown: 0.7 } })).rejects.toThrow(
      /sum/,
    );
    await expect(FaultProxy.start({ upstream: upstreamUrl, rates: { nope: 0.1 } as never })).rejects.toThrow(
      /rates\.nope/,
    );
  });

  describe("determinism", () => {
    const rates = { internalError: 0.1, slowDown: 0.1, resetGetBody: 0.1, resetUploadPart: 0.1, delay: 0.05 };
    const paths = Array.from({ length: 60 }, (_, i) =>
      i % 3 === 0
        ? (["PUT", `/b/big?partNumber=${i}&uploadId=${Math.random()}`] as const)
        : i % 3 === 1
          ? (["GET", `/b/o${i}?size=5000`] as const)
          : (["HEAD", `/b/o${i}`] as const),
    );
    async function schedule(p: FaultProxy, order: readonly (readonly [string, string])[], concurrent: boolean) {
      const run = async ([m, u]: readonly [string, string]) => {
        // Each request retried until it goes through, like the SDK would.
        for (let attempt = 0; attempt < 20; attempt++) {
          const r = await send(p.endpoint, m, u, m === "PUT" ? Buffer.alloc(3000) : undefined);
          if (r.status === 200 && !r.error) return;
        }
        throw new Error(`never succeeded: ${m} ${u}`);
      };
      if (concurrent) await Promise.all(order.map(run));
      else for (const x of order) await run(x);
      // Per identity and occurrence: what was decided (arrival order does not matter).
      return p.decisions
        .map((d) => `${d.identity}#${d.occurrence}:${d.fault ?? "-"}`)
        .sort()
        .join("\n");
    }

    it("the same seed gives the same schedule, even in another arrival order; another seed does not", async () => {
      const p = await FaultProxy.start({ upstream: upstreamUrl, seed: 42, rates, delayMs: { min: 1, max: 5 }, ...silent });
      try {
        const a = await schedule(p, paths, false);
        const statsA = p.stats;
        expect(statsA.repeats).toBeGreaterThan(0);
        expect(Object.values(statsA.faults).reduce((x, y) => x + y, 0)).toBeGreaterThan(5);
        p.reset({ seed: 42 });
        const b = await schedule(p, [...paths].reverse(), true);
        expect(b).toBe(a);
        expect(p.stats.faults).toEqual(statsA.faults);
        p.reset({ seed: 43 });
        const c = await schedule(p, paths, false);
        expect(c).not.toBe(a);
      } finally {
        await p.close();
      }
    });
  });

  it("holds a request in onRequest and does not forward it if the client went away", async () => {
    let release!: () => void;
    const held = new Promise<void>((r) => (release = r));
    let seen = 0;
    const p = await FaultProxy.start({
      upstream: upstreamUrl,
      seed: 7,
      ...silent,
      onRequest: async (info) => {
        if (info.operation === "CompleteMultipartUpload") {
          seen++;
          await held;
        }
      },
    });
    try {
      const ac = new AbortController();
      const pending = new Promise<Error>((resolve) => {
        const req = http.request(`${p.endpoint}/b/k?uploadId=u`, { method: "POST", signal: ac.signal });
        req.on("error", resolve);
        req.end("<x/>");
      });
      while (seen === 0) await new Promise((r) => setTimeout(r, 10));
      ac.abort();
      expect((await pending).name).toBe("AbortError");
      await new Promise((r) => setTimeout(r, 50));
      release();
      await new Promise((r) => setTimeout(r, 100));
      expect(upstreamHits).toHaveLength(0);
      // While held, a second kind of request flows normally.
      expect((await send(p.endpoint, "GET", "/b/k?size=3")).status).toBe(200);
    } finally {
      await p.close();
    }
  });
});

describe("FaultProxy hooks", () => {
  it("choose forces a fault on one precise request and is counted", async () => {
    const p = await FaultProxy.start({ upstream: upstreamUrl, seed: 8, ...silent });
    try {
      p.choose = (info) => (info.url.startsWith("/b/target") && info.occurrence === 1 ? "slowDown" : undefined);
      expect((await send(p.endpoint, "GET", "/b/other")).status).toBe(200);
      expect((await send(p.endpoint, "GET", "/b/target")).status).toBe(503);
      expect((await send(p.endpoint, "GET", "/b/target")).status).toBe(200);
      expect(p.stats.faults.slowDown).toBe(1);
      expect(p.stats.repeats).toBe(1);
    } finally {
      await p.close();
    }
  });

  it("onResponse runs after the upstream answered and before the client sees it", async () => {
    const p = await FaultProxy.start({ upstream: upstreamUrl, seed: 9, ...silent });
    try {
      const order: string[] = [];
      p.onResponse = async (info, status) => {
        order.push(`response ${info.operation} ${status} upstreamHits=${upstreamHits.length}`);
      };
      const r = await send(p.endpoint, "POST", "/b/k?uploadId=u", Buffer.from("<x/>"));
      order.push(`client ${r.status}`);
      expect(order).toEqual(["response CompleteMultipartUpload 200 upstreamHits=1", "client 200"]);
    } finally {
      await p.close();
    }
  });
});
