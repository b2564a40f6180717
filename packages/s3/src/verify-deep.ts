/**
 * The deep check of `verifyS3Zip`: one pass over the archive's members in offset order, through
 * ranged reads, recomputing every stored and deflated member's CRC-32 and size, comparing data
 * descriptors, and authenticating AES members when a password is given. Memory: one inflater
 * (zlib's ~256 KiB window state), one AES decryptor (~128 KiB) and the chunk in hand.
 */
import { once } from "node:events";
import zlib from "node:zlib";
import {
  AES_MAC_LENGTH,
  AES_SALT_LENGTH,
  AES_VERIFIER_LENGTH,
  FLAG_DATA_DESCRIPTOR,
  FLAG_ENCRYPTED,
  LOCAL_HEADER_FIXED,
  METHOD_AES,
  METHOD_DEFLATE,
  METHOD_STORE,
  createAesDecryptorAsync,
  localHeaderLength,
  parseDataDescriptor,
  parseLocalHeader,
  type AesDecryptor,
} from "@zipstream/core";
import { compareLocal, type EntryTable, type Findings } from "./verify-check.js";
import type { RangeSource } from "./verify-read.js";

/** Archive bytes per ranged GET of the deep pass. */
export const DEEP_RANGE = 64 * 1024 * 1024;
/** Deflated members up to this compressed size are inflated in one call (no stream per member). */
const INFLATE_AT_ONCE = 1024 * 1024;

export interface DeepProgress {
  bytesRead: number;
  bytesTotal: number;
  entries: number;
  entriesTotal: number;
}

/** Receives one member's plaintext; `end()` returns what it counted. */
interface PlainSink {
  write(b: Uint8Array): void | Promise<void>;
  /** `partial`: decompression stopped past the declared size (the CRC covers only part). */
  end(): Promise<{ crc: number; size: number; partial?: boolean } | { error: string }>;
}

function storedSink(): PlainSink {
  let crc = 0;
  let size = 0;
  return {
    write(b) {
      crc = zlib.crc32(b, crc);
      size += b.length;
    },
    async end() {
      return { crc, size };
    },
  };
}

function inflateSink(compressedSize: number, expectedSize: number): PlainSink {
  let crc = 0;
  let size = 0;
  if (compressedSize <= INFLATE_AT_ONCE && expectedSize <= 64 * INFLATE_AT_ONCE) {
    const parts: Uint8Array[] = [];
    return {
      write(b) {
        parts.push(b);
      },
      async end() {
        try {
          // One byte more than declared: a longer output is reported, never inflated without bound.
          const out = zlib.inflateRawSync(Buffer.concat(parts), { maxOutputLength: Math.max(1, expectedSize + 1), info: true }) as unknown as {
            buffer: Buffer;
            engine: { bytesWritten: number };
          };
          if (out.engine.bytesWritten !== compressedSize) return { error: `the deflate stream ends after ${out.engine.bytesWritten} of ${compressedSize} bytes` };
          return { crc: zlib.crc32(out.buffer), size: out.buffer.length };
        } catch (err) {
          if ((err as { code?: string }).code === "ERR_BUFFER_TOO_LARGE") return { crc: 0, size: expectedSize + 1, partial: true };
          return { error: `inflate failed: ${(err as Error).message}` };
        }
      },
    };
  }
  const inflater = zlib.createInflateRaw();
  let failure: string | undefined;
  inflater.on("data", (c: Buffer) => {
    crc = zlib.crc32(c, crc);
    size += c.length;
    // Past the declared size is already wrong; stop decompressing a bomb.
    if (size > expectedSize) {
      failure ??= "more data than the declared size";
      inflater.destroy();
    }
  });
  inflater.on("error", (err) => (failure ??= `inflate failed: ${err.message}`));
  return {
    async write(b) {
      if (failure !== undefined || inflater.destroyed) return;
      if (!inflater.write(b)) await Promise.race([once(inflater, "drain"), once(inflater, "close")]);
    },
    async end() {
      if (!inflater.destroyed) {
        inflater.end();
        await Promise.race([once(inflater, "end"), once(inflater, "close")]).catch(() => undefined);
      }
      if (failure === "more data than the declared size") return { crc, size, partial: true };
      if (failure !== undefined) return { error: failure };
      if (inflater.bytesWritten !== compressedSize) return { error: `the deflate stream ends after ${inflater.bytesWritten} of ${compressedSize} bytes` };
      return { crc, size };
    },
  };
}

/** What a member's data goes through: plaintext sinks, or AES framing around one. */
interface MemberSink {
  write(b: Uint8Array): void | Promise<void>;
  end(): Promise<void>;
}

type Verdict = (r: { crc: number; size: number; partial?: boolean } | { error: string }) => void;

/** `compressedSize`: the bytes of compressed data (inside the encryption for AES members). */
function plainMember(t: EntryTable, i: number, realMethod: number, compressedSize: number, verdict: Verdict): MemberSink | undefined {
  const sink = realMethod === METHOD_STORE ? storedSink() : realMethod === METHOD_DEFLATE ? inflateSink(compressedSize, t.uncompressedSize[i]!) : undefined;
  if (sink === undefined) return undefined;
  return { write: (b) => sink.write(b), end: async () => verdict(await sink.end()) };
}

