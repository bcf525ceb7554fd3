"""Read a process's output line by line as it comes, with deadlines (for tests of what a user
sees in the terminal)."""

from __future__ import annotations

import queue
import subprocess
import threading
import time


class LineReader:
    """Collects ``process.stdout`` in a thread; ``until`` waits for a line with a deadline."""

    def __init__(self, process: subprocess.Popen[str]) -> None:
        assert process.stdout is not None
        self.lines: list[str] = []
        self._queue: queue.Queue[str | None] = queue.Queue()
        self._stream = process.stdout
        self._thread = threading.Thread(target=self._read, daemon=True)
        self._thread.start()

    def _read(self) -> None:
        for line in self._stream:
            self._queue.put(line)
        self._queue.put(None)

    def until(self, text: str, seconds: float) -> str:
        """The first line (from here on) that contains ``text``; AssertionError if none comes."""
        deadline = time.monotonic() + seconds
        while (left := deadline - time.monotonic()) > 0:
            try:
                line = self._queue.get(timeout=left)
            except queue.Empty:
                break
            if line is None:
                raise AssertionError(f"the output ended without {text!r}:\n{self.text}")
            self.lines.append(line)
            if text in line:
                return line
        raise AssertionError(f"no {text!r} within {seconds} s:\n{self.text}")

    def rest(self, seconds: float) -> str:
        """Everything until the output ends (the process and its children exited)."""
        self._thread.join(seconds)
        while True:
            try:
                line = self._queue.get_nowait()
            except queue.Empty:
                break
            if line is not None:
                self.lines.append(line)
        return self.text

    @property
    def text(self) -> str:
        return "".join(self.lines)
