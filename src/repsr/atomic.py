"""Writing files so that a crash or a kill never leaves a half-written one behind."""

from __future__ import annotations

import os
import tempfile
from collections.abc import Callable
from pathlib import Path

from repsr.errors import OutputError


def why_unwritable(exc: OSError) -> str:
    """The reason in words; ``mkdir`` through a regular file says "File exists", which misleads."""
    if isinstance(exc, (FileExistsError, NotADirectoryError)):
        return "a part of the path is a file, not a folder"
    return exc.strerror or str(exc)


def atomic_write(path: str | Path, write: Callable[[str], object], suffix: str = ".tmp") -> None:
    """Call ``write(tmp_path)`` then rename onto ``path``: a crash never leaves a half file.

    The temporary file ``.<name>.<random><suffix>`` lives beside ``path`` (same filesystem, so
    the rename is atomic) and is removed if ``write`` fails; the result gets the permissions of
    any newly created file. ``suffix`` must end in ``.tmp`` or in the target's own extension (for
    writers that pick the format from the name), so :func:`remove_stale_temps` can find what a
    SIGKILL left. A folder that cannot be created or written (read-only place, a path under a
    regular file, a full disk) is an :class:`~repsr.errors.OutputError`, not a traceback.
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
    except OSError as exc:
        Path(tmp).unlink(missing_ok=True)
        raise OutputError(f"{path}: cannot write ({why_unwritable(exc)})") from None
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
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
