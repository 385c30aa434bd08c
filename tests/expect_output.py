#!/usr/bin/env python3
"""Runs a command and checks both its exit status and its output (stdout and stderr together).

usage: expect_output.py STATUS REGEX COMMAND [ARGS...]
  STATUS  the exit status the command must end with (e.g. 0, or 2 for a user error)
  REGEX   a Python regular expression that must match somewhere in the output ('.' matches
          newlines too)

ctest's PASS_REGULAR_EXPRESSION ignores the exit status, so an "expected error" command that
exits 0 would pass; this wrapper checks both and prints what it ran when either is wrong.
"""
import re
import subprocess
import sys


def main():
    if len(sys.argv) < 4:
        sys.exit(__doc__)
    status, pattern, cmd = int(sys.argv[1]), sys.argv[2], sys.argv[3:]
    p = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    out = p.stdout.decode(errors="replace")
    sys.stdout.write(out)
    problems = []
    if p.returncode != status:
        problems.append(f"exit status {p.returncode}, expected {status}")
    if not re.search(pattern, out, re.DOTALL):
        problems.append(f"no match for /{pattern}/ in the output")
    if problems:
        print("FAIL: " + "; ".join(problems), file=sys.stderr)
        print("command: " + " ".join(cmd), file=sys.stderr)
        return 1
    print("PASS: exit status and output as expected")
    return 0


if __name__ == "__main__":
    sys.exit(main())
