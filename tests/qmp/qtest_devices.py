"""Device tests over the qtest protocol (no CPU): the 8250 UART, the CMOS RTC and the i8042
keyboard fed by QMP send-key, each checked through its registers and its IRQ line.
Prints TAP."""
import calendar
import os
import shutil
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(__file__))
from qmplib import Tap, Vm, run  # noqa: E402

t = Tap()
COM1 = 0x3F8


def protocol(qt):
    t.eq(qt.cmd("endianness"), "OK little", "qtest: endianness")
    t.ok(qt.cmd("frobnicate 1 2").startswith("FAIL"), "qtest: unknown command FAIL")
    t.ok(qt.cmd("outb").startswith("FAIL"), "qtest: missing operands FAIL")
    t.ok(qt.cmd("outb 0x10000 1").startswith("FAIL"), "qtest: port > 0xffff FAIL")
    t.ok(qt.cmd("inb zz").startswith("FAIL"), "qtest: non-number FAIL")
    t.eq(qt.cmd("writeq 0x2000 0x1122334455667788"), "OK", "qtest: writeq to RAM")
    t.eq(qt.cmd("readq 0x2000"), "OK 0x1122334455667788", "qtest: readq")
    t.eq(qt.cmd("readw 0x2002"), "OK 0x0000000000005566", "qtest: readw inside it")
    t.eq(qt.cmd("write 0x3000 4 0xdeadbeef"), "OK", "qtest: write (hex data)")
    t.eq(qt.cmd("read 0x3000 4"), "OK 0xdeadbeef", "qtest: read")
    t.eq(qt.cmd("memread 0x3000 2"), "OK 0xdead", "qtest: memread alias")
    t.eq(qt.cmd("memset 0x3000 3 0x41"), "OK", "qtest: memset")
    t.eq(qt.cmd("read 0x3000 4"), "OK 0x414141ef", "qtest: memset wrote 3 bytes")
    t.ok(qt.cmd("read 0xfffffff0 64").startswith("FAIL"), "qtest: read outside RAM FAIL")
    t.eq(qt.cmd("readl 0xfed00000"), "OK 0x00000000ffffffff",
         "qtest: unclaimed MMIO reads all ones")
    t.ok(qt.cmd("write 0x3000 4 0xzz").startswith("FAIL"), "qtest: bad hex FAIL")
    t.ok(qt.cmd("x" * 3000).startswith("FAIL"), "qtest: long garbage line FAIL")


def uart(qt, console_path):
    qt.cmd("irq_intercept_in ioapic")
    qt.outb(COM1 + 7, 0x5A)
    t.eq(qt.inb(COM1 + 7), 0x5A, "uart: scratch register")
    qt.outb(COM1 + 3, 0x80)  # DLAB
    qt.outb(COM1 + 0, 0x0C)  # 9600 baud
    qt.outb(COM1 + 1, 0x00)
    t.eq((qt.inb(COM1 + 0), qt.inb(COM1 + 1)), (0x0C, 0), "uart: divisor latch read back")
    qt.outb(COM1 + 3, 0x03)  # 8N1
    t.eq(qt.inb(COM1 + 3), 0x03, "uart: LCR 8N1")
    lsr = qt.inb(COM1 + 5)
    t.ok(lsr & 0x60 == 0x60, "uart: LSR THRE|TEMT when idle", hex(lsr))
    for ch in b"hello qtest\n":
        qt.outb(COM1, ch)
    time.sleep(0.2)
    try:
        got = open(console_path, "rb").read()
    except OSError:
        got = b""
    t.ok(b"hello qtest\n" in got, "uart: transmitted bytes reach the console backend", got)

    # THRE interrupt: IER.ETBEI with OUT2 raises IRQ 4; reading IIR (THRE) clears it.
    qt.irqs.clear()
    qt.outb(COM1 + 4, 0x08)  # OUT2
    qt.outb(COM1 + 1, 0x02)  # ETBEI
    t.ok("IRQ raise 4" in qt.irqs, "uart: THRE interrupt raises IRQ 4", qt.irqs)
    iir = qt.inb(COM1 + 2)
    t.eq(iir & 0x0F, 0x02, "uart: IIR says THR empty")
    t.ok("IRQ lower 4" in qt.irqs, "uart: reading IIR lowers IRQ 4", qt.irqs)
    qt.outb(COM1 + 1, 0x00)

    # Loopback: a transmitted byte comes back in RBR with LSR.DR; no IRQ in loopback.
    qt.irqs.clear()
    qt.outb(COM1 + 4, 0x10 | 0x08)
    qt.outb(COM1 + 1, 0x01)  # ERBFI
    qt.outb(COM1, 0x42)
    lsr = qt.inb(COM1 + 5)
    t.ok(lsr & 1, "uart: loopback byte sets LSR.DR", hex(lsr))
    t.eq(qt.inb(COM1), 0x42, "uart: loopback byte in RBR")
    t.ok(not any(i.endswith(" 4") and "raise" in i for i in qt.irqs),
         "uart: no IRQ while in loopback (OUT2 forced off)", qt.irqs)
    qt.outb(COM1 + 1, 0)
    qt.outb(COM1 + 4, 0)


