// printableName: names (and S3 keys) made safe for terminals and log lines (issue 13).
import { describe, expect, it } from "vitest";
import * as core from "../src/index.js";
import { zipStream } from "../src/index.js";
import { collectError } from "./helpers.js";

/** Any character a terminal or log viewer could act on: C0, DEL, C1, bidi controls, separators. */
const DANGEROUS = /[\u0000-\u001f\u007f-\u009f\u061c\u200e\u200f\u2028\u2029\u202a-\u202e\u2066-\u2069]/;

describe("printableName", () => {
  const printableName = (s: string): string => (core as { printableName: (s: string) => string }).printableName(s);

  it("is exported by @zipstream/core", () => {
    expect(typeof (core as Record<string, unknown>).printableName).toBe("function");
  });

  it("keeps ordinary names, any script, unchanged", () => {
    for (const s of ["a/b.txt", "café/crème brûlée.txt", "日本語/ファイル.txt", "emoji/🎉🚀.txt", "spaces and (parens) [x].txt", "\"quoted\" 'x'"]) {
      expect(printableName(s)).toBe(s);
    }
  });

  it("escapes C0 controls, DEL, C1 controls, bidi controls, separators, lone surrogates and the backslash", () => {
    const cases: [string, string][] = [
      ["a\nb", "a\\nb"],
      ["a\r\n", "a\\r\\n"],
      ["tab\there", "tab\\there"],
      ["\u001b[2J\u001b]0;owned\u0007", "\\u001b[2J\\u001b]0;owned\\u0007"],
      ["nul\u0000", "nul\\u0000"],
      ["del\u007f", "del\\u007f"],
      ["csi\u009b31m", "csi\\u009b31m"],
      ["nel\u0085", "nel\\u0085"],
      ["invoice\u202Efdp.exe", "invoice\\u202efdp.exe"],
      ["\u2066x\u2069\u200e\u200f\u061c", "\\u2066x\\u2069\\u200e\\u200f\\u061c"],
      ["line\u2028para\u2029", "line\\u2028para\\u2029"],
      ["lone\ud800x", "lone\\ud800x"],
      ["lone\udc00", "lone\\udc00"],
      ["back\\slash", "back\\\\slash"],
      ["\\u001b", "\\\\u001b"], // the escape of a literal backslash keeps the result unambiguous
    ];
    for (const [raw, shown] of cases) {
      const out = printableName(raw);
      expect(out, JSON.stringify(raw)).toBe(shown);
      expect(DANGEROUS.test(out), JSON.stringify(raw)).toBe(false);
    }
  });

  it("is used in the core's error messages: no control character reaches a message", async () => {
    const evil = "x\u001b[2J\u009b\u202e";
    const cases = [
      [{ name: `${evil}/../y`, source: "" }],
      [{ name: evil, source: "" }, { name: evil, source: "" }],
      [{ name: evil, source: "abc", size: 9 }],
      [{ name: evil, type: "symlink", source: "/etc" }],
      [{ name: evil, source: () => { throw new Error("boom"); } }],
    ];
    for (const entries of cases) {
      const { error } = await collectError(zipStream(entries as never));
      expect(error.message, error.code).not.toMatch(DANGEROUS);
      expect(error.message).toContain("x\\u001b[2J\\u009b\\u202e");
      // `entry` keeps the raw name, for programs.
      expect(error.entry.startsWith(evil)).toBe(true);
    }
  });
});
