"""QMP over a socket with Python's standard library, as to QEMU: greeting, negotiation, every
query, stop/cont, events, errors and bad input, against `kestrel run --accel qtest` VMs (no
KVM needed). Prints TAP."""
import json
import os
import random
import shutil
import socket
import subprocess
import sys
import tempfile
import time

sys.setrecursionlimit(20000)  # ids nested 1000 deep are parsed here too
sys.path.insert(0, os.path.dirname(__file__))
from qmplib import (Qmp, Qtest, Tap, Vm, free_port, raw_disk, run, stop_proc,  # noqa: E402
                    wait_path)

t = Tap()


def err_class(r):
    return r.get("error", {}).get("class")


def protocol(vm):
    q = vm.qmp(negotiate=False)
    g = q.greeting.get("QMP", {})
    t.ok("version" in g and g["version"]["qemu"].keys() >= {"major", "minor", "micro"}
         and isinstance(g.get("capabilities"), list), "greeting has version and capabilities",
         q.greeting)
    r = q.cmd("query-status")
    t.eq(err_class(r), "CommandNotFound", "command before negotiation: CommandNotFound")
    r = q.cmd("qmp_capabilities", {"enable": ["oob"]})
    t.eq(err_class(r), "GenericError", "qmp_capabilities with an unknown capability refused")
    r = q.cmd("qmp_capabilities", id="neg-1")
    t.eq(r, {"return": {}, "id": "neg-1"}, "qmp_capabilities returns {} with the id")
    r = q.cmd("qmp_capabilities")
    t.eq(err_class(r), "CommandNotFound", "second qmp_capabilities: CommandNotFound")
    r = q.cmd("query-status", id={"any": [1, "json"]})
    t.eq(r.get("id"), {"any": [1, "json"]}, "id of any JSON type echoed")

    # Several requests in one write, one request over several writes.
    q.send_raw('{"execute":"query-name","id":1}{"execute":"query-uuid","id":2}\n')
    a, b = q.reply(), q.reply()
    t.ok(a.get("id") == 1 and b.get("id") == 2, "two requests in one write: two replies in order",
         (a, b))
    msg = json.dumps({"execute": "query-version", "id": 3})
    for i in range(0, len(msg), 5):
        q.send_raw(msg[i:i + 5])
        time.sleep(0.01)
    r = q.reply()
    t.ok(r.get("id") == 3 and "qemu" in r.get("return", {}), "a request split over many writes",
         r)
    q.close()


def queries(vm):
    q = vm.qmp()
    r = q.cmd("query-version")["return"]
    t.ok(isinstance(r["qemu"]["major"], int) and r["package"].startswith("kestrel"),
         "query-version", r)
    names = {c["name"] for c in q.cmd("query-commands")["return"]}
    want = {"qmp_capabilities", "query-version", "query-commands", "query-status", "query-name",
            "query-uuid", "stop", "cont", "system_reset", "system_powerdown", "quit", "send-key",
            "query-cpus-fast", "query-kvm", "query-block", "query-memory-size-summary",
            "human-monitor-command", "query-events", "query-qmp-schema"}
    t.ok(want <= names, "query-commands lists every command", want - names)
    t.eq(q.cmd("query-status")["return"],
         {"running": True, "singlestep": False, "status": "running"}, "query-status running")
    t.eq(q.cmd("query-name")["return"], {"name": "qmp-test"}, "query-name")
    t.eq(q.cmd("query-uuid")["return"], {"UUID": "6b29fc40-ca47-1067-b31d-00dd010662da"},
         "query-uuid: --uuid, in QEMU's lower case")
    cpus = q.cmd("query-cpus-fast")["return"]
    ok = len(cpus) == 2 and [c["cpu-index"] for c in cpus] == [0, 1]
    tids = [c["thread-id"] for c in cpus]
    # The thread ids are the vCPU threads of the kestrel process.
    task = f"/proc/{vm.proc.pid}/task"
    ok = ok and all(os.path.exists(f"{task}/{tid}") for tid in tids) and tids[0] != vm.proc.pid
    names = [open(f"{task}/{tid}/comm").read().strip() for tid in tids] if ok else []
    t.ok(ok and len(set(tids)) == 2, "query-cpus-fast: 2 vCPUs with their own thread ids",
         (cpus, names))
    r = q.cmd("query-kvm")["return"]
    t.ok(r.get("enabled") is False and isinstance(r.get("present"), bool), "query-kvm", r)
    blk = q.cmd("query-block")["return"]
    ok = len(blk) == 1 and blk[0]["device"] == "virtio-blk0"
    ins = blk[0].get("inserted", {}) if ok else {}
    t.ok(ok and ins.get("file") == vm.disk and ins.get("ro") is True and ins.get("drv") == "raw"
         and ins.get("image", {}).get("virtual-size") == 4 << 20,
         "query-block: the --disk with file, ro, drv and size", blk)
    t.eq(q.cmd("query-memory-size-summary")["return"],
         {"base-memory": 256 << 20, "plugged-memory": 0}, "query-memory-size-summary")
    events = [e["name"] for e in q.cmd("query-events")["return"]]
    t.eq(sorted(events), ["POWERDOWN", "RESET", "RESUME", "SHUTDOWN", "STOP"],
         "query-events: the events Kestrel sends")
    schema = q.cmd("query-qmp-schema")["return"]
    check_schema(schema, {c["name"] for c in q.cmd("query-commands")["return"]}, events)
    q.close()


