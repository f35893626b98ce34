"""The ``.xmodel`` file: a compiled model in one file, its parts checksummed and mapped lazily.

An ``.xmodel`` is a small container of named sections. The integers are little-endian; every
section starts at an offset aligned to 64 bytes (the ``weights`` section to its largest blob
alignment, if that is larger), the gaps are zeros, and the file ends where its last section ends::

    offset  size  header (64 bytes)
         0     8  magic b"XIRXMOD\\0"
         8     4  format version (u32): 1
        12     4  number of sections (u32)
        16     8  offset of the section table (u64): 64
        24     8  size of the section table in bytes (u64)
        32     8  size of the whole file in bytes (u64)
        40     4  CRC-32 of the section table (u32)
        44    16  reserved, zero
        60     4  CRC-32 of header bytes 0..60 (u32)

    section table: one entry per section, in file order
         0     8  offset of the section (u64)
         8     8  size of the section (u64)
        16     4  CRC-32 of the section's bytes (u32)
        20     4  length of the name in bytes (u32)
        24     n  the name, UTF-8, then zeros up to a multiple of 8 bytes

Sections:

``metadata``
    JSON (UTF-8): ``format`` (``{"name": "xir.xmodel", "version": 1}``), ``producer``
    (``"xir 0.1.0"``), optionally ``target`` (``{"name": ..., "fingerprint": "0x..."}``), and
    ``subgraphs``: one record per subgraph of the partitioned module, ``{"name", "device"
    ("DPU", "CPU" or "USER"), "workload_ops"}``, optionally with its own ``target`` and ``isa``,
    the name of the section holding its instruction stream. Any other keys are kept as given.
``module``
    The module as xir prints it (UTF-8). Resources smaller than ``xir.weights.INLINE_LIMIT``
    bytes are inline hex; the larger ones are indexed in its ``external_resources`` exactly as
    in an ``.xir`` text, with ``file: "weights"`` naming the section that holds them.
``weights`` (only if the module has large resources)
    A weights-file image (:mod:`xir.weights`): its 64-byte header, then the blobs at the offsets
    the module's index gives, relative to the section's start.
any other name (``isa/<subgraph>`` ...)
    Bytes the producer adds, returned as they were given.

Reading maps the file once (``mmap``, read-only), checks the header, the table and the CRC-32 of
every section, then parses the module text; resource data are views of the mapping, so nothing
is copied and nothing depends on the working directory or where the file has moved. Any problem
is one :class:`~xir.diagnostics.XirError` line that names the file and what is wrong.

CRC-32 (zlib), not SHA-256: the checksums guard against damage (a cut download, a flipped bit),
not against someone who would recompute them anyway. CRC-32 catches every burst of up to 32 bits
and misses random damage with odds of 2^-32, and costs less than half of SHA-256 (50 ms against
120 ms per 100 MB on a CPU with SHA instructions; SHA-256 is several times slower without them).
"""

from __future__ import annotations

import hashlib
import json
import math
import mmap
import os
import struct
import zlib
from dataclasses import dataclass

from xir import weights as W
from xir.diagnostics import XirError, first_line

MAGIC = b"XIRXMOD\0"
VERSION = 1
FORMAT_NAME = "xir.xmodel"
ALIGNMENT = 64
MODULE = "module"
WEIGHTS = "weights"
METADATA = "metadata"
REQUIRED = (METADATA, MODULE)
BUILT_IN = frozenset({METADATA, MODULE, WEIGHTS})  # written by write_xmodel itself
DEVICES = ("DPU", "CPU", "USER")
_HEADER = struct.Struct("<8sIIQQQI16xI")
_HEADER_CHECKED = _HEADER.size - 4  # the header CRC covers the bytes before it
_ENTRY = struct.Struct("<QQII")
_MAX_NAME = 1024


@dataclass(frozen=True)
class Section:
    """Where one section lies in the file, and its CRC-32."""

    name: str
    offset: int
    size: int
    crc32: int


# -- reading ---------------------------------------------------------------------------------------


