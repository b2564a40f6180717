import { createCipheriv, createHmac, pbkdf2Sync } from "node:crypto";
import { describe, expect, it } from "vitest";
import {
  AES_EXTRA_LENGTH,
  AES_MAC_LENGTH,
  AES_OVERHEAD,
  AES_SALT_LENGTH,
  AES_VERIFIER_LENGTH,
  aesExtraField,
  createAesEncryptor,
} from "../src/aes/index.js";
import { AesBlockCipher, KEYSTREAM_BATCH_BLOCKS, LittleEndianCounter, WinZipCtr } from "../src/aes/ctr.js";
import { deriveAesKeys, pbkdf2HmacSha1 } from "../src/aes/kdf.js";
import { ZipError } from "../src/errors.js";

const hex = (b: Uint8Array): string => Buffer.from(b.buffer, b.byteOffset, b.length).toString("hex");
const unhex = (s: string): Uint8Array => new Uint8Array(Buffer.from(s.replace(/\s+/g, ""), "hex"));

/** Deterministic pseudo-random bytes (xorshift32) so failures are reproducible. */
function pseudoRandom(n: number, seed = 0x9e3779b9): Uint8Array {
  const out = new Uint8Array(n);
  let x = seed >>> 0 || 1;
  for (let i = 0; i < n; i++) {
    x ^= x << 13;
    x >>>= 0;
    x ^= x >>> 17;
    x ^= x << 5;
    x >>>= 0;
    out[i] = x & 0xff;
  }
  return out;
}

/**
 * Independent reference for WinZip's CTR: one AES call per block through its own ECB cipher, a
 * 16-byte counter incremented byte by byte with carry (little-endian), and a byte-at-a-time XOR.
 */
function referenceCtr(key: Uint8Array, data: Uint8Array, initialCounter?: Uint8Array): Uint8Array {
  const ecb = createCipheriv("aes-256-ecb", key, null);
  ecb.setAutoPadding(false);
  const counter = new Uint8Array(16);
  if (initialCounter) counter.set(initialCounter);
  else counter[0] = 1;
  const out = new Uint8Array(data.length);
  let ks = new Uint8Array(16);
  for (let i = 0; i < data.length; i++) {
    if (i % 16 === 0) {
      ks = new Uint8Array(ecb.update(counter));
      for (let k = 0; k < 16; k++) {
        counter[k] = (counter[k] + 1) & 0xff;
        if (counter[k] !== 0) break;
      }
    }
    out[i] = data[i] ^ ks[i % 16];
  }
  return out;
}

/** Runs `data` through a WinZipCtr in chunks of the given sizes (cycled), each at an odd offset. */
function ctrInChunks(ctr: WinZipCtr, data: Uint8Array, sizes: number[]): Uint8Array {
  const parts: Uint8Array[] = [];
  const inSizes: number[] = [];
  let off = 0;
  for (let i = 0; off < data.length; i++) {
    const size = Math.min(sizes[i % sizes.length], data.length - off);
    // Copy into a buffer at offset (i % 4) so the input's alignment varies too.
    const backing = new Uint8Array(size + 4);
    const chunk = backing.subarray(i % 4, (i % 4) + size);
    chunk.set(data.subarray(off, off + size));
    parts.push(ctr.update(chunk));
    inSizes.push(size);
    off += size;
  }
  const out = new Uint8Array(Buffer.concat(parts));
  // Every output has its input's length (compared in one expect: one per chunk is slow).
  expect(parts.map((p) => p.length)).toEqual(inSizes);
  return out;
}

describe("PBKDF2-HMAC-SHA1 (RFC 6070 test vectors)", () => {
  const vectors: Array<[string, string, number, number, string]> = [
    ["password", "salt", 1, 20, "0c60c80f961f0e71f3a9b524af6012062fe037a6"],
    ["password", "salt", 2, 20, "ea6c014dc72d6f8ccd1ed92ace1d41f0d8de8957"],
    ["password", "salt", 4096, 20, "4b007901b765489abead49d926f721d065a429c1"],
    [
      "passwordPASSWORDpassword",
      "saltSALTsaltSALTsaltSALTsaltSALTsalt",
      4096,
      25,
      "3d2eec4fe41c849b80c8d83662c0e44a8b291a964cf2f07038",
    ],
    ["pass\0word", "sa\0lt", 4096, 16, "56fa6aa75548099dcc37d7f03425e0c3"],
  ];
  // The RFC's 16,777,216-iteration vector is left out: it costs several seconds of CPU and
  // exercises nothing the 4,096-iteration vectors do not.
  for (const [pw, salt, c, dkLen, expected] of vectors) {
    it(`P=${JSON.stringify(pw)} S=${JSON.stringify(salt)} c=${c} dkLen=${dkLen}`, () => {
      expect(hex(pbkdf2HmacSha1(pw, new TextEncoder().encode(salt), c, dkLen))).toBe(expected);
    });
  }

  it("encodes the password as UTF-8", () => {
    const salt = unhex("000102030405060708090a0b0c0d0e0f");
    const keys = deriveAesKeys("pässwörd ✓", salt);
    const dk = pbkdf2Sync(Buffer.from("pässwörd ✓", "utf8"), salt, 1000, 66, "sha1");
    expect(hex(keys.aesKey)).toBe(dk.subarray(0, 32).toString("hex"));
    expect(hex(keys.hmacKey)).toBe(dk.subarray(32, 64).toString("hex"));
    expect(hex(keys.verifier)).toBe(dk.subarray(64, 66).toString("hex"));
  });
});

