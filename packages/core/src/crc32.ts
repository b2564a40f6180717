/**
 * CRC-32 arithmetic beyond `zlib.crc32`: combining the CRCs of two adjacent byte runs without the
 * bytes. Used to assemble a member's CRC from pieces (a part's CRC returned by S3, bytes read
 * here, the per-part checksums of a multipart object).
 *
 * The method is the GF(2) one: appending `n` zero bytes to a message multiplies its CRC register
 * by a fixed 32×32 bit matrix, `M^(8n)`, where M is the register's one-bit shift operator for the
 * reflected ZIP polynomial 0xEDB88320 (APPNOTE 4.4.7). Then
 *   crc(A ‖ B) = M^(8·|B|) · crc(A)  ⊕  crc(B)
 * because the CRC is affine in the message and crc(B) already accounts for the pre- and
 * post-conditioning. `M^(8·2^k)` for k = 0..52 is computed once by repeated squaring, so a combine
 * costs at most 53 matrix-vector products (~1,700 XORs), whatever the length.
 */

/** The reflected CRC-32 polynomial used by ZIP, gzip and S3's `CRC32` checksum. */
const POLY = 0xedb88320;

/** A 32×32 matrix over GF(2): column `i` is the image of bit `i`. */
type Matrix = Uint32Array<ArrayBuffer>;

function times(m: Matrix, v: number): number {
  let out = 0;
  for (let i = 0; v !== 0; i++, v >>>= 1) if (v & 1) out ^= m[i]!;
  return out >>> 0;
}

function square(m: Matrix): Matrix {
  const out = new Uint32Array(32);
  for (let i = 0; i < 32; i++) out[i] = times(m, m[i]!);
  return out;
}

/** `ZERO_BYTES[k]` appends 2^k zero bytes to a CRC register; 2^53 covers every safe length. */
const ZERO_BYTES: Matrix[] = (() => {
  // One zero bit: the register shifts right, and the polynomial is XORed in when bit 0 falls out.
  let m: Matrix = new Uint32Array(32);
  m[0] = POLY;
  for (let i = 1; i < 32; i++) m[i] = 1 << (i - 1);
  for (let i = 0; i < 3; i++) m = square(m); // 1 bit -> 2 -> 4 -> 8 bits: one byte
  const ops = [m];
  for (let k = 1; k < 53; k++) ops.push(square(ops[k - 1]!));
  return ops;
})();

/**
 * The CRC-32 of `A ‖ B` from `crc32(A)`, `crc32(B)` and `B`'s length in bytes.
 *
 * @param crcA CRC-32 of the first run (unsigned 32-bit).
 * @param crcB CRC-32 of the second run.
 * @param lengthB byte length of the second run: a non-negative safe integer.
 * @throws TypeError when `lengthB` is not a non-negative safe integer.
 */
export function crc32Combine(crcA: number, crcB: number, lengthB: number): number {
  if (!Number.isSafeInteger(lengthB) || lengthB < 0) throw new TypeError(`crc32Combine: lengthB must be a non-negative safe integer; got ${String(lengthB)}`);
  let crc = crcA >>> 0;
  // Walk the bits of lengthB (a float up to 2^53: no 32-bit shifts on it).
  for (let k = 0, n = lengthB; n > 0; k++, n = Math.floor(n / 2)) {
    if (n % 2 === 1) crc = times(ZERO_BYTES[k]!, crc);
  }
  return (crc ^ crcB) >>> 0;
}

/** Folds `[crc, length]` pieces, in order, into the CRC-32 of their concatenation. */
export function crc32Concat(pieces: Iterable<readonly [crc: number, length: number]>): number {
  let crc = 0;
  for (const [c, len] of pieces) crc = crc32Combine(crc, c, len);
  return crc;
}