def schema_refs(e):
    refs = [e[k] for k in ("arg-type", "ret-type", "element-type") if k in e]
    return refs + [m["type"] for m in e.get("members", []) if "type" in m]


def check_schema(schema, commands, events):
    """query-qmp-schema in QEMU's SchemaInfo form: every command and event, and every type
    they name is there."""
    by = {e.get("name"): e for e in schema}
    metas = {"builtin", "enum", "array", "object", "alternate", "command", "event"}
    t.ok(all(isinstance(e.get("name"), str) and e.get("meta-type") in metas for e in schema)
         and len(by) == len(schema), "query-qmp-schema: SchemaInfo entries, unique names")
    cmds = {n for n, e in by.items() if e["meta-type"] == "command"}
    t.eq(cmds, commands, "query-qmp-schema: exactly the commands query-commands lists")
    t.eq({n for n, e in by.items() if e["meta-type"] == "event"}, set(events),
         "query-qmp-schema: exactly the events query-events lists")
    missing = {r for e in schema for r in schema_refs(e) if r not in by}
    t.eq(missing, set(), "query-qmp-schema: every type a command or event names is defined")
    hmp = by["human-monitor-command"]
    t.eq(by[hmp["arg-type"]]["members"],
         [{"name": "command-line", "type": "str"}, {"name": "cpu-index", "type": "int",
                                                    "default": None}],
         "query-qmp-schema: human-monitor-command's arguments, cpu-index optional")
    t.eq(by[by["query-status"]["ret-type"]]["members"][2]["name"], "status",
         "query-qmp-schema: query-status returns StatusInfo")


def hmp(vm):
    q = vm.qmp()

    def h(line):
        return q.cmd("human-monitor-command", {"command-line": line}).get("return")

    # As firmware would: memory decode on for the disk (slot 1), so its BARs are mapped.
    qt = Qtest(vm.qtest_path)
    qt.cmd(f"outl 0xcf8 {0x80000000 | 1 << 11 | 0x04:#x}")
    qt.cmd("outw 0xcfc 0x2")
    qt.close()
    m = h("info mtree")
    t.ok(isinstance(m, str) and "address-space: memory" in m and "address-space: I/O" in m
         and "pc.ram" in m and "serial" in m and "rtc" in m and "i8042" in m,
         "info mtree: memory and I/O trees with RAM and devices", m)
    t.ok(all(f"virtio-pci-{p}-virtio-blk0" in m for p in ("common", "isr", "device", "notify"))
         and "msix-table" in m and "msix-pba" in m,
         "info mtree: the virtio-pci BAR's common/isr/device/notify parts and the MSI-X BAR's",
         m)
    r = h("info ramblock")
    t.ok("Block Name" in r and "pc.ram" in r and "0x0000000010000000" in r,
         "info ramblock lists pc.ram with its size", r)
    r = h("info registers")
    t.ok("CPU#0" in r and "CPU#1" not in r, "info registers: the current vCPU only (0)", r)
    r = h("info registers -a")
    t.ok("CPU#0" in r and "CPU#1" in r, "info registers -a: every vCPU", r)
    r = h("info registers 1")
    t.ok("CPU#1" in r and "CPU#0" not in r, "info registers 1: vCPU 1", r)
    t.eq(h("info registers 5"), "CPU#5 not available\n", "info registers 5: QEMU's answer")
    t.ok("not -a or a CPU number" in h("info registers x"), "info registers x: a message")
    r = q.cmd("human-monitor-command", {"command-line": "info registers", "cpu-index": 1})
    t.ok("CPU#1" in r.get("return", "") and "CPU#0" not in r.get("return", ""),
         "cpu-index 1 makes vCPU 1 the current one", r)
    r = q.cmd("human-monitor-command", {"command-line": "info cpus", "cpu-index": 1})
    t.ok("* CPU #1" in r.get("return", "") and "  CPU #0" in r.get("return", ""),
         "info cpus marks the current vCPU", r)
    t.ok("* CPU #0" in h("info cpus"), "the next command is back on vCPU 0")
    for bad in (2, -1, 1 << 40):
        r = q.cmd("human-monitor-command", {"command-line": "info registers", "cpu-index": bad})
        t.eq(r.get("error"), {"class": "GenericError",
                              "desc": "Parameter 'cpu-index' expects a CPU number"},
             f"cpu-index {bad} (2 vCPUs): QEMU's error")
    t.eq(q.cmd("query-status")["return"]["status"], "running",
         "info registers leaves the VM running")
    r = h("info qtree")
    t.ok("bus: main-system-bus" in r and "dev: serial" in r and "ioport 0x3f8" in r,
         "info qtree lists devices and their ports", r)
    r = h("info pci")
    t.ok("Host bridge: PCI device 1b36:0008" in r and "PCI device 1af4:1042" in r
         and 'id "virtio-blk0"' in r and "BAR4: 64 bit prefetchable memory at" in r,
         "info pci: host bridge and the virtio-blk function with its BARs", r)
    t.ok("unknown" in h("info nosuch"), "unknown info subcommand: a message")
    t.ok("unknown command" in h("frobnicate"), "unknown HMP command: a message")
    t.eq(h("info status"), "VM status: running\n", "info status")
    r = q.cmd("human-monitor-command", {"command-line": 5})
    t.eq(err_class(r), "GenericError", "human-monitor-command with a number: GenericError")
    q.close()


