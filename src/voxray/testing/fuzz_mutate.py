"""Mutators of the fuzz campaign: each damages one copy of a seed, driven by one rng.

A mutator is a function ``(case_dir, seed, rng) -> str``: it edits the files of
``seed`` copied into ``case_dir`` and returns a short description of what it did
(the report prints it beside the reproducer). Every choice comes from ``rng``
(a ``random.Random``), so a case is rebuilt byte for byte from its seed and case
number alone.

The families:

* ``field`` -- a named header field set to an edge value (0, -1, the type's
  extremes, NaN, inf, a random value, another field's value), with the offsets of
  nibabel's own header dtypes (NIfTI-1/2, Analyze/SPM, MGH, ECAT). Inside a gzip
  file the decompressed stream is edited and recompressed;
* ``extension`` -- NIfTI extension flag, ``esize`` and ``ecode``;
* ``flip`` / ``zero`` / ``int`` -- random bytes, zeroed runs, or 2/4/8-byte edge
  values written in the header region or anywhere;
* ``truncate`` / ``append`` -- cut at a random or an interesting offset (inside
  the header, at its end, inside extensions, inside data), or garbage appended;
* ``gzip`` -- compressed bytes flipped, the stream cut, CRC or ISIZE wrong, header
  flag bits and method byte, garbage or a second member appended;
* ``text`` -- a number in a PAR or AFNI ``.HEAD`` replaced by an edge value, or a
  line deleted, duplicated or swapped;
* ``partner`` -- a pair's ``.img`` (``.BRIK``, ``.REC``) emptied, cut or removed;
* ``zarr_json`` / ``zarr_chunk`` / ``zarr_nifti`` / ``zarr_level`` -- metadata
  edits (shape, dtype, chunk shape, codecs, fill value, OME and NIfTI attributes,
  any leaf), chunk files flipped, cut, deleted or swapped, the ``nifti`` header
  array's fields, a level removed.
"""

from __future__ import annotations

import gzip
import json
import math
import random
import re
import shutil
from pathlib import Path

import numpy as np

from .fuzz_seeds import Seed

__all__ = ["MUTATORS", "mutate", "mutators_for"]


# --- helpers -------------------------------------------------------------------------------


def _is_gz(path: Path) -> bool:
    return path.name.endswith((".gz", ".mgz"))


def _read_plain(path: Path) -> bytes:
    raw = path.read_bytes()
    return gzip.decompress(raw) if _is_gz(path) else raw


def _write_plain(path: Path, data: bytes) -> None:
    if _is_gz(path):
        path.write_bytes(gzip.compress(bytes(data), compresslevel=1, mtime=0))
    else:
        path.write_bytes(bytes(data))


def _header_dtype(seed: Seed, target: Path, plain: bytes):
    """nibabel's header dtype for ``target`` (byte order from ``sizeof_hdr``), or None."""
    import nibabel as nib

    fmt = seed.format
    if fmt == "mgh" and len(plain) >= 284:
        return nib.freesurfer.mghformat.hf_dtype.newbyteorder(">")
    if fmt == "ecat":
        return nib.ecat.hdr_dtype.newbyteorder(">")
    if fmt in ("nifti1", "pair", "analyze", "nifti2", "cifti") or seed.format == "zarr":
        if len(plain) < 4:
            return None
        little = int.from_bytes(plain[:4], "little")
        big = int.from_bytes(plain[:4], "big")
        size = little if little in (348, 540) else big
        order = "<" if little in (348, 540) else ">"
        if size == 540:
            return nib.nifti2.header_dtype.newbyteorder(order)
        if fmt == "analyze":
            return nib.spm99analyze.header_dtype.newbyteorder(order)
        return nib.nifti1.header_dtype.newbyteorder(order)
    return None