class XModel:
    """An open ``.xmodel``: its module, its metadata and the views of its sections.

    The file stays mapped as long as the module's resources or a section view are in use."""

    def __init__(self, path: str, data: mmap.mmap, sections: dict, metadata: dict, module):
        self.path = path
        self.sections: dict[str, Section] = sections
        self.metadata: dict = metadata
        self.module = module
        self._data = data

    def section(self, name: str) -> memoryview:
        """The bytes of section ``name``: a read-only view of the mapped file, not a copy."""
        entry = self.sections.get(name)
        if entry is None:
            raise XirError(f"'{self.path}' has no section '{name}'")
        return memoryview(self._data)[entry.offset:entry.offset + entry.size]

    @property
    def subgraphs(self) -> list[dict]:
        """The per-subgraph records of the metadata."""
        return self.metadata["subgraphs"]

    def __repr__(self) -> str:
        return f"<XModel '{self.path}': {', '.join(self.sections)}>"


def read_xmodel(path: str, allow_unregistered: bool = False) -> XModel:
    """Open the ``.xmodel`` at ``path``: check it whole, then parse its module (resources stay in
    the file, mapped). Raises a one-line :class:`XirError` if it is missing, not an ``.xmodel``,
    of another format version, truncated or corrupted."""
    from xir.parser import parse

    path = os.fspath(path)
    data = _map(path)
    sections = _section_table(path, data)
    for name in REQUIRED:
        if name not in sections:
            raise XirError(f"'{path}' lacks its '{name}' section")
    view = memoryview(data)
    for entry in sections.values():
        if zlib.crc32(view[entry.offset:entry.offset + entry.size]) != entry.crc32:
            raise XirError(f"section '{entry.name}' of '{path}' is corrupted (checksum mismatch)")
    metadata = _read_metadata(path, _view(view, sections[METADATA]), sections)
    try:
        text = str(_view(view, sections[MODULE]), "utf-8")
    except UnicodeDecodeError as e:
        raise XirError(f"section 'module' of '{path}' is not UTF-8 text (byte {e.start})") from None
    opener = _SectionOpener(path, view, sections)
    module = parse(text, f"{path}#{MODULE}", allow_unregistered, open_weights=opener)
    return XModel(path, data, sections, metadata, module)


def _view(view: memoryview, entry: Section) -> memoryview:
    return view[entry.offset:entry.offset + entry.size]


def _map(path: str) -> mmap.mmap:
    """The whole file, mapped read-only (after the checks a map needs: it exists, is not empty)."""
    try:
        with open(path, "rb") as f:
            size = os.fstat(f.fileno()).st_size
            if size == 0:
                raise XirError(f"'{path}' is empty, not an xir .xmodel file")
            return mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_READ)
    except OSError as e:
        raise XirError(f"cannot read '{path}': {_reason(e)}") from None
    except ValueError as e:  # mmap of something that is not a regular file
        raise XirError(f"cannot read '{path}': {e}") from None


