"""Writes that leave either the previous complete output or none.

Data go to a temporary name in the destination folder and are renamed into
place only when complete, so an interrupted run never leaves a truncated
file or model directory behind.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike) -> Iterator[Path]:
    """Yield a temporary file path that replaces ``path`` when the block succeeds.

    The temporary file keeps the suffix of ``path`` so writers that pick
    a format by extension still work. On error it is removed.
    """
    path = Path(path)
    if path.is_dir():
        from quasiratio.errors import InputError

        raise InputError(
            f"output file {str(path)!r} is an existing folder; name a file instead"
        )
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.stem}.", suffix=f".partial{path.suffix}", dir=path.parent)
    os.close(fd)
    tmp_path = Path(tmp)
    try:
        yield tmp_path
        os.replace(tmp_path, path)
    finally:
        if tmp_path.exists():
            tmp_path.unlink()


@contextlib.contextmanager
def atomic_directory(path: str | os.PathLike, *, marker: str | None = None) -> Iterator[Path]:
    """Yield a temporary directory that replaces the directory ``path`` on success.

    An existing directory at ``path`` is kept until the new one is
    complete, then swapped out and deleted with all its content. An
    existing file, the working directory or a folder above it raise
    InputError instead, as a rename cannot replace them or would delete
    the user's files. With ``marker``, a non-empty folder is replaced only
    when it contains that file, the mark of an earlier output.
    """
    path = Path(path)
    check_replaceable_directory(path, marker=marker)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{path.name}.", suffix=".partial", dir=path.parent))
    try:
        yield tmp
        if path.exists():
            old = Path(tempfile.mkdtemp(prefix=f".{path.name}.", suffix=".old", dir=path.parent))
            os.replace(path, old / "previous")
            os.replace(tmp, path)
            shutil.rmtree(old, ignore_errors=True)
        else:
            os.replace(tmp, path)
    finally:
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)


def check_replaceable_directory(path: str | os.PathLike, *, marker: str | None = None) -> None:
    """Raise InputError when :func:`atomic_directory` must not replace ``path``."""
    from quasiratio.errors import InputError

    path = Path(path)
    if path.exists() and not path.is_dir():
        raise InputError(
            f"output folder {str(path)!r} is an existing file, which writing the folder "
            "would delete; choose a new folder name"
        )
    resolved, cwd = path.resolve(), Path.cwd().resolve()
    if resolved == cwd or resolved in cwd.parents:
        raise InputError(
            f"output folder {str(path)!r} is the working directory or contains it; "
            "choose a new folder name, such as a subfolder"
        )
    if marker is not None and path.is_dir() and not (path / marker).is_file():
        if any(path.iterdir()):
            raise InputError(
                f"output folder {str(path)!r} contains files but no {marker}, so it is not "
                "an earlier output and writing would delete them; choose a new folder name"
            )