def _edge_value(rng: random.Random, dtype: np.dtype, other):
    """An edge value of ``dtype``: 0, -1, extremes, NaN, inf, random, or ``other``."""
    kind = dtype.kind
    if other is not None and rng.random() < 0.12:
        return other
    if kind in "iu":
        info = np.iinfo(dtype)
        choices = [0, 1, 2, 3, 7, 255, info.max, info.min, info.max // 2, rng.randint(0, 16)]
        if kind == "i":
            choices += [-1, -2, info.min + 1]
        choices.append(rng.randint(int(info.min), int(info.max)))
        return rng.choice(choices)
    if kind == "f":
        info = np.finfo(dtype)
        return rng.choice(
            [0.0, -0.0, 1.0, -1.0, 0.5, math.nan, math.inf, -math.inf, float(info.max),
             float(-info.max), float(info.tiny), 1e-30, 1e30, rng.gauss(0, 1e3),
             rng.uniform(-10, 10)]
        )  # fmt: skip
    if kind == "S":
        n = dtype.itemsize
        magic = [b"n+1\0", b"ni1\0", b"n+2\0\r\n\x1a\n", b"ni2\0\r\n\x1a\n", b"", b"\xff" * n]
        return rng.choice([*magic, bytes(rng.randrange(256) for _ in range(n))])[:n]
    return None


def _set_field(rng: random.Random, buf: bytearray, dtype: np.dtype, offset: int = 0) -> str:
    """Set one field (or one element of an array field) of the header in ``buf``."""
    names = list(dtype.names)
    name = rng.choice(names)
    fdt, foff = dtype.fields[name][:2]
    base = fdt.base
    n = int(np.prod(fdt.shape)) if fdt.shape else 1
    start = offset + foff
    if start + fdt.itemsize > len(buf):
        return f"{name}: beyond the file"
    # another field's value (same base dtype where possible), for "other fields' values"
    other = None
    peer = rng.choice(names)
    pdt, poff = dtype.fields[peer][:2]
    if pdt.base.kind == base.kind and offset + poff + pdt.base.itemsize <= len(buf):
        other = np.frombuffer(
            bytes(buf[offset + poff : offset + poff + pdt.base.itemsize]), pdt.base
        )[0]
    idx = rng.randrange(n) if n > 1 and rng.random() < 0.8 else None
    value = _edge_value(rng, base, other)
    if value is None:
        return f"{name}: kept"
    with np.errstate(all="ignore"):
        item = np.array(value).astype(base) if base.kind != "S" else np.array(value, base)
    raw = item.tobytes()
    where = range(n) if idx is None else [idx]
    for i in where:
        pos = start + i * base.itemsize
        buf[pos : pos + base.itemsize] = raw
    label = name if idx is None else f"{name}[{idx}]"
    return f"{label}={value!r}"


def _target(seed: Seed, case_dir: Path, rng: random.Random, header_bias: float = 0.7) -> Path:
    files = list(seed.files)
    if len(files) > 1 and rng.random() > header_bias:
        name = rng.choice(files[1:])
    else:
        name = files[0]
    return case_dir / name


def _header_size(seed: Seed, target: Path, plain: bytes) -> int:
    dt = _header_dtype(seed, target, plain)
    if dt is not None:
        return dt.itemsize
    return min(len(plain), 2048)


# --- mutators on plain files ---------------------------------------------------------------


def m_field(case_dir: Path, seed: Seed, rng: random.Random) -> str:
    target = case_dir / seed.files[0]
    plain = bytearray(_read_plain(target))
    dtype = _header_dtype(seed, target, plain)
    if dtype is None:
        return m_int(case_dir, seed, rng)
    notes = [_set_field(rng, plain, dtype) for _ in range(rng.choice([1, 1, 1, 2, 3]))]
    _write_plain(target, plain)
    return f"field {target.name}: " + ", ".join(notes)


def m_extension(case_dir: Path, seed: Seed, rng: random.Random) -> str:
    target = case_dir / seed.files[0]
    plain = bytearray(_read_plain(target))
    dtype = _header_dtype(seed, target, plain)
    if dtype is None or len(plain) < dtype.itemsize + 4:
        return m_truncate(case_dir, seed, rng)
    base = dtype.itemsize
    order = "little" if int.from_bytes(plain[:4], "little") in (348, 540) else "big"
    what = rng.choice(["flag", "esize", "esize", "ecode", "both"])
    if what == "flag":
        plain[base] = rng.choice([0, 1, 2, 255, rng.randrange(256)])
    if len(plain) < base + 12:
        plain.extend(b"\0" * (base + 12 - len(plain)))
    if what in ("esize", "both"):
        plain[base] = 1
        v = rng.choice([0, -1, 8, 9, 16, 17, 2**31 - 1, -(2**31), len(plain), len(plain) * 4, 32])
        plain[base + 4 : base + 8] = int(v).to_bytes(4, order, signed=True)
    if what in ("ecode", "both"):
        plain[base] = 1
        v = rng.choice([0, 2, 4, 6, 14, 32, 40, -1, 2**31 - 1, rng.randrange(1 << 16)])
        plain[base + 8 : base + 12] = int(v).to_bytes(4, order, signed=True)
    _write_plain(target, plain)
    return f"extension {target.name}: {what}"


def m_flip(case_dir: Path, seed: Seed, rng: random.Random) -> str:
    target = _target(seed, case_dir, rng)
    plain = bytearray(_read_plain(target))
    if not plain:
        return "flip: empty"
    region = (
        len(plain) if rng.random() < 0.4 else min(len(plain), _header_size(seed, target, plain))
    )
    kind = rng.choice(["flip", "bit", "zero"])
    spots = []
    for _ in range(rng.randint(1, 8)):
        i = rng.randrange(region)
        if kind == "flip":
            plain[i] = rng.randrange(256)
        elif kind == "bit":
            plain[i] ^= 1 << rng.randrange(8)
        else:
            plain[i] = 0
        spots.append(i)
    _write_plain(target, plain)
    return f"{kind} {target.name} at {spots}"


def m_zero(case_dir: Path, seed: Seed, rng: random.Random) -> str:
    target = _target(seed, case_dir, rng)
    plain = bytearray(_read_plain(target))
    if not plain:
        return "zero: empty"
    a = rng.randrange(len(plain))
    n = rng.choice([4, 16, 64, 512, len(plain)])
    fill = rng.choice([0, 0xFF])
    plain[a : a + n] = bytes([fill]) * len(plain[a : a + n])
    _write_plain(target, plain)
    return f"run of {fill:#x} in {target.name} at {a}+{n}"


def m_int(case_dir: Path, seed: Seed, rng: random.Random) -> str:
    target = _target(seed, case_dir, rng)
    plain = bytearray(_read_plain(target))
    width = rng.choice([2, 4, 4, 8])
    region = min(
        len(plain), _header_size(seed, target, plain) if rng.random() < 0.8 else len(plain)
    )
    if region < width:
        return m_truncate(case_dir, seed, rng)
    pos = rng.randrange(0, region - width + 1)
    if rng.random() < 0.7:
        pos -= pos % width
    order = rng.choice(["<", ">"])
    if rng.random() < 0.7:
        dt = np.dtype(f"{order}i{width}")
    else:
        dt = np.dtype(f"{order}f{max(width, 4)}")
        width = dt.itemsize
        if pos + width > len(plain):
            return "int: no room"
    value = _edge_value(rng, dt, None)
    with np.errstate(all="ignore"):
        plain[pos : pos + width] = np.array(value).astype(dt).tobytes()
    _write_plain(target, plain)
    return f"int {target.name}@{pos} {dt.str}={value!r}"


def m_truncate(case_dir: Path, seed: Seed, rng: random.Random) -> str:
    target = _target(seed, case_dir, rng)
    compressed = _is_gz(target) and rng.random() < 0.5
    data = target.read_bytes() if compressed or not _is_gz(target) else _read_plain(target)
    n = len(data)
    hsize = _header_size(seed, target, data) if not compressed else 10
    dt = None if compressed else _header_dtype(seed, target, data)
    if dt is not None and "vox_offset" in dt.names and len(data) >= dt.itemsize:
        # inside the extensions, at the data offset, one voxel into the data
        off = int(np.frombuffer(data[: dt.itemsize], dt)["vox_offset"][0])
        if 0 < off < n:
            hsize = rng.choice([hsize, off, off - 1, off + 1, off + 2, off + 8, hsize + 12])
    spots = [rng.randrange(max(n, 1)), rng.randrange(max(min(n, hsize), 1)), hsize, hsize + 4,
             hsize + 8, hsize + 16, n - 1, n - 2, n // 2, 0, 1, 4]  # fmt: skip
    cut = max(0, min(n, rng.choice(spots)))
    if compressed:
        target.write_bytes(data[:cut])
    else:
        _write_plain(target, data[:cut])
    return f"truncate {target.name}{' (compressed)' if compressed else ''} to {cut} of {n}"


def m_append(case_dir: Path, seed: Seed, rng: random.Random) -> str:
    target = _target(seed, case_dir, rng)
    if rng.random() < 0.3:
        extra = b"\0" * rng.randint(1, 64)
    else:
        extra = bytes(rng.randrange(256) for _ in range(rng.randint(1, 300)))
    with open(target, "ab") as f:
        f.write(extra)
    return f"append {len(extra)} bytes to {target.name}"


def m_gzip(case_dir: Path, seed: Seed, rng: random.Random) -> str:
    gz = [f for f in seed.files if _is_gz(Path(f))]
    if not gz:
        return m_flip(case_dir, seed, rng)
    target = case_dir / rng.choice(gz)
    raw = bytearray(target.read_bytes())
    n = len(raw)
    what = rng.choice(
        ["flip", "flip", "truncate", "crc", "isize", "flags", "method", "magic", "garbage",
         "member", "member-copy", "empty-member"]
    )  # fmt: skip
    if what == "flip":
        for _ in range(rng.randint(1, 4)):
            raw[rng.randrange(10, max(n - 8, 11))] ^= 1 << rng.randrange(8)
    elif what == "truncate":
        raw = raw[: rng.choice([rng.randrange(n), n - 1, n - 4, n - 8, 10, 5])]
    elif what == "crc":
        raw[n - 8 + rng.randrange(4)] ^= 0xFF
    elif what == "isize":
        raw[n - 4 : n] = rng.choice([0, 1, 2**32 - 1, rng.randrange(2**32)]).to_bytes(4, "little")
    elif what == "flags":
        raw[3] = rng.choice([1, 2, 4, 8, 16, 32, 0xE0, 0xFF, rng.randrange(256)])
    elif what == "method":
        raw[2] = rng.choice([0, 7, 9, 255])
    elif what == "magic":
        raw[rng.randrange(2)] ^= 0xFF
    elif what == "garbage":
        raw += bytes(rng.randrange(256) for _ in range(rng.randint(1, 100)))
    elif what == "member":
        raw += gzip.compress(
            bytes(rng.randrange(256) for _ in range(rng.randint(1, 500))), mtime=0
        )
    elif what == "member-copy":
        raw += bytes(raw)
    else:
        raw = bytearray(gzip.compress(b"", mtime=0)) + raw
    target.write_bytes(bytes(raw))
    return f"gzip {what} {target.name}"


_NUMBER = re.compile(rb"-?\d+(?:\.\d*)?(?:[eE][-+]?\d+)?")


def m_text(case_dir: Path, seed: Seed, rng: random.Random) -> str:
    target = case_dir / seed.files[0]
    text = target.read_bytes()
    if rng.random() < 0.7:
        matches = list(_NUMBER.finditer(text))
        if not matches:
            return m_flip(case_dir, seed, rng)
        notes = []
        for _ in range(rng.choice([1, 1, 2, 4])):
            m = rng.choice(matches)
            new = rng.choice([b"0", b"-1", b"1", b"2", b"1e308", b"nan", b"inf", b"-inf",
                              b"99999999999", b"-2147483649", b"abc", b"", b"1.5", b"3",
                              b"65536", str(rng.randint(-100, 100000)).encode()])  # fmt: skip
            text = text[: m.start()] + new + text[m.end() :]
            notes.append(f"{m.group().decode()}->{new.decode()}@{m.start()}")
            matches = list(_NUMBER.finditer(text))
            if not matches:
                break
        target.write_bytes(text)
        return f"text {target.name}: " + ", ".join(notes)
    lines = text.split(b"\n")
    i = rng.randrange(len(lines))
    what = rng.choice(["delete", "duplicate", "swap", "cut"])
    if what == "delete":
        del lines[i]
    elif what == "duplicate":
        lines.insert(i, lines[i])
    elif what == "swap":
        j = rng.randrange(len(lines))
        lines[i], lines[j] = lines[j], lines[i]
    else:
        lines[i] = lines[i][: rng.randrange(len(lines[i]) + 1)]
    target.write_bytes(b"\n".join(lines))
    return f"text {target.name}: {what} line {i}"


def m_partner(case_dir: Path, seed: Seed, rng: random.Random) -> str:
    if len(seed.files) < 2:
        return m_truncate(case_dir, seed, rng)
    name = rng.choice(seed.files[1:])
    target = case_dir / name
    what = rng.choice(["remove", "empty", "cut", "cut", "grow"])
    if what == "remove":
        target.unlink()
    elif what == "empty":
        target.write_bytes(b"")
    elif what == "cut":
        data = target.read_bytes()
        target.write_bytes(data[: rng.randrange(max(len(data), 1))])
    else:
        with open(target, "ab") as f:
            f.write(b"\0" * rng.choice([1, 2, 1000]))
    return f"partner {what} {name}"


# --- Zarr ------------------------------------------------------------------------------------


def _store(case_dir: Path, seed: Seed) -> Path:
    return case_dir / seed.main


def _json_files(store: Path) -> list[Path]:
    return sorted(store.rglob("zarr.json"))


def _chunk_files(store: Path, include_nifti: bool = False) -> list[Path]:
    out = []
    for p in sorted(store.rglob("*")):
        rel = p.relative_to(store).parts
        if p.is_file() and p.name != "zarr.json" and "c" in rel:  # noqa: SIM102
            if include_nifti or rel[0] != "nifti":
                out.append(p)
    return out


def _json_edge(rng: random.Random):
    return rng.choice([0, -1, 1, 2**40, 1.5, math.nan, "NaN", "x", "", None, [], {}, [1, 2], True,
                       {"name": "bogus"}, -(2**63)])  # fmt: skip


def _leaves(obj, path=()):
    if isinstance(obj, dict):
        yield path, obj
        for k, v in obj.items():
            yield from _leaves(v, (*path, k))
    elif isinstance(obj, list):
        yield path, obj
        for i, v in enumerate(obj):
            yield from _leaves(v, (*path, i))
    else:
        yield path, obj


def _set_path(obj, path, value, delete=False):
    for k in path[:-1]:
        obj = obj[k]
    if delete:
        if isinstance(obj, dict):
            del obj[path[-1]]
        else:
            obj.pop(path[-1])
    else:
        obj[path[-1]] = value


def _targeted_json_edit(rng: random.Random, meta: dict) -> str:
    if meta.get("node_type") == "array":
        choice = rng.choice(
            ["shape", "data_type", "chunk_shape", "codecs", "fill_value",
             "dimension_names", "zarr_format", "node_type", "attributes"]
        )  # fmt: skip
        if choice == "shape" and isinstance(meta.get("shape"), list) and meta["shape"]:
            i = rng.randrange(len(meta["shape"]))
            op = rng.choice(["x2", "zero", "neg", "huge", "drop", "add", "+1", "-1"])
            s = meta["shape"]
            if op == "drop":
                s.pop(i)
            elif op == "add":
                s.append(rng.choice([1, 2]))
            else:
                s[i] = {"x2": s[i] * 2, "zero": 0, "neg": -1, "huge": 2**40, "+1": s[i] + 1,
                        "-1": max(s[i] - 1, 0)}[op]  # fmt: skip
            return f"shape {op} [{i}] -> {s}"
        if choice == "data_type":
            meta["data_type"] = rng.choice(["int8", "uint8", "int16", "uint16", "int32", "int64",
                                            "float32", "float64", "complex64", "bool", "bogus", 5,
                                            "float16", "uint64"])  # fmt: skip
            return f"data_type -> {meta['data_type']!r}"
        if choice == "chunk_shape":
            cs = meta.get("chunk_grid", {}).get("configuration", {}).get("chunk_shape")
            if isinstance(cs, list) and cs:
                i = rng.randrange(len(cs))
                cs[i] = rng.choice([0, -1, 1, 2**40, cs[i] * 2, max(cs[i] - 1, 1)])
                return f"chunk_shape -> {cs}"
        if choice == "codecs" and isinstance(meta.get("codecs"), list):
            codecs = meta["codecs"]
            op = rng.choice(["remove", "unknown", "endian", "config", "empty", "duplicate"])
            if op == "remove" and codecs:
                codecs.pop(rng.randrange(len(codecs)))
            elif op == "unknown" and codecs:
                codecs[rng.randrange(len(codecs))]["name"] = "bogus"
            elif op == "endian" and codecs:
                codecs[0].setdefault("configuration", {})["endian"] = rng.choice(
                    ["big", "little", "x"]
                )
            elif op == "config" and codecs:
                c = codecs[rng.randrange(len(codecs))]
                c.setdefault("configuration", {})[
                    rng.choice(["typesize", "clevel", "level", "cname"])
                ] = _json_edge(rng)
            elif op == "empty":
                meta["codecs"] = []
            elif codecs:
                codecs.append(dict(codecs[-1]))
            return f"codecs {op} -> {meta['codecs']}"
        if choice == "fill_value":
            meta["fill_value"] = rng.choice(["NaN", 1e300, "x", None, [1, 2], -1, 7, "Infinity"])
            return f"fill_value -> {meta['fill_value']!r}"
        if choice == "dimension_names":
            meta["dimension_names"] = rng.choice([None, ["a"], ["t", "t", "t", "t"], 5])
            return f"dimension_names -> {meta['dimension_names']!r}"
        if choice == "zarr_format":
            meta["zarr_format"] = rng.choice([2, 4, "3", None])
            return f"zarr_format -> {meta['zarr_format']!r}"
        if choice == "node_type":
            meta["node_type"] = rng.choice(["group", "bogus"])
            return f"node_type -> {meta['node_type']!r}"
    else:
        ms = meta.get("attributes", {}).get("ome", {}).get("multiscales")
        choice = rng.choice(["ome", "version", "multiscales", "datasets", "path", "scale", "axes",
                             "voxray"])  # fmt: skip
        if choice == "ome":
            meta.get("attributes", {}).pop("ome", None)
            return "ome removed"
        if choice == "version":
            meta["attributes"]["ome"]["version"] = rng.choice(["0.4", "9", None, 5])
            return "ome version"
        if choice == "voxray":
            meta["attributes"]["voxray"] = _json_edge(rng)
            return "voxray attribute"
        if isinstance(ms, list) and ms:
            m = ms[0]
            if choice == "multiscales":
                meta["attributes"]["ome"]["multiscales"] = rng.choice([[], {}, None, [{}]])
                return "multiscales emptied"
            ds = m.get("datasets", [])
            if choice == "datasets" and ds:
                ds.pop(rng.randrange(len(ds)))
                return "dataset removed"
            if choice == "path" and ds:
                d = rng.choice(ds)
                d["path"] = rng.choice(["9", "nifti", "", "../x", ds[-1]["path"], 0])
                return f"dataset path -> {d['path']!r}"
            if choice == "scale" and ds:
                d = rng.choice(ds)
                ct = d.get("coordinateTransformations", [])
                if ct:
                    t = rng.choice(ct)
                    vec = t.get("scale") or t.get("translation")
                    if isinstance(vec, list) and vec:
                        i = rng.randrange(len(vec))
                        vec[i] = rng.choice([0, -1, math.nan, 1e300, "x"])
                        return f"{t.get('type')}[{i}] -> {vec[i]!r}"
            if choice == "axes" and m.get("axes"):
                axes = m["axes"]
                op = rng.choice(["remove", "rename", "type"])
                a = rng.randrange(len(axes))
                if op == "remove":
                    axes.pop(a)
                elif op == "rename":
                    axes[a]["name"] = rng.choice(["q", "x", "t"])
                else:
                    axes[a]["type"] = rng.choice(["channel", "time", "space", "bogus"])
                return f"axes {op} {a}"
    # fall back: any leaf
    return _leaf_edit(rng, meta)


def _leaf_edit(rng: random.Random, meta: dict) -> str:
    leaves = [p for p, _ in _leaves(meta) if p]
    path = rng.choice(leaves)
    if rng.random() < 0.25:
        _set_path(meta, path, None, delete=True)
        return f"deleted {'/'.join(map(str, path))}"
    value = _json_edge(rng)
    _set_path(meta, path, value)
    return f"{'/'.join(map(str, path))} -> {value!r}"


def m_zarr_json(case_dir: Path, seed: Seed, rng: random.Random) -> str:
    store = _store(case_dir, seed)
    target = rng.choice(_json_files(store))
    rel = target.relative_to(store)
    text = target.read_bytes()
    r = rng.random()
    if r < 0.12:
        cut = rng.randrange(len(text))
        target.write_bytes(text[:cut])
        return f"zarr_json {rel}: cut at {cut}"
    if r < 0.2:
        data = bytearray(text)
        for _ in range(rng.randint(1, 4)):
            data[rng.randrange(len(data))] = rng.randrange(256)
        target.write_bytes(bytes(data))
        return f"zarr_json {rel}: bytes flipped"
    meta = json.loads(text)
    note = _targeted_json_edit(rng, meta) if r < 0.75 else _leaf_edit(rng, meta)
    target.write_text(json.dumps(meta))
    return f"zarr_json {rel}: {note}"


def m_zarr_chunk(case_dir: Path, seed: Seed, rng: random.Random) -> str:
    store = _store(case_dir, seed)
    chunks = _chunk_files(store)
    target = rng.choice(chunks)
    rel = target.relative_to(store)
    what = rng.choice(["flip", "flip", "truncate", "delete", "swap", "empty", "grow"])
    data = bytearray(target.read_bytes())
    if what == "flip" and data:
        for _ in range(rng.randint(1, 4)):
            data[rng.randrange(len(data))] ^= 1 << rng.randrange(8)
        target.write_bytes(bytes(data))
    elif what == "truncate":
        target.write_bytes(bytes(data[: rng.randrange(max(len(data), 1))]))
    elif what == "delete":
        target.unlink()
    elif what == "swap":
        other = rng.choice(chunks)
        a, b = target.read_bytes(), other.read_bytes()
        target.write_bytes(b)
        other.write_bytes(a)
        return f"zarr_chunk swap {rel} <-> {other.relative_to(store)}"
    elif what == "empty":
        target.write_bytes(b"")
    else:
        target.write_bytes(bytes(data) + b"\0" * rng.choice([1, 7, 100]))
    return f"zarr_chunk {what} {rel}"


def m_zarr_nifti(case_dir: Path, seed: Seed, rng: random.Random) -> str:
    store = _store(case_dir, seed)
    files = [
        p
        for p in _chunk_files(store, include_nifti=True)
        if p.relative_to(store).parts[0] == "nifti"
    ]
    if not files:
        return m_zarr_json(case_dir, seed, rng)
    target = files[0]
    buf = bytearray(target.read_bytes())
    r = rng.random()
    if r < 0.6:
        dtype = _header_dtype(seed, target, buf)
        if dtype is not None:
            note = _set_field(rng, buf, dtype)
            target.write_bytes(bytes(buf))
            return f"zarr_nifti field {note}"
    if r < 0.8 and buf:
        for _ in range(rng.randint(1, 6)):
            buf[rng.randrange(len(buf))] = rng.randrange(256)
        target.write_bytes(bytes(buf))
        return "zarr_nifti bytes flipped"
    if rng.random() < 0.5:
        target.write_bytes(bytes(buf[: rng.randrange(max(len(buf), 1))]))
        return "zarr_nifti truncated"
    shutil.rmtree(store / "nifti")
    return "zarr_nifti removed"


def m_zarr_level(case_dir: Path, seed: Seed, rng: random.Random) -> str:
    store = _store(case_dir, seed)
    levels = sorted(p.name for p in store.iterdir() if p.is_dir() and p.name.isdigit())
    name = rng.choice(levels)
    what = rng.choice(["remove", "remove-json", "remove-chunks"])
    if what == "remove":
        shutil.rmtree(store / name)
    elif what == "remove-json":
        (store / name / "zarr.json").unlink()
    else:
        shutil.rmtree(store / name / "c", ignore_errors=True)
    return f"zarr_level {what} {name}"


#: name -> (mutator, formats it applies to; None = every non-Zarr format).
MUTATORS = {
    "field": (m_field, ("nifti1", "nifti2", "pair", "analyze", "cifti", "mgh", "ecat")),
    "extension": (m_extension, ("nifti1", "nifti2", "cifti")),
    "flip": (m_flip, None),
    "zero": (m_zero, None),
    "int": (m_int, None),
    "truncate": (m_truncate, None),
    "append": (m_append, None),
    "gzip": (m_gzip, None),
    "text": (m_text, ("parrec", "afni")),
    "partner": (m_partner, ("pair", "analyze", "parrec", "afni")),
    "zarr_json": (m_zarr_json, ("zarr",)),
    "zarr_chunk": (m_zarr_chunk, ("zarr",)),
    "zarr_nifti": (m_zarr_nifti, ("zarr",)),
    "zarr_level": (m_zarr_level, ("zarr",)),
}


def mutators_for(seed: Seed) -> list[str]:
    """The mutator names that apply to ``seed`` (``gzip`` only where a file is gzipped).

    Examples
    --------
    >>> mutators_for(Seed("test.mgz", "mgh", "test.mgz", ("test.mgz",)))
    ['field', 'flip', 'zero', 'int', 'truncate', 'append', 'gzip']
    """
    out = []
    for name, (_, formats) in MUTATORS.items():
        if formats is None:
            if seed.format == "zarr":
                continue
            if name == "gzip" and not any(_is_gz(Path(f)) for f in seed.files):
                continue
        elif seed.format not in formats:
            continue
        out.append(name)
    return out


def mutate(case_dir: Path, seed: Seed, rng: random.Random, name: str | None = None) -> str:
    """Apply one mutator (``name``, or one drawn from ``rng``) to the copy in ``case_dir``.

    Examples
    --------
    >>> import random
    >>> seed = Seed("x.nii", "nifti1", "x.nii", ("x.nii",))
    >>> mutators_for(seed)[:3]
    ['field', 'extension', 'flip']
    """
    names = mutators_for(seed)
    name = name or rng.choice(names)
    fn = MUTATORS[name][0]
    return f"{name}: {fn(Path(case_dir), seed, rng)}"
