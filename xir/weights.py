"""The weights file: large resources stored beside an ``.xir`` file, and read from it lazily.

``model.xir`` keeps its large resources in ``model.xir.weights``. The weights file is a 64-byte
header (the magic bytes, a format version and a random 16-byte id) followed by the blobs, each at
an offset aligned to 64 bytes (or to its own alignment if larger). The text names the weights file
relative to itself, so the two can be moved together anywhere, and indexes it in MLIR's external
resource section::

    {-#
      external_resources: {
        xir_weights: {
          file: "model.xir.weights",
          id: "9f3c0d7e0b5a4c1e8d2f6a7b3c9e1d05",
          conv1_w: "offset=64 size=432 align=4"
        }
      }
    #-}

The id ties the pair together: a text beside the weights file of another model is an error, not
wrong numbers. Reading checks the header, the id and the size when the text is parsed; the blobs are
mapped (``mmap``, read-only) only when a resource's data is first used, and viewed without a copy.
"""

from __future__ import annotations

import math
import mmap
import os
import re
import struct
from dataclasses import dataclass

from xir.diagnostics import Diagnostic, XirError

MAGIC = b"XIRWGHT\0"
VERSION = 1
HEADER_SIZE = 64  # magic, version (u32 LE), id, zero padding: the first blob starts aligned
BLOB_ALIGNMENT = 64
INLINE_LIMIT = 1024  # resources smaller than this stay in the text as hex
SECTION_KEY = "xir_weights"  # the handler's key in external_resources
RESERVED = frozenset({"file", "id"})  # the index's own keys: resources of these names stay inline
_HEADER = struct.Struct("<8sI16s")
_ENTRY = re.compile(r"offset=([0-9]+) size=([0-9]+) align=([0-9]+)")


class WeightsError(Exception):
    """A weights file that does not match its text; the parser places it at the text's entry."""


def weights_name(path: str) -> str:
    """The file name of the weights file that goes with IR file ``path``: ``model.xir.weights``."""
    return os.path.basename(path) + ".weights"


# -- reading ---------------------------------------------------------------------------------------


class WeightsFile:
    """An open weights file: its header is checked on opening, its blobs mapped on first use."""

    def __init__(self, path: str, file_id: bytes, size: int):
        self.path = path
        self.file_id = file_id
        self.size = size
        self.map: mmap.mmap | None = None

    def check_id(self, file_id: str) -> None:
        """Raise WeightsError unless this file's id is ``file_id`` (hex) as the text records it."""
        if self.file_id.hex() != file_id:
            raise WeightsError(f"weights file '{os.path.basename(self.path)}' does not belong to "
                               f"this IR file (id mismatch)")

    def check_blob(self, name: str, offset: int, size: int) -> None:
        """Raise WeightsError if blob ``name`` does not lie inside the file."""
        if offset < HEADER_SIZE or offset + size > self.size:
            raise WeightsError(f"resource '{name}' (offset {offset}, size {size}) lies outside "
                               f"weights file '{os.path.basename(self.path)}' ({self.size} bytes)")

    def loader(self, offset: int, size: int):
        """A function returning the blob at ``offset`` (a read-only view, mapping the file once)."""
        return lambda: self.view(offset, size)

    def view(self, offset: int, size: int) -> memoryview:
        """The ``size`` bytes at ``offset``, without a copy (the file is mapped on the first call)."""
        if self.map is None:
            self.map = self._map()
        return memoryview(self.map)[offset:offset + size]

    def _map(self) -> mmap.mmap:
        try:
            with open(self.path, "rb") as f:
                mapped = mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_READ)
        except (OSError, ValueError) as e:
            raise XirError(Diagnostic(f"cannot read weights file '{self.path}': {e}")) from None
        if len(mapped) != self.size or _HEADER.unpack_from(mapped)[2] != self.file_id:
            mapped.close()
            raise XirError(Diagnostic(f"weights file '{self.path}' changed after its IR was read"))
        return mapped


def open_weights(name: str, text_path: str) -> WeightsFile:
    """The weights file ``name`` beside IR file ``text_path`` (a symbolic link to the IR file is
    followed). Reads only the header; raises WeightsError if it is missing or not a weights file."""
    if not name or os.path.basename(name) != name or name in (".", ".."):
        raise WeightsError(f"weights file '{name}' must be a plain file name (it sits beside the IR file)")
    path = os.path.join(os.path.dirname(os.path.realpath(text_path)), name)
    try:
        with open(path, "rb") as f:
            header = f.read(HEADER_SIZE)
            size = os.fstat(f.fileno()).st_size
    except FileNotFoundError:
        raise WeightsError(f"weights file '{name}' not found next to '{text_path}'") from None
    except OSError as e:
        raise WeightsError(f"cannot read weights file '{name}': {e.strerror or e}") from None
    return WeightsFile(path, header_id(header, f"'{name}'"), size)


