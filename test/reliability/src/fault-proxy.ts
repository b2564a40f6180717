import { EventEmitter } from "node:events";
import http from "node:http";
import type { AddressInfo } from "node:net";
import { classifyS3Request, type S3Operation } from "./classify.js";

/** The faults the proxy can inject. */
export type FaultKind =
  /** Answer 500 InternalError with an S3 XML error body (request not forwarded). */
  | "internalError"
  /** Answer 503 SlowDown with an S3 XML error body (request not forwarded). */
  | "slowDown"
  /** GetObject only: forward, send the response headers and part of the body, then reset the socket. */
  | "resetGetBody"
  /** UploadPart only: read part of the request body, then reset the socket (request not forwarded). */
  | "resetUploadPart"
  /** Hold the request for a random delay in `delayMs`, then forward it normally. */
  | "delay";

export const FAULT_KINDS: readonly FaultKind[] = [
  "internalError",
  "slowDown",
  "resetGetBody",
  "resetUploadPart",
  "delay",
];

/** What the proxy knows about a request when it decides its fate. */
export interface ProxyRequestInfo {
  /** 1-based arrival number since the last {@link FaultProxy.reset}. */
  seq: number;
  operation: S3Operation;
  method: string;
  /** Request target as received, `/bucket/key?query`. */
  url: string;
  headers: http.IncomingHttpHeaders;
  /** How many times an identical request (same method, path, query minus uploadId, Range) was seen, this one included. */
  occurrence: number;
  /** The fault chosen for this request, if any. */
  fault?: FaultKind;
}

export interface FaultProxyOptions {
  /** Upstream S3 endpoint, e.g. `http://127.0.0.1:7480`. Path-style addressing is assumed. */
  upstream: string;
  /** Schedule seed. Default: random (it is logged and exposed as {@link FaultProxy.seed} for replay). */
  seed?: number;
  /**
   * Probability per eligible request of each fault kind; their sum must be at most 1.
   * `resetGetBody` only applies to GetObject and `resetUploadPart` to UploadPart.
   * Default: all 0 (a transparent proxy).
   */
  rates?: Partial<Record<FaultKind, number>>;
  /** Only requests of these operations are eligible for faults. Default: every operation. */
  operations?: readonly S3Operation[];
  /** Range of the `delay` fault, milliseconds. Default `{ min: 50, max: 500 }`. */
  delayMs?: { min: number; max: number };
  /**
   * Called for every request after the fault decision and before anything is forwarded; the proxy
   * awaits the returned promise, so a test can hold a request (e.g. CompleteMultipartUpload)
   * while it aborts the client. A request whose client went away while held is not forwarded.
   */
  onRequest?: (info: ProxyRequestInfo) => void | Promise<void>;
  /**
   * Called when the upstream response to a forwarded request arrives, before anything of it is
   * sent to the client; the proxy awaits it. Lets a test act after the server did the work but
   * before the client learns of it (e.g. abort after CompleteMultipartUpload succeeded). If the
   * client went away meanwhile, the response is dropped.
   */
  onResponse?: (info: ProxyRequestInfo, status: number) => void | Promise<void>;
  /**
   * Overrides the schedule for one request: return a fault kind (or null for none) to force it,
   * undefined to let the seeded schedule decide. Lets a test target one precise request, e.g.
   * the first GET of one key. Forced faults are counted like scheduled ones.
   */
  choose?: (info: Omit<ProxyRequestInfo, "fault">) => FaultKind | null | undefined;
  /** Where the seed line is written. Default: `console.error`. Pass `() => {}` to silence. */
  log?: (line: string) => void;
  /** How many decisions to keep in {@link FaultProxy.decisions} (replay aid). Default 10,000. */
  maxDecisions?: number;
}

export interface FaultProxyStats {
  seed: number;
  /** Requests seen (all, including non-eligible ones). */
  requests: number;
  requestsByOperation: Partial<Record<S3Operation, number>>;
  /**
   * Requests identical to an earlier one (same method, path, query without uploadId, and Range):
   * the proxy's view of retries (SDK retries and library re-requests).
   */
  repeats: number;
  repeatsByOperation: Partial<Record<S3Operation, number>>;
  /** Faults injected, per kind. */
  faults: Record<FaultKind, number>;
  /** Faults injected, per operation then kind. */
  faultsByOperation: Partial<Record<S3Operation, Partial<Record<FaultKind, number>>>>;
}

/** One logged decision (see {@link FaultProxy.decisions}). */
export interface FaultDecision {
  seq: number;
  operation: S3Operation;
  identity: string;
  occurrence: number;
  fault: FaultKind | null;
}

/** 32-bit FNV-1a of a string; seeds the per-request generator. */
function fnv1a(s: string): number {
  let h = 0x811c9dc5;
  for (let i = 0; i < s.length; i++) {
    h ^= s.charCodeAt(i);
    h = Math.imul(h, 0x01000193);
  }
  return h >>> 0;
}

