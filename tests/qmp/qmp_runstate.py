"""Run states over QMP with devices driven through qtest (kestrel run --accel qtest, no CPU):
stop quiesces the devices (a virtio-blk request, a virtio-net transmit and received frames,
console input: nothing reaches guest memory or raises an interrupt until cont), -S starts in
"prelaunch", --no-shutdown keeps the process after a guest poweroff. Where QEMU is installed,
the same run-state sequences are compared with QEMU's. Prints TAP.

With a booted guest (tests/guest) these would add: a guest that really runs between the
steps (its serial output stops while stopped), a kernel that finds its disk only after cont
with -S, and a second boot to the shell after --no-shutdown, system_reset and cont."""
import os
import shutil
import socket
import struct
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(__file__))
sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "virtio"))
from qmplib import Qmp, Tap, Vm, free_port, raw_disk, run, stop_proc, wait_path  # noqa: E402
from qtest_virtio import BUF, Dev, Qt  # noqa: E402

t = Tap()
COM1 = 0x3F8
QUIET = 0.4  # how long "nothing happens" is watched for
GUEST_MAC = bytes.fromhex("525400123456")


def used_idx(d, q):
    return d.qt.rd(d.ring + q * 0x4000 + 0x2002, 2)


def stays(fn, want, secs=QUIET):
    """fn() keeps returning want for secs."""
    end = time.time() + secs
    while time.time() < end:
        if fn() != want:
            return False
        time.sleep(0.05)
    return True


def blk_write(d, sector, data, status_addr):
    qt = d.qt
    qt.mem(BUF, struct.pack("<IIQ", 1, 0, sector))
    qt.mem(BUF + 0x1000, data.ljust(512, b"\0"))
    qt.mem(status_addr, b"\xff")
    d.submit(0, [(BUF, 16, False), (BUF + 0x1000, 512, False), (status_addr, 1, True)])


def on_disk(img, sector, data):
    with open(img, "rb") as f:
        f.seek(sector * 512)
        return f.read(len(data)) == data


def pause_blk(vm, qt, q, img):
    d = Dev(qt, 1)
    d.start(1)
    qt.cmd("irq_intercept_in ioapic")
    blk_write(d, 1, b"before-stop", BUF + 0x3000)
    t.eq(d.wait_used(0), 1, "blk: a write completes while running")
    qt.rd(d.bar4 + 0x1000, 1)  # ISR read: INTx goes low, so the next completion raises it
    t.eq(q.cmd("stop"), {"return": {}}, "stop")
    qt.cmd("endianness")
    qt.irqs.clear()
    before = used_idx(d, 0)
    blk_write(d, 2, b"posted-while-paused", BUF + 0x3010)
    t.ok(stays(lambda: used_idx(d, 0), before), "blk: request posted while paused: used ring "
         "unchanged", used_idx(d, 0))
    t.eq(qt.rd(BUF + 0x3010, 1), 0xFF, "blk: its status byte untouched")
    t.ok(not on_disk(img, 2, b"posted-while-paused"), "blk: nothing written to the image")
    qt.cmd("endianness")
    t.eq(qt.irqs, [], "blk: no interrupt while paused")
    t.eq(q.cmd("cont"), {"return": {}}, "cont")
    t.eq(d.wait_used(0), 1, "blk: after cont the request completes")
    t.eq(qt.rd(BUF + 0x3010, 1), 0, "blk: status OK")
    t.ok(on_disk(img, 2, b"posted-while-paused"), "blk: and the data is on the image")
    qt.cmd("endianness")
    t.ok("IRQ raise 17" in qt.irqs, "blk: the interrupt comes after cont", qt.irqs)


def arp_request(tpa):
    eth = b"\xff" * 6 + GUEST_MAC + b"\x08\x06"
    arp = struct.pack(">HHBBH", 1, 0x0800, 6, 4, 1) + GUEST_MAC + bytes([10, 0, 2, 15]) + \
        bytes(6) + bytes(tpa)
    return bytes(12) + eth + arp  # virtio_net_hdr first


