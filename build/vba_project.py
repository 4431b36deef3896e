"""Replace the source code of modules in an Office ``vbaProject.bin``, on any OS, without Office.

A ``vbaProject.bin`` is a compound file (MS-CFB) holding a VBA project (MS-OVBA): a ``VBA/dir``
stream that lists the modules (compressed), one stream per module whose bytes from ``MODULEOFFSET``
on are the module's compressed source, and ``VBA/_VBA_PROJECT``. xlwings' templates ship
``_VBA_PROJECT`` as the 7-byte header with version 0xFFFF and no performance cache: Office then
compiles every module from its source when the file is opened (MS-OVBA 2.3.4.1). So a module's
source can be replaced by writing the new compressed source into its stream and setting its
``MODULEOFFSET`` to 0; every other stream, record and module is copied unchanged.

Reading the compound file uses olefile; writing it uses :func:`write_cfb` below (version 3,
512-byte sectors, small streams in the mini stream). The compression is MS-OVBA 2.4.1.
"""

from __future__ import annotations

import io
import struct

import olefile

SIGNATURE = b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1"
FREE, ENDOFCHAIN, FATSECT, NOSTREAM = 0xFFFFFFFF, 0xFFFFFFFE, 0xFFFFFFFD, 0xFFFFFFFF
SECTOR, MINI_SECTOR, MINI_CUTOFF = 512, 64, 4096

# dir stream record ids (MS-OVBA 2.3.4.2)
CODEPAGE, PROJECTVERSION, MODULENAME, MODULESTREAMNAME, MODULEOFFSET = 0x0003, 0x0009, 0x0019, 0x001A, 0x0031


# --------------------------------------------------------------------------- compression (MS-OVBA 2.4.1)
def _copy_token_bits(difference: int) -> int:
    """Bits of a copy token's offset at ``difference`` bytes into the chunk (at least 4)."""
    bits = 4
    while (1 << bits) < difference:
        bits += 1
    return bits


def decompress(data: bytes) -> bytes:
    if not data or data[0] != 1:
        raise ValueError("not an MS-OVBA compressed container (first byte is not 0x01)")
    out = bytearray()
    pos = 1
    while pos < len(data):
        header = struct.unpack_from("<H", data, pos)[0]
        size, compressed = (header & 0x0FFF) + 3, bool(header & 0x8000)
        end = min(pos + size, len(data))
        pos += 2
        start = len(out)
        if not compressed:
            out += data[pos : pos + 4096]
            pos += 4096
            continue
        while pos < end:
            flags = data[pos]
            pos += 1
            for bit in range(8):
                if pos >= end:
                    break
                if not flags & (1 << bit):
                    out.append(data[pos])
                    pos += 1
                    continue
                token = struct.unpack_from("<H", data, pos)[0]
                pos += 2
                bits = _copy_token_bits(len(out) - start)
                length = (token & (0xFFFF >> bits)) + 3
                offset = (token >> (16 - bits)) + 1
                for _ in range(length):  # byte by byte: a copy may overlap its own output
                    out.append(out[-offset])
    return bytes(out)


def _compress_chunk(chunk: bytes) -> bytes:
    """One compressed chunk's token sequences (without the chunk header)."""
    out = bytearray()
    positions: dict[bytes, list[int]] = {}
    pos = 0
    while pos < len(chunk):
        flag_at = len(out)
        out.append(0)
        flags = 0
        for bit in range(8):
            if pos >= len(chunk):
                break
            bits = _copy_token_bits(pos) if pos else 4
            max_length = (0xFFFF >> bits) + 3
            best_len, best_at = 0, 0
            for at in reversed(positions.get(chunk[pos : pos + 3], ())):
                length = 0
                limit = min(max_length, len(chunk) - pos)
                while length < limit and chunk[at + length] == chunk[pos + length]:
                    length += 1
                if length > best_len:
                    best_len, best_at = length, at
                    if length == limit:
                        break
            step = best_len if best_len >= 3 else 1
            if best_len >= 3:
                flags |= 1 << bit
                out += struct.pack("<H", ((pos - best_at - 1) << (16 - bits)) | (best_len - 3))
            else:
                out.append(chunk[pos])
            for p in range(pos, pos + step):
                positions.setdefault(chunk[p : p + 3], []).append(p)
            pos += step
        out[flag_at] = flags
    return bytes(out)


def compress(data: bytes) -> bytes:
    out = bytearray(b"\x01")
    for start in range(0, len(data), 4096):
        chunk = data[start : start + 4096]
        body = _compress_chunk(chunk)
        if len(body) > 4096 - 2 and len(chunk) == 4096:  # incompressible: a raw chunk
            out += struct.pack("<H", 0x3000 | 4095) + chunk
        else:
            out += struct.pack("<H", 0xB000 | (len(body) + 2 - 3)) + body
    return bytes(out)