def bcd(v):
    return (v >> 4) * 10 + (v & 15)


def rtc_read(qt, reg):
    qt.outb(0x70, reg)
    return qt.inb(0x71)


def rtc_time(qt):
    s, m, h = bcd(rtc_read(qt, 0)), bcd(rtc_read(qt, 2)), bcd(rtc_read(qt, 4))
    d, mo, y = bcd(rtc_read(qt, 7)), bcd(rtc_read(qt, 8)), bcd(rtc_read(qt, 9))
    return calendar.timegm((2000 + y, mo, d, h, m, s, 0, 0, 0))


def rtc(qt, q):
    qt.cmd("irq_intercept_in ioapic")
    b = rtc_read(qt, 0x0B)
    t.ok(b & 0x02 and not b & 0x04, "rtc: 24-hour BCD mode", hex(b))
    now = rtc_time(qt)
    t.ok(abs(now - time.time()) < 5, "rtc: starts at the host's UTC time",
         (now, int(time.time())))
    qt.val("clock_step 3000000000")
    later = rtc_time(qt)
    t.ok(2 <= later - now <= 4, "rtc: clock_step 3 s moves the RTC 3 s", later - now)

    # Periodic interrupt at 1024 Hz: IRQ 8 rises within one period, C reads IRQF|PF.
    qt.irqs.clear()
    qt.outb(0x70, 0x0A)
    qt.outb(0x71, 0x26)
    qt.outb(0x70, 0x0B)
    qt.outb(0x71, b | 0x40)
    rtc_read(qt, 0x0C)
    qt.irqs.clear()
    qt.val("clock_step 1000000")
    t.ok("IRQ raise 8" in qt.irqs, "rtc: periodic interrupt raises IRQ 8 after 1 ms", qt.irqs)
    c = rtc_read(qt, 0x0C)
    t.eq(c & 0xC0, 0xC0, "rtc: register C shows IRQF|PF")
    t.ok("IRQ lower 8" in qt.irqs, "rtc: reading C lowers IRQ 8", qt.irqs)

    # Paused VM: the clock stands, no periodic interrupt.
    q.cmd("stop")
    qt.irqs.clear()
    qt.val("clock_step 10000000")
    t.ok(not any("raise 8" in i for i in qt.irqs), "rtc: no interrupt while the VM is paused",
         qt.irqs)
    q.cmd("cont")
    qt.val("clock_step 1000000")
    t.ok("IRQ raise 8" in qt.irqs, "rtc: interrupts again after cont", qt.irqs)
    rtc_read(qt, 0x0C)
    qt.outb(0x70, 0x0B)
    qt.outb(0x71, b)


def kbd_bytes(qt, limit=16):
    out = []
    for _ in range(limit):
        if not qt.inb(0x64) & 1:
            break
        out.append(qt.inb(0x60))
    return out


def keyboard(qt, q):
    qt.cmd("irq_intercept_in ioapic")
    kbd_bytes(qt)
    qt.irqs.clear()
    r = q.cmd("send-key", {"keys": [{"type": "qcode", "data": "a"}], "hold-time": 50})
    t.eq(r, {"return": {}}, "send-key a")
    t.eq(kbd_bytes(qt), [0x1E], "i8042: 'a' make code (set 1, translated)")
    t.ok("IRQ raise 1" in qt.irqs, "i8042: key press raises IRQ 1", qt.irqs)
    time.sleep(0.3)
    t.eq(kbd_bytes(qt), [0x9E], "i8042: 'a' break code after hold-time")

    q.cmd("send-key", {"keys": [{"type": "qcode", "data": k} for k in ("ctrl", "alt", "delete")],
                       "hold-time": 20})
    time.sleep(0.3)
    got = kbd_bytes(qt)
    want = [0x1D, 0x38, 0xE0, 0x53, 0xE0, 0xD3, 0xB8, 0x9D]
    t.eq(got, want, "i8042: ctrl-alt-delete pressed in order, released in reverse")

    # virsh send-key sends "number" keys (XT scancodes, E0 keys + 0x80).
    q.cmd("send-key", {"keys": [{"type": "number", "data": 0x1E}, {"type": "number",
                                                                     "data": 0xD3}],
                       "hold-time": 20})
    time.sleep(0.3)
    t.eq(kbd_bytes(qt), [0x1E, 0xE0, 0x53, 0xE0, 0xD3, 0x9E],
         "i8042: number keys 0x1e (a) and 0xd3 (delete)")


