"""Reading input arrays, and writing output files: all of a file or none of it.

:func:`read_npz` reads the ``.npz`` archives of model inputs and calibration samples. Every tool and library function that writes a user's file goes through :func:`write_atomically`
(or :func:`write_files_atomically` for a file that comes with others, like an IR file and its
weights), so an error (or an interrupt) never leaves a half-written model or IR file behind.
"""

from __future__ import annotations

import os
from typing import Callable, Union

# What goes into a file: text (written as UTF-8), bytes, or a function writing to a binary file.
Content = Union[str, bytes, Callable]


def write_atomically(path: str, text: str | bytes) -> None:
    """Write ``text`` (str, as UTF-8, or bytes) to ``path`` through a temporary file renamed over
    it (never half-written).

    A symbolic link is followed (the file it names is replaced), and what is not a regular file
    (``/dev/null``, a pipe) is written in place: renaming over it would replace the device."""
    write_files_atomically([(path, text)])


def write_files_atomically(files: list[tuple[str, Content]]) -> None:
    """Write several ``(path, content)`` files as :func:`write_atomically` writes one.

    Every file is written in full to a temporary file first; only when all are written are they
    renamed over their paths, in the order given. So an error while writing (a full disk, an
    exception from a content function, an interrupt) creates or replaces none of them."""
    staged: list[tuple[str | None, str, Content]] = []  # (temporary file or None, path, content)
    try:
        for path, content in files:
            if os.path.exists(path) and not os.path.isfile(path):
                staged.append((None, path, content))  # a device or pipe: written in place, below
                continue
            path = os.path.realpath(path)
            tmp = os.path.join(os.path.dirname(path), f".{os.path.basename(path)}.{os.getpid()}.tmp")
            fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666)
            staged.append((tmp, path, content))
            with os.fdopen(fd, "wb") as f:
                _write(f, content)
        for tmp, path, content in staged:
            if tmp is None:
                with open(path, "wb") as f:
                    _write(f, content)
            else:
                os.replace(tmp, path)
    except BaseException:
        for tmp, _, _ in staged:
            if tmp is not None:
                try:
                    os.unlink(tmp)
                except OSError:
                    pass
        raise


def _write(f, content: Content) -> None:
    if isinstance(content, str):
        f.write(content.encode("utf-8"))
    elif isinstance(content, (bytes, bytearray, memoryview)):
        f.write(content)
    else:
        content(f)


def read_npz(path: str, what: str = "inputs") -> dict:
    """The arrays of the npz archive ``path`` by name; ``what`` names its contents in the one-line
    XirError for a file that cannot be read."""
    import zipfile

    import numpy as np

    from xir.diagnostics import XirError

    def error(reason: str) -> XirError:
        return XirError(f"cannot read {what} '{path}': {reason}")

    try:
        archive = np.load(path, allow_pickle=False)
    except FileNotFoundError:
        raise error("no such file") from None
    except IsADirectoryError:
        raise error("it is a directory") from None
    except (OSError, ValueError, EOFError, zipfile.BadZipFile) as e:
        raise error(f"not a valid .npz archive ({e})") from None
    if not isinstance(archive, np.lib.npyio.NpzFile):  # a .npy: one array, no names
        raise error("not an .npz archive")
    try:
        with archive:
            return {name: archive[name] for name in archive.files}
    except (OSError, ValueError, EOFError, zipfile.BadZipFile) as e:
        raise error(f"not a valid .npz archive ({e})") from None
