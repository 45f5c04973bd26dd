"""Runs a command under a pseudo-terminal, as a person at a terminal would, and presses Ctrl-C.

usage: pty-run.py <wait-regex>... -- <command...>
For each <wait-regex> in turn: once the output so far matches it, writes Ctrl-C (0x03) to the
terminal (which turns it into SIGINT for the foreground process group, as a keyboard does). Prints
one JSON line: the exit code (128 + signal when killed), how many presses were made, and the whole
output, escape sequences included.
"""
import json
import os
import pty
import re
import select
import sys

split = sys.argv.index("--")
waits, command = sys.argv[1:split], sys.argv[split + 1 :]
pid, fd = pty.fork()
if pid == 0:
    os.execvp(command[0], command)
out = b""
pressed = 0
while True:
    ready, _, _ = select.select([fd], [], [], 600)
    if not ready:
        os.kill(pid, 9)
        break
    try:
        chunk = os.read(fd, 65536)
    except OSError:
        break
    if not chunk:
        break
    out += chunk
    if pressed < len(waits) and re.search(waits[pressed].encode(), out):
        pressed += 1
        os.write(fd, b"\x03")
_, status = os.waitpid(pid, 0)
code = os.waitstatus_to_exitcode(status)
print(json.dumps({"code": code if code >= 0 else 128 - code, "pressed": pressed, "output": out.decode("utf8", "replace")}))