/** Small seeded PRNG (mulberry32): deterministic floats in [0, 1). */
export function prng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

function s3ErrorXml(code: string, message: string, resource: string, requestId: string): string {
  const esc = (s: string) => s.replace(/&/g, "&amp;").replace(/</g, "&lt;").replace(/>/g, "&gt;");
  return (
    `<?xml version="1.0" encoding="UTF-8"?>\n<Error><Code>${code}</Code><Message>${esc(message)}</Message>` +
    `<Resource>${esc(resource)}</Resource><RequestId>${requestId}</RequestId></Error>`
  );
}

/**
 * A loopback HTTP proxy between an S3 client and an S3-compatible server that injects faults
 * from a seeded schedule.
 *
 * Determinism: the fate of a request is a pure function of the seed, the request's identity
 * (operation, method, path, query without the random uploadId, Range header) and how many times
 * that identity was seen since the last {@link reset}. So the same seed replays the same faults
 * for the same requests even when concurrent requests arrive in a different order, and a retried
 * request gets a fresh draw (a fault is never permanent).
 *
 * Point only the client under test at {@link endpoint}; verification and cleanup traffic must use
 * a client pointed directly at the upstream so it is never faulted.
 */
export class FaultProxy extends EventEmitter {
  /** `http://127.0.0.1:<port>`, to use as the S3 client's endpoint. */
  readonly endpoint: string;
  /** When false, requests are forwarded untouched (they are still counted). */
  faultsEnabled = true;
  /** See {@link FaultProxyOptions.onRequest}; may be replaced at any time. */
  onRequest: FaultProxyOptions["onRequest"];
  /** See {@link FaultProxyOptions.onResponse}; may be replaced at any time. */
  onResponse: FaultProxyOptions["onResponse"];
  /** See {@link FaultProxyOptions.choose}; may be replaced at any time. */
  choose: FaultProxyOptions["choose"];

  #server: http.Server;
  #upstream: URL;
  #agent = new http.Agent({ keepAlive: true, maxSockets: Infinity });
  #opts: FaultProxyOptions;
  #seed: number;
  #rates: Record<FaultKind, number>;
  #operations: Set<S3Operation> | undefined;
  #seq = 0;
  #seen = new Map<string, number>();
  #stats!: FaultProxyStats;
  #decisions: FaultDecision[] = [];
  #sockets = new Set<import("node:net").Socket>();

  private constructor(server: http.Server, endpoint: string, opts: FaultProxyOptions) {
    super();
    this.#server = server;
    this.endpoint = endpoint;
    this.#upstream = new URL(opts.upstream);
    this.#opts = opts;
    this.#seed = opts.seed ?? Math.floor(Math.random() * 2 ** 31);
    this.#rates = FaultProxy.#checkRates(opts.rates);
    this.#operations = opts.operations ? new Set(opts.operations) : undefined;
    this.#stats = this.#emptyStats();
    this.onRequest = opts.onRequest;
    this.choose = opts.choose;
    this.onResponse = opts.onResponse;
    (opts.log ?? ((l: string) => console.error(l)))(
      `[fault-proxy] ${endpoint} -> ${opts.upstream} seed=${this.#seed} rates=${JSON.stringify(this.#rates)}`,
    );
  }

