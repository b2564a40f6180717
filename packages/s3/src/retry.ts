import { httpStatus, isAbortError } from "./errors.js";

/**
 * The library's one retry policy for requests it repeats itself, on top of the SDK's own retry
 * strategy (which already retries throttling, 5xx and resets a few times per request): a request
 * that still failed is tried again with the same bytes after an exponential pause, when the
 * failure may be transient.
 */

/** Sleeps `ms`, or less when `signal` fires (it then resolves: the caller checks its own state). */
export function delay(ms: number, signal?: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    if (signal?.aborted) return resolve();
    const done = () => {
      clearTimeout(t);
      signal?.removeEventListener("abort", done);
      resolve();
    };
    const t = setTimeout(done, ms);
    signal?.addEventListener("abort", done, { once: true });
  });
}

/** Failures worth another attempt with the same request: network errors (no status), 5xx and 429. */
export function retryable(err: unknown): boolean {
  if (isAbortError(err)) return false;
  const status = httpStatus(err);
  if (status === undefined) return true;
  return status >= 500 || status === 429;
}

/**
 * Runs `attempt` up to `1 + retries` times while its failures are {@link retryable} and `signal`
 * has not fired, pausing `baseMs × 2^n` between attempts. Rethrows the last failure.
 */
export async function withRetries<T>(attempt: () => Promise<T>, retries: number, signal: AbortSignal | undefined, baseMs = 200): Promise<T> {
  for (let n = 0; ; n++) {
    try {
      return await attempt();
    } catch (err) {
      if (signal?.aborted || n >= retries || !retryable(err)) throw err;
      await delay(baseMs * 2 ** n, signal);
      if (signal?.aborted) throw err;
    }
  }
}
