"""Helpers for the QMP and qtest host tests: Python's standard library only (socket + json),
the way any QMP client talks to QEMU. Start a `kestrel run --accel qtest` VM, talk QMP and
the qtest line protocol to it, print TAP."""
import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time

KESTREL = os.environ.get("KESTREL") or os.path.join(
    os.path.dirname(__file__), "..", "..", "build", "kestrel")


class Tap:
    def __init__(self):
        self.n = 0
        self.failed = 0

    def ok(self, cond, name, detail=""):
        self.n += 1
        if cond:
            print(f"ok {self.n} - {name}", flush=True)
        else:
            self.failed += 1
            print(f"not ok {self.n} - {name}", flush=True)
            if detail:
                for line in str(detail).splitlines():
                    print(f"# {line}", flush=True)
        return cond

    def eq(self, got, want, name):
        return self.ok(got == want, name, f"got  {got!r}\nwant {want!r}")

    def done(self):
        print(f"1..{self.n}", flush=True)
        return 1 if self.failed else 0


def _no_constant(name):
    raise ValueError(f"not JSON: {name}")


def strict_json(line):
    """Parse one line the server sent as strict JSON: UTF-8, no NaN/Infinity. A server that
    sends anything else fails the test that reads it."""
    return json.loads(line.decode("utf-8"), parse_constant=_no_constant)


class Qmp:
    """A QMP connection: greeting read, optional negotiation, events kept aside."""

    def __init__(self, path=None, addr=None, negotiate=True, timeout=10):
        if addr:
            self.sock = socket.create_connection(addr, timeout=timeout)
        else:
            self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            self.sock.settimeout(timeout)
            self.sock.connect(path)
        self.buf = b""
        self.events = []
        self.greeting = self.recv()
        if negotiate:
            r = self.cmd("qmp_capabilities")
            assert r == {"return": {}}, r

    def recv(self):
        while b"\n" not in self.buf:
            data = self.sock.recv(65536)
            if not data:
                raise EOFError("QMP connection closed")
            self.buf += data
        line, self.buf = self.buf.split(b"\n", 1)
        self.last_line = line
        return strict_json(line)

    def send_raw(self, data):
        self.sock.sendall(data if isinstance(data, bytes) else data.encode())

    def reply(self):
        """The next non-event message."""
        while True:
            m = self.recv()
            if "event" in m:
                self.events.append(m)
                continue
            return m

    def cmd(self, name, args=None, id=None):
        m = {"execute": name}
        if args is not None:
            m["arguments"] = args
        if id is not None:
            m["id"] = id
        self.send_raw(json.dumps(m) + "\n")
        return self.reply()

    def event(self, name, timeout=10):
        """Wait for an event (one already received counts)."""
        end = time.time() + timeout
        while True:
            for i, e in enumerate(self.events):
                if e["event"] == name:
                    return self.events.pop(i)
            left = end - time.time()
            if left <= 0:
                return None
            self.sock.settimeout(left)
            try:
                m = self.recv()
            except (socket.timeout, EOFError):
                return None
            finally:
                self.sock.settimeout(10)
            if "event" in m:
                self.events.append(m)

    def with_sync(self, req, sync_id):
        """Send req (bytes, one line) and a query after it with id sync_id; all the
        replies up to the query's (bad JSON may get more than one error, from QEMU)."""
        self.send_raw(req + b"\n")
        self.send_raw(b'{"execute": "query-version", "id": "%s"}\n' % sync_id.encode())
        replies = [self.reply()]
        while replies[-1].get("id") != sync_id:
            replies.append(self.reply())
        return replies

    def close(self):
        self.sock.close()


