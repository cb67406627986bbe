"""
Progress on stderr for long commands: tqdm when installed (the ``progress``
extra), else one plain line rewritten in place, with the count, rate and ETA.
"""

from __future__ import annotations

import time
from importlib import import_module
from typing import Any, TextIO


class PlainProgress:
    """``label: 120/300 records (40.0/s, ETA 5s)``, at most every ``interval`` seconds."""

    def __init__(self, stream: TextIO, label: str, unit: str, interval: float = 0.5) -> None:
        self.stream, self.label, self.unit, self.interval = stream, label, unit, interval
        self.started = time.monotonic()
        self.shown = 0.0
        self.written = False

    def __call__(self, done: int, total: int) -> None:
        now = time.monotonic()
        if done < total and now - self.shown < self.interval:
            return
        self.shown = now
        elapsed = now - self.started
        rate = done / elapsed if elapsed > 0 else 0.0
        eta = f"{(total - done) / rate:.0f}s" if rate else "?"
        self.stream.write(f"\r{self.label}: {done}/{total} {self.unit}s ({rate:.1f}/s, ETA {eta})")
        self.stream.flush()
        self.written = True

    def close(self) -> None:
        if self.written:
            self.stream.write("\n")
            self.stream.flush()


class TqdmProgress:
    def __init__(self, tqdm: Any, stream: TextIO, label: str, unit: str) -> None:
        self.bar = tqdm(desc=label, unit=unit, file=stream, total=0, leave=True)

    def __call__(self, done: int, total: int) -> None:
        if self.bar.total != total:
            self.bar.total = total
            self.bar.refresh()
        self.bar.update(done - self.bar.n)

    def close(self) -> None:
        self.bar.close()


def progress_bar(stream: TextIO, label: str, unit: str = "record") -> PlainProgress | TqdmProgress:
    """A ``progress(done, total)`` callable with a ``close()``."""
    try:
        tqdm = import_module("tqdm").tqdm
    except ImportError:
        return PlainProgress(stream, label, unit)
    return TqdmProgress(tqdm, stream, label, unit)