def header_id(header: bytes, label: str) -> bytes:
    """The id in a weights header (the first bytes of a weights file or image); WeightsError,
    naming ``label``, unless they start with the magic bytes and this xir's format version."""
    if len(header) < HEADER_SIZE or not header.startswith(MAGIC):
        raise WeightsError(f"{label} is not an xir weights file")
    _, version, file_id = _HEADER.unpack_from(header)
    if version != VERSION:
        raise WeightsError(f"{label} has format version {version}; "
                           f"this xir reads version {VERSION}")
    return file_id


def parse_entry(name: str, text: str) -> tuple[int, int, int]:
    """The ``(offset, size, alignment)`` of an index entry ``"offset=N size=N align=N"``."""
    match = _ENTRY.fullmatch(text)
    if match is None:
        raise WeightsError(f"resource '{name}' must be \"offset=N size=N align=N\", not \"{text}\"")
    return int(match.group(1)), int(match.group(2)), int(match.group(3))


# -- writing ---------------------------------------------------------------------------------------


@dataclass
class WeightsIndex:
    """Where each stored resource goes in a weights file: what the printer writes as its index."""

    file: str
    file_id: bytes
    entries: dict  # resource name -> (offset, handle)

    def section_text(self) -> str:
        """The ``xir_weights: {...}`` entry of the external resource section, indented for it."""
        from xir.attributes import quote_string, symbol_text

        lines = [f"      file: {quote_string(self.file)}", f'      id: "{self.file_id.hex()}"']
        for name, (offset, handle) in self.entries.items():
            lines.append(f'      {symbol_text(name)}: "offset={offset} size={len(handle.data)} '
                         f'align={handle.alignment}"')
        return f"    {SECTION_KEY}: {{\n" + ",\n".join(lines) + "\n    }"

    def write(self, f) -> None:
        """Write the weights file (header, then each blob at its offset) to binary file ``f``."""
        f.write(_HEADER.pack(MAGIC, VERSION, self.file_id).ljust(HEADER_SIZE, b"\0"))
        position = HEADER_SIZE
        for offset, handle in self.entries.values():
            f.write(b"\0" * (offset - position))
            data = handle.data
            f.write(data)
            position = offset + len(data)


def plan_weights(resources: dict, file: str, inline_limit: int = INLINE_LIMIT) -> WeightsIndex | None:
    """The index of the resources worth a weights file named ``file`` (those of at least
    ``inline_limit`` bytes), or None if there are none."""
    entries = {}
    position = HEADER_SIZE
    for name, handle in resources.items():
        data = handle.data
        if data is None or len(data) < inline_limit or name in RESERVED:
            continue
        align = math.lcm(BLOB_ALIGNMENT, max(handle.alignment, 1))
        position = -(-position // align) * align
        entries[name] = (position, handle)
        position += len(data)
    return WeightsIndex(file, os.urandom(16), entries) if entries else None


@dataclass
class ModuleOutput:
    """A module printed for one output file: its text, and the weights file it needs (if any)."""

    text: str
    weights: WeightsIndex | None

    def write(self, path: str) -> None:
        """Write the text to ``path`` and the weights beside it, all or nothing (weights first)."""
        from xir.files import write_files_atomically

        files = [(path, self.text)]
        if self.weights is not None:
            weights_path = os.path.join(os.path.dirname(os.path.realpath(path)), self.weights.file)
            files.insert(0, (weights_path, self.weights.write))
        write_files_atomically(files)


def prepare_output(module, path: str, inline: bool = False, generic: bool = False,
                   print_locations: bool = True) -> ModuleOutput:
    """``module`` printed for output file ``path`` ('-' is stdout): large resources go to a
    weights file ``path + '.weights'`` unless ``inline``, or the output is not a regular file."""
    from xir.printer import print_ir

    weights = None
    if not inline and _is_regular_destination(path):
        resources = getattr(module, "resources", None) or {}
        weights = plan_weights(resources, weights_name(os.path.realpath(path)))
    return ModuleOutput(print_ir(module, generic, print_locations, weights=weights), weights)


def save_module(module, path: str, inline: bool = False, generic: bool = False,
                print_locations: bool = True) -> None:
    """Write ``module`` to IR file ``path``, its large resources to ``path + '.weights'``."""
    prepare_output(module, path, inline, generic, print_locations).write(path)


def _is_regular_destination(path: str) -> bool:
    """Whether ``path`` names a regular file, or nothing yet (not stdout, a device or a pipe)."""
    return path != "-" and (not os.path.exists(path) or os.path.isfile(path))
