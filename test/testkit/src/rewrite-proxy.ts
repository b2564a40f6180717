import http from "node:http";
import type { AddressInfo } from "node:net";

/** A response as the proxy is about to send it; a rewrite may change any field. */
export interface ProxiedResponse {
  status: number;
  headers: Record<string, string | string[] | undefined>;
  body: Buffer;
}

/** One request seen by the proxy. */
export interface SeenRequest {
  method: string;
  url: string;
}

/**
 * A loopback HTTP proxy in front of the real S3 server that lets a test replace parts of chosen
 * responses with what AWS S3 answers where the local server cannot (archive storage classes,
 * restore status, a role's AccessDenied). Requests go through unchanged (the Host header too, so
 * SigV4 still verifies); `rewrite` sees each buffered response and returns it changed, or
 * undefined to keep it. `intercept` answers a request itself, without forwarding it (the server
 * never sees it), or returns undefined to forward it.
 */
export async function startRewriteProxy(
  target: string,
  rewrite: (req: SeenRequest, res: ProxiedResponse) => ProxiedResponse | undefined,
  intercept?: (req: SeenRequest) => ProxiedResponse | undefined,
): Promise<{ endpoint: string; seen: SeenRequest[]; close: () => Promise<void> }> {
  const upstream = new URL(target);
  const seen: SeenRequest[] = [];
  const server = http.createServer((req, res) => {
    const info = { method: req.method ?? "GET", url: req.url ?? "/" };
    seen.push(info);
    const answer = intercept?.(info);
    if (answer !== undefined) {
      req.resume();
      req.on("end", () => {
        res.writeHead(answer.status, { ...answer.headers, "content-length": String(answer.body.length) });
        res.end(answer.body);
      });
      return;
    }
    const out = http.request(
      { host: upstream.hostname, port: upstream.port, method: req.method, path: req.url, headers: req.headers },
      (up) => {
        const chunks: Buffer[] = [];
        up.on("data", (c: Buffer) => chunks.push(c));
        up.on("end", () => {
          const original: ProxiedResponse = { status: up.statusCode ?? 502, headers: { ...up.headers }, body: Buffer.concat(chunks) };
          const changed = rewrite(info, original) ?? original;
          const headers = { ...changed.headers };
          delete headers["transfer-encoding"];
          // A HEAD response keeps the object's Content-Length; anything else gets its body's.
          if (info.method !== "HEAD") headers["content-length"] = String(changed.body.length);
          res.writeHead(changed.status, headers);
          res.end(info.method === "HEAD" ? undefined : changed.body);
        });
        up.on("error", () => res.destroy());
      },
    );
    out.on("error", () => res.destroy());
    req.pipe(out);
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const { port } = server.address() as AddressInfo;
  return {
    endpoint: `http://127.0.0.1:${port}`,
    seen,
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}
