"""Replace a file so that a crash at any instant leaves the old or the new one, whole.

`atomic_file(path)` yields a binary file under a temp name of its own in the
same directory (random, so two writers never share one, unlike a fixed
`name.tmp`), created with the umask's usual permissions; on a clean exit it is
flushed, fsynced, renamed over `path` and the directory fsynced. On an error
the temp file is removed and `path` is untouched. The master's recovery
checkpoints follow the same steps (trafficdl_master.snapshot_store).
"""

from __future__ import annotations

import contextlib
import os
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import BinaryIO


@contextlib.contextmanager
def atomic_file(
    path: str | Path, *, before_replace: Callable[[], None] | None = None
) -> Iterator[BinaryIO]:
    """Write `path` atomically and durably; `before_replace()` runs once the new
    content is on disk, just before the rename (e.g. keep the previous file)."""
    out = Path(path)
    tmp = out.with_name(f".{out.name}.{uuid.uuid4().hex[:12]}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666)
    try:
        with os.fdopen(fd, "wb") as f:
            yield f
            f.flush()
            os.fsync(f.fileno())
        if before_replace is not None:
            before_replace()
        os.replace(tmp, out)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    fsync_dir(out.parent)


def fsync_dir(directory: Path) -> None:
    """Make a rename in `directory` durable."""
    fd = os.open(directory, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
