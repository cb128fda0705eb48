"""Machine-level PCI and virtio tests over the qtest protocol (kestrel run --accel qtest, no CPU):
the pc machine's PCI bus seen through 0xcf8/0xcfc and ECAM, then virtio-blk, virtio-rng and
virtio-console driven like a guest driver would, with their INTx lines and MSI messages.
Prints TAP."""
import os
import shutil
import struct
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "qmp"))
from qmplib import Qtest, Tap, Vm  # noqa: E402

t = Tap()
ECAM = 0xE0000000
RING = 0x100000  # + slot * 0x10000 + queue * 0x4000: desc; avail +0x1000; used +0x2000
BUF = 0x200000
DISK = 4 << 20


class Qt(Qtest):
    """Qtest that also collects "MSI addr data" notifications."""

    def __init__(self, path):
        super().__init__(path)
        self.msis = []

    def cmd(self, text):
        self.sock.sendall((text + "\n").encode())
        while True:
            line = self.line()
            if line.startswith("IRQ "):
                self.irqs.append(line)
            elif line.startswith("MSI "):
                self.msis.append(line)
            else:
                return line

    def cfg(self, slot, reg, size=4):
        self.cmd(f"outl 0xcf8 {0x80000000 | slot << 11 | (reg & 0xfc):#x}")
        op = {1: "inb", 2: "inw", 4: "inl"}[size]
        return self.val(f"{op} {0xcfc + (reg & 3):#x}")

    def cfg_w(self, slot, reg, size, v):
        self.cmd(f"outl 0xcf8 {0x80000000 | slot << 11 | (reg & 0xfc):#x}")
        op = {1: "outb", 2: "outw", 4: "outl"}[size]
        self.cmd(f"{op} {0xcfc + (reg & 3):#x} {v:#x}")

    def rd(self, addr, size):
        return self.val(f"read{'bwlq'[[1, 2, 4, 8].index(size)]} {addr:#x}")

    def wr(self, addr, size, v):
        r = self.cmd(f"write{'bwlq'[[1, 2, 4, 8].index(size)]} {addr:#x} {v:#x}")
        assert r == "OK", r

    def mem(self, addr, data):
        assert self.cmd(f"write {addr:#x} {len(data)} 0x{data.hex()}") == "OK"

    def memr(self, addr, n):
        r = self.cmd(f"read {addr:#x} {n}")
        return bytes.fromhex(r.split()[1][2:])


class Dev:
    """A minimal virtio-pci driver for one slot."""

    def __init__(self, qt, slot):
        self.qt, self.slot = qt, slot
        self.bar4 = (qt.cfg(slot, 0x20) & ~0xF) | qt.cfg(slot, 0x24) << 32
        self.msix = qt.cfg(slot, 0x14) & ~0xF
        qt.cfg_w(slot, 0x04, 2, 0x6)  # MEM | MASTER
        self.ring = RING + slot * 0x10000
        self.avail = {}
        self.used = {}

    def start(self, queues, qsize=8, vectors=None):
        qt, b = self.qt, self.bar4
        qt.wr(b + 0x14, 1, 0)
        qt.wr(b + 0x14, 1, 3)
        qt.wr(b + 0x08, 4, 1)
        qt.wr(b + 0x0C, 4, 1)  # VERSION_1 only
        qt.wr(b + 0x14, 1, 0xB)
        ok = qt.rd(b + 0x14, 1) & 8
        for q in range(queues):
            qt.wr(b + 0x16, 2, q)
            qt.wr(b + 0x18, 2, qsize)
            if vectors:
                qt.wr(b + 0x1A, 2, vectors[q])
            base = self.ring + q * 0x4000
            qt.wr(b + 0x20, 8, base)
            qt.wr(b + 0x28, 8, base + 0x1000)
            qt.wr(b + 0x30, 8, base + 0x2000)
            qt.wr(b + 0x1C, 2, 1)
            self.avail[q] = 0
            self.used[q] = 0
        qt.wr(b + 0x14, 1, 0xF)
        self.qsize = qsize
        return ok

    def submit(self, q, bufs):
        """bufs: (addr, len, writable) chained at descriptors 0..n-1; rings the doorbell."""
        base = self.ring + q * 0x4000
        for i, (addr, ln, w) in enumerate(bufs):
            flags = (2 if w else 0) | (1 if i + 1 < len(bufs) else 0)
            self.qt.mem(base + 16 * i, struct.pack("<QIHH", addr, ln, flags, i + 1))
        slot = self.avail[q] % self.qsize
        self.qt.mem(base + 0x1000 + 4 + 2 * slot, struct.pack("<H", 0))
        self.avail[q] += 1
        self.qt.mem(base + 0x1000 + 2, struct.pack("<H", self.avail[q]))
        self.qt.wr(self.bar4 + 0x3000 + 4 * q, 2, q)

    def wait_used(self, q, timeout=5):
        base = self.ring + q * 0x4000
        end = time.time() + timeout
        while time.time() < end:
            idx = self.qt.rd(base + 0x2002, 2)
            if idx != self.used[q] & 0xFFFF:
                slot = self.used[q] % self.qsize
                self.used[q] += 1
                return self.qt.rd(base + 0x2004 + 8 * slot + 4, 4)
            time.sleep(0.01)
        return None