def run_control(vm):
    q = vm.qmp()
    other = vm.qmp()  # a second client sees the same events
    qt = vm.qtest()
    t0 = qt.val("clock_step 1000000")
    t.eq(q.cmd("stop"), {"return": {}}, "stop")
    e = q.event("STOP", 5)
    t.ok(e is not None and "timestamp" in e and e["timestamp"]["seconds"] > 1e9
         and 0 <= e["timestamp"]["microseconds"] < 1e6, "STOP event with a timestamp", e)
    t.ok(other.event("STOP", 5) is not None, "second client got STOP too")
    t.eq(q.cmd("query-status")["return"],
         {"running": False, "singlestep": False, "status": "paused"}, "query-status paused")
    # Paused: guest time stands still and timers do not run.
    t1 = qt.val("clock_step 5000000")
    t.eq(t1, t0, "paused: clock_step does not move guest time")
    t.eq(q.cmd("stop"), {"return": {}}, "stop while paused: no-op")
    t.eq(q.cmd("cont"), {"return": {}}, "cont")
    t.ok(q.event("RESUME", 5) is not None, "RESUME event")
    t.ok(not any(e["event"] == "STOP" for e in q.events), "no second STOP for the no-op stop")
    t.eq(q.cmd("query-status")["return"]["status"], "running", "query-status running again")
    t2 = qt.val("clock_step 1000")
    t.eq(t2, t0 + 1000, "resumed: guest time continues where it stopped (no jump)")
    # stop/cont in a tight loop: every pair gives one STOP and one RESUME, the VM survives.
    for i in range(100):
        q.cmd("stop")
        q.cmd("cont")
    stops = sum(1 for e in q.events if e["event"] == "STOP")
    resumes = sum(1 for e in q.events if e["event"] == "RESUME")
    q.events.clear()
    t.ok(stops == 100 and resumes == 100 and vm.alive(), "100 stop/cont pairs: 100 STOP, 100 RESUME",
         (stops, resumes))
    t.eq(q.cmd("system_reset"), {"return": {}}, "system_reset")
    t.ok(any(e["event"] == "RESET" for e in q.events), "RESET event came before the return (as QEMU)")
    e = q.event("RESET", 5)
    t.ok(e is not None and e["data"] == {"guest": False, "reason": "host-qmp-system-reset"},
         "RESET event: guest false, host-qmp-system-reset", e)
    t.eq(q.cmd("query-status")["return"]["status"], "running", "running after reset")
    # Power button: the SCI rises once the "guest" enabled PWRBTN_EN in PM1_EN.
    qt.cmd("irq_intercept_in ioapic")
    qt.outw(0x604, 1)  # SCI_EN
    qt.outw(0x602, 0x100)  # PWRBTN_EN
    t.eq(q.cmd("system_powerdown"), {"return": {}}, "system_powerdown")
    e = q.event("POWERDOWN", 5)
    t.ok(e is not None, "POWERDOWN event")
    sts = qt.val("inw 0x600")
    t.ok(sts & 0x100 and "IRQ raise 9" in qt.irqs, "power button: PWRBTN_STS and the SCI (IRQ 9)",
         (hex(sts), qt.irqs))
    # The guest powers off: SLP_TYP=S5 | SLP_EN in PM1_CNT.
    qt.sock.sendall(b"outw 0x604 0x3401\n")
    e = q.event("SHUTDOWN", 5)
    t.ok(e is not None and e["data"] == {"guest": True, "reason": "guest-shutdown"},
         "guest poweroff: SHUTDOWN guest true, guest-shutdown", e)
    t.ok(other.event("SHUTDOWN", 5) is not None, "second client got SHUTDOWN")
    t.eq(vm.wait(10), 0, "process exits 0 after the guest's poweroff")
    for c in (q, other, qt):
        c.close()


def quit_(vm):
    q = vm.qmp()
    r = q.cmd("quit", id="bye")
    t.eq(r, {"return": {}, "id": "bye"}, "quit returns before the VM goes")
    e = q.event("SHUTDOWN", 5)
    t.ok(e is not None and e["data"] == {"guest": False, "reason": "host-qmp-quit"},
         "SHUTDOWN guest false, host-qmp-quit", e)
    try:
        closed = q.sock.recv(1) == b""
    except OSError:
        closed = True
    t.ok(closed, "connection closed after quit")
    t.eq(vm.wait(10), 0, "quit: exit 0")


