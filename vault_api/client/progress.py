"""Progress of a transfer on stderr: a line rewritten in place on a terminal,
a line per quarter otherwise (so logs stay short)."""

from __future__ import annotations

import time
from typing import TextIO

from vault_api.client.items import human_size


class Meter:
    def __init__(self, label: str, total: int, out: TextIO, *, enabled: bool = True) -> None:
        self.label = label
        self.total = max(total, 1)
        self.out = out
        self.enabled = enabled
        self.tty = out.isatty()
        self._shown = -1
        self._last = 0.0
        self._start = time.monotonic()

    def __call__(self, done: int) -> None:
        if not self.enabled:
            return
        percent = min(100, done * 100 // self.total)
        now = time.monotonic()
        if self.tty:
            if percent == self._shown or (now - self._last < 0.1 and percent < 100):
                return
            end = "\n" if percent == 100 else ""
            self.out.write(f"\r{self.label}: {percent:3d}% of {human_size(self.total)}{end}")
        else:
            step = percent // 25 * 25
            if step <= self._shown:
                return
            percent = step
            self.out.write(f"{self.label}: {percent}% of {human_size(self.total)}\n")
        self.out.flush()
        self._shown = percent
        self._last = now

    def rate(self, nbytes: int) -> str:
        seconds = max(time.monotonic() - self._start, 1e-6)
        return f"{human_size(int(nbytes / seconds))}/s"
