/**
 * The one integer-option check of zipstream: core's options, `@zipstream/s3`'s, the Lambda event
 * and the CLI's flags all go through {@link intOption}, so a bound and its message are stated once.
 *
 * @module
 */

/**
 * Checks an integer option: `undefined` passes (the caller applies its default), anything else
 * must be a safe integer from `min` to `max`. Throws a `TypeError` naming the option and its
 * range, e.g. `concurrency must be an integer from 1 to 10000; got 0`.
 */
export function intOption(name: string, value: unknown, min: number, max: number = Number.MAX_SAFE_INTEGER): number | undefined {
  if (value === undefined) return undefined;
  if (typeof value !== "number" || !Number.isSafeInteger(value) || value < min || value > max) {
    const range = max === Number.MAX_SAFE_INTEGER ? `>= ${min}` : `from ${min} to ${max}`;
    throw new TypeError(`${name} must be an integer ${range}; got ${typeof value === "string" ? JSON.stringify(value) : String(value)}`);
  }
  return value;
}