class Nic(Dev):
    """Receive buffers posted at descriptors 0..n-1 of queue 0; one transmit chain at a time
    on queue 1."""

    def post_rx(self, n):
        base = self.ring
        for i in range(n):
            self.qt.mem(base + 16 * i, struct.pack("<QIHH", BUF + 0x8000 + i * 0x800, 0x800,
                                                   2, 0))
            self.qt.mem(base + 0x1000 + 4 + 2 * i, struct.pack("<H", i))
        self.avail[0] = n
        self.qt.mem(base + 0x1000 + 2, struct.pack("<H", n))
        self.qt.wr(self.bar4 + 0x3000, 2, 0)

    def rx_frames(self):
        return [self.qt.memr(BUF + 0x8000 + i * 0x800 + 12, 42)
                for i in range(used_idx(self, 0))]


def is_arp_reply(f, spa):
    return f[12:14] == b"\x08\x06" and f[20:22] == b"\x00\x02" and f[28:32] == bytes(spa)


def pause_net(vm, qt, q, fwd_port):
    n = Nic(qt, 2)
    t.ok(n.start(2, qsize=16), "net: FEATURES_OK")
    n.post_rx(8)
    qt.mem(BUF + 0x7000, arp_request([10, 0, 2, 2]))
    n.submit(1, [(BUF + 0x7000, 54, False)])
    t.eq(n.wait_used(1), 0, "net: a transmit completes while running")
    end = time.time() + 5
    while time.time() < end and used_idx(n, 0) == 0:
        time.sleep(0.02)
    t.ok(any(is_arp_reply(f, [10, 0, 2, 2]) for f in n.rx_frames()),
         "net: slirp's ARP reply for 10.0.2.2 received while running", n.rx_frames())
    q.cmd("stop")
    rx0, tx0 = used_idx(n, 0), used_idx(n, 1)
    qt.mem(BUF + 0x7100, arp_request([10, 0, 2, 3]))
    n.submit(1, [(BUF + 0x7100, 54, False)])
    # A host connection to the forwarded port: slirp has something for the guest too.
    conn = socket.socket()
    conn.setblocking(False)
    try:
        conn.connect(("127.0.0.1", fwd_port))
    except BlockingIOError:
        pass
    t.ok(stays(lambda: (used_idx(n, 0), used_idx(n, 1)), (rx0, tx0)),
         "net: while paused nothing is transmitted or received (both used rings unchanged)",
         (used_idx(n, 0), used_idx(n, 1)))
    q.cmd("cont")
    t.eq(n.wait_used(1), 0, "net: after cont the transmit completes")
    end = time.time() + 5
    while time.time() < end and not any(is_arp_reply(f, [10, 0, 2, 3]) for f in n.rx_frames()):
        time.sleep(0.02)
    frames = n.rx_frames()
    t.ok(any(is_arp_reply(f, [10, 0, 2, 3]) for f in frames) and len(frames) > rx0,
         "net: after cont the frames that waited are received", frames)
    conn.close()


def pause_console(vm, qt, q):
    vm.proc.stdin.write(b"a")
    vm.proc.stdin.flush()
    end = time.time() + 5
    while time.time() < end and not qt.inb(COM1 + 5) & 1:
        time.sleep(0.02)
    t.eq(qt.inb(COM1), ord("a"), "console: input reaches the UART while running")
    q.cmd("stop")
    vm.proc.stdin.write(b"z")
    vm.proc.stdin.flush()
    t.ok(stays(lambda: qt.inb(COM1 + 5) & 1, 0), "console: input typed while paused waits")
    q.cmd("cont")
    end = time.time() + 5
    while time.time() < end and not qt.inb(COM1 + 5) & 1:
        time.sleep(0.02)
    t.eq(qt.inb(COM1), ord("z"), "console: after cont the UART has it")