def _section_table(path: str, data) -> dict[str, Section]:
    """The sections of the mapped file ``data``, after checking its header and table."""
    size = len(data)
    head = bytes(data[:_HEADER.size])
    if not head.startswith(MAGIC):
        if size < len(MAGIC) and MAGIC.startswith(head):
            raise XirError(f"'{path}' is truncated ({size} bytes, not even its header)")
        raise XirError(f"'{path}' is not an xir .xmodel file")
    if size >= 12:
        version = int.from_bytes(head[8:12], "little")
        if version != VERSION:
            raise XirError(f"'{path}' has format version {version}; this xir reads version {VERSION}")
    if size < _HEADER.size:
        raise XirError(f"'{path}' is truncated ({size} bytes, not even its {_HEADER.size}-byte header)")
    _, _, count, table_offset, table_size, file_size, table_crc, header_crc = _HEADER.unpack(head)
    if zlib.crc32(head[:_HEADER_CHECKED]) != header_crc:
        raise XirError(f"header of '{path}' is corrupted (checksum mismatch)")
    if size < file_size:
        raise XirError(f"'{path}' is truncated ({size} of its {file_size} bytes)")
    if size > file_size:
        raise XirError(f"'{path}' is corrupted ({size - file_size} bytes past its end at byte {file_size})")
    if table_offset < _HEADER.size or table_offset + table_size > size:
        raise XirError(f"section table of '{path}' lies outside the file")
    table = bytes(data[table_offset:table_offset + table_size])
    if zlib.crc32(table) != table_crc:
        raise XirError(f"section table of '{path}' is corrupted (checksum mismatch)")
    sections: dict[str, Section] = {}
    position = 0
    for _ in range(count):
        if position + _ENTRY.size > len(table):
            raise XirError(f"section table of '{path}' is corrupted (it ends inside an entry)")
        offset, length, crc, name_size = _ENTRY.unpack_from(table, position)
        position += _ENTRY.size
        raw = table[position:position + name_size]
        position += _padded(name_size)
        try:
            name = raw.decode("utf-8")
        except UnicodeDecodeError:
            name = ""
        if len(raw) != name_size or not _valid_name(name):
            raise XirError(f"section table of '{path}' is corrupted (a section name is invalid)")
        if name in sections:
            raise XirError(f"section table of '{path}' is corrupted (section '{name}' appears twice)")
        if offset < table_offset + table_size or offset + length > size:
            raise XirError(f"'{path}' is truncated: section '{name}' (bytes {offset} to "
                           f"{offset + length}) lies past its end at byte {size}")
        sections[name] = Section(name, offset, length, crc)
    ordered = sorted(sections.values(), key=lambda s: s.offset)
    for before, after in zip(ordered, ordered[1:]):
        if before.offset + before.size > after.offset:
            raise XirError(f"section table of '{path}' is corrupted (sections '{before.name}' and "
                           f"'{after.name}' overlap)")
    return sections


def _read_metadata(path: str, data: memoryview, sections: dict) -> dict:
    try:
        metadata = json.loads(str(data, "utf-8"))
    except (ValueError, RecursionError) as e:  # bad UTF-8, bad JSON, absurdly deep JSON
        raise XirError(f"metadata of '{path}' is not valid JSON: {first_line(e)}") from None
    problem = metadata_problem(metadata, sections)
    if problem is not None:
        raise XirError(f"metadata of '{path}' is invalid: {problem}")
    fmt = metadata["format"]
    if fmt != {"name": FORMAT_NAME, "version": VERSION}:
        raise XirError(f"metadata of '{path}' is invalid: its format is {json.dumps(fmt)}, not "
                       f"{FORMAT_NAME} version {VERSION}")
    return metadata


class _SectionWeights(W.WeightsFile):
    """A weights-file image held in a section of an ``.xmodel``: its blobs are views of the
    model's one mapping."""

    def __init__(self, label: str, file_id: bytes, data: memoryview):
        super().__init__(label, file_id, len(data))
        self.data = data

    def view(self, offset: int, size: int) -> memoryview:
        return self.data[offset:offset + size]


class _SectionOpener:
    """What the parser calls to open the weights "file" the module's index names: a section."""

    def __init__(self, path: str, view: memoryview, sections: dict):
        self.path = path
        self.view = view
        self.sections = sections

    def __call__(self, name: str, text_path: str) -> W.WeightsFile:
        entry = self.sections.get(name)
        if entry is None:
            raise W.WeightsError(f"'{self.path}' has no section '{name}' for the module's resources")
        data = _view(self.view, entry)
        file_id = W.header_id(bytes(data[:W.HEADER_SIZE]), f"section '{name}' of '{self.path}'")
        return _SectionWeights(f"{self.path}#{name}", file_id, data)


# -- writing ---------------------------------------------------------------------------------------


