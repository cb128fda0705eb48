"""Drive `kestrel qmp SOCKET` (the interactive shell) on a pseudo-terminal: type a command
with a typo fixed by backspace, then recall it with the up arrow. Prints EDIT / HIST."""
import os
import pty
import select
import sys
import time

kestrel, sock = sys.argv[1], sys.argv[2]
pid, fd = pty.fork()
if pid == 0:
    os.execv(kestrel, [kestrel, "qmp", sock])


def drain(secs=1.0):
    out = b""
    end = time.time() + secs
    while time.time() < end:
        r, _, _ = select.select([fd], [], [], 0.1)
        if r:
            try:
                out += os.read(fd, 65536)
            except OSError:
                break
    return out.decode(errors="replace")


drain(0.5)
os.write(fd, b"query-nmae\x7f\x7f\x7fame\r")  # typo fixed with backspace
a = drain()
os.write(fd, b"\x1b[A\r")  # up arrow recalls it
b = drain()
os.write(fd, b"\x04")  # Ctrl-D leaves
drain(0.5)
os.waitpid(pid, 0)
print("EDIT" if '"name":"client-test"' in a else "noedit: " + repr(a))
print("HIST" if '"name":"client-test"' in b else "nohist: " + repr(b))