  /** Starts a proxy on 127.0.0.1 with an ephemeral port. */
  static async start(opts: FaultProxyOptions): Promise<FaultProxy> {
    if (typeof opts.upstream !== "string") throw new TypeError("upstream must be a URL string");
    FaultProxy.#checkRates(opts.rates);
    const server = http.createServer();
    // Keep-alive connections of the client under test must not keep close() waiting forever.
    server.keepAliveTimeout = 5_000;
    await new Promise<void>((resolve, reject) => {
      server.once("error", reject);
      server.listen(0, "127.0.0.1", () => resolve());
    });
    const { port } = server.address() as AddressInfo;
    const proxy = new FaultProxy(server, `http://127.0.0.1:${port}`, opts);
    server.on("connection", (s) => {
      proxy.#sockets.add(s);
      s.once("close", () => proxy.#sockets.delete(s));
    });
    server.on("request", (req, res) => proxy.#handle(req, res));
    return proxy;
  }

  static #checkRates(rates: FaultProxyOptions["rates"]): Record<FaultKind, number> {
    const out = Object.fromEntries(FAULT_KINDS.map((k) => [k, 0])) as Record<FaultKind, number>;
    let sum = 0;
    for (const [k, v] of Object.entries(rates ?? {})) {
      if (!FAULT_KINDS.includes(k as FaultKind)) throw new TypeError(`rates.${k}: unknown fault kind`);
      if (typeof v !== "number" || !(v >= 0 && v <= 1)) throw new TypeError(`rates.${k} must be a number in [0, 1]`);
      out[k as FaultKind] = v;
      sum += v;
    }
    if (sum > 1 + 1e-9) throw new TypeError("rates must sum to at most 1");
    return out;
  }

  /** The seed of the current schedule (log it with any failure: passing it back replays the run). */
  get seed(): number {
    return this.#seed;
  }

  /** Live counters since the last {@link reset}. */
  get stats(): FaultProxyStats {
    return structuredClone(this.#stats);
  }

  /** The first `maxDecisions` decisions since the last {@link reset}, in arrival order. */
  get decisions(): readonly FaultDecision[] {
    return this.#decisions;
  }

  /** Number of client connections currently open to the proxy. */
  get openConnections(): number {
    return this.#sockets.size;
  }

  /**
   * Starts a new schedule: clears counters, decisions and the seen-request memory, and optionally
   * changes the seed, rates or targeted operations.
   */
  reset(change: Pick<FaultProxyOptions, "seed" | "rates" | "operations"> = {}): void {
    if (change.seed !== undefined) this.#seed = change.seed;
    if (change.rates !== undefined) this.#rates = FaultProxy.#checkRates(change.rates);
    if (change.operations !== undefined) this.#operations = new Set(change.operations);
    this.#seq = 0;
    this.#seen.clear();
    this.#decisions = [];
    this.#stats = this.#emptyStats();
  }

  /** Stops listening and destroys open connections. */
  async close(): Promise<void> {
    for (const s of this.#sockets) s.destroy();
    await new Promise<void>((resolve) => this.#server.close(() => resolve()));
    this.#agent.destroy();
  }

  #emptyStats(): FaultProxyStats {
    return {
      seed: this.#seed,
      requests: 0,
      requestsByOperation: {},
      repeats: 0,
      repeatsByOperation: {},
      faults: Object.fromEntries(FAULT_KINDS.map((k) => [k, 0])) as Record<FaultKind, number>,
      faultsByOperation: {},
    };
  }

  /** Identity of a request for the schedule: the random uploadId is dropped so replays match. */
  static identity(op: S3Operation, method: string, url: string, range: string | undefined): string {
    const u = new URL(url, "http://proxy.invalid");
    const q = [...u.searchParams.entries()]
      .filter(([k]) => k !== "uploadId")
      .map(([k, v]) => `${k}=${v}`)
      .sort()
      .join("&");
    return `${op} ${method} ${u.pathname}?${q} ${range ?? ""}`;
  }

  #decide(op: S3Operation, identity: string, occurrence: number): { fault: FaultKind | null; rnd: () => number } {
    const rnd = prng(fnv1a(`${this.#seed}|${identity}|${occurrence}`));
    const u = rnd();
    if (!this.faultsEnabled) return { fault: null, rnd };
    if (this.#operations && !this.#operations.has(op)) return { fault: null, rnd };
    // Walk the kinds in a fixed order; ineligible kinds still take their slice of [0, 1) so a
    // given seed keeps the same meaning whatever operations are targeted.
    let acc = 0;
    for (const k of FAULT_KINDS) {
      acc += this.#rates[k];
      if (u < acc) {
        if (k === "resetGetBody" && op !== "GetObject") return { fault: null, rnd };
        if (k === "resetUploadPart" && op !== "UploadPart") return { fault: null, rnd };
        return { fault: k, rnd };
      }
    }
    return { fault: null, rnd };
  }

  async #handle(req: http.IncomingMessage, res: http.ServerResponse): Promise<void> {
    const method = req.method ?? "GET";
    const url = req.url ?? "/";
    const op = classifyS3Request(method, url, req.headers);
    const range = typeof req.headers.range === "string" ? req.headers.range : undefined;
    const identity = FaultProxy.identity(op, method, url, range);
    const occurrence = (this.#seen.get(identity) ?? 0) + 1;
    this.#seen.set(identity, occurrence);
    const seq = ++this.#seq;
    const st = this.#stats;
    st.requests++;
    st.requestsByOperation[op] = (st.requestsByOperation[op] ?? 0) + 1;
    if (occurrence > 1) {
      st.repeats++;
      st.repeatsByOperation[op] = (st.repeatsByOperation[op] ?? 0) + 1;
    }
    const decided = this.#decide(op, identity, occurrence);
    const { rnd } = decided;
    let fault = decided.fault;
    const forced = this.choose?.({ seq, operation: op, method, url, headers: req.headers, occurrence });
    if (forced !== undefined) fault = forced;
    if (this.#decisions.length < (this.#opts.maxDecisions ?? 10_000)) {
      this.#decisions.push({ seq, operation: op, identity, occurrence, fault });
    }
    if (fault) {
      st.faults[fault]++;
      const per = (st.faultsByOperation[op] ??= {});
      per[fault] = (per[fault] ?? 0) + 1;
    }
    const info: ProxyRequestInfo = { seq, operation: op, method, url, headers: req.headers, occurrence };
    if (fault) info.fault = fault;
    let clientGone = false;
    // 'close' on the response also fires when the connection drops before the response ended
    // (a listener on the keep-alive socket itself would pile up across requests).
    res.once("close", () => {
      if (!res.writableFinished) clientGone = true;
    });
    this.emit("request", info);
    try {
      if (this.onRequest) await this.onRequest(info);
    } catch {
      req.socket.destroy();
      return;
    }
    if (clientGone) return;

    const requestId = `fault-${this.#seed}-${seq}`;
    switch (fault) {
      case "internalError":
      case "slowDown": {
        const [status, code, msg] =
          fault === "internalError"
            ? [500, "InternalError", "We encountered an internal error. Please try again."]
            : [503, "SlowDown", "Please reduce your request rate."];
        // Drain the request body first, as a server would, so the client is not cut off mid-write.
        req.resume();
        req.once("end", () => {
          const body = method === "HEAD" ? "" : s3ErrorXml(code, msg, new URL(url, "http://x").pathname, requestId);
          res.writeHead(status, {
            "content-type": "application/xml",
            "content-length": Buffer.byteLength(body),
            "x-amz-request-id": requestId,
          });
          res.end(body);
        });
        return;
      }
      case "resetUploadPart": {
        const len = Number(req.headers["content-length"] ?? NaN);
        // Cut somewhere inside the body: at least one byte read when there is one.
        const cut = Number.isFinite(len) && len > 0 ? Math.min(len - 1, Math.floor(rnd() * len)) : 0;
        let got = 0;
        const kill = () => req.socket.destroy();
        if (cut === 0) {
          kill();
          return;
        }
        req.on("data", (chunk: Buffer) => {
          got += chunk.length;
          if (got >= cut) kill();
        });
        req.once("end", kill);
        return;
      }
      case "delay": {
        const { min, max } = this.#opts.delayMs ?? { min: 50, max: 500 };
        await new Promise((r) => setTimeout(r, min + rnd() * (max - min)));
        if (clientGone) return;
        this.#forward(req, res, null, info);
        return;
      }
      case "resetGetBody":
        this.#forward(req, res, rnd(), info);
        return;
      default:
        this.#forward(req, res, null, info);
    }
  }

  /** Forwards the request upstream; `cutFraction` set = reset after that fraction of the response body. */
  #forward(req: http.IncomingMessage, res: http.ServerResponse, cutFraction: number | null, info: ProxyRequestInfo): void {
    const up = http.request({
      protocol: this.#upstream.protocol,
      hostname: this.#upstream.hostname,
      port: this.#upstream.port,
      method: req.method,
      path: req.url,
      // Host is kept: it is part of what the client signed (SigV4).
      headers: req.headers,
      agent: this.#agent,
    });
    const abortAll = () => {
      up.destroy();
      req.socket.destroy();
    };
    up.on("error", abortAll);
    res.once("close", () => {
      if (!res.writableFinished) up.destroy();
    });
    up.on("response", async (ur) => {
      ur.on("error", abortAll);
      const status = ur.statusCode ?? 502;
      if (this.onResponse) {
        ur.pause();
        try {
          await this.onResponse(info, status);
        } catch {
          abortAll();
          return;
        }
        if (res.destroyed || req.socket.destroyed) {
          ur.destroy();
          return;
        }
      }
      const len = Number(ur.headers["content-length"] ?? NaN);
      res.writeHead(status, ur.statusMessage, ur.headers);
      const cutting = cutFraction !== null && (status === 200 || status === 206);
      if (!cutting) {
        ur.pipe(res);
        return;
      }
      // Send the headers and part of the body, then reset: what a dropped connection looks like.
      const cut = Number.isFinite(len) && len > 0 ? Math.min(len - 1, Math.floor(cutFraction * len)) : 0;
      let sent = 0;
      if (cut === 0) {
        res.flushHeaders();
        setImmediate(() => {
          ur.destroy();
          req.socket.destroy();
        });
        return;
      }
      ur.on("data", (chunk: Buffer) => {
        const room = cut - sent;
        if (room <= 0) return;
        const piece = chunk.length <= room ? chunk : chunk.subarray(0, room);
        sent += piece.length;
        if (sent >= cut) {
          ur.pause();
          res.write(piece, () => {
            ur.destroy();
            req.socket.destroy();
          });
        } else if (!res.write(piece)) {
          ur.pause();
          res.once("drain", () => ur.resume());
        }
      });
    });
    req.pipe(up);
  }
}

export type { S3Operation };