def errors(vm):
    q = vm.qmp()
    r = q.cmd("no-such-command", id=7)
    t.ok(err_class(r) == "CommandNotFound" and r.get("id") == 7 and "desc" in r["error"],
         "unknown command: CommandNotFound with desc and id", r)
    q.send_raw('{"execute": "query-status", "id": \n  oops}\n')
    r = q.reply()
    t.eq(err_class(r), "GenericError", "malformed JSON: GenericError")
    t.eq(q.cmd("query-name", id="after")["id"], "after", "connection usable after bad JSON")
    q.send_raw('[1, 2, 3]\n')
    t.eq(err_class(q.reply()), "GenericError", "non-object request: GenericError")
    q.send_raw('"just a string"\n')
    t.eq(err_class(q.reply()), "GenericError", "string request: GenericError")
    q.send_raw('{"arguments": {}}\n')
    r = q.reply()
    t.ok(err_class(r) == "GenericError" and "execute" in r["error"]["desc"],
         "missing execute: GenericError", r)
    q.send_raw('{"execute": 42}\n')
    t.eq(err_class(q.reply()), "GenericError", "execute not a string: GenericError")
    q.send_raw('{"execute": "stop", "arguments": [1]}\n')
    t.eq(err_class(q.reply()), "GenericError", "arguments not an object: GenericError")
    q.send_raw('{"execute": "query-status", "bogus": 1}\n')
    t.eq(err_class(q.reply()), "GenericError", "unexpected top-level member: GenericError")
    r = q.cmd("query-status", {"extra": 1})
    t.ok(err_class(r) == "GenericError" and "extra" in r["error"]["desc"],
         "unexpected argument: GenericError", r)
    r = q.cmd("send-key", {"keys": "a"})
    t.ok(err_class(r) == "GenericError" and "keys" in r["error"]["desc"],
         "wrong argument type: GenericError naming it", r)
    r = q.cmd("send-key", {"keys": [{"type": "qcode", "data": "a"}], "hold-time": "long"})
    t.eq(err_class(r), "GenericError", "hold-time as a string: GenericError")
    r = q.cmd("send-key", {})
    t.ok(err_class(r) == "GenericError" and "missing" in r["error"]["desc"],
         "missing argument: GenericError", r)
    r = q.cmd("send-key", {"keys": [{"type": "qcode", "data": "no-such-key"}]})
    t.eq(err_class(r), "GenericError", "unknown QKeyCode: GenericError")
    r = q.cmd("send-key", {"keys": [{"type": "qcode", "data": "a"}] * 17})
    t.eq(err_class(r), "GenericError", "more than 16 keys: GenericError")
    t.eq(q.cmd("query-status")["return"]["status"], "running", "VM still running after errors")

    # A huge message is cut off: error, then the connection closes; others are unaffected.
    big = vm.qmp()
    try:
        big.send_raw('{"execute": "query-status", "arguments": {"x": "' + "A" * (2 << 20))
    except OSError:
        pass
    try:
        r = big.reply()
        got_err = err_class(r) == "GenericError"
        big.reply()
        closed = False
    except (EOFError, OSError):
        closed = True
    t.ok(got_err and closed, "2 MiB request: GenericError, then connection closed")

    # A client that sends a command and disconnects before reading the reply.
    for _ in range(3):
        c = vm.qmp()
        c.send_raw('{"execute": "human-monitor-command", "arguments": {"command-line": '
                   '"info mtree"}}\n{"execute": "query-commands"}\n')
        c.sock.close()
    # Garbage before the greeting is read, and a client that never negotiates.
    raw = socket.socket(socket.AF_UNIX)
    raw.connect(vm.qmp_path)
    raw.sendall(b"\x00\xff\xfe garbage }}}]]]\n")
    raw.close()
    time.sleep(0.2)
    t.ok(vm.alive(), "VM survives clients that vanish mid-reply and send garbage")
    t.eq(q.cmd("query-status")["return"]["status"], "running", "first client still served")

    # Random bytes and mutated requests from a few clients (a cheap fuzz): the VM must keep
    # answering the well-behaved client.
    rnd = random.Random(1234)
    seeds = [b'{"execute": "query-status", "id": 1}', b'{"execute": "send-key", "arguments": '
             b'{"keys": [{"type": "qcode", "data": "a"}], "hold-time": 1}}',
             b'{"execute": "human-monitor-command", "arguments": {"command-line": "info qtree"}}']
    for round_ in range(20):
        c = vm.qmp(negotiate=round_ % 2 == 0)
        for _ in range(30):
            m = bytearray(rnd.choice(seeds))
            for _ in range(rnd.randint(0, 4)):
                op = rnd.randint(0, 2)
                pos = rnd.randrange(len(m))
                if op == 0:
                    m[pos] = rnd.randrange(256)
                elif op == 1:
                    del m[pos]
                else:
                    m[pos:pos] = bytes([rnd.choice(b'{}[]",:\\0 \n')])
            try:
                c.send_raw(bytes(m) + (b"\n" if rnd.random() < 0.8 else b""))
            except OSError:
                break
        c.sock.close()
    time.sleep(0.3)
    t.ok(vm.alive(), "VM survives 600 mutated requests")
    t.eq(q.cmd("query-status")["return"]["status"], "running", "and still answers")

    # Several clients at once, up to the limit; one more is refused, not crashing anything.
    clients = [vm.qmp() for _ in range(6)]  # with q: 7
    ok = all(c.cmd("query-name", id=i).get("id") == i for i, c in enumerate(clients))
    t.ok(ok, "7 clients at once all answered")
    extra = [vm.qmp(negotiate=False)]  # 8th
    try:
        ninth = socket.socket(socket.AF_UNIX)
        ninth.settimeout(5)
        ninth.connect(vm.qmp_path)
        refused = ninth.recv(100) == b""
    except OSError:
        refused = True
    t.ok(refused, "client over the limit (8) is closed")
    for c in clients + extra:
        c.close()
    t.eq(q.cmd("query-status")["return"]["status"], "running", "still running")
    q.close()