# --------------------------------------------------------------------------- dir stream
def dir_records(dir_stream: bytes) -> list[tuple[int, bytes]]:
    """The decompressed ``VBA/dir`` stream as (id, data) records, in order."""
    records = []
    pos = 0
    while pos < len(dir_stream):
        rid, size = struct.unpack_from("<HI", dir_stream, pos)
        if rid == PROJECTVERSION:  # its size field says 4 but 6 bytes follow (MS-OVBA 2.3.4.2.1.11)
            size = 6
        records.append((rid, dir_stream[pos + 6 : pos + 6 + size]))
        pos += 6 + size
    return records


def _dir_bytes(records: list[tuple[int, bytes]]) -> bytes:
    out = bytearray()
    for rid, data in records:
        out += struct.pack("<HI", rid, 4 if rid == PROJECTVERSION else len(data)) + data
    return bytes(out)


def _modules(records: list[tuple[int, bytes]], codepage: str) -> dict[str, tuple[str, int]]:
    """Module name -> (stream name, index of its MODULEOFFSET record)."""
    modules: dict[str, tuple[str, int]] = {}
    name = stream = ""
    for i, (rid, data) in enumerate(records):
        if rid == MODULENAME:
            name = data.decode(codepage)
        elif rid == MODULESTREAMNAME:
            stream = data.decode(codepage)
        elif rid == MODULEOFFSET:
            modules[name] = (stream, i)
    return modules


def _codepage(records: list[tuple[int, bytes]]) -> str:
    page = next(struct.unpack("<H", data)[0] for rid, data in records if rid == CODEPAGE)
    return f"cp{page}"


# --------------------------------------------------------------------------- reading and rewriting
def read_streams(vba_bin: bytes) -> dict[str, bytes]:
    """Every stream of a compound file, by path (``VBA/dir``)."""
    with olefile.OleFileIO(io.BytesIO(vba_bin)) as ole:
        return {"/".join(entry): ole.openstream(entry).read() for entry in ole.listdir(streams=True)}


def module_sources(vba_bin: bytes) -> dict[str, str]:
    """Module name -> its VBA source (attribute lines included, CRLF line ends)."""
    streams = read_streams(vba_bin)
    records = dir_records(decompress(streams["VBA/dir"]))
    codepage = _codepage(records)
    sources = {}
    for name, (stream, index) in _modules(records, codepage).items():
        offset = struct.unpack("<I", records[index][1])[0]
        sources[name] = decompress(streams[f"VBA/{stream}"][offset:]).decode(codepage)
    return sources


def replace_modules(vba_bin: bytes, sources: dict[str, str]) -> bytes:
    """``vba_bin`` with the source of the named modules replaced (the modules must exist)."""
    streams = read_streams(vba_bin)
    header = streams.get("VBA/_VBA_PROJECT", b"")
    if len(header) != 7 or header[:4] != b"\xcc\x61\xff\xff":  # version 0xFFFF, no cache (MS-OVBA 2.3.4.1)
        raise ValueError("the VBA project has a performance cache: Office would run it instead of the new source")
    records = dir_records(decompress(streams["VBA/dir"]))
    codepage = _codepage(records)
    modules = _modules(records, codepage)
    unknown = sorted(set(sources) - set(modules))
    if unknown:
        raise ValueError(f"no module {', '.join(unknown)} in the VBA project (it has {', '.join(modules)})")
    for name, source in sources.items():
        stream, index = modules[name]
        text = source.replace("\r\n", "\n").replace("\n", "\r\n")
        streams[f"VBA/{stream}"] = compress(text.encode(codepage))
        records[index] = (MODULEOFFSET, struct.pack("<I", 0))
    streams["VBA/dir"] = compress(_dir_bytes(records))
    return write_cfb(streams)


# --------------------------------------------------------------------------- compound file writer
def _cfb_key(name: str) -> tuple[int, str]:
    """MS-CFB's sibling order: shorter names first, then by upper-case name."""
    return len(name), name.upper()


class _Entry:
    def __init__(self, name: str, kind: int, data: bytes = b"") -> None:
        self.name, self.kind, self.data = name, kind, data
        self.children: dict[str, _Entry] = {}
        self.left = self.right = self.child = NOSTREAM
        self.start, self.size = ENDOFCHAIN, 0