def start_paused(img):
    vm = Vm(["-S", "--disk", img + ",format=raw"])
    try:
        q = vm.qmp()
        qt = Qt(vm.qtest_path)
        t.eq(q.cmd("query-status")["return"],
             {"running": False, "singlestep": False, "status": "prelaunch"},
             "-S: query-status prelaunch")
        t0 = qt.val("clock_step 1000000")
        t.eq(t0, 0, "-S: guest time does not run in prelaunch")
        d = Dev(qt, 1)
        d.start(1)
        blk_write(d, 3, b"posted-in-prelaunch", BUF + 0x3020)
        t.ok(stays(lambda: used_idx(d, 0), 0), "-S: a request posted in prelaunch waits")
        t.eq(q.cmd("stop"), {"return": {}}, "-S: stop in prelaunch is accepted")
        t.eq(q.cmd("query-status")["return"]["status"], "prelaunch", "-S: and changes nothing")
        t.eq(q.cmd("cont"), {"return": {}}, "-S: cont")
        t.ok(q.event("RESUME", 5) is not None and not any(e["event"] == "STOP" for e in q.events),
             "-S: RESUME event (and no STOP before it)", q.events)
        t.eq(q.cmd("query-status")["return"]["status"], "running", "-S: running after cont")
        t.eq(d.wait_used(0), 1, "-S: the request completes after cont")
        t.eq(qt.val("clock_step 1000"), 1000, "-S: guest time starts at cont")
        q.cmd("quit")
        t.eq(vm.wait(10), 0, "-S: quit exits 0")
    finally:
        vm.kill()


def poweroff(qt):
    qt.sock.sendall(b"outw 0x604 0x3401\n")  # PM1_CNT: SLP_TYP=5 (S5), SLP_EN
    qt.line()


def no_shutdown(img):
    vm = Vm(["--no-shutdown", "--disk", img + ",format=raw"])
    try:
        q = vm.qmp()
        qt = Qt(vm.qtest_path)
        for cycle in (1, 2):
            poweroff(qt)
            e = q.event("SHUTDOWN", 5)
            t.ok(e is not None and e["data"] == {"guest": True, "reason": "guest-shutdown"},
                 f"--no-shutdown ({cycle}): SHUTDOWN event, guest-shutdown", e)
            t.ok(q.event("STOP", 5) is not None, f"--no-shutdown ({cycle}): then STOP, as QEMU")
            time.sleep(0.2)
            t.ok(vm.alive(), f"--no-shutdown ({cycle}): the process stays")
            t.eq(q.cmd("query-status")["return"],
                 {"running": False, "singlestep": False, "status": "shutdown"},
                 f"--no-shutdown ({cycle}): status shutdown")
            r = q.cmd("cont")
            t.eq(r.get("error"), {"class": "GenericError",
                                  "desc": "Resetting the Virtual Machine is required"},
                 f"--no-shutdown ({cycle}): cont refused until a reset")
            t.eq(q.cmd("system_reset"), {"return": {}}, f"--no-shutdown ({cycle}): system_reset")
            t.ok(q.event("RESET", 5) is not None, f"--no-shutdown ({cycle}): RESET event")
            t.eq(q.cmd("query-status")["return"]["status"], "prelaunch",
                 f"--no-shutdown ({cycle}): prelaunch after the reset")
            d = Dev(qt, 1)
            d.start(1)
            blk_write(d, 4, b"after-reset-%d" % cycle, BUF + 0x3030)
            t.ok(stays(lambda: used_idx(d, 0), 0, 0.2),
                 f"--no-shutdown ({cycle}): devices wait for cont")
            t.eq(q.cmd("cont"), {"return": {}}, f"--no-shutdown ({cycle}): cont")
            t.eq(q.cmd("query-status")["return"]["status"], "running",
                 f"--no-shutdown ({cycle}): running again")
            t.eq(d.wait_used(0), 1, f"--no-shutdown ({cycle}): the machine works after cont")
        q.cmd("quit")
        t.eq(vm.wait(10), 0, "--no-shutdown: quit exits 0")
    finally:
        vm.kill()