# Not JSON (RFC 8259): each gets QEMU's GenericError "JSON parse error, ..." and no id, and
# the connection goes on. \xc0\x80 (an overlong NUL) QEMU takes; it is not UTF-8, so we do not.
NOT_JSON = [
    (b'{"execute": "query-status", "id": 1,}', "trailing comma in an object"),
    (b'{"execute": "query-status", "id": [1, 2,]}', "trailing comma in an array"),
    (b'{"execute": "query-status", // comment\n "id": 1}', "a // comment"),
    (b'{"execute": "query-status" /* comment */, "id": 1}', "a /* */ comment inside"),
    (b'/* comment */ {"execute": "query-status", "id": 1}', "a /* */ comment"),
    (b'{"execute": "query-status", "id": NaN}', "NaN"),
    (b'{"execute": "query-status", "id": Infinity}', "Infinity"),
    (b'{"execute": "query-status", "id": -Infinity}', "-Infinity"),
    (b'{"execute": "query-status", "id": nan}', "nan"),
    (b'{"execute": "query-status", "id": 01}', "a leading zero"),
    (b'{"execute": "query-status", "id": 1.}', "1. (no digit after the point)"),
    (b'{"execute": "query-status", "id": True}', "True"),
    (b'{"execute": "query-status", "id": "a\tb"}', "a raw tab in a string"),
    (b'{"execute": "query-status", "id": "\\x41"}', "the \\x escape"),
    (b'{"execute": "query-status", "id": "\xff"}', "invalid UTF-8: 0xff"),
    (b'{"execute": "query-status", "id": "\xc0\xaf"}', "invalid UTF-8: overlong '/'"),
    (b'{"execute": "query-status", "id": "\xc0\x80"}', "invalid UTF-8: overlong NUL"),
    (b'{"execute": "query-status", "id": "\xed\xa0\x80"}', "invalid UTF-8: a surrogate"),
    (b'{"execute": "query-status", "id": "\xe2\x82"}', "invalid UTF-8: cut short"),
    (b'{"execute": "query-status", "id": "\xf4\x90\x80\x80"}', "invalid UTF-8: past U+10FFFF"),
    (b'{"execute": "query-status", "id": "\x80"}', "invalid UTF-8: a lone continuation"),
    (b'{"execute": "query-status", "id": "\\ud800"}', "a lone surrogate escape"),
    (b'{"execute": "query-status", "id": "\\uffff"}', "a noncharacter escape (QEMU too)"),
    (b'{"execute": "query-status", "id": 1, "id": 2}', "a duplicate key"),
    (b'{"execute": "query-status", "id": {1: 2}}', "a key that is not a string"),
    (b'{"execute": "query-status", "id": [1 2]}', "no separator in a list"),
    (b'\xfe\xff garbage', "bytes that are no JSON at all"),
    (b'{"execute": "query-status", "id": ' + b"[" * 1100 + b"]" * 1100 + b"}",
     "nesting deeper than 1024"),
]

# JSON (or QEMU's single-quoted strings): the request runs and its id comes back as sent.
IS_JSON = [
    (b"{'execute': 'query-status', 'id': 'single'}", "single"),
    (b"{'execute': 'query-status', 'id': 'it\\'s \"quoted\"'}", 'it\'s "quoted"'),
    (b'{"execute": "query-status", "id": "it\\\'s"}', "it's"),
    (b'{"execute": "query-status", "id": "\\u00e9\\ud83d\\ude00 \xc3\xa9"}', "\u00e9\U0001F600 \u00e9"),
    (b'{"execute": "query-status", "id": "nul\\u0000in"}', "nul\u0000in"),
    (b'{"execute": "query-status", "id": 18446744073709551615}', 18446744073709551615),
    (b'{"execute": "query-status", "id": -9223372036854775808}', -9223372036854775808),
    (b'{"execute": "query-status", "id": null}', None),
    (b'{"execute": "query-status", "id": ' + b"[" * 1000 + b"]" * 1000 + b"}",
     "deep"),
]


def strict_json(vm):
    """Only JSON is taken, and only JSON comes back."""
    q = vm.qmp()
    for i, (req, what) in enumerate(NOT_JSON):
        replies = q.with_sync(req, f"after-{i}")
        r, others = replies[0], replies[1:-1]
        desc = r.get("error", {}).get("desc", "")
        ok = err_class(r) == "GenericError" and desc.startswith("JSON ")
        # Nothing ran and nothing was echoed (a second error may follow, as from QEMU).
        ok = ok and all("error" in x and "id" not in x for x in [r] + others)
        t.ok(ok, f"not JSON, refused: {what}", replies)
    for req, want in IS_JSON:
        q.send_raw(req + b"\n")
        r = q.reply()
        if want == "deep":
            d, v = 0, r.get("id")
            while isinstance(v, list) and v:
                d, v = d + 1, v[0]
            t.ok("return" in r and d == 999, "JSON nested 1000 deep: taken, id echoed", d)
            continue
        t.ok("return" in r and "id" in r and r["id"] == want,
             f"JSON taken, id echoed: {req.decode(errors='replace')[35:75]}", r)
    # Numbers JSON has but a double does not: echoed as written, never as inf or a rounding.
    for num in (b"1.5e400", b"-1.5e400", b"18446744073709551616", b"-9223372036854775809",
                b"1E5", b"0.1e-999"):
        q.send_raw(b'{"execute": "query-name", "id": ' + num + b'}\n')
        q.reply()
        t.ok(q.last_line.rstrip(b"\r").endswith(b'"id":' + num + b"}"), f"id {num.decode()} echoed verbatim",
             q.last_line)
    # A name too long for the message, cut inside a UTF-8 sequence: still valid UTF-8 out.
    name = "x" * 99 + "\u00e9" * 20
    r = q.cmd(name, id="long")
    t.ok(err_class(r) == "CommandNotFound" and r.get("id") == "long",
         "a long non-ASCII command name: the error is still valid JSON", q.last_line[:200])
    r = q.cmd("query-status\u0000x", id="nul")
    t.ok(err_class(r) == "CommandNotFound" and "\u0000" in r["error"]["desc"],
         "a command name with a NUL in it is not found (not cut at the NUL)", r)
    t.eq(q.cmd("query-status")["return"]["status"], "running", "still running after all that")
    q.close()


