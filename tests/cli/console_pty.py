#!/usr/bin/env python3
"""The serial console on a real terminal (a pseudo-terminal), driven like a user would.

kestrel runs with --accel qtest (no CPU, no KVM needed) and its console on a pty; a qtest
socket plays the guest's UART driver. Checks, as TAP lines:
  - while running, the terminal is raw (no echo, no line editing);
  - keys typed on the terminal reach the 16550's receive buffer, in order;
  - C-a h prints the key help; C-a b sends a break; C-a x quits with status 0;
  - SIGTERM and SIGINT end kestrel with status 0;
  - every way out leaves the terminal exactly as it was.
Usage: console_pty.py KESTREL
"""
import os
import pty
import select
import signal
import socket
import sys
import tempfile
import termios
import time

KESTREL = sys.argv[1]
COM1 = 0x3F8
n = 0
failed = 0


def tap(ok, what, detail=""):
    global n, failed
    n += 1
    if not ok:
        failed += 1
    print(f"{'ok' if ok else 'not ok'} {n} - {what}" + ("" if ok else f" # got: {detail!r}"))
    sys.stdout.flush()


class Run:
    """kestrel on a fresh pty in cooked mode, with a qtest socket."""

    def __init__(self):
        self.dir = tempfile.mkdtemp(prefix="kt-console-")
        self.qpath = os.path.join(self.dir, "qtest.sock")
        self.pid, self.fd = pty.fork()
        if self.pid == 0:
            os.execv(KESTREL, [KESTREL, "run", "--accel", "qtest", "--qtest",
                               f"unix:{self.qpath}"])
        self.before = termios.tcgetattr(self.fd)
        self.out = b""
        self.q = None
        end = time.time() + 10
        while time.time() < end and self.q is None:
            self.pump(0.05)
            if os.path.exists(self.qpath):
                s = socket.socket(socket.AF_UNIX)
                try:
                    s.connect(self.qpath)
                    self.q = s
                except OSError:
                    s.close()
        self.qbuf = b""

    def pump(self, secs):
        """Collect what kestrel writes to the terminal for up to secs."""
        end = time.time() + secs
        while True:
            left = end - time.time()
            if left <= 0:
                return
            r, _, _ = select.select([self.fd], [], [], left)
            if not r:
                return
            try:
                chunk = os.read(self.fd, 4096)
            except OSError:
                return
            if not chunk:
                return
            self.out += chunk

    def qtest(self, line):
        self.q.sendall(line.encode() + b"\n")
        while True:
            while b"\n" not in self.qbuf:
                chunk = self.q.recv(4096)
                if not chunk:
                    raise EOFError("qtest socket closed")
                self.qbuf += chunk
            reply, self.qbuf = self.qbuf.split(b"\n", 1)
            if not reply.startswith(b"IRQ"):
                return reply.decode()

    def inb(self, port):
        return int(self.qtest(f"inb {port:#x}").split()[1], 16)

    def outb(self, port, v):
        self.qtest(f"outb {port:#x} {v:#x}")

    def wait(self, secs=10):
        """Exit status (None on timeout) and whether the terminal is as it was."""
        end = time.time() + secs
        while time.time() < end:
            pid, status = os.waitpid(self.pid, os.WNOHANG)
            if pid:
                self.pump(0.1)
                after = termios.tcgetattr(self.fd)
                return os.waitstatus_to_exitcode(status), after == self.before
            self.pump(0.05)
        os.kill(self.pid, signal.SIGKILL)
        os.waitpid(self.pid, 0)
        return None, False

    def close(self):
        if self.q:
            self.q.close()
        os.close(self.fd)


# Typed keys reach the UART, C-a h helps, C-a x quits.
r = Run()
tap(r.q is not None, "qtest socket up with the console on a terminal", r.out[-200:])
if r.q is not None:
    now = termios.tcgetattr(r.fd)
    lflag = now[3]
    tap(not (lflag & termios.ICANON) and not (lflag & termios.ECHO),
        "the terminal is raw while kestrel runs", hex(lflag))
    r.outb(COM1 + 3, 0x03)  # 8N1
    r.outb(COM1 + 2, 0x07)  # FIFO on, both cleared
    os.write(r.fd, b"kt!")
    got = b""
    end = time.time() + 5
    while time.time() < end and len(got) < 3:
        if r.inb(COM1 + 5) & 1:  # LSR.DR
            got += bytes([r.inb(COM1)])
        else:
            time.sleep(0.02)
    tap(got == b"kt!", "keys typed on the terminal arrive in the UART's RBR, in order", got)
    os.write(r.fd, b"\x01h")
    r.pump(1.0)
    tap(b"C-a x" in r.out and b"C-a h" in r.out, "C-a h prints the key help", r.out[-300:])
    tap(r.inb(COM1 + 5) & 1 == 0, "C-a h is not passed to the guest")
    os.write(r.fd, b"\x01b")
    lsr = 0
    end = time.time() + 5
    while time.time() < end and not lsr & 1:
        lsr = r.inb(COM1 + 5)
        time.sleep(0.02)
    tap(lsr & 0x11 == 0x11 and r.inb(COM1) == 0,
        "C-a b: a break reaches the UART (LSR.BI with a zero character)", hex(lsr))
    os.write(r.fd, b"\x01x")
    code, same = r.wait()
    tap(code == 0, "C-a x: exit status 0", code)
    tap(same, "C-a x: terminal restored")
r.close()

for sig in (signal.SIGTERM, signal.SIGINT):
    r = Run()
    if r.q is None:
        tap(False, f"{sig.name}: kestrel started", r.out[-200:])
        r.close()
        continue
    r.pump(0.2)
    os.kill(r.pid, sig)
    code, same = r.wait()
    tap(code == 0, f"{sig.name}: exit status 0", code)
    tap(same, f"{sig.name}: terminal restored")
    r.close()

print(f"1..{n}")
sys.exit(1 if failed else 0)
