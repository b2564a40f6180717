/**
 * AES-256 encryption in the WinZip AE-2 format (APPNOTE 4.4.5 method 99, APPNOTE 7.2 and the
 * WinZip "AES Encryption Information" specification). The writer wraps each encrypted member's
 * (already compressed) data as: salt | verifier | ciphertext | authentication code.
 *
 * @module
 */
import { createHmac, randomFillSync, type Hmac } from "node:crypto";
import { ZipError } from "../errors.js";
import { WinZipCtr } from "./ctr.js";
import { deriveAesKeys, deriveAesKeysAsync, type AesKeys } from "./kdf.js";

/** Salt length for AES-256 (strength 3). */
export const AES_SALT_LENGTH = 16;
/** Password verification value length. */
export const AES_VERIFIER_LENGTH = 2;
/** Authentication code length: the first 10 bytes of the HMAC-SHA1. */
export const AES_MAC_LENGTH = 10;
/** Bytes AES adds to an entry's compressed size: salt + verifier + authentication code. */
export const AES_OVERHEAD = 28;
/** Size of the 0x9901 extra field, including its 4-byte header. */
export const AES_EXTRA_LENGTH = 11;

/** Extra field header id of the WinZip AES record (APPNOTE 4.6.1, 0x9901). */
const AES_EXTRA_ID = 0x9901;
/** AE-2: the CRC field is 0 and the authentication code alone protects the data. */
const AES_VENDOR_VERSION = 2;
/** Strength 3 = AES-256. */
const AES_STRENGTH_256 = 3;

/**
 * Builds the 0x9901 extra field for an AE-2 member (11 bytes, in local and central headers):
 * header id, data size 7, vendor version 2 (AE-2), vendor id "AE", strength 3 (AES-256), and the
 * member's real compression method (the headers themselves say 99).
 *
 * @param actualMethod compression method of the data inside the encryption (0 store, 8 deflate).
 */
export function aesExtraField(actualMethod: number): Uint8Array {
  if (!Number.isInteger(actualMethod) || actualMethod < 0 || actualMethod > 0xffff) {
    throw new TypeError(`actualMethod must be an integer 0-65535, got ${String(actualMethod)}`);
  }
  const out = new Uint8Array(AES_EXTRA_LENGTH);
  const dv = new DataView(out.buffer);
  dv.setUint16(0, AES_EXTRA_ID, true);
  dv.setUint16(2, AES_EXTRA_LENGTH - 4, true);
  dv.setUint16(4, AES_VENDOR_VERSION, true);
  out[6] = 0x41; // "A"
  out[7] = 0x45; // "E"
  out[8] = AES_STRENGTH_256;
  dv.setUint16(9, actualMethod, true);
  return out;
}

/**
 * Encrypts one member's data. Use: write `header`, then `update(chunk)` for every chunk of the
 * compressed data (output has the chunk's length), then `final()` once and write its 10 bytes.
 * Memory: about 128 KiB of keystream and counter buffers, whatever the member's size.
 */
export interface AesEncryptor {
  /** Salt (16 bytes) followed by the password verification value (2 bytes). */
  readonly header: Uint8Array;
  /** Encrypts the next chunk; returns ciphertext of the same length. Any chunk size works. */
  update(chunk: Uint8Array): Uint8Array;
  /** Ends the member and returns the 10-byte authentication code. Call once, after the last `update`. */
  final(): Uint8Array;
}

function defaultRandomBytes(n: number): Uint8Array {
  return randomFillSync(new Uint8Array(n));
}

class Ae2Encryptor implements AesEncryptor {
  readonly header: Uint8Array;
  readonly #ctr: WinZipCtr;
  readonly #hmac: Hmac;
  #done = false;

  constructor(salt: Uint8Array, keys: AesKeys) {
    this.header = new Uint8Array(AES_SALT_LENGTH + AES_VERIFIER_LENGTH);
    this.header.set(salt, 0);
    this.header.set(keys.verifier, AES_SALT_LENGTH);
    this.#ctr = new WinZipCtr(keys.aesKey);
    this.#hmac = createHmac("sha1", keys.hmacKey);
  }