/**
 * AES framing (WinZip AE-x): salt | verifier | ciphertext | 10-byte code. The ciphertext is
 * decrypted into the plaintext sink; the code is compared with the HMAC computed over it.
 */
function aesMember(t: EntryTable, i: number, password: string, f: Findings, verdict: Verdict): MemberSink {
  const name = t.names[i];
  const total = t.compressedSize[i]!;
  const headerLength = AES_SALT_LENGTH + AES_VERIFIER_LENGTH;
  const bodyLength = total - headerLength - AES_MAC_LENGTH;
  let seen = 0;
  let head: Uint8Array[] = [];
  const mac: Uint8Array[] = [];
  let dec: AesDecryptor | undefined;
  let plain: MemberSink | undefined;
  let dead = bodyLength < 0;
  return {
    async write(b) {
      if (dead) return;
      let p = 0;
      if (seen < headerLength) {
        const take = Math.min(headerLength - seen, b.length);
        head.push(b.subarray(0, take));
        seen += take;
        p = take;
        if (seen === headerLength) {
          dec = await createAesDecryptorAsync(password, Buffer.concat(head));
          head = [];
          if (!dec.passwordOk) {
            f.problem("AES_PASSWORD_WRONG", "the password does not match the member's verification value", name);
            dead = true;
            return;
          }
          plain = plainMember(t, i, t.aesMethod[i]!, bodyLength, verdict);
          if (plain === undefined) {
            f.warn("METHOD_NOT_CHECKED", `compression method ${t.aesMethod[i]} inside AES is not checked`, name);
          }
        }
      }
      const bodyEnd = headerLength + bodyLength;
      if (p < b.length && seen < bodyEnd) {
        const take = Math.min(bodyEnd - seen, b.length - p);
        const c = b.subarray(p, p + take);
        const out = dec!.update(c);
        if (plain !== undefined) await plain.write(out);
        seen += take;
        p += take;
      }
      if (p < b.length) {
        mac.push(b.subarray(p));
        seen += b.length - p;
      }
    },
    async end() {
      if (bodyLength < 0) {
        f.problem("SIZE_MISMATCH", `an AES member of ${total} bytes is shorter than its salt, verifier and code`, name);
        return;
      }
      if (dead || dec === undefined) return;
      const stored = Buffer.concat(mac);
      if (!Buffer.from(dec.final()).equals(stored)) {
        f.problem("AES_AUTH_FAILED", "the authentication code does not match the data (corrupt, or altered)", name);
        return;
      }
      if (plain !== undefined) await plain.end();
    },
  };
}

/**
 * Streams the archive from its first member to the central directory once and checks every
 * member it can: local header (as the structural check does), data, descriptor.
 */
