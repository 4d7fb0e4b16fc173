"""Keeping converter chatter off the user's terminal while an optional runtime is imported or converts."""

from __future__ import annotations

import contextlib
import io
import logging
import warnings
from collections.abc import Iterator


@contextlib.contextmanager
def quiet() -> Iterator[None]:
    """Silence logging below ERROR, Python warnings and ``sys.stderr`` for the block.

    Why: coremltools and ExecuTorch (through torchao) print at import and while converting -- untested
    torch versions, libraries for other platforms that fail to load, tqdm progress bars, deprecations of
    torch internals -- none of which the user can act on; repsr prints its own notes about the file instead.
    Errors still propagate as exceptions.
    """
    disabled = logging.root.manager.disable
    logging.disable(logging.WARNING)
    try:
        with warnings.catch_warnings(), contextlib.redirect_stderr(io.StringIO()):
            warnings.simplefilter("ignore")
            yield
    finally:
        logging.disable(disabled)