def enumerate_bus(qt):
    ids = [qt.cfg(s, 0) for s in range(6)]
    t.eq(ids, [0x00081B36, 0x10421AF4, 0x10421AF4, 0x10441AF4, 0x10431AF4, 0xFFFFFFFF],
         "pci: host bridge, 2 virtio-blk, virtio-rng, virtio-console on bus 0 (0xcf8)")
    t.eq([qt.rd(ECAM + (s << 15), 4) for s in range(6)], ids, "pci: the same through ECAM")
    t.eq(qt.rd(ECAM + (1 << 20), 4), 0xFFFFFFFF, "pci: bus 1 is empty")
    t.eq(qt.cfg(1, 0x3D, 1), 1, "pci: virtio-blk uses INTA#")
    t.eq(qt.cfg(1, 0x3C, 1), 17, "pci: slot 1 INTA# is GSI 17")
    bars = [(qt.cfg(s, 0x20) & ~0xF) for s in range(1, 5)]
    t.ok(all(0xC0000000 <= b < 0xE0000000 for b in bars) and len(set(bars)) == 4,
         "pci: BAR4s assigned in the 32-bit hole, distinct", [hex(b) for b in bars])
    t.eq(qt.rd(bars[0], 4), 0xFFFFFFFF, "pci: BAR not decoded before COMMAND.MEM")


