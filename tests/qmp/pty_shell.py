"""Drive `kestrel qmp SOCKET` (the interactive shell) on a pseudo-terminal: type a command
with a typo fixed by backspace, then recall it with the up arrow. Prints EDIT / HIST.
spawn() and drain() serve pty_history.py too."""
import os
import pty
import select
import sys
import time


def spawn(kestrel, sock, env=None):
    """`kestrel qmp SOCKET` on a new pty: (pid, fd of the terminal's master side)."""
    pid, fd = pty.fork()
    if pid == 0:
        os.execve(kestrel, [kestrel, "qmp", sock], env if env is not None else os.environ)
    return pid, fd


def drain(fd, secs=1.0):
    """What the shell writes within secs."""
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


def main(kestrel, sock):
    pid, fd = spawn(kestrel, sock)
    drain(fd, 0.5)
    os.write(fd, b"query-nmae\x7f\x7f\x7fame\r")  # typo fixed with backspace
    a = drain(fd)
    os.write(fd, b"\x1b[A\r")  # up arrow recalls it
    b = drain(fd)
    os.write(fd, b"\x04")  # Ctrl-D leaves
    drain(fd, 0.5)
    os.waitpid(pid, 0)
    print("EDIT" if '"name":"client-test"' in a else "noedit: " + repr(a))
    print("HIST" if '"name":"client-test"' in b else "nohist: " + repr(b))


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2])