def write_xmodel(path: str, module, metadata: dict, extra_sections: dict | None = None) -> None:
    """Write ``module`` (with its resources), ``metadata`` and ``extra_sections`` (name -> bytes)
    as the ``.xmodel`` at ``path``: all of it or, on any error, nothing (:mod:`xir.files`).

    ``metadata`` holds the ``target`` and ``subgraphs`` records (see the module docstring);
    ``format`` and ``producer`` are added here. Errors are one-line :class:`XirError` s."""
    import xir
    from xir.files import write_files_atomically
    from xir.printer import print_ir

    path = os.fspath(path)
    if not isinstance(metadata, dict):
        raise TypeError(f"metadata must be a dict, not {type(metadata).__name__}")
    extra_sections = dict(extra_sections or {})
    for name in extra_sections:
        if not isinstance(name, str) or not _valid_name(name) or name in BUILT_IN:
            raise XirError(f"cannot write '{path}': {name!r} is not a name for an extra section")
    extra = {name: _bytes_of(name, data, path) for name, data in extra_sections.items()}
    for key in ("format", "producer"):
        if key in metadata:
            raise XirError(f"cannot write '{path}': metadata key '{key}' is written by xir itself")
    full = {"format": {"name": FORMAT_NAME, "version": VERSION}, "producer": f"xir {xir.__version__}",
            **metadata}
    problem = metadata_problem(full, dict.fromkeys([*REQUIRED, *extra]))
    if problem is not None:
        raise XirError(f"cannot write '{path}': metadata is invalid: {problem}")
    try:
        metadata_bytes = json.dumps(full, indent=1, allow_nan=False).encode("utf-8")
    except (TypeError, ValueError) as e:
        raise XirError(f"cannot write '{path}': metadata is not JSON: {e}") from None

    index = _plan_weights(module)
    parts: list[_Part] = [_Part(METADATA, metadata_bytes),
                          _Part(MODULE, print_ir(module, weights=index).encode("utf-8"))]
    parts += [_Part(name, data) for name, data in extra.items()]
    if index is not None:
        parts.append(_Part(WEIGHTS, index.write, _weights_alignment(index)))
    image = _Image(parts)
    try:
        write_files_atomically([(path, image.write)])
    except OSError as e:
        raise XirError(f"cannot write '{path}': {_reason(e)}") from None


class _Part:
    """One section to write: its bytes, or a function writing them to a binary file."""

    def __init__(self, name: str, content, alignment: int = ALIGNMENT):
        self.name = name
        self.content = content
        self.alignment = alignment
        sink = _Checksum()
        self.write(sink)
        self.size, self.crc32 = sink.size, sink.value
        self.offset = 0

    def write(self, f) -> None:
        if callable(self.content):
            self.content(f)
        else:
            f.write(self.content)


class _Checksum:
    """A binary "file" that only counts and checksums what is written to it."""

    def __init__(self):
        self.size = 0
        self.value = 0

    def write(self, data) -> None:
        self.value = zlib.crc32(data, self.value)
        self.size += memoryview(data).nbytes


