#!/usr/bin/env python3
"""Extract the ELF vmlinux from a bzImage: find the compressed payload (xz, zstd or gzip) and
decompress it; the result must be an ELF file. Used to test PVH boot, whose entry point is an ELF
note (XEN_ELFNOTE_PHYS32_ENTRY) that only vmlinux carries."""
import gzip
import lzma
import sys
import zlib


def candidates(data):
    for magic, kind in ((b"\xfd7zXZ\x00", "xz"), (b"\x1f\x8b\x08", "gzip")):
        pos = data.find(magic)
        while pos >= 0:
            yield pos, kind
            pos = data.find(magic, pos + 1)


def decompress(data, pos, kind):
    if kind == "xz":
        return lzma.LZMADecompressor(format=lzma.FORMAT_XZ).decompress(data[pos:])
    return zlib.decompressobj(16 + zlib.MAX_WBITS).decompress(data[pos:])


def main():
    data = open(sys.argv[1], "rb").read()
    for pos, kind in candidates(data):
        try:
            out = decompress(data, pos, kind)
        except (lzma.LZMAError, zlib.error, gzip.BadGzipFile):
            continue
        if out[:4] == b"\x7fELF":
            open(sys.argv[2], "wb").write(out)
            return 0
    print("no ELF payload found in", sys.argv[1], file=sys.stderr)
    return 1


sys.exit(main())
