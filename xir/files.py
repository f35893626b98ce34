"""Writing output files: all of a file or none of it.

Every tool and library function that writes a user's file goes through :func:`write_atomically`,
so an error (or an interrupt) never leaves a half-written model or IR file behind.
"""

from __future__ import annotations

import os


def write_atomically(path: str, text: str | bytes) -> None:
    """Write ``text`` (str, as UTF-8, or bytes) to ``path`` through a temporary file renamed over
    it (never half-written).

    A symbolic link is followed (the file it names is replaced), and what is not a regular file
    (``/dev/null``, a pipe) is written in place: renaming over it would replace the device."""
    binary = isinstance(text, (bytes, bytearray))
    if os.path.exists(path) and not os.path.isfile(path):
        with (open(path, "wb") if binary else open(path, "w", encoding="utf-8", newline="")) as f:
            f.write(text)
        return
    path = os.path.realpath(path)
    directory = os.path.dirname(path)
    tmp = os.path.join(directory, f".{os.path.basename(path)}.{os.getpid()}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666)
    try:
        with (os.fdopen(fd, "wb") if binary else os.fdopen(fd, "w", encoding="utf-8", newline="")) as f:
            f.write(text)
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        raise