def _balanced(entries: list[_Entry], ids: dict[int, int]) -> int:
    """Link sorted siblings as a balanced binary tree; returns the root's directory id."""
    if not entries:
        return NOSTREAM
    mid = len(entries) // 2
    node = entries[mid]
    node.left = _balanced(entries[:mid], ids)
    node.right = _balanced(entries[mid + 1 :], ids)
    return ids[id(node)]


def write_cfb(streams: dict[str, bytes]) -> bytes:
    """A compound file (version 3) holding ``streams`` (path with ``/`` -> bytes); storages are implied.

    Every directory node is black: MS-CFB allows a writer to skip red-black balancing this way.
    """
    root = _Entry("Root Entry", 5)
    for path, data in streams.items():
        node = root
        *folders, leaf = path.split("/")
        for folder in folders:
            node = node.children.setdefault(folder, _Entry(folder, 1))
        node.children[leaf] = _Entry(leaf, 2, data)
    entries: list[_Entry] = []

    def walk(node: _Entry) -> None:
        entries.append(node)
        for child in node.children.values():
            walk(child)

    walk(root)
    ids = {id(e): i for i, e in enumerate(entries)}
    for e in entries:
        e.child = _balanced(sorted(e.children.values(), key=lambda c: _cfb_key(c.name)), ids)

    # small streams go into the mini stream, which is stored as the root entry's data
    mini = bytearray()
    minifat: list[int] = []
    big = [e for e in entries if e.kind == 2 and len(e.data) >= MINI_CUTOFF]
    for e in entries:
        if e.kind == 2 and len(e.data) < MINI_CUTOFF:
            e.size = len(e.data)
            if not e.data:
                continue
            e.start = len(minifat)
            count = -(-len(e.data) // MINI_SECTOR)
            minifat += [e.start + k + 1 for k in range(count - 1)] + [ENDOFCHAIN]
            mini += e.data + b"\0" * (count * MINI_SECTOR - len(e.data))
    root.data, root.size = bytes(mini), len(mini)

    fat: list[int] = []
    body = bytearray()

    def place(data: bytes) -> int:
        if not data:
            return ENDOFCHAIN
        start = len(fat)
        count = -(-len(data) // SECTOR)
        fat.extend([start + k + 1 for k in range(count - 1)] + [ENDOFCHAIN])
        body.extend(data + b"\0" * (count * SECTOR - len(data)))
        return start

    for e in big:
        e.start, e.size = place(e.data), len(e.data)
    root.start = place(root.data)
    minifat_bytes = struct.pack(f"<{len(minifat)}I", *minifat)
    minifat_bytes += b"\xff" * (-len(minifat_bytes) % SECTOR)
    minifat_start = place(minifat_bytes) if minifat else ENDOFCHAIN
    directory = b"".join(_dir_entry(e) for e in entries)
    directory += _dir_entry(None) * (-len(entries) % (SECTOR // 128))
    dir_start = place(directory)

    n_fat = 1
    while len(fat) + n_fat > n_fat * (SECTOR // 4):
        n_fat += 1
    if n_fat > 109:
        raise ValueError("compound file too large for a header-only DIFAT")
    fat_start = len(fat)
    fat += [FATSECT] * n_fat
    fat += [FREE] * (n_fat * (SECTOR // 4) - len(fat))
    difat = [fat_start + k for k in range(n_fat)] + [FREE] * (109 - n_fat)
    header = (
        SIGNATURE
        + b"\0" * 16
        + struct.pack("<HHHHH", 0x003E, 3, 0xFFFE, 9, 6)
        + b"\0" * 6
        + struct.pack(
            "<IIIIIIIII",
            0,
            n_fat,
            dir_start,
            0,
            MINI_CUTOFF,
            minifat_start,
            len(minifat_bytes) // SECTOR,
            ENDOFCHAIN,
            0,
        )
        + struct.pack("<109I", *difat)
    )
    assert len(header) == SECTOR
    return header + bytes(body) + struct.pack(f"<{len(fat)}I", *fat)


def _dir_entry(e: _Entry | None) -> bytes:
    if e is None:
        return b"\0" * 64 + struct.pack("<HBBIII", 0, 0, 0, NOSTREAM, NOSTREAM, NOSTREAM) + b"\0" * 36 + b"\0" * 12
    name = e.name.encode("utf-16-le") + b"\0\0"
    if len(name) > 64:
        raise ValueError(f"{e.name}: a compound file name has at most 31 characters")
    return (
        name.ljust(64, b"\0")
        + struct.pack("<HBBIII", len(name), e.kind, 1, e.left, e.right, e.child)
        + b"\0" * 16  # CLSID
        + b"\0" * 4  # state bits
        + b"\0" * 16  # creation and modification time
        + struct.pack("<IQ", e.start, e.size)
    )
