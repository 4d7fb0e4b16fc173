"""Writing files so that a crash or a kill never leaves a half-written one behind."""

from __future__ import annotations

import errno
import os
import shutil
import tempfile
from collections.abc import Callable
from pathlib import Path

from repsr.errors import ImageError, OutputError, UserError


def why_unwritable(exc: OSError) -> str:
    """The reason in words; ``mkdir`` through a regular file says "File exists", which misleads."""
    if isinstance(exc, (FileExistsError, NotADirectoryError)):
        return "a part of the path is a file, not a folder"
    return exc.strerror or str(exc)


LOW_SPACE = 1 << 20  # bytes: a writer that failed with less free than this ran out of room
# How writers that hide the OSError (torch.save's zip writer, safetensors, OpenCV's encoders) say the disk is full.
FULL_DISK_WORDS = ("No space left on device", "unexpected pos", "file write failed", "Disk quota exceeded")


def storage_failure(exc: BaseException, folder: Path) -> str | None:
    """Why a write into ``folder`` failed, in words, when the cause is the storage and not the data; else None.

    The one place that knows how each writer reports a full disk or a refused write: an ``OSError``
    says it itself; torch's zip writer raises ``RuntimeError("... unexpected pos ...")``, safetensors
    its own error with "No space left on device" in the text, and OpenCV only returns False -- so a
    failure while the folder has (almost) no free space left is reported as a full disk.
    """
    if isinstance(exc, UserError) and not isinstance(exc, ImageError):
        return None  # a decision of the writer's (a refused file), not a failure of the storage
    if isinstance(exc, OSError) and exc.errno is not None:
        if exc.errno in (errno.ENOSPC, errno.EDQUOT):
            return "no space left on the device"
        return why_unwritable(exc)
    try:
        free = shutil.disk_usage(folder).free
    except OSError:
        free = None
    if any(words in str(exc) for words in FULL_DISK_WORDS) or (free is not None and free < LOW_SPACE):
        left = f" ({free >> 10} KiB free)" if free is not None and free < LOW_SPACE else ""
        return "no space left on the device" + left
    if "Permission denied" in str(exc):
        return "permission denied"
    return None


def atomic_write(path: str | Path, write: Callable[[str], object], suffix: str = ".tmp") -> None:
    """Call ``write(tmp_path)`` then rename onto ``path``: a crash never leaves a half file.

    The temporary file ``.<name>.<random><suffix>`` lives beside ``path`` (same filesystem, so
    the rename is atomic) and is removed if ``write`` fails; the result gets the permissions of
    any newly created file. ``suffix`` must end in ``.tmp`` or in the target's own extension (for
    writers that pick the format from the name), so :func:`remove_stale_temps` can find what a
    SIGKILL left. A folder that cannot be created or written (read-only place, a path under a
    regular file, a full disk, whichever writer hit it: :func:`storage_failure`) is an
    :class:`~repsr.errors.OutputError` naming the path and the cause, not a traceback.
    """
    path = Path(path)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=suffix, dir=path.parent)
    except OSError as exc:
        raise OutputError(f"{path}: cannot write ({why_unwritable(exc)})") from None
    os.close(fd)
    try:
        write(tmp)
        # mkstemp creates 0600 files; give the result the permissions of any newly created file
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(tmp, 0o666 & ~umask)
        os.replace(tmp, path)
    except BaseException as exc:
        Path(tmp).unlink(missing_ok=True)
        reason = storage_failure(exc, path.parent) if isinstance(exc, Exception) else None
        if reason is not None:
            raise OutputError(f"{path}: cannot write ({reason})") from None
        raise


def remove_stale_temps(path: str | Path) -> list[Path]:
    """Delete the temporary files a killed :func:`atomic_write` of ``path`` left; returns them.

    A SIGKILL between ``mkstemp`` and the rename leaves ``.<name>.<random>.tmp`` (often 0 bytes)
    that nothing else would ever remove. Only call this for files the caller owns exclusively
    (a run's own checkpoint), or a concurrent writer's temporary file would vanish.
    """
    path = Path(path)
    if not path.parent.is_dir():
        return []
    stale = [p for p in path.parent.glob(f".{path.name}.*") if p.is_file()
             and (p.name.endswith(".tmp") or p.name.endswith(f".tmp{path.suffix}"))]
    for p in stale:
        p.unlink(missing_ok=True)
    return stale



def atomic_write_folder(path: str | Path, write: Callable[[str], object]) -> None:
    """Call ``write(tmp_folder)`` then move the folder onto ``path``: never a half-written folder at ``path``.

    For formats that are folders (Core ML's ``.mlpackage``). The temporary folder ``.<name>.<random>.tmp``
    lives beside ``path`` and is removed if ``write`` fails. A folder cannot be renamed over a non-empty one,
    so an existing ``path`` is first renamed aside (into ``.<name>.<random>.old.tmp``), the new folder renamed
    in, and only then the old one deleted; if the second rename fails the old one is put back. A crash between
    the two renames leaves no ``path`` and both folders beside it, never a mixture of two versions.
    The caller decides whether an existing ``path`` may be replaced; errors are as :func:`atomic_write`'s.
    """
    path = Path(path)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = Path(tempfile.mkdtemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent))
    except OSError as exc:
        raise OutputError(f"{path}: cannot write ({why_unwritable(exc)})") from None
    aside = None
    try:
        write(str(tmp))
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(tmp, 0o777 & ~umask)  # mkdtemp creates 0700 folders
        if path.exists():
            aside = Path(tempfile.mkdtemp(prefix=f".{path.name}.", suffix=".old.tmp", dir=path.parent))
            os.replace(path, aside / path.name)
        try:
            os.replace(tmp, path)
        except BaseException:
            if aside is not None:
                os.replace(aside / path.name, path)
            raise
    except BaseException as exc:
        shutil.rmtree(tmp, ignore_errors=True)
        if aside is not None and not (aside / path.name).exists():  # else the old folder could not go back: keep it
            shutil.rmtree(aside, ignore_errors=True)
        reason = storage_failure(exc, path.parent) if isinstance(exc, Exception) else None
        if reason is not None:
            raise OutputError(f"{path}: cannot write ({reason})") from None
        raise
    if aside is not None:
        shutil.rmtree(aside, ignore_errors=True)