class Qtest:
    """The qtest line protocol; IRQ notifications are collected in self.irqs."""

    def __init__(self, path, timeout=10):
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.sock.settimeout(timeout)
        self.sock.connect(path)
        self.buf = b""
        self.irqs = []

    def line(self):
        while b"\n" not in self.buf:
            data = self.sock.recv(65536)
            if not data:
                raise EOFError("qtest connection closed")
            self.buf += data
        line, self.buf = self.buf.split(b"\n", 1)
        return line.decode()

    def cmd(self, text):
        self.sock.sendall((text + "\n").encode())
        while True:
            line = self.line()
            if line.startswith("IRQ "):
                self.irqs.append(line)
                continue
            return line

    def val(self, text):
        r = self.cmd(text)
        if not r.startswith("OK "):
            raise RuntimeError(f"{text!r} -> {r!r}")
        return int(r.split()[1], 0)

    def outb(self, port, v):
        return self.cmd(f"outb {port:#x} {v:#x}")

    def outw(self, port, v):
        return self.cmd(f"outw {port:#x} {v:#x}")

    def inb(self, port):
        return self.val(f"inb {port:#x}")

    def close(self):
        self.sock.close()


def free_port(family=socket.AF_INET, host="127.0.0.1"):
    s = socket.socket(family)
    s.bind((host, 0))
    port = s.getsockname()[1]
    s.close()
    return port


def raw_disk(directory, name, size):
    path = os.path.join(directory, name)
    with open(path, "wb") as f:
        f.truncate(size)
    return path


def wait_path(path, proc=None, secs=10):
    """Until path exists (a socket a process creates), or the process ended."""
    end = time.time() + secs
    while time.time() < end and not os.path.exists(path):
        if proc is not None and proc.poll() is not None:
            return False
        time.sleep(0.02)
    return os.path.exists(path)


def stop_proc(proc):
    """Kill the process if it still runs, and reap it."""
    if proc.poll() is None:
        proc.kill()
    proc.wait()


def run(t, main):
    """The program's end: main() returns the exit status; a crash is a failed test with its
    traceback; without a kestrel build nothing runs."""
    if not os.path.exists(os.environ.get("KESTREL", "")):
        print("1..0 # SKIP kestrel not built")
        sys.exit(0)
    try:
        rc = main()
    except Exception as e:  # a crash must be a failure, with its reason
        import traceback
        t.ok(False, f"test crashed: {e!r}", traceback.format_exc())
        rc = t.done()
    sys.exit(rc)


class Vm:
    """kestrel run --accel qtest with a QMP socket and a qtest socket in a temp dir."""

    def __init__(self, extra=(), qtest=True, qmp="unix", stdin=subprocess.DEVNULL):
        self.dir = tempfile.mkdtemp(prefix="kestrel-qmp-")
        self.qmp_path = os.path.join(self.dir, "qmp.sock")
        self.qtest_path = os.path.join(self.dir, "qtest.sock")
        self.tcp_port = None
        if qmp == "tcp":
            s = socket.socket()
            s.bind(("127.0.0.1", 0))
            self.tcp_port = s.getsockname()[1]
            s.close()
            spec = f"tcp::{self.tcp_port},server=on,wait=off"  # empty host: loopback
        else:
            spec = f"unix:{self.qmp_path},server=on,wait=off"
        args = [KESTREL, "run", "--accel", "qtest", "--console", "none", "--qmp", spec]
        if qtest:
            args += ["--qtest", f"unix:{self.qtest_path}"]
        args += list(extra)
        self.log = open(os.path.join(self.dir, "kestrel.log"), "w+")
        self.proc = subprocess.Popen(args, stdout=self.log, stderr=subprocess.STDOUT,
                                     stdin=stdin)
        end = time.time() + 10
        while time.time() < end:
            if self.proc.poll() is not None:
                break
            if qmp == "tcp":
                try:
                    socket.create_connection(("127.0.0.1", self.tcp_port), 1).close()
                    break
                except OSError:
                    pass
            elif os.path.exists(self.qmp_path) and (not qtest or os.path.exists(self.qtest_path)):
                break
            time.sleep(0.02)

    def qmp(self, **kw):
        if self.tcp_port:
            return Qmp(addr=("127.0.0.1", self.tcp_port), **kw)
        return Qmp(self.qmp_path, **kw)

    def qtest(self):
        return Qtest(self.qtest_path)

    def alive(self):
        return self.proc.poll() is None

    def wait(self, timeout=10):
        try:
            return self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            return None

    def output(self):
        self.log.flush()
        self.log.seek(0)
        return self.log.read()

    def kill(self):
        """Stop the VM (if still running) and remove its sockets and log."""
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()
        self.log.close()
        shutil.rmtree(self.dir, ignore_errors=True)
