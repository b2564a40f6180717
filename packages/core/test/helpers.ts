import { execFile } from "node:child_process";
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { Readable } from "node:stream";
import { promisify } from "node:util";

const run = promisify(execFile);

/** Collects a stream into one Buffer. */
export async function collect(stream: Readable): Promise<Buffer> {
  const parts: Buffer[] = [];
  for await (const c of stream) parts.push(Buffer.from(c as Uint8Array));
  return Buffer.concat(parts);
}

/** Resolves with the error the stream is destroyed with, and the bytes it produced before. */
export async function collectError(stream: Readable): Promise<{ error: any; bytes: Buffer }> {
  const parts: Buffer[] = [];
  try {
    for await (const c of stream) parts.push(Buffer.from(c as Uint8Array));
  } catch (error) {
    return { error, bytes: Buffer.concat(parts) };
  }
  throw new Error("stream ended without an error");
}

export const hex = (b: Uint8Array): string => Buffer.from(b).toString("hex");

export interface CentralEntry {
  name: string;
  versionMadeBy: number;
  versionNeeded: number;
  flags: number;
  method: number;
  time: number;
  date: number;
  crc: number;
  csize: number;
  usize: number;
  externalAttributes: number;
  offset: number;
  extra: Map<number, Buffer>;
  comment: string;
}

/** Minimal reader of the end records and central directory, resolving Zip64 values. */
export function parseZip(buf: Buffer, baseOffset = 0): { entries: CentralEntry[]; comment: string; zip64: boolean; cdOffset: number; count: number } {
  const eocd = buf.lastIndexOf(Buffer.from([0x50, 0x4b, 0x05, 0x06]));
  if (eocd < 0) throw new Error("no EOCD");
  let count = buf.readUInt16LE(eocd + 10);
  let cdSize = buf.readUInt32LE(eocd + 12);
  let cdOffset = buf.readUInt32LE(eocd + 16);
  const comment = buf.subarray(eocd + 22, eocd + 22 + buf.readUInt16LE(eocd + 20)).toString("utf8");
  let zip64 = false;
  if (eocd >= 20 && buf.readUInt32LE(eocd - 20) === 0x07064b50) {
    zip64 = true;
    const z = Number(buf.readBigUInt64LE(eocd - 20 + 8)) - baseOffset;
    if (buf.readUInt32LE(z) !== 0x06064b50) throw new Error("bad zip64 EOCD");
    count = Number(buf.readBigUInt64LE(z + 32));
    cdSize = Number(buf.readBigUInt64LE(z + 40));
    cdOffset = Number(buf.readBigUInt64LE(z + 48));
  }
  const entries: CentralEntry[] = [];
  let p = cdOffset - baseOffset;
  for (let i = 0; i < count; i++) {
    if (buf.readUInt32LE(p) !== 0x02014b50) throw new Error(`bad central header at ${p}`);
    const nameLen = buf.readUInt16LE(p + 28);
    const extraLen = buf.readUInt16LE(p + 30);
    const commentLen = buf.readUInt16LE(p + 32);
    const e: CentralEntry = {
      versionMadeBy: buf.readUInt16LE(p + 4),
      versionNeeded: buf.readUInt16LE(p + 6),
      flags: buf.readUInt16LE(p + 8),
      method: buf.readUInt16LE(p + 10),
      time: buf.readUInt16LE(p + 12),
      date: buf.readUInt16LE(p + 14),
      crc: buf.readUInt32LE(p + 16),
      csize: buf.readUInt32LE(p + 20),
      usize: buf.readUInt32LE(p + 24),
      externalAttributes: buf.readUInt32LE(p + 38),
      offset: buf.readUInt32LE(p + 42),
      name: buf.subarray(p + 46, p + 46 + nameLen).toString("utf8"),
      extra: new Map(),
      comment: buf.subarray(p + 46 + nameLen + extraLen, p + 46 + nameLen + extraLen + commentLen).toString("utf8"),
    };
    let q = p + 46 + nameLen;
    const end = q + extraLen;
    while (q < end) {
      const id = buf.readUInt16LE(q);
      const len = buf.readUInt16LE(q + 2);
      e.extra.set(id, buf.subarray(q + 4, q + 4 + len));
      q += 4 + len;
    }
    const z = e.extra.get(0x0001);
    if (z) {
      let k = 0;
      if (e.usize === 0xffffffff) (e.usize = Number(z.readBigUInt64LE(k)), (k += 8));
      if (e.csize === 0xffffffff) (e.csize = Number(z.readBigUInt64LE(k)), (k += 8));
      if (e.offset === 0xffffffff) (e.offset = Number(z.readBigUInt64LE(k)), (k += 8));
    }
    entries.push(e);
    p = end + commentLen;
  }
  if (p !== cdOffset - baseOffset + cdSize) throw new Error("central directory size mismatch");
  return { entries, comment, zip64, cdOffset, count };
}

/** Writes `zip` to a temp file and runs `fn(path)`, removing the file afterwards. */
export async function withTempFile<T>(zip: Uint8Array, fn: (path: string) => Promise<T>): Promise<T> {
  const dir = await mkdtemp(join(tmpdir(), "zipstream-core-"));
  const path = join(dir, "a.zip");
  try {
    await writeFile(path, zip);
    return await fn(path);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

const PY_READER = `
import sys, zipfile, json, base64
z = zipfile.ZipFile(sys.argv[1])
bad = z.testzip()
out = {"bad": bad, "comment": z.comment.decode("utf-8"), "entries": []}
for i in z.infolist():
    data = b"" if i.is_dir() else z.read(i, pwd=None)
    out["entries"].append({"name": i.filename, "size": i.file_size, "csize": i.compress_size, "crc": i.CRC,
        "mode": i.external_attr >> 16, "date_time": list(i.date_time), "comment": i.comment.decode("utf-8"),
        "data": base64.b64encode(data).decode("ascii")})
print(json.dumps(out))
`;

export interface PyEntry {
  name: string;
  size: number;
  csize: number;
  crc: number;
  mode: number;
  date_time: number[];
  comment: string;
  data: string;
}

/** Reads the archive with Python's zipfile (CRC checked by testzip and read). */
export async function pythonRead(zip: Uint8Array): Promise<{ bad: string | null; comment: string; entries: PyEntry[] }> {
  return withTempFile(zip, async (path) => {
    const { stdout } = await run("python3", ["-c", PY_READER, path], { maxBuffer: 256 << 20 });
    return JSON.parse(stdout);
  });
}

/** `unzip -t`: resolves with its output, rejects when it reports errors. */
export async function unzipTest(zip: Uint8Array): Promise<string> {
  return withTempFile(zip, async (path) => {
    const { stdout } = await run("unzip", ["-t", path], { maxBuffer: 64 << 20 });
    return stdout;
  });
}
