"""One quiet step of `make install` / `make run`: print what is being done on one line, keep the
command's output in a log file, and show the end of that output only if the command fails.

    python3 platform/step.py --log var/log/make.log "Migrating the database…" -- cmd arg…

The exit status is the command's. With QUAYMASTER_VERBOSE=1 (`make run VERBOSE=1`) the output
is shown as it comes, and still kept in the log. Standard library only: the first step runs
before the virtualenv exists.
"""

from __future__ import annotations

import argparse
import os
import shlex
import subprocess
import sys
import time
from pathlib import Path

TAIL_LINES = 40


def _duration(seconds: float) -> str:
    if seconds < 60:
        return f"{seconds:.0f} s"
    return f"{int(seconds // 60)} min {seconds % 60:02.0f} s"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--log", required=True, type=Path, help="file the output is added to")
    parser.add_argument("--tail", type=int, default=TAIL_LINES, help="lines shown on failure")
    parser.add_argument("label", help="what the step does, printed before it starts")
    parser.add_argument("command", nargs=argparse.REMAINDER, help="-- then the command")
    args = parser.parse_args(argv)
    command = args.command[1:] if args.command[:1] == ["--"] else args.command
    if not command:
        parser.error("no command given (put it after --)")
    verbose = os.environ.get("QUAYMASTER_VERBOSE", "0") not in ("", "0")

    args.log.parent.mkdir(parents=True, exist_ok=True)
    print(args.label, end="\n" if verbose else " ", flush=True)
    started = time.monotonic()
    output: list[str] = []
    with args.log.open("a", encoding="utf-8") as log:
        stamp = time.strftime("%Y-%m-%d %H:%M:%S")
        log.write(f"\n=== {stamp} {args.label}\n$ {shlex.join(command)}\n")
        log.flush()
        try:
            process = subprocess.Popen(
                command,
                stdout=subprocess.PIPE,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                text=True,
                errors="replace",
                bufsize=1,
            )
        except OSError as exc:
            returncode, output = 127, [f"{command[0]}: {exc.strerror}\n"]
            log.write(output[0])
        else:
            assert process.stdout is not None
            try:
                for line in process.stdout:
                    log.write(line)
                    output.append(line)
                    if verbose:
                        sys.stdout.write(line)
                        sys.stdout.flush()
            except KeyboardInterrupt:  # Ctrl-C reached the command too: let it end
                print("interrupted.", flush=True)
                process.wait()
                return 130
            returncode = process.wait()
            if returncode < 0:  # killed by a signal: the shell's convention
                returncode = 128 - returncode
        log.write(f"=== exit status {returncode}\n")

    elapsed = _duration(time.monotonic() - started)
    if returncode == 0:
        print(f"done ({elapsed})." if not verbose else f"Done ({elapsed}).", flush=True)
        return 0
    print(f"failed (exit status {returncode}, after {elapsed}).", flush=True)
    if not verbose:
        tail = output[-args.tail :]
        shown = "its output" if len(tail) == len(output) else f"the last {len(tail)} lines"
        print(f"--- {shown}:", file=sys.stderr)
        sys.stderr.write("".join(tail))
        if tail and not tail[-1].endswith("\n"):
            sys.stderr.write("\n")
        print("---", file=sys.stderr)
    print(f"The full output is in {args.log}.", file=sys.stderr, flush=True)
    return returncode


if __name__ == "__main__":
    sys.exit(main())