export async function deepCheck(
  src: RangeSource,
  t: EntryTable,
  order: Uint32Array,
  cdOffset: number,
  f: Findings,
  password: string | undefined,
  onProgress?: (p: DeepProgress) => void,
): Promise<{ crcChecked: number; aesAuthenticated: number }> {
  let crcChecked = 0;
  let aesAuthenticated = 0;
  // Members that start inside the object, before the directory, each once (overlaps were reported).
  const members: number[] = [];
  let reach = -1;
  for (const i of order) {
    if (t.offset[i]! < cdOffset && t.offset[i]! >= reach) {
      members.push(i);
      reach = t.offset[i]! + LOCAL_HEADER_FIXED;
    }
  }
  if (members.length === 0) return { crcChecked, aesAuthenticated };
  const start = t.offset[members[0]!]!;
  const progress: DeepProgress = { bytesRead: 0, bytesTotal: cdOffset - start, entries: 0, entriesTotal: members.length };

  // State of the walk: which member, which part of it, and the bytes carried between chunks.
  let m = 0;
  let phase: "header" | "data" | "descriptor" | "skip" = "header";
  let carry: Uint8Array = new Uint8Array(0);
  let dataLeft = 0;
  let sink: MemberSink | undefined;
  let descriptorZip64 = false;
  let crcOf: { crc: number; size: number } | undefined;

  const finishMember = () => {
    progress.entries++;
    m++;
    phase = "header";
    carry = new Uint8Array(0);
  };

  const startMember = (i: number, h: { flags: number; hasZip64Extra: boolean }) => {
    const name = t.names[i];
    crcOf = undefined;
    descriptorZip64 = h.hasZip64Extra;
    const verdict: Verdict = (r) => {
      if ("error" in r) {
        f.problem("DATA_CORRUPT", r.error, name);
        return;
      }
      crcOf = r;
      if (r.partial) {
        // Decompression stopped at the declared size: the member is longer, its CRC unknown.
        f.problem("SIZE_MISMATCH", `the data holds more than the ${t.uncompressedSize[i]} bytes the directory says`, name);
        return;
      }
      if (r.size !== t.uncompressedSize[i]) f.problem("SIZE_MISMATCH", `the data holds ${r.size} bytes, the directory says ${t.uncompressedSize[i]}`, name);
      // AE-2 stores no CRC (0): the authentication code stands for it.
      const aesV2 = t.method[i] === METHOD_AES && t.aesVersion[i] === 2;
      if (!aesV2 && r.crc !== t.crc32[i]) f.problem("CRC_MISMATCH", `the data's CRC-32 is 0x${r.crc.toString(16).padStart(8, "0")}, the directory says 0x${t.crc32[i]!.toString(16).padStart(8, "0")}`, name);
      t.computedCrc[i] = r.crc;
      t.computed[i] = 1;
      crcChecked++;
    };
    const method = t.method[i]!;
    if (method === METHOD_AES) {
      if (password === undefined) f.warn("AES_NOT_CHECKED", "AES members are not checked without a password", name);
      else if (t.aesStrength[i] !== 3) f.warn("AES_STRENGTH_NOT_CHECKED", `AES strength ${t.aesStrength[i]} is not checked (only AES-256)`, name);
      else {
        const inner = aesMember(t, i, password, f, verdict);
        sink = {
          write: (b) => inner.write(b),
          end: async () => {
            const before = f.problems.length;
            await inner.end();
            if (f.problems.length === before) aesAuthenticated++;
          },
        };
        return;
      }
      sink = undefined;
    } else if ((h.flags & FLAG_ENCRYPTED) !== 0) {
      f.warn("ENCRYPTED_NOT_CHECKED", "members under traditional PKWARE encryption are not checked", name);
      sink = undefined;
    } else {
      sink = plainMember(t, i, method, t.compressedSize[i]!, verdict);
      if (sink === undefined) f.warn("METHOD_NOT_CHECKED", `compression method ${method} is not checked`, name);
    }
  };

  const onChunk = async (chunk: Uint8Array, pos: number): Promise<void> => {
    progress.bytesRead += chunk.length;
    let b = chunk;
    let bStart = pos;
    if (carry.length > 0) {
      b = Buffer.concat([carry, chunk]);
      bStart = pos - carry.length;
      carry = new Uint8Array(0);
    }
    let p = 0;
    while (m < members.length && p < b.length) {
      const i = members[m]!;
      if (phase === "header") {
        const at = t.offset[i]! - bStart;
        if (at >= b.length) return;
        if (at < p) {
          // The previous member ran past this header (reported as an overlap): skip it.
          finishMember();
          continue;
        }
        const len = localHeaderLength(b, at);
        const h = len === undefined ? undefined : parseLocalHeader(b, at);
        if (h === undefined) {
          carry = b.slice(at);
          return;
        }
        compareLocal(t, i, h, f);
        if ("bad" in h) {
          finishMember();
          continue;
        }
        startMember(i, h);
        p = at + h.length;
        dataLeft = t.compressedSize[i]!;
        phase = sink === undefined ? "skip" : "data";
        continue;
      }
      if (phase === "data" || phase === "skip") {
        const take = Math.min(dataLeft, b.length - p);
        if (phase === "data" && take > 0) await sink!.write(b.subarray(p, p + take));
        p += take;
        dataLeft -= take;
        if (dataLeft > 0) return;
        if (phase === "data") await sink!.end();
        sink = undefined;
        if ((t.flags[i]! & FLAG_DATA_DESCRIPTOR) === 0) {
          finishMember();
          continue;
        }
        phase = "descriptor";
        continue;
      }
      // Data descriptor (APPNOTE 4.3.9): CRC and sizes after the data.
      const d = parseDataDescriptor(b, p, descriptorZip64);
      if (d === undefined) {
        carry = b.slice(p);
        return;
      }
      const bad: string[] = [];
      const aesV2 = t.method[i] === METHOD_AES && t.aesVersion[i] === 2;
      if (d.crc32 !== t.crc32[i] && !(aesV2 && d.crc32 === 0)) bad.push(`CRC-32 0x${d.crc32.toString(16)}`);
      if (d.compressedSize !== t.compressedSize[i]) bad.push(`compressed size ${d.compressedSize}`);
      if (d.uncompressedSize !== t.uncompressedSize[i]) bad.push(`size ${d.uncompressedSize}`);
      if (bad.length > 0) f.problem("DESCRIPTOR_MISMATCH", `the data descriptor disagrees with the central directory: ${bad.join(", ")}`, t.names[i]);
      p += d.length;
      finishMember();
      void crcOf;
    }
    if (m < members.length && p < b.length && phase === "header") carry = b.slice(p);
    onProgress?.({ ...progress });
  };

  for (let s = start; s < cdOffset && m < members.length; s += DEEP_RANGE) {
    await src.stream(s, Math.min(cdOffset, s + DEEP_RANGE), async (c, pos) => {
      await onChunk(c, pos);
      onProgress?.({ ...progress });
    });
  }
  // Members not finished when the data ran out (their data would cross into the directory).
  if (m < members.length) {
    if (sink !== undefined) await sink.end().catch(() => undefined);
    for (; m < members.length; m++) {
      if (!f.has("OVERLAP")) f.problem("SIZE_MISMATCH", "the member's data runs into the central directory", t.names[members[m]!]);
    }
  }
  return { crcChecked, aesAuthenticated };
}