def status_sequence(q, poweroff_fn):
    """The run states a client sees: -S start, stop, cont, then a guest poweroff with
    --no-shutdown, cont, system_reset, cont."""
    out = []

    def st():
        out.append(q.cmd("query-status")["return"]["status"])

    st()
    q.cmd("stop")
    st()
    q.cmd("cont")
    st()
    q.events.clear()
    poweroff_fn()
    stop = q.event("STOP", 5)  # taken out of q.events: put back in order
    seen = q.events + ([stop] if stop else [])
    out.append([e["event"] for e in seen if e["event"] in ("SHUTDOWN", "STOP", "RESET")])
    q.events.clear()
    st()
    out.append(q.cmd("cont").get("error"))
    q.cmd("stop")
    st()
    q.cmd("system_reset")
    out.append([e["event"] for e in q.events if e["event"] == "RESET"])  # before the return
    q.event("RESET", 5)
    st()
    q.cmd("cont")
    st()
    return out


def qemu_reference():
    qemu = shutil.which("qemu-system-x86_64")
    if not qemu:
        t.ok(True, "run states match QEMU's # SKIP qemu-system-x86_64 is not installed")
        return
    d = tempfile.mkdtemp(prefix="kestrel-runstate-")
    qmp_path, qt_path = os.path.join(d, "qmp.sock"), os.path.join(d, "qtest.sock")
    ls = socket.socket(socket.AF_UNIX)
    ls.bind(qt_path)
    ls.listen(1)
    ls.settimeout(10)
    p = subprocess.Popen([qemu, "-machine", "pc", "-qtest", f"unix:{qt_path}", "-S",
                          "-no-shutdown", "-display", "none", "-nodefaults", "-m", "128",
                          "-qmp", f"unix:{qmp_path},server=on,wait=off"],
                         stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                         stderr=subprocess.DEVNULL)
    vm = Vm(["-S", "--no-shutdown"])
    try:
        conn, _ = ls.accept()
        conn.settimeout(10)
        wait_path(qmp_path, p)
        qq = Qmp(qmp_path)

        def qtest(c):
            conn.sendall((c + "\n").encode())
            buf = b""
            while not buf.endswith(b"\n"):
                buf += conn.recv(100)
            return buf.decode().strip()

        def qemu_poweroff():
            # PIIX4 PM (00:01.3): PMBA = 0x600, PMIOSE; then PM1_CNT SLP_TYP=0 (off), SLP_EN.
            # PM1_CNT is read first: straight after the config writes QEMU sometimes lets the
            # SLP_EN write go nowhere; once the register reads back, it takes it.
            dev = 0x80000000 | 1 << 11 | 3 << 8
            for _ in range(50):
                for c in (f"outl 0xcf8 {dev | 0x40:#x}", "outl 0xcfc 0x601",
                          f"outl 0xcf8 {dev | 0x80:#x}", "outb 0xcfc 0x1"):
                    qtest(c)
                if qtest("inw 0x604") != "OK 0xffff":
                    break
                time.sleep(0.05)
            qtest("outw 0x604 0x2000")

        ref = status_sequence(qq, qemu_poweroff)
        qt = Qt(vm.qtest_path)
        ours = status_sequence(vm.qmp(), lambda: poweroff(qt))
        t.eq(ours, ref, "-S and --no-shutdown: the same states, events and errors as QEMU's")
    finally:
        stop_proc(p)
        vm.kill()
        shutil.rmtree(d, ignore_errors=True)


def main():
    tmp = tempfile.mkdtemp(prefix="kestrel-runstate-")
    img = raw_disk(tmp, "disk.raw", 4 << 20)
    port = free_port()
    vm = Vm(["--console", "stdio", "--disk", img + ",format=raw",
             "--net", f"user,hostfwd=tcp:127.0.0.1:{port}-:22"], stdin=subprocess.PIPE)
    try:
        qt = Qt(vm.qtest_path)
        q = vm.qmp()
        pause_blk(vm, qt, q, img)
        pause_net(vm, qt, q, port)
        pause_console(vm, qt, q)
        t.ok(vm.alive(), "the VM is still running")
        q.cmd("quit")
        t.eq(vm.wait(10), 0, "quit exits 0")
    finally:
        vm.kill()
    start_paused(img)
    no_shutdown(img)
    qemu_reference()
    shutil.rmtree(tmp, ignore_errors=True)
    return t.done()


if __name__ == "__main__":
    run(t, main)
