#!/usr/bin/env python3
"""Seed inputs for the fuzz targets' corpora (tests/fuzz/corpus/{virtqueue,virtio_dev,qmp}).

Each seed is a valid, working input the fuzzer mutates from: a well-formed queue with
chains, a device a driver brought up and used, a QMP session. Input formats are described
in tests/fuzz/fuzz_virtqueue.h, fuzz_virtio_dev.h and fuzz_qmp.h.

    tests/fuzz/gen_seeds.py [TARGET...]     (default: all; writes seed-* files)
"""
import os
import struct
import sys

ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "corpus")

NEXT, WRITE, INDIRECT = 1, 2, 4


def desc(addr, length, flags=0, nxt=0):
    return struct.pack("<QIHH", addr, length, flags, nxt)


class Ram:
    def __init__(self, size):
        self.b = bytearray(size)
        self.top = 0

    def put(self, addr, data):
        self.b[addr:addr + len(data)] = data

    def image(self):
        """The RAM image without its trailing zeros (the harness zero-fills)."""
        return bytes(self.b).rstrip(b"\0")


def write(target, name, data):
    d = os.path.join(ROOT, target)
    os.makedirs(d, exist_ok=True)
    with open(os.path.join(d, "seed-" + name), "wb") as f:
        f.write(data)


# --- virtqueue ---------------------------------------------------------------------------

VQ_OPS = dict(CONSUME=0, HOLD=1, PUSH_HELD=2, UNPOP=3, POKE=4, NOTIFY=5, COPY=6, RESET=7,
              SAVE_LOAD=8, LOAD=9, PUBLISH=10, DESC=11)


def vq_input(flags, size, d, a, u, ops=b"", ram=b""):
    return struct.pack("<BHIIIH", flags, size, d, a, u, len(ops)) + ops + ram


def vq_avail(ram, a, heads, size, idx=None):
    for i, h in enumerate(heads):
        ram.put(a + 4 + 2 * (i % size), struct.pack("<H", h))
    ram.put(a + 2, struct.pack("<H", len(heads) if idx is None else idx))


def gen_virtqueue():
    op = VQ_OPS
    D, A, U, S = 0x0000, 0x1000, 0x2000, 16
    # One request-like chain: a readable header, a writable data buffer and status.
    r = Ram(0x10000)
    r.put(D, desc(0x4000, 16, NEXT, 1) + desc(0x5000, 512, NEXT | WRITE, 2) +
          desc(0x6000, 1, WRITE))
    vq_avail(r, A, [0], S)
    write("virtqueue", "chain", vq_input(0, S, D, A, U, ram=r.image()))
    # Indirect table of three, and a direct chain next to it; EVENT_IDX too.
    r = Ram(0x10000)
    r.put(D, desc(0x3000, 48, INDIRECT) + desc(0x7000, 64, WRITE))
    r.put(0x3000, desc(0x4000, 16, NEXT, 1) + desc(0x5000, 100, NEXT | WRITE, 2) +
          desc(0x6000, 1, WRITE))
    vq_avail(r, A, [0, 1], S)
    ops = bytes([op["HOLD"], op["HOLD"], op["COPY"], 1, 0, 0, 8, 0, op["PUSH_HELD"], 32, 0,
                 0, 0, op["NOTIFY"], op["SAVE_LOAD"]])
    write("virtqueue", "indirect-event-idx", vq_input(3, S, D, A, U, ops, r.image()))
    # Chains built by ops on empty RAM: descriptors, publish, consume, poke the index.
    ops = bytearray()
    ops += bytes([op["DESC"]]) + struct.pack("<HHHBH", 0, 0x4000, 64, NEXT, 1)
    ops += bytes([op["DESC"]]) + struct.pack("<HHHBH", 1, 0x4100, 64, WRITE, 0)
    ops += bytes([op["DESC"]]) + struct.pack("<HHHBH", 2, 0x4200, 32, WRITE, 0)
    ops += bytes([op["PUBLISH"], 2]) + struct.pack("<HH", 0, 2)
    ops += bytes([op["CONSUME"], op["NOTIFY"], op["HOLD"], op["UNPOP"], op["HOLD"]])
    ops += bytes([op["PUSH_HELD"]]) + struct.pack("<I", 8)
    ops += bytes([op["POKE"]]) + struct.pack("<HB", A, 2) + b"\x01\x00"
    ops += bytes([op["PUBLISH"], 1]) + struct.pack("<H", 0) + bytes([op["NOTIFY"]])
    write("virtqueue", "ops", vq_input(2, 8, D, A, U, bytes(ops)))
    # The largest queue, a chain of 300 descriptors (more than VQ_MAX_SEGS), a loop, a
    # buffer across the end of the first RAM region.
    r = Ram(0x10000)
    S2, D2, A2, U2 = 1024, 0x0000, 0x4000, 0x5000
    for i in range(300):
        r.put(D2 + 16 * i, desc(0x8000 + 16 * i, 16, NEXT, i + 1))
    r.put(D2 + 16 * 299, desc(0x8000, 16))
    r.put(D2 + 16 * 400, desc(0x8000, 8, NEXT, 401) + desc(0x8000, 8, NEXT, 400))
    r.put(D2 + 16 * 402, desc(0xfff0, 32, WRITE))
    vq_avail(r, A2, [0], S2)
    write("virtqueue", "long-chain", vq_input(1, S2, D2, A2, U2, ram=r.image()))
    vq_avail(r, A2, [400], S2)
    write("virtqueue", "loop", vq_input(1, S2, D2, A2, U2, ram=r.image()))
    vq_avail(r, A2, [402], S2)
    write("virtqueue", "straddle", vq_input(1, S2, D2, A2, U2, ram=r.image()))
    # Reset to another size, reload a saved state.
    r = Ram(0x10000)
    r.put(D, desc(0x4000, 16))
    vq_avail(r, A, [0, 0, 0], S)
    state = struct.pack("<BHBHQQQBHH", 1, 4, 1, 0xffff, D, A, U, 2, 1, 1)  # vq_save's layout
    ops = bytes([op["CONSUME"], op["RESET"], 4, 0, op["SAVE_LOAD"], op["LOAD"], len(state)])
    ops += state + bytes([op["CONSUME"]])
    write("virtqueue", "reset-load", vq_input(2, S, D, A, U, ops, r.image()))