def tcp(vm):
    q = vm.qmp()
    t.eq(q.cmd("query-status")["return"]["status"], "running", "tcp: QMP over TCP on loopback")
    # tcp::PORT listens on 127.0.0.1 only (state 0A = LISTEN in /proc/net/tcp).
    port = f"{vm.tcp_port:04X}"
    listen = [ln.split()[1] for ln in open("/proc/net/tcp").read().splitlines()[1:]
              if ln.split()[1].endswith(":" + port) and ln.split()[3] == "0A"]
    t.eq(listen, ["0100007F:" + port], "tcp: an empty host means 127.0.0.1 only")
    q.cmd("quit")
    t.eq(vm.wait(10), 0, "tcp: quit exits 0")


MTREE = b'{"execute": "human-monitor-command", "arguments": {"command-line": "info mtree"}}\n'
OUTPUT_CAP = 8 << 20  # vmm/qmp.c QMP_MAX_OUTPUT


def slow_clients(disk_dir):
    """Clients that misbehave on output, without timing guesses: one never reads (cut off at
    the output cap while another is served), one hangs up inside a large reply."""
    disks = []
    for i in range(2):
        disks += ["--disk", raw_disk(disk_dir, f"d{i}.raw", 1 << 20) + ",format=raw"]
    vm = Vm(disks + ["--rng", "--serial-virtio", "--net", "user", "--cpus", "2"])
    try:
        qt = vm.qtest()
        for slot in range(1, 6):  # memory decode on, as firmware would: BARs in the tree
            qt.cmd(f"outl 0xcf8 {0x80000000 | slot << 11 | 0x04:#x}")
            qt.cmd("outw 0xcfc 0x6")
        q = vm.qmp()
        r = q.cmd("human-monitor-command", {"command-line": "info mtree"})["return"]
        size = len(q.last_line) + 1
        t.ok(r.count("virtio-pci-notify") == 5 and size > 4000,
             "info mtree with five virtio devices: a large reply", size)

        # 1. A client that sends requests and never reads: cut off past the cap.
        n = (OUTPUT_CAP + (4 << 20)) // size + 1  # more than the cap plus any socket buffer
        flood = vm.qmp()
        sent = 0
        try:
            for i in range(0, n, 100):
                flood.send_raw(MTREE * min(100, n - i))
                sent += min(100, n - i)
                if i % 1000 == 0:  # the other client is served in between
                    t.eq(q.cmd("query-name", id=i).get("id"), i,
                         f"another client is answered while one floods ({i} sent)")
        except OSError:
            pass  # the server hung up on it: writes fail, as they should
        got = b""
        flood.sock.settimeout(10)
        while True:
            try:
                data = flood.sock.recv(1 << 20)
            except OSError:
                break
            if not data:
                break
            got += data
        t.ok(len(got) < n * size and got.count(b"\n") < n,
             f"a client that never reads is cut off (got {len(got)} of {n * size} bytes)",
             (len(got), n * size))
        t.ok(len(got) <= OUTPUT_CAP + (4 << 20), "... at the output cap, not later", len(got))
        t.ok("does not read its replies" in vm.output(), "the log says why")
        t.eq(q.cmd("query-status")["return"]["status"], "running",
             "the other client is still served after the cut")

        # 2. A client that hangs up in the middle of a large reply.
        c = vm.qmp()
        c.send_raw(MTREE * 200)  # about 200 replies: far more than the socket holds
        c.sock.settimeout(10)
        head = c.sock.recv(4096)
        t.ok(head.startswith(b'{"return": "address-space') or head.startswith(b'{"return":"'),
             "a large reply started", head[:60])
        c.sock.close()
        for i in range(2):  # the hang-up is handled by the time these come back
            t.eq(q.cmd("query-status")["return"]["status"], "running",
                 f"VM running after a client left mid-reply ({i})")
        t.ok(qt.val("clock_step 1000") > 0 and vm.alive(), "qtest still answers, VM alive")
        t.eq(q.cmd("stop"), {"return": {}}, "stop after the hang-up")
        t.eq(q.cmd("cont"), {"return": {}}, "cont after the hang-up")
        # Both misbehaving clients were freed: the limit (8) is reachable again.
        more = [vm.qmp() for _ in range(7)]
        t.ok(all(m.cmd("query-name", id=j).get("id") == j for j, m in enumerate(more)),
             "their slots were freed: 8 clients at once again")
        for m in more:
            m.close()
        q.cmd("quit")
        t.eq(vm.wait(10), 0, "quit exits 0")
    finally:
        vm.kill()