class _Image:
    """The layout of a whole ``.xmodel``: header, table, then each part at its aligned offset."""

    def __init__(self, parts: list[_Part]):
        self.parts = parts
        names = [part.name.encode("utf-8") for part in parts]
        position = _HEADER.size + sum(_ENTRY.size + _padded(len(name)) for name in names)
        for part in parts:
            position = -(-position // part.alignment) * part.alignment
            part.offset = position
            position += part.size
        self.size = position
        self.table = b"".join(_ENTRY.pack(part.offset, part.size, part.crc32, len(name))
                              + name.ljust(_padded(len(name)), b"\0") for part, name in zip(parts, names))
        head = _HEADER.pack(MAGIC, VERSION, len(parts), _HEADER.size, len(self.table), self.size,
                            zlib.crc32(self.table), 0)[:_HEADER_CHECKED]
        self.header = head + struct.pack("<I", zlib.crc32(head))

    def write(self, f) -> None:
        f.write(self.header)
        f.write(self.table)
        position = len(self.header) + len(self.table)
        for part in self.parts:
            f.write(b"\0" * (part.offset - position))
            part.write(f)
            position = part.offset + part.size


def _plan_weights(module) -> W.WeightsIndex | None:
    """The weights-file index of the module's large resources, for section ``weights``. Its id
    is made from the blobs (not random as in a ``.xir.weights``), so that the same model always
    writes the same bytes."""
    index = W.plan_weights(getattr(module, "resources", None) or {}, WEIGHTS)
    if index is None:
        return None
    digest = hashlib.blake2b(digest_size=16)
    for name, (offset, handle) in index.entries.items():
        data = handle.data
        digest.update(f"{name}\0{offset}\0{memoryview(data).nbytes}\0{handle.alignment}\0"
                      f"{zlib.crc32(data)}\0".encode("utf-8"))
    return W.WeightsIndex(index.file, digest.digest(), index.entries)


def _weights_alignment(index: W.WeightsIndex) -> int:
    """What the weights section's offset must be a multiple of, for each blob to keep its own
    alignment in the file (and so in the mapping)."""
    alignment = ALIGNMENT
    for _, handle in index.entries.values():
        alignment = math.lcm(alignment, max(handle.alignment, 1))
    return alignment


def _bytes_of(name: str, data, path: str):
    try:
        return memoryview(data).cast("B")
    except TypeError:
        raise XirError(f"cannot write '{path}': section '{name}' is not bytes "
                       f"({type(data).__name__})") from None


# -- shared ----------------------------------------------------------------------------------------


def target_record(target) -> dict:
    """The ``{"name", "fingerprint"}`` record of a target (:class:`xir.backend.targets.Target`)."""
    return {"name": target.name, "fingerprint": target.fingerprint_hex}


def metadata_problem(metadata, sections) -> str | None:
    """What is wrong with ``metadata`` (None if nothing is): the keys xir reads must be there
    with the right types; ``isa`` entries must name sections of ``sections``."""
    if not isinstance(metadata, dict):
        return "it is not a JSON object"
    for key in ("format", "producer", "subgraphs"):
        if key not in metadata:
            return f"it lacks '{key}'"
    if not isinstance(metadata["format"], dict):
        return "'format' is not an object"
    if not isinstance(metadata["producer"], str):
        return "'producer' is not a string"
    if "target" in metadata:
        problem = _target_problem(metadata["target"])
        if problem:
            return f"'target' {problem}"
    subgraphs = metadata["subgraphs"]
    if not isinstance(subgraphs, list):
        return "'subgraphs' is not a list"
    names = set()
    for i, record in enumerate(subgraphs):
        problem = _subgraph_problem(record, sections)
        if problem:
            return f"subgraph {i} {problem}"
        if record["name"] in names:
            return f"subgraph '{record['name']}' appears twice"
        names.add(record["name"])
    return None


def _subgraph_problem(record, sections) -> str | None:
    if not isinstance(record, dict):
        return "is not an object"
    for key in ("name", "device", "workload_ops"):
        if key not in record:
            return f"lacks '{key}'"
    if not isinstance(record["name"], str) or not record["name"]:
        return "has no name"
    if record["device"] not in DEVICES:
        return f"has device {json.dumps(record['device'])}, not one of {', '.join(DEVICES)}"
    ops = record["workload_ops"]
    if not isinstance(ops, int) or isinstance(ops, bool) or ops < 0:
        return f"has workload_ops {json.dumps(ops)}, not a count"
    if "target" in record:
        problem = _target_problem(record["target"])
        if problem:
            return f"'target' {problem}"
    isa = record.get("isa")
    if isa is not None and (not isinstance(isa, str) or isa not in sections):
        return f"names isa section {json.dumps(isa)}, which the file lacks"
    return None


def _target_problem(target) -> str | None:
    if not isinstance(target, dict):
        return "is not an object"
    if not isinstance(target.get("name"), str):
        return "lacks a 'name'"
    fingerprint = target.get("fingerprint")
    if not isinstance(fingerprint, str) or not fingerprint.startswith("0x"):
        return "lacks a 'fingerprint' (\"0x...\")"
    try:
        int(fingerprint, 16)
    except ValueError:
        return f"has fingerprint {json.dumps(fingerprint)}, not hexadecimal"
    return None


def _padded(size: int) -> int:
    """``size`` rounded up to a multiple of 8 (a name's room in the section table)."""
    return -(-size // 8) * 8


def _valid_name(name: str) -> bool:
    return 0 < len(name.encode("utf-8")) <= _MAX_NAME and name.isprintable()


def _reason(e: OSError) -> str:
    return e.strerror.lower() if e.strerror else str(e)