describe("AES-256 block layer", () => {
  it("matches the FIPS-197 appendix C.3 known answer", () => {
    const key = unhex("000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f");
    const aes = new AesBlockCipher(key);
    expect(hex(aes.encryptBlocks(unhex("00112233445566778899aabbccddeeff")))).toBe(
      "8ea2b7ca516745bfeafc49904b496089",
    );
    // Several blocks in one call are independent (ECB, no chaining) and no state carries over.
    const two = aes.encryptBlocks(unhex("00112233445566778899aabbccddeeff".repeat(2)));
    expect(hex(two)).toBe("8ea2b7ca516745bfeafc49904b496089".repeat(2));
  });

  it("rejects keys that are not 32 bytes and partial blocks", () => {
    expect(() => new AesBlockCipher(new Uint8Array(16))).toThrow(RangeError);
    expect(() => new AesBlockCipher(new Uint8Array(32)).encryptBlocks(new Uint8Array(15))).toThrow(RangeError);
  });
});

describe("WinZip little-endian counter", () => {
  it("starts at 1 and counts little-endian", () => {
    const c = new LittleEndianCounter();
    expect(hex(c.bytes())).toBe("01" + "00".repeat(15));
    const dst = new DataView(new ArrayBuffer(48));
    c.fill(dst, 3);
    expect(hex(new Uint8Array(dst.buffer))).toBe(
      ["01", "02", "03"].map((b) => b + "00".repeat(15)).join(""),
    );
    expect(hex(c.bytes())).toBe("04" + "00".repeat(15));
  });

  it("carries across bytes, 32-bit words and the whole 128 bits", () => {
    const cases: Array<[string, string]> = [
      ["ff" + "00".repeat(15), "0001" + "00".repeat(14)],
      ["ffff" + "00".repeat(14), "000001" + "00".repeat(13)],
      ["ffffffff" + "00".repeat(12), "0000000001" + "00".repeat(11)], // 2^32 blocks
      ["ff".repeat(8) + "00".repeat(8), "00".repeat(8) + "01" + "00".repeat(7)], // 2^64
      ["ff".repeat(12) + "00".repeat(4), "00".repeat(12) + "01000000"],
      ["ff".repeat(16), "00".repeat(16)], // wraps modulo 2^128
    ];
    for (const [start, next] of cases) {
      const c = new LittleEndianCounter(unhex(start));
      const dst = new DataView(new ArrayBuffer(32));
      c.fill(dst, 2);
      expect(hex(new Uint8Array(dst.buffer, 0, 16))).toBe(start);
      expect(hex(new Uint8Array(dst.buffer, 16, 16))).toBe(next);
    }
  });
});

describe("WinZip AES-CTR against a byte-at-a-time reference", () => {
  const key = pseudoRandom(32, 7);
  // More than one keystream batch, and not a multiple of 16.
  const data = pseudoRandom(KEYSTREAM_BATCH_BLOCKS * 16 + 12_345, 11);
  const expected = referenceCtr(key, data);

  it("one call equals the reference", () => {
    expect(hex(new WinZipCtr(key).update(data))).toBe(hex(expected));
  });

  const splits: number[][] = [
    // One byte at a time across the end of the first keystream batch (65,536 bytes).
    [65_000, ...new Array<number>(1_500).fill(1)],
    [3, 5, 7],
    [15, 17, 1, 31],
    [65_535, 1, 65_537],
    [4_093, 16, 2],
    [70_001],
    [16, 32, 48],
  ];
  for (const sizes of splits) {
    const label = sizes.length > 8 ? `${sizes[0]},1 x ${sizes.length - 1}` : sizes.join(",");
    it(`chunks of ${label} equal the reference`, () => {
      const out = ctrInChunks(new WinZipCtr(key), data, sizes);
      expect(hex(out)).toBe(hex(expected));
    });
  }

  it("empty chunks are no-ops", () => {
    const ctr = new WinZipCtr(key);
    expect(ctr.update(new Uint8Array(0)).length).toBe(0);
    const a = ctr.update(data.subarray(0, 5));
    expect(ctr.update(new Uint8Array(0)).length).toBe(0);
    const b = ctr.update(data.subarray(5, 40));
    expect(hex(Buffer.concat([a, b]))).toBe(hex(expected.subarray(0, 40)));
    expect(ctr.position).toBe(40);
  });

  const starts = [
    "fa" + "00".repeat(15), // byte carry after 6 blocks
    "f0ffffff" + "00".repeat(12), // 2^32 carry
    "f0" + "ff".repeat(7) + "00".repeat(8), // 2^64 carry
    "fd" + "ff".repeat(15), // wrap at 2^128
  ];
  for (const start of starts) {
    it(`counter starting at ${start} carries like the reference, across odd chunks`, () => {
      const iv = unhex(start);
      const small = data.subarray(0, 1_000);
      const ref = referenceCtr(key, small, iv);
      expect(hex(new WinZipCtr(key, iv).update(small))).toBe(hex(ref));
      expect(hex(ctrInChunks(new WinZipCtr(key, iv), small, [7, 13, 1, 50]))).toBe(hex(ref));
    });
  }

  it("does not expose stale memory around the returned view", () => {
    const ctr = new WinZipCtr(key);
    ctr.update(data.subarray(0, 5));
    const out = ctr.update(data.subarray(5, 10));
    expect(out.byteOffset).toBe(5);
    const whole = new Uint8Array(out.buffer);
    expect([...whole.subarray(0, 5)]).toEqual([0, 0, 0, 0, 0]);
    expect([...whole.subarray(10)]).toEqual(new Array(whole.length - 10).fill(0));
  });
});

