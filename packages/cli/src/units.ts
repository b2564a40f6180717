/** Parsing of human-friendly sizes ("16MiB", "64M") and durations ("24h", "1h30m"). Pure. */

const SIZE_UNITS: Record<string, number> = {
  "": 1,
  b: 1,
  k: 1024,
  kib: 1024,
  kb: 1000,
  m: 1024 ** 2,
  mib: 1024 ** 2,
  mb: 1000 ** 2,
  g: 1024 ** 3,
  gib: 1024 ** 3,
  gb: 1000 ** 3,
  t: 1024 ** 4,
  tib: 1024 ** 4,
  tb: 1000 ** 4,
};

/**
 * Parses a byte size: a bare number is bytes; `k`, `M`, `G`, `T` and `KiB`…`TiB` are powers of
 * 1024; `kB`, `MB`, `GB`, `TB` are powers of 1000 (the SI spelling means what it says).
 * Units are case-insensitive. Returns undefined when `text` is not a whole number of bytes.
 */
export function parseSize(text: string): number | undefined {
  const m = /^\s*(\d+(?:\.\d+)?)\s*([a-z]*)\s*$/i.exec(text);
  if (!m) return undefined;
  const unit = SIZE_UNITS[m[2].toLowerCase()];
  if (unit === undefined) return undefined;
  const value = Number(m[1]) * unit;
  if (!Number.isFinite(value) || !Number.isInteger(value)) return undefined;
  return value;
}

const DURATION_UNITS: Record<string, number> = {
  ms: 1,
  s: 1000,
  m: 60_000,
  h: 3_600_000,
  d: 86_400_000,
  w: 604_800_000,
};

/** Parses a duration such as "24h", "90m", "1h30m", "7d" into milliseconds; undefined if invalid. */
export function parseDuration(text: string): number | undefined {
  const t = text.trim().toLowerCase();
  if (t === "") return undefined;
  if (/^\d+$/.test(t)) return Number(t) * 1000; // bare number: seconds
  let total = 0;
  let rest = t;
  while (rest.length > 0) {
    const m = /^(\d+(?:\.\d+)?)(ms|s|m|h|d|w)/.exec(rest);
    if (!m) return undefined;
    total += Number(m[1]) * DURATION_UNITS[m[2]];
    rest = rest.slice(m[0].length);
  }
  return Math.round(total);
}

/** Formats a byte count for humans (binary units). */
export function formatBytes(n: number): string {
  if (n < 1024) return `${n} B`;
  const units = ["KiB", "MiB", "GiB", "TiB"];
  let v = n;
  let i = -1;
  while (v >= 1024 && i < units.length - 1) {
    v /= 1024;
    i++;
  }
  return `${v.toFixed(v < 10 ? 2 : 1)} ${units[i]}`;
}

/** Formats a duration in milliseconds as e.g. "1.2s" or "3m04s". */
export function formatDuration(ms: number): string {
  if (ms < 60_000) return `${(ms / 1000).toFixed(1)}s`;
  const s = Math.round(ms / 1000);
  return `${Math.floor(s / 60)}m${String(s % 60).padStart(2, "0")}s`;
}
