"""Types a command line into a real interactive bash, presses TAB once, and prints the line as
readline completed it: Ctrl-A then puts `echo DONE: ` before it and Enter runs it, so the line printed
is exactly what completion left (argv[1]: the line; argv[2]: a file to source first)."""
import os
import pty
import select
import sys
import time

line, script = sys.argv[1], sys.argv[2]
pid, fd = pty.fork()
if pid == 0:
    os.environ.update(PS1='$ ', TERM='dumb')
    os.execvp('bash', ['bash', '--norc', '--noprofile', '-i'])

seen = b''


def wait_until(done, timeout: float = 30.0) -> None:
    """Reads what bash prints until done(seen) holds."""
    global seen
    end = time.time() + timeout
    while not done(seen):
        if time.time() > end:
            sys.exit(f'timed out; bash printed {seen!r}')
        ready, _, _ = select.select([fd], [], [], 0.2)
        if ready:
            seen += os.read(fd, 65536)


# The marker is what echo prints, not what the terminal echoes of the typed line.
os.write(fd, f'source {script}; echo SOURCED$((6*7))\n'.encode())
wait_until(lambda s: b'SOURCED42' in s)
seen = b''
# Readline takes the keys in order: the completion is over before Ctrl-A is read.
os.write(fd, line.encode() + b'\t\x01echo DONE: \n')
marker = b'\r\nDONE: '
wait_until(lambda s: marker in s and b'\r\n' in s[s.index(marker) + len(marker):])
print(seen[seen.index(marker) + len(marker):].split(b'\r\n')[0].decode())
os.write(fd, b'exit\n')
