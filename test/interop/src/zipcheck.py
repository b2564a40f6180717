"""Reads a ZIP archive with Python's zipfile and prints JSON lines, one per entry.

Used by @zipstream/interop (src/index.ts).
Usage: python3 zipcheck.py <archive> <hash-all:true|false> [names-file] [--list-only]
testzip() checks every CRC first; entries to hash are then read fully (which checks the CRC
again at end of data). The Info-ZIP extended timestamp (0x5455, APPNOTE 4.6.x "Extended
Timestamp") is decoded from the central directory extra field, since zipfile ignores it.
"""
import hashlib
import json
import struct
import sys
import zipfile


def ext_mtime(extra: bytes):
    i = 0
    while i + 4 <= len(extra):
        hid, size = struct.unpack_from("<HH", extra, i)
        data = extra[i + 4 : i + 4 + size]
        if hid == 0x5455 and len(data) >= 5 and data[0] & 1:
            return struct.unpack_from("<i", data, 1)[0]
        i += 4 + size
    return None


def main() -> None:
    archive = sys.argv[1]
    hash_all = sys.argv[2] == "true"
    names = set()
    list_only = "--list-only" in sys.argv
    rest = [a for a in sys.argv[3:] if a != "--list-only"]
    if rest:
        with open(rest[0], encoding="utf-8") as f:
            names = set(f.read().split("\n"))
    out = sys.stdout
    with zipfile.ZipFile(archive) as zf:
        if not list_only:
            bad = zf.testzip()
            if bad is not None:
                raise SystemExit(f"testzip: first bad entry {bad!r}")
        infos = zf.infolist()
        out.write(json.dumps({"comment": zf.comment.decode("utf-8", "replace"), "count": len(infos)}) + "\n")
        for info in infos:
            rec = {
                "name": info.filename,
                "dir": info.is_dir(),
                "size": info.file_size,
                "attr": info.external_attr,
                "system": info.create_system,
                "date_time": list(info.date_time),
                "ext_mtime": ext_mtime(info.extra),
                "comment": info.comment.decode("utf-8", "replace"),
                "utf8": bool(info.flag_bits & 0x800),
                "crc": info.CRC,
            }
            if not list_only and (hash_all or info.filename in names) and not info.is_dir():
                h = hashlib.sha256()
                n = 0
                with zf.open(info) as f:
                    while True:
                        chunk = f.read(1 << 20)
                        if not chunk:
                            break
                        h.update(chunk)
                        n += len(chunk)
                if n != info.file_size:
                    raise SystemExit(f"{info.filename!r}: read {n} bytes, recorded {info.file_size}")
                rec["sha256"] = h.hexdigest()
            out.write(json.dumps(rec) + "\n")


main()
