"""`kestrel qmp SOCKET` on a pseudo-terminal keeps its history in $HOME/.kestrel_qmp_history:
a line typed in one session is there after it, and the up arrow of the next session recalls
it. A HOME that cannot be written costs the history only. Prints SAVED / RECALLED /
NOHOME-OK, or what went wrong."""
import os
import sys
import tempfile

sys.path.insert(0, os.path.dirname(__file__))
from pty_shell import drain, spawn  # noqa: E402

kestrel, sock = sys.argv[1], sys.argv[2]


def session(home, keys):
    pid, fd = spawn(kestrel, sock, dict(os.environ, HOME=home))
    out = drain(fd, 0.5)
    for k in keys:
        os.write(fd, k)
        out += drain(fd)
    os.write(fd, b"\x04")  # Ctrl-D leaves
    out += drain(fd, 0.5)
    _, status = os.waitpid(pid, 0)
    return out, status


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