# --- virtio_dev --------------------------------------------------------------------------

DEV_OPS = dict(WRITE=0, READ=1, CFG_WRITE=2, CFG_READ=3, MSIX=4, POKE=5, SETUP=6, DESC=7,
               PUBLISH=8, NOTIFY=9, PROCESS=10, HOST_INPUT=11, MACHINE=12, SAVE_LOAD=13,
               CFG_WINDOW=14)
BLK, RNG, CONSOLE, NET = 0, 1, 2, 3
BUF = 0x8000


class Dev:
    """An op stream for fuzz_virtio_dev (see fuzz_virtio_dev_entry.c)."""

    def __init__(self):
        self.b = bytearray()

    def op(self, name, fmt="", *args):
        self.b += bytes([DEV_OPS[name]]) + struct.pack("<" + fmt, *args)
        return self

    def setup(self, drop=0, qlog=0, flags=0):
        return self.op("SETUP", "BBB", drop, qlog, flags)

    def desc(self, q, i, addr, length, flags=0, nxt=0):
        return self.op("DESC", "BBHHBB", q, i, addr, length, flags, nxt)

    def poke(self, addr, data):
        self.op("POKE", "HB", addr, len(data))
        self.b += data
        return self

    def publish(self, q, *heads):
        return self.op("PUBLISH", "BB" + "B" * len(heads), q, len(heads), *heads)

    def host_input(self, data):
        self.op("HOST_INPUT", "H", len(data))
        self.b += data
        return self

    def wr(self, off, size, value):
        """A BAR 4 write."""
        self.op("WRITE", "HB", off, {1: 0, 2: 1, 4: 2, 8: 3}[size])
        self.b += value.to_bytes(size, "little")
        return self

    def input(self, opts, ram=b""):
        return struct.pack("<BH", opts, len(self.b)) + bytes(self.b) + ram