describe("AE-2 extra field", () => {
  it("has the documented bytes", () => {
    expect(AES_EXTRA_LENGTH).toBe(11);
    // 0x9901, size 7, version 2 (AE-2), "AE", strength 3, method 8 (deflate).
    expect(hex(aesExtraField(8))).toBe("0199070002004145030800");
    expect(hex(aesExtraField(0))).toBe("0199070002004145030000");
  });

  it("rejects invalid methods", () => {
    for (const m of [-1, 65_536, 1.5, Number.NaN]) expect(() => aesExtraField(m)).toThrow(TypeError);
  });
});

describe("createAesEncryptor", () => {
  const salt = unhex("00112233445566778899aabbccddeeff");
  const fixedSalt = (n: number): Uint8Array => {
    expect(n).toBe(16);
    return salt.slice();
  };

  it("has the documented sizes", () => {
    expect([AES_SALT_LENGTH, AES_VERIFIER_LENGTH, AES_MAC_LENGTH, AES_OVERHEAD]).toEqual([16, 2, 10, 28]);
  });

  it("header, ciphertext and MAC match an independent node:crypto computation", () => {
    const password = "correct horse battery staple";
    const plain = pseudoRandom(150_001, 3);
    const enc = createAesEncryptor(password, fixedSalt);
    const parts = [0, 1, 16, 999, 65_536, 150_001].slice(1).map((end, i, arr) => {
      const start = i === 0 ? 0 : arr[i - 1];
      return enc.update(plain.subarray(start, end));
    });
    const cipher = Buffer.concat(parts);
    const mac = enc.final();

    const dk = pbkdf2Sync(password, salt, 1000, 66, "sha1");
    expect(hex(enc.header)).toBe(hex(salt) + dk.subarray(64, 66).toString("hex"));
    expect(cipher.length).toBe(plain.length);
    expect(hex(referenceCtr(dk.subarray(0, 32), cipher))).toBe(hex(plain));
    const expectedMac = createHmac("sha1", dk.subarray(32, 64)).update(cipher).digest().subarray(0, 10);
    expect(mac.length).toBe(10);
    expect(hex(mac)).toBe(expectedMac.toString("hex"));
  });

  it("an empty member is header + MAC of nothing", () => {
    const enc = createAesEncryptor("pw", fixedSalt);
    const dk = pbkdf2Sync("pw", salt, 1000, 66, "sha1");
    expect(enc.update(new Uint8Array(0)).length).toBe(0);
    expect(hex(enc.final())).toBe(createHmac("sha1", dk.subarray(32, 64)).digest().subarray(0, 10).toString("hex"));
  });

  it("draws a fresh random salt by default", () => {
    const a = createAesEncryptor("pw");
    const b = createAesEncryptor("pw");
    expect(a.header.length).toBe(18);
    expect(hex(a.header.subarray(0, 16))).not.toBe(hex(b.header.subarray(0, 16)));
  });

  it("validates its arguments", () => {
    for (const bad of ["", undefined, null, 42]) {
      expect(() => createAesEncryptor(bad as unknown as string)).toThrow(TypeError);
      expect(() => createAesEncryptor(bad as unknown as string)).toThrow(/password/);
    }
    expect(() => createAesEncryptor("pw", 5 as unknown as () => Uint8Array)).toThrow(/randomBytes/);
    expect(() => createAesEncryptor("pw", () => new Uint8Array(15))).toThrow(/randomBytes/);
  });

  it("refuses use after final()", () => {
    const enc = createAesEncryptor("pw", fixedSalt);
    enc.final();
    expect(() => enc.update(new Uint8Array(1))).toThrow(ZipError);
    expect(() => enc.final()).toThrow(ZipError);
  });
});
