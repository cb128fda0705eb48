"""`kestrel qmp SOCKET` on a pseudo-terminal keeps its history in $HOME/.kestrel_qmp_history:
a line typed in one session is there after it, and the up arrow of the next session recalls
it. A HOME that cannot be written costs the history only. Prints SAVED / RECALLED /
NOHOME-OK, or what went wrong."""
import os
import pty
import select
import sys
import tempfile
import time

kestrel, sock = sys.argv[1], sys.argv[2]


def session(home, keys):
    env = dict(os.environ, HOME=home)
    pid, fd = pty.fork()
    if pid == 0:
        os.execve(kestrel, [kestrel, "qmp", sock], env)
    out = b""

    def drain(secs):
        nonlocal out
        end = time.time() + secs
        while time.time() < end:
            r, _, _ = select.select([fd], [], [], 0.1)
            if r:
                try:
                    out += os.read(fd, 65536)
                except OSError:
                    break

    drain(0.5)
    for k in keys:
        os.write(fd, k)
        drain(1.0)
    os.write(fd, b"\x04")  # Ctrl-D leaves
    drain(0.5)
    _, status = os.waitpid(pid, 0)
    return out.decode(errors="replace"), status


home = tempfile.mkdtemp(prefix="kestrel-qmp-home-")
hist = os.path.join(home, ".kestrel_qmp_history")
out, _ = session(home, [b"query-name\r"])
saved = open(hist).read() if os.path.exists(hist) else ""
print("SAVED" if saved == "query-name\n" else "notsaved: " + repr(saved))
out, _ = session(home, [b"\x1b[A\r"])  # a new session: up arrow, enter
print("RECALLED" if '"name":"client-test"' in out else "notrecalled: " + repr(out))
out, status = session(os.path.join(home, "no", "such", "dir"), [b"query-name\r"])
print("NOHOME-OK" if '"name":"client-test"' in out and os.WIFEXITED(status)
      and os.WEXITSTATUS(status) == 0 else f"nohome: {status} {out!r}")