def blk(qt, img):
    d = Dev(qt, 1)
    t.eq(d.qt.rd(d.bar4 + 0x2000, 8), DISK // 512, "virtio-blk: capacity in sectors")
    t.eq(qt.rd(d.bar4 + 0x12, 2), 1, "virtio-blk: one queue with one vCPU")
    t.ok(d.start(1), "virtio-blk: FEATURES_OK with VERSION_1")
    qt.cmd("irq_intercept_in ioapic")
    qt.mem(BUF, struct.pack("<IIQ", 1, 0, 8))  # OUT at sector 8
    qt.mem(BUF + 0x1000, b"KESTREL-QTEST-BLK" + bytes(512 - 17))
    d.submit(0, [(BUF, 16, False), (BUF + 0x1000, 512, False), (BUF + 0x3000, 1, True)])
    t.eq(d.wait_used(0), 1, "virtio-blk: write completes")
    t.eq(qt.rd(BUF + 0x3000, 1), 0, "virtio-blk: write status OK")
    time.sleep(0.05)
    qt.cmd("endianness")  # collect pending notifications
    t.ok("IRQ raise 17" in qt.irqs, "virtio-blk: INTx raised on GSI 17", qt.irqs)
    t.eq(qt.rd(d.bar4 + 0x1000, 1), 1, "virtio-blk: ISR says queue interrupt")
    t.ok(qt.irqs and qt.irqs[-1] == "IRQ lower 17", "virtio-blk: ISR read lowers INTx", qt.irqs)
    qt.mem(BUF, struct.pack("<IIQ", 0, 0, 8))  # IN
    d.submit(0, [(BUF, 16, False), (BUF + 0x2000, 512, True), (BUF + 0x3000, 1, True)])
    t.eq(d.wait_used(0), 513, "virtio-blk: read completes with 513 bytes")
    t.eq(qt.memr(BUF + 0x2000, 17), b"KESTREL-QTEST-BLK", "virtio-blk: read back what was written")
    with open(img, "rb") as f:
        f.seek(8 * 512)
        t.eq(f.read(17), b"KESTREL-QTEST-BLK", "virtio-blk: the image file has the data")
    # Read-only disk at slot 2.
    r = Dev(qt, 2)
    r.start(1)
    qt.mem(BUF, struct.pack("<IIQ", 1, 0, 0))
    r.submit(0, [(BUF, 16, False), (BUF + 0x1000, 512, False), (BUF + 0x3000, 1, True)])
    t.eq(r.wait_used(0), 1, "virtio-blk ro: write completes")
    t.eq(qt.rd(BUF + 0x3000, 1), 1, "virtio-blk ro: write answers IOERR")
    # A chain pointing outside RAM: NEEDS_RESET, the VM lives on.
    qt.mem(BUF, struct.pack("<IIQ", 0, 0, 0))
    d.submit(0, [(BUF, 16, False), (0x7FFFF000, 512, True), (BUF + 0x3000, 1, True)])
    end = time.time() + 5
    while time.time() < end and not qt.rd(d.bar4 + 0x14, 1) & 0x40:
        time.sleep(0.01)
    t.ok(qt.rd(d.bar4 + 0x14, 1) & 0x40, "virtio-blk: buffer outside RAM sets NEEDS_RESET")
    qt.wr(d.bar4 + 0x14, 1, 0)
    t.eq(qt.rd(d.bar4 + 0x14, 1), 0, "virtio-blk: reset clears it")


def rng_msix(qt):
    d = Dev(qt, 3)
    cap = qt.cfg(3, 0x34, 1)
    t.eq(qt.cfg(3, cap, 1), 0x11, "virtio-rng: first capability is MSI-X")
    qt.cfg_w(3, cap + 2, 2, 0x8000)
    qt.wr(d.msix + 16, 4, 0xFEE00000)
    qt.wr(d.msix + 24, 4, 0x4051)
    qt.wr(d.msix + 28, 4, 0)
    d.start(1, vectors=[1])
    qt.msis.clear()
    d.submit(0, [(BUF + 0x4000, 32, True)])
    t.eq(d.wait_used(0), 32, "virtio-rng: 32 random bytes")
    qt.cmd("endianness")
    t.eq(qt.msis, ["MSI 0xfee00000 0x4051"], "virtio-rng: completion is an MSI-X message")
    t.ok(qt.memr(BUF + 0x4000, 32) != bytes(32), "virtio-rng: bytes are not all zero")


def console(qt, path):
    d = Dev(qt, 4)
    d.start(2)
    qt.mem(BUF + 0x5000, b"hvc0 says hi\n")
    d.submit(1, [(BUF + 0x5000, 13, False)])
    t.eq(d.wait_used(1), 0, "virtio-console: transmit buffer returned")
    time.sleep(0.1)
    with open(path, "rb") as f:
        t.ok(b"hvc0 says hi\n" in f.read(), "virtio-console: output reaches the console file")


def console_input():
    """Host input to hvc0: bytes on Kestrel's stdin wait until the driver posts receive
    buffers (console=hvc0 last on the command line makes hvc0 the input target)."""
    vm = Vm(["--console", "stdio", "--serial-virtio", "--cmdline", "console=ttyS0 console=hvc0"],
            stdin=subprocess.PIPE)
    try:
        vm.proc.stdin.write(b"typed on stdin\n")
        vm.proc.stdin.flush()
        qt = Qt(vm.qtest_path)
        time.sleep(0.2)  # the bytes are read while no driver is there yet
        d = Dev(qt, 1)
        d.start(2)
        d.submit(0, [(BUF + 0x6000, 64, True)])
        n = d.wait_used(0)
        t.eq(n, 15, "virtio-console: stdin bytes land in the receive buffer once posted")
        t.eq(qt.memr(BUF + 0x6000, 15), b"typed on stdin\n", "virtio-console: the bytes typed")
        qt.close()
    finally:
        vm.kill()


def machine_reset(qt, q):
    """system_reset: devices back to power-on state, BARs where firmware put them, not decoded."""
    d = Dev(qt, 1)
    d.start(1)
    bar = d.bar4
    qt.cfg_w(1, 0x20, 4, 0xD0000000 | 0xC)  # the guest moved BAR4
    t.eq(qt.rd(0xD0000000 + 0x14, 1), 0xF, "reset: before, virtio-blk0 at its new BAR, DRIVER_OK")
    q.cmd("system_reset")
    end = time.time() + 5
    while time.time() < end and qt.cfg(1, 0x04, 2) != 0:
        time.sleep(0.02)
    t.eq(qt.cfg(1, 0x04, 2), 0, "reset: COMMAND cleared")
    t.eq(qt.cfg(1, 0x20) & ~0xF, bar, "reset: BAR4 back at its firmware address")
    t.eq(qt.rd(0xD0000000 + 0x14, 4), 0xFFFFFFFF, "reset: old BAR address no longer decoded")
    qt.cfg_w(1, 0x04, 2, 0x2)
    t.eq(qt.rd(bar + 0x14, 1), 0, "reset: device status 0")
    t.eq(qt.rd(bar + 0x1C, 2), 0, "reset: queue 0 disabled")


def main():
    if not os.path.exists(os.environ.get("KESTREL", "")):
        print("1..0 # SKIP kestrel not built")
        return 0
    tmp = tempfile.mkdtemp(prefix="kestrel-qtest-virtio-")
    img, ro, con = (os.path.join(tmp, n) for n in ("disk.raw", "ro.raw", "console.txt"))
    for p in (img, ro):
        with open(p, "wb") as f:
            f.truncate(DISK)
    vm = Vm(["--console", "file:" + con, "--disk", img + ",format=raw",
             "--disk", ro + ",format=raw,readonly=on", "--rng", "--serial-virtio"])
    try:
        qt = Qt(vm.qtest_path)
        enumerate_bus(qt)
        blk(qt, img)
        rng_msix(qt)
        console(qt, con)
        t.ok(vm.alive(), "the VM is still running")
        q = vm.qmp()
        machine_reset(qt, q)
        qt.close()
        q.cmd("quit")
        t.eq(vm.wait(30), 0, "VM exits 0 on quit")
    finally:
        out = vm.output()
        vm.kill()
        shutil.rmtree(tmp, ignore_errors=True)
    if out.strip():
        print("# kestrel output:")
        for line in out.splitlines()[-10:]:
            print("# " + line)
    console_input()
    return t.done()


if __name__ == "__main__":
    try:
        rc = main()
    except Exception as e:
        import traceback
        t.ok(False, f"test crashed: {e!r}", traceback.format_exc())
        rc = t.done()
    sys.exit(rc)
