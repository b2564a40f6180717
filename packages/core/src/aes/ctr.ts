import { createCipheriv, type Cipher } from "node:crypto";

/** AES block size in bytes. */
export const AES_BLOCK = 16;

/**
 * Blocks of keystream produced per ECB call (4096 blocks = 64 KiB). Large batches amortise the
 * per-call cost of node:crypto; this is also the keystream memory an encryptor holds.
 */
export const KEYSTREAM_BATCH_BLOCKS = 4096;

/**
 * Encrypts whole 16-byte blocks with AES-256 (no chaining, no padding): the raw block cipher.
 * Internal; exported so tests can run the FIPS-197 known answer through it.
 */
export class AesBlockCipher {
  readonly #ecb: Cipher;

  constructor(key: Uint8Array) {
    if (key.length !== 32) throw new RangeError(`AES-256 key must be 32 bytes, got ${key.length}`);
    this.#ecb = createCipheriv("aes-256-ecb", key, null);
    this.#ecb.setAutoPadding(false);
  }

  /** Encrypts `blocks` (a multiple of 16 bytes) and returns the ciphertext blocks. */
  encryptBlocks(blocks: Uint8Array): Uint8Array {
    if (blocks.length % AES_BLOCK !== 0) {
      throw new RangeError(`block input must be a multiple of 16 bytes, got ${blocks.length}`);
    }
    // ECB with padding off keeps no state between calls, so update() returns every block.
    return this.#ecb.update(blocks);
  }
}

/**
 * WinZip's AES counter: a 128-bit little-endian integer held as four 32-bit words, least
 * significant first. (OpenSSL's aes-*-ctr counts big-endian, so it cannot be used directly.)
 */
export class LittleEndianCounter {
  readonly #w = new Uint32Array(4);

  /** `initial`: 16 bytes, little-endian; default 1, where WinZip starts. */
  constructor(initial?: Uint8Array) {
    if (initial === undefined) {
      this.#w[0] = 1;
      return;
    }
    if (initial.length !== AES_BLOCK) throw new RangeError("counter must be 16 bytes");
    const dv = new DataView(initial.buffer, initial.byteOffset, AES_BLOCK);
    for (let i = 0; i < 4; i++) this.#w[i] = dv.getUint32(4 * i, true);
  }

  /** The current value as 16 little-endian bytes. */
  bytes(): Uint8Array {
    const out = new Uint8Array(AES_BLOCK);
    const dv = new DataView(out.buffer);
    for (let i = 0; i < 4; i++) dv.setUint32(4 * i, this.#w[i], true);
    return out;
  }

  /**
   * Writes `count` consecutive counter blocks into `dst` (at least 16 * count bytes, offset 0)
   * starting at the current value, and leaves the counter at the value after the last one.
   * The value wraps modulo 2^128 (unreachable in practice: 2^64 blocks is 256 EiB).
   */
  fill(dst: DataView, count: number): void {
    const w = this.#w;
    let w0 = w[0];
    let w1 = w[1];
    let w2 = w[2];
    let w3 = w[3];
    for (let b = 0, o = 0; b < count; b++, o += AES_BLOCK) {
      dst.setUint32(o, w0, true);
      dst.setUint32(o + 4, w1, true);
      dst.setUint32(o + 8, w2, true);
      dst.setUint32(o + 12, w3, true);
      // Increment with carry across the words (and so across every byte, little-endian).
      w0 = (w0 + 1) >>> 0;
      if (w0 === 0) {
        w1 = (w1 + 1) >>> 0;
        if (w1 === 0) {
          w2 = (w2 + 1) >>> 0;
          if (w2 === 0) w3 = (w3 + 1) >>> 0;
        }
      }
    }
    w[0] = w0;
    w[1] = w1;
    w[2] = w2;
    w[3] = w3;
  }
}

/**
 * AES-256 in WinZip's counter mode (the AE-1/AE-2 "CTR" variant): keystream block n (from 0)
 * is AES(key, counter0 + n) with the counter little-endian; ciphertext = plaintext XOR keystream.
 * Encryption and decryption are the same operation. Chunks may have any length; the position
 * inside the keystream carries over between calls.
 *
 * Memory: one keystream batch and one counter batch (64 KiB each), plus each output chunk.
 */
export class WinZipCtr {
  readonly #aes: AesBlockCipher;
  readonly #counter: LittleEndianCounter;
  readonly #counterBuf: Uint8Array;
  readonly #counterView: DataView;
  /** Keystream of blocks [#ksFirst, #ksFirst + #ksBlocks) of the stream. */
  #ks: Uint8Array = new Uint8Array(0);
  #ksFirst = 0;
  #ksBlocks = 0;
  /** Bytes processed so far (a double is exact up to 2^53 bytes, 8 PiB). */
  #pos = 0;

