import cliProgress from "cli-progress";
import { formatBytes } from "./units.js";

export interface ProgressState {
  entries: number;
  entriesTotal?: number;
  bytesIn: number;
  bytesTotal?: number;
  bytesOut: number;
}

/** Where a job reports its progress; the CLI picks a TTY bar, plain lines, or nothing. */
export interface Reporter {
  start(label: string, totals: { entries: number; bytes: number }): void;
  update(state: ProgressState): void;
  stop(): void;
  /** A log line (stderr), suppressed by --quiet. */
  log(line: string): void;
}

export const silentReporter: Reporter = { start() {}, update() {}, stop() {}, log() {} };

/** Plain log lines on stderr, at most one progress line every `intervalMs`. */
export function lineReporter(stream: NodeJS.WritableStream = process.stderr, intervalMs = 2000): Reporter {
  let label = "";
  let last = 0;
  let started = 0;
  let totals = { entries: 0, bytes: 0 };
  return {
    start(l, t) {
      label = l;
      totals = t;
      started = Date.now();
      last = started;
      stream.write(`zipstream: ${label}: ${t.entries} entries, ${formatBytes(t.bytes)}\n`);
    },
    update(s) {
      const now = Date.now();
      if (now - last < intervalMs) return;
      last = now;
      const rate = s.bytesIn / Math.max(0.001, (now - started) / 1000);
      stream.write(
        `zipstream: ${label}: ${s.entries}/${s.entriesTotal ?? totals.entries} entries, ` +
          `${formatBytes(s.bytesIn)}/${formatBytes(s.bytesTotal ?? totals.bytes)} read, ${formatBytes(rate)}/s\n`,
      );
    },
    stop() {},
    log(line) {
      stream.write(`zipstream: ${line}\n`);
    },
  };
}

/** A cli-progress bar on a TTY: entries, bytes, rate and ETA (bytes drive the bar). */
export function barReporter(stream: NodeJS.WriteStream = process.stderr): Reporter {
  const bar = new cliProgress.SingleBar(
    {
      stream,
      format: "{bar} {percentage}% | {entries}/{entriesTotal} entries | {done}/{all} | {rate}/s | ETA {eta_formatted}",
      hideCursor: true,
      etaBuffer: 50,
      fps: 5,
    },
    cliProgress.Presets.shades_classic,
  );
  let started = 0;
  let totals = { entries: 0, bytes: 0 };
  let running = false;
  return {
    start(_label, t) {
      totals = t;
      started = Date.now();
      running = true;
      bar.start(Math.max(1, t.bytes), 0, {
        entries: 0,
        entriesTotal: t.entries,
        done: formatBytes(0),
        all: formatBytes(t.bytes),
        rate: formatBytes(0),
      });
    },
    update(s) {
      if (!running) return;
      const secs = Math.max(0.001, (Date.now() - started) / 1000);
      bar.update(Math.min(s.bytesIn, Math.max(1, totals.bytes)), {
        entries: s.entries,
        entriesTotal: s.entriesTotal ?? totals.entries,
        done: formatBytes(s.bytesIn),
        all: formatBytes(s.bytesTotal ?? totals.bytes),
        rate: formatBytes(s.bytesIn / secs),
      });
    },
    stop() {
      if (running) bar.stop();
      running = false;
    },
    log(line) {
      if (running) bar.stop();
      running = false;
      stream.write(`zipstream: ${line}\n`);
    },
  };
}