def blk_req(d, i, typ, sector, data_len=0, write_data=False, seg=None):
    """Descriptors i.. for one request: header, data (if any), status; returns next index."""
    hdr = BUF + 0x100 * i
    d.poke(hdr, struct.pack("<IIQ", typ, 0, sector))
    n = i
    d.desc(0, n, hdr, 16, NEXT, n + 1)
    n += 1
    if seg is not None:
        d.poke(hdr + 16, seg)
        d.desc(0, n, hdr + 16, len(seg), NEXT, n + 1)
        n += 1
    if data_len:
        d.desc(0, n, 0xa000 + 0x400 * i, data_len, NEXT | (0 if write_data else WRITE), n + 1)
        n += 1
    d.desc(0, n, hdr + 0xf0, 1, WRITE, 0)
    return n + 1


def gen_virtio_dev():
    def blk_session(opts, flags=0, drop=0):
        d = Dev().setup(drop, 0, flags)
        heads = []
        n = 0
        for typ, sector, dl, wd, seg in [(0, 1, 512, False, None), (1, 2, 1024, True, None),
                                         (4, 0, 0, False, None), (8, 0, 20, False, None),
                                         (11, 0, 0, False, struct.pack("<QII", 4, 8, 0)),
                                         (13, 0, 0, False, struct.pack("<QII", 8, 8, 1)),
                                         (0, 127, 512, False, None), (0, 128, 512, False, None)]:
            heads.append(n)
            n = blk_req(d, n, typ, sector, dl, wd, seg)
        d.publish(0, *heads[:4]).publish(0, *heads[4:]).op("PROCESS")
        d.op("SAVE_LOAD", "B", 0).op("READ", "HB", 0x1000, 0).op("READ", "HB", 0x2000, 2)
        return d

    write("virtio_dev", "blk-sync", blk_session(0).input(BLK))
    write("virtio_dev", "blk-uring-msix", blk_session(4, flags=1).input(BLK | 4))
    write("virtio_dev", "blk-ro-discard-2q", blk_session(8 | 16 | 32).input(BLK | 8 | 16 | 32))
    write("virtio_dev", "blk-no-event-idx", blk_session(0, drop=2).input(BLK))
    # An indirect request: the table in RAM, one descriptor pointing at it.
    d = Dev().setup()
    table = desc(BUF, 16, NEXT, 1) + desc(BUF + 0x200, 512, NEXT | WRITE, 2) + \
        desc(BUF + 0x400, 1, WRITE)
    d.poke(BUF, struct.pack("<IIQ", 0, 0, 5)).poke(0x9000, table)
    d.desc(0, 0, 0x9000, len(table), INDIRECT).publish(0, 0)
    write("virtio_dev", "blk-indirect", d.input(BLK))
    # The driver's bring-up as raw register writes, then a bad chain (a loop).
    d = Dev()
    for v in (0, 1, 3):
        d.wr(0x14, 1, v)
    d.wr(0x08, 4, 0).wr(0x0c, 4, 0x30000000).wr(0x08, 4, 1).wr(0x0c, 4, 1)
    d.wr(0x14, 1, 0xb).wr(0x16, 2, 0).wr(0x18, 2, 8)
    d.wr(0x20, 8, 0).wr(0x28, 8, 0x1000).wr(0x30, 8, 0x1400).wr(0x1c, 2, 1)
    d.wr(0x14, 1, 0xf)
    d.desc(0, 0, BUF, 64, WRITE | NEXT, 1).desc(0, 1, BUF, 64, WRITE | NEXT, 0).publish(0, 0)
    write("virtio_dev", "rng-raw-loop", d.input(RNG))
    d = Dev().setup(0, 0, 1)
    d.desc(0, 0, BUF, 64, WRITE).desc(0, 1, BUF + 64, 4096, WRITE, 0).publish(0, 0, 1)
    d.op("CFG_WRITE", "BBI", 0x04, 1, 0).op("MACHINE")
    write("virtio_dev", "rng-msix", d.input(RNG))
    # Bring-up through the PCI cfg window only (status, then read it and the features).
    d = Dev()
    for v in (0, 1, 3):
        d.op("CFG_WINDOW", "BIBBI", 4, 0x14, 1, 1, v)
    d.op("CFG_WINDOW", "BIBBI", 4, 0x14, 1, 0, 0).op("CFG_WINDOW", "BIBBI", 4, 0x04, 4, 0, 0)
    d.op("CFG_WINDOW", "BIBBI", 4, 0x3000, 2, 1, 0).op("CFG_WINDOW", "BIBBI", 1, 0, 4, 0, 0)
    write("virtio_dev", "console-cfg-window", d.input(CONSOLE))
    d = Dev().setup()
    d.poke(BUF, b"hello, world\n").desc(1, 0, BUF, 13).publish(1, 0)
    d.desc(0, 0, BUF + 0x100, 32, WRITE).desc(0, 1, BUF + 0x200, 32, WRITE).publish(0, 0, 1)
    d.host_input(b"ls -l\n").op("READ", "HB", 0x2004, 1)
    write("virtio_dev", "console", d.input(CONSOLE))

    def net_session(vnet, drop=0):
        d = Dev().setup(drop)
        for i in range(4):
            d.desc(0, i, BUF + 0x800 * i, 0x600, WRITE)
        d.publish(0, 0, 1, 2, 3)
        frame = bytes([0xff] * 6) + bytes([0x52, 0x54, 0, 0, 0, 1]) + b"\x08\x06" + bytes(46)
        if vnet:
            frame = bytes(12) + frame
        d.host_input(frame).host_input(frame + bytes(1500))
        pkt = bytes(12) + bytes([0x52, 0x54, 0, 0x12, 0x34, 0x56]) * 2 + b"\x08\x00" + bytes(50)
        d.poke(0xe000, pkt).desc(1, 0, 0xe000, 12, NEXT, 1).desc(1, 1, 0xe00c, len(pkt) - 12)
        d.publish(1, 0).op("PROCESS").op("READ", "HB", 0x2000, 3)
        return d

    write("virtio_dev", "net", net_session(False).input(NET))
    write("virtio_dev", "net-vnet-hdr", net_session(True).input(NET | 4))
    write("virtio_dev", "net-no-mrg", net_session(False, drop=8).input(NET))