def wait_on():
    """wait=on: nothing runs (not even the qtest socket's commands) until a QMP client
    connects; that client is greeted at once."""
    d = tempfile.mkdtemp(prefix="kestrel-qmp-wait-")
    path, qpath = os.path.join(d, "qmp.sock"), os.path.join(d, "qtest.sock")
    err = open(os.path.join(d, "err"), "w+")
    p = subprocess.Popen([os.environ["KESTREL"], "run", "--accel", "qtest", "--console", "none",
                          "--qtest", f"unix:{qpath}", "--qmp", f"unix:{path},server=on,wait=on"],
                         stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=err)
    try:
        wait_path(path, p)
        qt = Qtest(qpath)
        qt.sock.sendall(b"endianness\n")
        qt.sock.settimeout(0.5)
        try:
            early = qt.sock.recv(100)
        except socket.timeout:
            early = None
        err.seek(0)
        msg = err.read()
        t.ok(early is None and p.poll() is None,
             "wait=on: before a QMP client connects, the VM does not run (qtest unanswered)",
             early)
        t.ok(f"waiting for a QMP client on unix:{path}" in msg, "wait=on: says it waits", msg)
        q = Qmp(path, negotiate=False, timeout=5)
        t.ok("QMP" in q.greeting, "wait=on: the first client is greeted")
        qt.sock.settimeout(5)
        t.eq(qt.line(), "OK little", "wait=on: then the VM runs (the qtest answer arrives)")
        q.cmd("qmp_capabilities")
        q.cmd("quit")
        t.eq(p.wait(10), 0, "wait=on: quit exits 0")
    finally:
        stop_proc(p)
        err.close()
        shutil.rmtree(d, ignore_errors=True)


def monitors():
    """Several --qmp: a unix socket, IPv6 loopback and IPv4 loopback, one server."""
    d = tempfile.mkdtemp(prefix="kestrel-qmp-multi-")
    path = os.path.join(d, "qmp.sock")
    try:
        p6 = free_port(socket.AF_INET6, "::1")
    except OSError:
        p6 = None
    p4 = free_port()
    args = [os.environ["KESTREL"], "run", "--accel", "qtest", "--console", "none",
            "--qmp", f"unix:{path},server=on,wait=off", "--qmp", f"tcp::{p4},server"]
    if p6:
        args += ["--qmp", f"tcp:[::1]:{p6},server=on,nowait"]
    p = subprocess.Popen(args, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                         stderr=subprocess.DEVNULL)
    try:
        wait_path(path, p)
        a = Qmp(path)
        b = Qmp(addr=("127.0.0.1", p4))
        c = Qmp(addr=("::1", p6)) if p6 else None
        a.cmd("stop")
        t.ok(b.event("STOP", 5) is not None, "several --qmp: a client of the second monitor "
             "sees the STOP the first one's client caused")
        if c:
            t.eq(c.cmd("query-status")["return"]["status"], "paused",
                 "--qmp tcp:[::1]:PORT: a client over IPv6 loopback")
            t.ok(c.event("STOP", 5) is not None, "the IPv6 client got the event too")
            v6 = [ln.split()[1] for ln in open("/proc/net/tcp6").read().splitlines()[1:]
                  if ln.split()[3] == "0A" and ln.split()[1].endswith(f":{p6:04X}")]
            t.eq(v6, [f"{'0' * 24}01000000:{p6:04X}"], "tcp:[::1]: listens on ::1 only")
            out = subprocess.run([os.environ["KESTREL"], "qmp", f"tcp:[::1]:{p6}", "query-status"],
                                 capture_output=True, text=True, timeout=30)
            t.ok(out.returncode == 0 and '"status":"paused"' in out.stdout,
                 "kestrel qmp tcp:[::1]:PORT talks to it", out)
        else:
            t.ok(True, "--qmp tcp:[::1]:PORT # SKIP no IPv6 loopback here")
        b.cmd("cont")
        t.ok(a.event("RESUME", 5) is not None, "and the other way round (RESUME)")
        a.cmd("quit")
        t.eq(p.wait(10), 0, "several --qmp: quit exits 0")
        t.ok(not os.path.exists(path), "the unix socket is removed at exit")
    finally:
        stop_proc(p)
        shutil.rmtree(d, ignore_errors=True)


# Requests whose answers Kestrel and QEMU must agree on: (request, what to compare).
SAME_AS_QEMU = [
    (b'{"execute": "query-status"}', "class"),  # before negotiation
    (b'{"execute": "qmp_capabilities"}', "return"),
    (b'{"execute": "qmp_capabilities"}', "class"),
    (b'{"execute": "query-status", "id": \n oops}', "class"),
    (b'[1, 2]', "class"),
    (b'{"arguments": {}}', "class"),
    (b'{"execute": 42}', "class"),
    (b'{"execute": "stop", "arguments": [1]}', "class"),
    (b'{"execute": "query-status", "bogus": 1}', "class"),
    (b'{"execute": "query-status", "arguments": {"x": 1}}', "class"),
    (b'{"execute": "send-key", "arguments": {"keys": "a"}}', "class"),
    (b'{"execute": "send-key"}', "class"),
    (b'{"execute": "no-such-command", "id": 7}', "class"),
    (b'{"execute": "query-name", "id": {"a": [1]}}', "id"),
    (b'{"execute": "query-status", "id": 3}', "keys"),
    (b'{"execute": "query-version"}', "keys"),
    (b'{"execute": "query-kvm"}', "keys"),
    (b'{"execute": "query-uuid"}', "keys"),
    (b'{"execute": "query-block"}', "keys"),
    (b'{"execute": "query-memory-size-summary"}', "keys"),
    (b'{"execute": "stop"}', "return"),
    (b'{"execute": "query-status"}', "return"),
    (b'{"execute": "cont"}', "return"),
    # Strict JSON: the same refusals (QEMU's parser is strict), the same single quotes.
    (b'{"execute": "query-status", "id": 1,}', "jsonerr"),
    (b'{"execute": "query-status", "id": [1,]}', "jsonerr"),
    (b'{"execute": "query-status", "id": 1} // c', "class"),
    (b'/* c */ {"execute": "query-status", "id": 1}', "jsonerr"),
    (b'{"execute": "query-status", "id": NaN}', "jsonerr"),
    (b'{"execute": "query-status", "id": -Infinity}', "jsonerr"),
    (b'{"execute": "query-status", "id": 01}', "jsonerr"),
    (b'{"execute": "query-status", "id": "a\tb"}', "jsonerr"),
    (b'{"execute": "query-status", "id": "\xff"}', "jsonerr"),
    (b'{"execute": "query-status", "id": "\xed\xa0\x80"}', "jsonerr"),
    (b'{"execute": "query-status", "id": "\\ud800"}', "jsonerr"),
    (b'{"execute": "query-status", "id": 1, "id": 2}', "jsonerr"),
    (b'{"execute": "query-status", "id": ' + b"[" * 1100 + b"]" * 1100 + b"}", "jsonerr"),
    (b"{'execute': 'query-name', 'id': 'single \\'quoted\\' \"x\"'}", "id"),
    (b'{"execute": "query-name", "id": "it\\\'s"}', "id"),
    (b'{"execute": "query-name\\u0000x"}', "class"),
]