  update(chunk: Uint8Array): Uint8Array {
    if (this.#done) throw new ZipError("ERR_AES_STATE", "AES encryptor used after final()");
    const out = this.#ctr.update(chunk);
    // AE-x authenticates the ciphertext (encrypt-then-MAC), not the plaintext.
    if (out.length > 0) this.#hmac.update(out);
    return out;
  }

  final(): Uint8Array {
    if (this.#done) throw new ZipError("ERR_AES_STATE", "AES encryptor final() called twice");
    this.#done = true;
    return new Uint8Array(this.#hmac.digest().subarray(0, AES_MAC_LENGTH));
  }
}

/**
 * Starts encrypting one AE-2 member with AES-256: draws a fresh 16-byte salt, derives the keys
 * (PBKDF2-HMAC-SHA1, 1,000 iterations — about a millisecond of CPU per member) and returns an
 * encryptor. Each member needs its own encryptor (a salt must never be reused).
 *
 * @param password encoded as UTF-8; must be a non-empty string.
 * @param randomBytes source of the salt. **For deterministic tests only**: the default,
 *   `crypto.randomFillSync`, is the only safe choice in production — a predictable or repeated
 *   salt repeats the keystream and breaks the encryption.
 * @throws TypeError when `password` is not a non-empty string, or `randomBytes` is not a
 *   function returning a 16-byte Uint8Array.
 */
export function createAesEncryptor(
  password: string,
  randomBytes?: (n: number) => Uint8Array,
): AesEncryptor {
  const salt = drawSalt(password, randomBytes);
  return new Ae2Encryptor(salt, deriveAesKeys(password, salt));
}

/**
 * {@link createAesEncryptor} with the key derivation on the thread pool. The salt is drawn
 * synchronously, before this returns, so salts follow the order of the calls.
 */
export function createAesEncryptorAsync(password: string, randomBytes?: (n: number) => Uint8Array): Promise<AesEncryptor> {
  let salt: Uint8Array;
  try {
    salt = drawSalt(password, randomBytes);
  } catch (err) {
    return Promise.reject(err);
  }
  return deriveAesKeysAsync(password, salt).then((keys) => new Ae2Encryptor(salt, keys));
}

function drawSalt(password: string, randomBytes: ((n: number) => Uint8Array) | undefined): Uint8Array {
  if (typeof password !== "string" || password.length === 0) {
    throw new TypeError("password must be a non-empty string");
  }
  if (randomBytes !== undefined && typeof randomBytes !== "function") {
    throw new TypeError("randomBytes must be a function (n) => Uint8Array");
  }
  const salt = (randomBytes ?? defaultRandomBytes)(AES_SALT_LENGTH);
  if (!(salt instanceof Uint8Array) || salt.length !== AES_SALT_LENGTH) {
    throw new TypeError(`randomBytes must return a Uint8Array of ${AES_SALT_LENGTH} bytes`);
  }
  return salt;
}

/**
 * Checks and decrypts one AE-1/AE-2 AES-256 member, the reader's side of {@link AesEncryptor}:
 * `passwordOk` compares the stored 2-byte verifier, `update(ciphertext)` returns the plaintext
 * (CTR mode: the same operation as encryption) while the HMAC-SHA1 runs over the ciphertext, and
 * `final()` returns the 10-byte authentication code to compare with the stored one.
 * Memory: about 128 KiB, whatever the member's size.
 */
export interface AesDecryptor {
  readonly passwordOk: boolean;
  update(ciphertext: Uint8Array): Uint8Array;
  final(): Uint8Array;
}

/**
 * Derives the keys for one AES-256 member from its 16-byte salt (on the thread pool) and starts
 * decrypting. `header` is the member's first 18 bytes: salt then password verification value.
 */
export async function createAesDecryptorAsync(password: string, header: Uint8Array): Promise<AesDecryptor> {
  if (typeof password !== "string" || password.length === 0) throw new TypeError("password must be a non-empty string");
  if (!(header instanceof Uint8Array) || header.length !== AES_SALT_LENGTH + AES_VERIFIER_LENGTH) {
    throw new TypeError(`header must be the ${AES_SALT_LENGTH + AES_VERIFIER_LENGTH} bytes of salt and verifier`);
  }
  const keys = await deriveAesKeysAsync(password, header.subarray(0, AES_SALT_LENGTH));
  const ctr = new WinZipCtr(keys.aesKey);
  const hmac = createHmac("sha1", keys.hmacKey);
  const stored = header.subarray(AES_SALT_LENGTH);
  return {
    passwordOk: keys.verifier[0] === stored[0] && keys.verifier[1] === stored[1],
    update(ciphertext) {
      if (ciphertext.length > 0) hmac.update(ciphertext);
      return ctr.update(ciphertext);
    },
    final() {
      return new Uint8Array(hmac.digest().subarray(0, AES_MAC_LENGTH));
    },
  };
}