  /** `initialCounter` (16 bytes little-endian) is for tests; WinZip always starts at 1. */
  constructor(key: Uint8Array, initialCounter?: Uint8Array) {
    this.#aes = new AesBlockCipher(key);
    this.#counter = new LittleEndianCounter(initialCounter);
    this.#counterBuf = new Uint8Array(KEYSTREAM_BATCH_BLOCKS * AES_BLOCK);
    this.#counterView = new DataView(this.#counterBuf.buffer);
  }

  /** Bytes processed so far. */
  get position(): number {
    return this.#pos;
  }

  /** Produces the keystream for the next batch of blocks, which starts at block `first`. */
  #refill(first: number): void {
    this.#counter.fill(this.#counterView, KEYSTREAM_BATCH_BLOCKS);
    this.#ks = this.#aes.encryptBlocks(this.#counterBuf);
    this.#ksFirst = first;
    this.#ksBlocks = KEYSTREAM_BATCH_BLOCKS;
  }

  /** XORs `chunk` with the next `chunk.length` keystream bytes; returns a new array. */
  update(chunk: Uint8Array): Uint8Array {
    const n = chunk.length;
    if (n === 0) return new Uint8Array(0);
    // Lay the output out so that its underlying buffer starts on a block boundary of the
    // keystream: byte j of `buf` then pairs with keystream byte j of the same block, and both
    // sides share 4-byte alignment, so the XOR can run over 32-bit words whatever the chunk
    // boundaries. The returned view skips the `lead` bytes of the first block already used.
    const lead = this.#pos % AES_BLOCK;
    const total = lead + n;
    const size = Math.ceil(total / 4) * 4;
    // Uninitialised memory (no zero-fill of what is overwritten anyway); the few bytes outside
    // the returned view are zeroed so that `.buffer` never exposes stale process memory.
    const buf: Uint8Array = Buffer.allocUnsafeSlow(size);
    buf.fill(0, 0, lead);
    buf.fill(0, total, size);
    const buf32 = new Uint32Array(buf.buffer, buf.byteOffset, size / 4);
    // Read the input through 32-bit words when it happens to share the output's alignment
    // (the usual case: chunks from zlib or fs start at offset 0); otherwise copy it first and
    // XOR in place.
    let src = chunk;
    let srcDelta = -lead;
    if ((chunk.byteOffset - lead) % 4 !== 0) {
      buf.set(chunk, lead);
      src = buf;
      srcDelta = 0;
    }
    const firstBlock = (this.#pos - lead) / AES_BLOCK;
    const endBlock = firstBlock + Math.ceil(total / AES_BLOCK);

    let block = firstBlock;
    while (block < endBlock) {
      if (block < this.#ksFirst || block >= this.#ksFirst + this.#ksBlocks) {
        // Blocks are consumed strictly in order, so a miss is always the next batch.
        this.#refill(this.#ksFirst + this.#ksBlocks);
      }
      const upto = Math.min(endBlock, this.#ksFirst + this.#ksBlocks);
      const lo = Math.max(lead, (block - firstBlock) * AES_BLOCK);
      const hi = Math.min(total, (upto - firstBlock) * AES_BLOCK);
      const ksDelta = (firstBlock - this.#ksFirst) * AES_BLOCK; // a multiple of 16
      xorRange(buf, buf32, src, srcDelta, this.#ks, ksDelta, lo, hi);
      block = upto;
    }
    this.#pos += n;
    return buf.subarray(lead, total);
  }
}

/**
 * out[j] = src[j + srcDelta] ^ ks[j + ksDelta] for j in [lo, hi). `ksDelta` is a multiple of 4;
 * `src` may be `out` itself (srcDelta 0). Whole 32-bit words are used where both the source and
 * the keystream share the output's alignment, single bytes elsewhere.
 */
function xorRange(
  out: Uint8Array,
  out32: Uint32Array,
  src: Uint8Array,
  srcDelta: number,
  ks: Uint8Array,
  ksDelta: number,
  lo: number,
  hi: number,
): void {
  let j = lo;
  const ksBase = ks.byteOffset + ksDelta;
  const srcBase = src.byteOffset + srcDelta;
  if (ksBase % 4 === 0 && srcBase % 4 === 0) {
    while (j < hi && j % 4 !== 0) {
      out[j] = src[j + srcDelta] ^ ks[j + ksDelta];
      j++;
    }
    const wordsEnd = hi - (hi % 4);
    if (j < wordsEnd) {
      const count = (wordsEnd - j) / 4;
      // Views over exactly the words used; the byte offsets are multiples of 4 (checked above).
      const ks32 = new Uint32Array(ks.buffer, ksBase + j, count);
      const src32 = new Uint32Array(src.buffer, srcBase + j, count);
      const w0 = j / 4;
      for (let k = 0; k < count; k++) out32[w0 + k] = src32[k] ^ ks32[k];
      j = wordsEnd;
    }
  }
  for (; j < hi; j++) out[j] = src[j + srcDelta] ^ ks[j + ksDelta];
}