# --- qmp ---------------------------------------------------------------------------------

SEP, SWITCH, BIG = b"\xff", b"\xfd", b"\xfe"


def qmp(*writes):
    return SEP.join(w.encode() if isinstance(w, str) else w for w in writes)


def ex(name, args=None, id=None):
    r = '{"execute":"%s"' % name
    if args is not None:
        r += ',"arguments":%s' % args
    if id is not None:
        r += ',"id":%s' % id
    return r + "}\r\n"


def gen_qmp():
    caps = ex("qmp_capabilities")
    queries = ["query-version", "query-commands", "query-status", "query-name", "query-uuid",
               "query-cpus-fast", "query-kvm", "query-block", "query-memory-size-summary"]
    write("qmp", "queries", qmp(caps, *[ex(q, id=i) for i, q in enumerate(queries)]))
    write("qmp", "run-control", qmp(caps, ex("stop"), ex("query-status"), ex("cont"),
                                    ex("system_powerdown"), ex("system_reset"), ex("quit")))
    hmp = ["help", "info", "info mtree", "info ramblock", "info registers", "info qtree",
           "info pci", "info status", "info version", "info name", "info cpus", "info kvm",
           "info bogus", "stop", "c", "system_powerdown", "system_reset", "q", "nope", "  "]
    write("qmp", "hmp", qmp(caps, *[ex("human-monitor-command",
                                       '{"command-line":"%s"}' % h, '"h%d"' % i)
                                    for i, h in enumerate(hmp)]))
    write("qmp", "send-key", qmp(
        caps,
        ex("send-key", '{"keys":[{"type":"qcode","data":"ctrl"},'
                       '{"type":"qcode","data":"alt"},{"type":"qcode","data":"delete"}]}'),
        ex("send-key", '{"keys":[{"type":"number","data":30}],"hold-time":0}'),
        ex("send-key", '{"keys":[{"type":"qcode","data":"nokey"}]}'),
        ex("send-key", '{"keys":[]}'), ex("send-key", '{"keys":[1,2]}')))
    write("qmp", "errors", qmp(
        ex("query-status"), caps, caps, "{\"execute\":\n", "}\n", "17\n", "[1,2]\n",
        '{"execute":"query-name","bogus":1}\n', '{"execute":42}\n',
        '{"execute":"query-name","arguments":[]}\n',
        ex("human-monitor-command", '{"command-line":[]}'), ex("send-key"),
        ex("nope", id="[1]"), ex("query-name", '{"x":1}'), "[" * 200 + "\n",
        '{"execute":"query-name","id":"\\u00e9\\ud800"}\n', b"\x00\x01\x80\n"))
    write("qmp", "caps-enable", qmp(ex("qmp_capabilities", '{"enable":[null]}'),
                                    ex("qmp_capabilities", '{"enable":["oob"]}'),
                                    ex("qmp_capabilities", '{"enable":[]}')))
    # Requests split across writes, two in one write, whitespace between them.
    write("qmp", "framing", qmp(
        '{"execute":"qmp_capabilities","id":1}{"execute":"query-na', 'me","id":2}\r\n',
        "  \t\r\n", '{"execute":', '"query-status"}'))
    # Two clients: events of one reach the other; one hangs on mid-request.
    write("qmp", "two-clients", qmp(caps, SWITCH + caps.encode(), ex("stop"),
                                    SWITCH + b'{"execute":"cont"', b"}\n",
                                    SWITCH + ex("cont").encode()))
    # Strict JSON: what QEMU's parser refuses (trailing commas, comments, NaN/Infinity,
    # invalid UTF-8, lone surrogates, duplicate keys, too deep) and what it takes (single
    # quotes, \' escapes, numbers past int64 echoed as written). 0xff is the write separator.
    write("qmp", "strict-json", qmp(
        caps, ex("query-name", id='[1,2,]'), '{"execute":"query-name",}\n',
        '{"execute":"query-name"} // c\n', '/* c */{"execute":"query-name"}\n',
        ex("query-name", id="NaN"), ex("query-name", id="-Infinity"), ex("query-name", id="01"),
        ex("query-name", id="1."), ex("query-name", id="1.5e400"),
        ex("query-name", id="18446744073709551616"), ex("query-name", id="-0"),
        ex("query-name", id='"\\ud800"'), ex("query-name", id='"\\ud83d\\ude00"'),
        ex("query-name", id='"\\uffff"'), ex("query-name", id='"\\u0000"'),
        b'{"execute":"query-name","id":"\xc0\x80"}\n',
        b'{"execute":"query-name","id":"\xed\xa0\x80"}\n',
        b'{"execute":"query-name","id":"\xe2\x82"}\n',
        b'{"execute":"query-name","id":"\xf0\x9f\x98\x80\x80"}\n',
        '{"execute":"query-name","id":"a\tb"}\n', '{"execute":"query-name","id":1,"id":2}\n',
        "{'execute':'query-name','id':'it\\'s \"q\"'}\n",
        '{"execute":"query-name\\u0000x"}\n', ex("x" * 99 + "\u00e9" * 4),
        '{"execute":"query-name","id":' + "[" * 1030 + "]" * 1030 + "}\n",
        '{"execute":"query-name","id":' + "[" * 500 + "]" * 500 + "}\n",
        '"str" 17 true nul }{"execute":"query-name"}\n'))
    # Introspection and the current CPU of human-monitor-command.
    write("qmp", "introspection", qmp(
        caps, ex("query-events"), ex("query-qmp-schema"),
        ex("human-monitor-command", '{"command-line":"info registers -a"}'),
        ex("human-monitor-command", '{"command-line":"info registers 1"}'),
        ex("human-monitor-command", '{"command-line":"info registers 9"}'),
        ex("human-monitor-command", '{"command-line":"info registers","cpu-index":1}'),
        ex("human-monitor-command", '{"command-line":"info cpus","cpu-index":1}'),
        ex("human-monitor-command", '{"command-line":"info cpus","cpu-index":2}'),
        ex("human-monitor-command", '{"command-line":"info cpus","cpu-index":-1}')))
    # A request over the 1 MiB limit: the connection closes; the next write connects again.
    write("qmp", "too-large", qmp(caps, BIG + BIG + ex("query-name").encode(), caps,
                                  ex("query-name")))


GENERATORS = {"virtqueue": gen_virtqueue, "virtio_dev": gen_virtio_dev, "qmp": gen_qmp}


def main():
    for t in sys.argv[1:] or GENERATORS:
        GENERATORS[t]()


if __name__ == "__main__":
    main()