def answers(q):
    out = []
    for i, (req, what) in enumerate(SAME_AS_QEMU):
        r = q.with_sync(req, f"sync-{i}")[0]
        if what == "jsonerr":
            e = r.get("error", {})
            out.append((e.get("class"), e.get("desc", "").split(",")[0].split(" depth")[0],
                        "id" in r))
        elif what == "class":
            out.append(r.get("error", {}).get("class"))
        elif what == "return":
            out.append(r.get("return"))
        elif what == "id":
            out.append(r.get("id"))
        else:
            v = r.get("return", r)
            out.append(sorted(v.keys()) if isinstance(v, dict) else type(v).__name__)
    return out


def qemu_reference(vm):
    """The same requests to QEMU (-machine none) and to Kestrel: same answers."""
    import shutil
    import subprocess
    import tempfile
    qemu = shutil.which("qemu-system-x86_64")
    if not qemu:
        t.ok(True, "QMP answers match QEMU's # SKIP qemu-system-x86_64 is not installed")
        return
    d = tempfile.mkdtemp(prefix="kestrel-qmpref-")
    path = os.path.join(d, "qemu.sock")
    p = subprocess.Popen([qemu, "-machine", "none", "-accel", "tcg", "-display", "none",
                          "-nodefaults", "-m", "256", "-qmp", f"unix:{path},server=on,wait=off"],
                         stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                         stderr=subprocess.DEVNULL)
    try:
        wait_path(path, p)
        qq = Qmp(path, negotiate=False)
        ref = answers(qq)
        ours = answers(vm.qmp(negotiate=False))
        # The schema: our commands and events are QEMU's, with QEMU's argument names.
        mine = vm.qmp().cmd("query-qmp-schema")["return"]
        theirs = qq.cmd("query-qmp-schema")["return"]
        tb, mb = {e["name"]: e for e in theirs}, {e["name"]: e for e in mine}

        def arg_names(by, e):
            return sorted(m["name"] for m in by[e["arg-type"]].get("members", []))

        diff = [n for n, e in mb.items() if e["meta-type"] in ("command", "event")
                and n != "query-events"  # QEMU dropped it in 6.0; older clients ask
                and (n not in tb or tb[n]["meta-type"] != e["meta-type"]
                     or arg_names(mb, e) != arg_names(tb, tb[n]))]
        t.eq(diff, [], "query-qmp-schema: every command and event QEMU's too, same arguments")
        for (req, what), a, b in zip(SAME_AS_QEMU, ours, ref):
            t.ok(a == b, f"same as QEMU: {req.decode('ascii', 'backslashreplace')[:60].replace(chr(10), chr(32))} ({what})", f"kestrel {a!r}\nqemu    {b!r}")
    finally:
        stop_proc(p)
        shutil.rmtree(d, ignore_errors=True)


def main():
    disk_dir = tempfile.mkdtemp(prefix="kestrel-qmp-disk-")
    disk = raw_disk(disk_dir, "d0.raw", 4 << 20)
    vm = Vm(["--cpus", "2", "--mem", "256M", "--name", "qmp-test",
             "--uuid", "6B29FC40-CA47-1067-B31D-00DD010662DA",
             "--disk", disk + ",readonly=on"])
    vm.disk = disk
    try:
        protocol(vm)
        queries(vm)
        hmp(vm)
        errors(vm)
        strict_json(vm)
        qemu_reference(vm)
        run_control(vm)
    finally:
        vm.kill()
        shutil.rmtree(disk_dir, ignore_errors=True)
    vm = Vm(qtest=False)
    try:
        quit_(vm)
    finally:
        vm.kill()
    vm = Vm(qtest=False, qmp="tcp")
    try:
        tcp(vm)
    finally:
        vm.kill()
    wait_on()
    monitors()
    d = tempfile.mkdtemp(prefix="kestrel-qmp-slow-")
    try:
        slow_clients(d)
    finally:
        shutil.rmtree(d, ignore_errors=True)
    return t.done()


if __name__ == "__main__":
    run(t, main)
