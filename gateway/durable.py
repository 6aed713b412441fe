"""Writes that survive a crash: a file's bytes on the disk before it is renamed into place, and
the rename itself made durable by syncing the folder it happened in."""

from __future__ import annotations

import os
from pathlib import Path
from typing import IO, Any


def flush_and_sync(fh: IO[Any]) -> None:
    """Everything written to ``fh`` on the disk: Python's buffer first, then the kernel's."""
    fh.flush()
    os.fsync(fh.fileno())


def sync_folder(folder: Path) -> None:
    """Make a rename into ``folder`` durable (a crash after it must not undo it)."""
    fd = os.open(folder, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
