"""User-facing errors.

Anything a user can cause (a bad config key, a corrupt image, a checkpoint for another model) is
raised as :class:`UserError` (a mistake the user can fix, as opposed to a bug) with a one-line
message. The CLI prints ``error: <message>`` and exits non-zero; everything else is a bug and is
allowed to show its traceback.
"""


class UserError(Exception):
    """A problem with the user's input, reported as one line without a traceback."""


class ConfigError(UserError):
    """A config file or override that does not match the typed schema."""


class ImageError(UserError):
    """An image that cannot be read or written (corrupt, unsupported, too small)."""


class WeightsError(UserError):
    """A weights file that is missing, corrupt, unsafe or built for another model."""


class OutputError(UserError):
    """A file or folder that cannot be written (read-only place, path under a file, full disk)."""