def stdio():
    """--qtest stdio: the protocol on stdin/stdout; end of input ends the VM (exit 0)."""
    script = "outb 0x70 0x0a\ninb 0x71\nclock_step 5000\nwritel 0x100 0x1234\nreadl 0x100\n"
    try:
        r = subprocess.run([os.environ["KESTREL"], "run", "--accel", "qtest", "--qtest", "stdio"],
                           input=script.encode(), capture_output=True, timeout=20)
        out = r.stdout.decode().splitlines()
        rc = r.returncode
    except subprocess.TimeoutExpired:
        out, rc = ["timed out"], None
    t.eq(out, ["OK", "OK 0x0026", "OK 5000", "OK", "OK 0x0000000000001234"],
         "qtest stdio: answers on stdout")
    t.eq(rc, 0, "qtest stdio: end of input ends the VM, exit 0")


def stuck_client():
    """A qtest client that stops reading holds up nothing: its answers queue (and arrive when
    it reads), and past 32 MiB queued it is dropped; QMP is answered promptly all along."""
    vm = Vm([])
    try:
        q = vm.qmp()
        qt = vm.qtest()
        qt.sock.sendall(b"read 0x0 1048576\n" * 4)  # 4 answers of 2 MiB of hex, unread
        time.sleep(0.2)
        t0 = time.time()
        r = q.cmd("query-status")
        took = time.time() - t0
        t.ok(r["return"]["status"] == "running" and took < 1.5,
             f"a qtest client that does not read: QMP still answers at once ({took:.2f} s)")
        answers = [qt.line() for _ in range(4)]
        t.ok(all(a.startswith("OK 0x") and len(a) == 5 + 2 * 1048576 for a in answers),
             "its queued answers arrive whole once it reads", [len(a) for a in answers])
        t.eq(qt.cmd("endianness"), "OK little", "and it goes on")
        qt.sock.sendall(b"read 0x0 1048576\n" * 20)  # 40 MiB: over the 32 MiB queue
        time.sleep(0.3)
        t.eq(q.cmd("query-status")["return"]["status"], "running", "QMP answers meanwhile")
        got = 0
        qt.sock.settimeout(10)
        try:
            while True:
                data = qt.sock.recv(1 << 20)
                if not data:
                    break
                got += len(data)
        except OSError:
            pass
        t.ok(got < 20 * (5 + 2 * 1048576 + 1), "past 32 MiB queued the client is dropped",
             got)
        t.ok("does not read its answers" in vm.output(), "the log says why")
        qt.close()
        qt = vm.qtest()
        t.eq(qt.cmd("endianness"), "OK little", "a new qtest client is served")
        qt.close()
        q.cmd("quit")
        t.eq(vm.wait(10), 0, "VM exits 0 on quit")
    finally:
        vm.kill()


def main():
    tmp = tempfile.mkdtemp(prefix="kestrel-qtest-")
    console = os.path.join(tmp, "console.txt")
    vm = Vm(["--console", "file:" + console])
    try:
        qt = vm.qtest()
        q = vm.qmp()
        protocol(qt)
        uart(qt, console)
        rtc(qt, q)
        keyboard(qt, q)
        # A second qtest client is refused while one is connected.
        other = vm.qtest()
        t.ok(other.line().startswith("FAIL"), "qtest: second client refused")
        other.close()
        qt.close()
        time.sleep(0.1)
        qt = vm.qtest()
        t.eq(qt.cmd("endianness"), "OK little", "qtest: reconnect after the client left")
        qt.close()
        q.cmd("quit")
        t.eq(vm.wait(10), 0, "VM exits 0 on quit")
        stdio()
        stuck_client()
    finally:
        vm.kill()
        shutil.rmtree(tmp, ignore_errors=True)
    return t.done()


if __name__ == "__main__":
    run(t, main)
