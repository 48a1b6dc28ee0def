"""A named corpus of hand-made malformed files, each with the error voxray must raise.

Issue 12's contract: every public call on bad input raises a :class:`~voxray.VoxrayError`
subclass naming the file and the problem (for header fields, the field and its value);
never another exception type, a hang, an allocation sized by a lying header, or silently
wrong data. Where nibabel has a defined fallback (an unusable qform with a usable sform,
a NaN ``scl_slope`` meaning "unscaled", bytes after a gzip stream), voxray does what
nibabel does, and the expectation is "reads equal to nibabel".

Each :class:`Case` is one damaged file, built in a directory at test time from a small
valid image (written by nibabel, then patched at the header offsets nibabel's
``template_dtype`` gives) or from a file nibabel ships (:data:`NIBABEL_DATA`) for the
formats nibabel cannot write. Nothing here is committed as data. A case says

- what is wrong (``description``, with what nibabel does with the same file),
- the error class voxray must raise (``expected``), or ``None``: the file reads as
  nibabel reads it (dtype, values, affine), possibly with a ``warning``,
- where: at :func:`voxray.load` (``at="load"``), or only when data is read
  (``at="read"``: a truncated gzip stream, whose length is unknown until it is
  decompressed),
- ``matches``: a regex the message must match besides the file's name,
- ``intact``: the same file before the damage, which must read as nibabel reads it, so
  the damage (not the base file) is what the expectation is about.

The expectations are the specification: where voxray does not meet one yet, the test
marks the case ``xfail(strict=True)`` and ``/work/notes/malformed-findings.md`` holds
the reproducer. :data:`CORPUS` maps case names to cases::

    >>> from voxray.testing.malformed import CORPUS
    >>> case = CORPUS["nifti1-bad-magic"]
    >>> case.expected.__name__, case.at
    ('NotAnImageError', 'load')
"""

from __future__ import annotations

import functools
import gzip
import json
import shutil
import struct
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import nibabel as nib
import numpy as np

from ..errors import (
    AFNIDataTypeError,
    AFNIHeaderError,
    CorruptGzipError,
    CorruptStoreError,
    ImageNotFoundError,
    InvalidHeaderError,
    MincHeaderError,
    NotAnImageError,
    ParrecHeaderError,
    TrailingDataWarning,
    TruncatedFileError,
    UnsupportedDataTypeError,
    VoxrayError,
)
from .corpus import NIBABEL_DATA

__all__ = ["CASES", "CORPUS", "Case"]

Builder = Callable[[Path], Path]


@dataclass(frozen=True)
class Case:
    """One malformed file and what voxray must do with it.

    Parameters
    ----------
    name : str
        Unique, ``format-what-is-wrong``.
    description : str
        One line: what is wrong, and what nibabel does with the same file.
    build : callable
        ``build(directory) -> Path``: writes the file(s), returns the path to open.
    expected : type of VoxrayError or None
        The error class; ``None``: the file reads as nibabel reads it.
    at : {"load", "read"}
        Where the error must come: at ``vx.load``, or at the first read of the data
        (``np.asanyarray(img.dataobj)``, ``img.get_fdata()``, ``img.to_dask().compute()``)
        after a successful load.
    warning : type of Warning or None
        A warning the load-and-read must give (for ``expected=None``).
    matches : str
        A regex the message must match, besides the file's name.
    intact : callable or None
        ``intact(directory) -> Path``: the same file before the damage (it must read as
        nibabel reads it); ``None`` where the file has no undamaged form (an empty file).
    names : str or None
        The file name the message must contain when it is not the opened path's (the
        missing half of a pair).
    oracle : callable or None
        For ``expected=None`` cases that nibabel cannot open (Zarr stores):
        ``oracle(directory) -> Path`` writes a NIfTI file holding what the case must
        read as.

    Examples
    --------
    >>> import tempfile, voxray as vx
    >>> case = CORPUS["nifti1-datatype-unknown"]
    >>> with tempfile.TemporaryDirectory() as d:
    ...     try:
    ...         vx.load(case.build(Path(d)))
    ...     except case.expected as e:
    ...         print(type(e).__name__)
    UnsupportedDataTypeError
    """

    name: str
    description: str
    build: Builder
    expected: type[VoxrayError] | None
    at: Literal["load", "read"] = "load"
    warning: type[Warning] | None = None
    matches: str = ""
    intact: Builder | None = None
    names: str | None = None
    oracle: Builder | None = None


# -- building blocks ---------------------------------------------------------------------

SHAPE = (4, 5, 6)
#: An oblique affine (rotation about z, non-unit zooms, an offset): a fallback to the
#: wrong transform cannot go unnoticed.
AFFINE = np.array(
    [
        [1.8, -0.6, 0.0, -40.0],
        [0.6, 1.8, 0.0, -50.0],
        [0.0, 0.0, 2.5, -20.0],
        [0.0, 0.0, 0.0, 1.0],
    ]
)


def _array(shape=SHAPE, dtype=np.int16) -> np.ndarray:
    return ((np.arange(int(np.prod(shape))) % 251) + 1).astype(dtype).reshape(shape)


def _save(img, path: Path) -> Path:
    img.to_filename(str(path))
    return path


def _nifti(
    directory: Path,
    name: str = "x.nii",
    cls: type = nib.Nifti1Image,
    *,
    shape=SHAPE,
    dtype=np.int16,
    qform: int = 1,
    sform: int = 1,
) -> Path:
    img = cls(_array(shape, dtype), AFFINE)
    img.header.set_qform(AFFINE, code=qform)
    img.header.set_sform(AFFINE, code=sform)
    return _save(img, directory / name)


def _field(header_cls, field: str, index: int = 0) -> tuple[int, np.dtype]:
    """Byte offset and element dtype of ``field[index]`` in a header."""
    dtype = header_cls.template_dtype
    fdtype, offset = dtype.fields[field][:2]
    if fdtype.subdtype is not None:
        base = fdtype.subdtype[0]
        return offset + index * base.itemsize, base
    return offset, fdtype


def _patch_bytes(data: bytearray, header_cls, field: str, value, index: int = 0) -> None:
    offset, dtype = _field(header_cls, field, index)
    raw = np.asarray(value).astype(dtype).tobytes() if dtype.kind != "S" else value
    data[offset : offset + len(raw)] = raw


def _edit(path: Path, change: Callable[[bytearray], object]) -> Path:
    """Apply ``change`` to the file's (decompressed, if ``.gz``) bytes, in place."""
    gz = path.name.endswith(".gz")
    data = bytearray(gzip.decompress(path.read_bytes()) if gz else path.read_bytes())
    change(data)
    path.write_bytes(gzip.compress(bytes(data), mtime=0) if gz else bytes(data))
    return path


def _patched(base: Builder, header_cls, **fields) -> tuple[Builder, Builder]:
    """(build, intact): ``base`` with header ``fields`` patched in place.

    ``field=value`` sets a scalar field (or element 0), ``field=(i, value)`` element ``i``
    of an array field, ``field_all=(v0, v1, ...)`` its elements from 0 on.
    """

    def change(data: bytearray) -> None:
        for key, value in fields.items():
            if key.endswith("_all"):
                for i, v in enumerate(value):
                    _patch_bytes(data, header_cls, key[:-4], v, i)
            elif isinstance(value, tuple):
                _patch_bytes(data, header_cls, key, value[1], value[0])
            else:
                _patch_bytes(data, header_cls, key, value)

    return (lambda d: _edit(base(d), change)), base


def _n1(d: Path) -> Path:
    return _nifti(d)


def _n1_qform_only(d: Path) -> Path:
    return _nifti(d, sform=0)


def _n1_ext(d: Path) -> Path:
    """A .nii with one 32-byte comment extension (esize 32 at byte 352)."""
    img = nib.Nifti1Image(_array(), AFFINE)
    img.header.set_sform(AFFINE, code=1)
    img.header.extensions.append(nib.nifti1.Nifti1Extension(6, b"malformed corpus" * 1))
    return _save(img, d / "x.nii")


def _n1_gz(d: Path) -> Path:
    return _nifti(d, "x.nii.gz", shape=(16, 16, 8, 3))


def _n2(d: Path) -> Path:
    return _nifti(d, "x2.nii", nib.Nifti2Image)


def _pair(d: Path) -> Path:
    img = nib.Nifti1Pair(_array(), AFFINE)
    img.header.set_sform(AFFINE, code=1)
    _save(img, d / "p.img")
    return d / "p.hdr"


def _analyze(d: Path) -> Path:
    _save(nib.AnalyzeImage(_array(), AFFINE), d / "a.img")
    return d / "a.hdr"


def _rgb(d: Path) -> Path:
    rgb = np.zeros((2, 3, 4), dtype=[("R", "u1"), ("G", "u1"), ("B", "u1")])
    rgb["G"] = _array((2, 3, 4), np.uint8)
    return _save(nib.Nifti1Image(rgb, AFFINE), d / "rgb.nii")


def _truncate(base: Builder, keep: Callable[[int], int], target: str | None = None) -> Builder:
    """``base``, then cut the file (or the named sibling ``target``) to ``keep(size)``."""

    def build(d: Path) -> Path:
        path = base(d)
        victim = d / target if target else path
        victim.write_bytes(victim.read_bytes()[: keep(victim.stat().st_size)])
        return path

    return build


def _raw(name: str, data: bytes) -> Builder:
    def build(d: Path) -> Path:
        (d / name).write_bytes(data)
        return d / name

    return build


def _copy(*names: str) -> Builder:
    """Copy files nibabel ships; returns the first."""

    def build(d: Path) -> Path:
        for n in names:
            shutil.copyfile(NIBABEL_DATA / n, d / n)
        return d / names[0]

    return build


def _then(base: Builder, change: Callable[[Path], object]) -> Builder:
    def build(d: Path) -> Path:
        path = base(d)
        change(path)
        return path

    return build


def _xor(offset: int, mask: int = 0xFF) -> Callable[[Path], None]:
    """Flip the ``mask`` bits of the byte at ``offset`` of a file."""

    def change(path: Path) -> None:
        data = bytearray(path.read_bytes())
        data[offset] ^= mask
        path.write_bytes(bytes(data))

    return change


def _invert(offset: int, length: int) -> Callable[[Path], None]:
    """Invert ``length`` bytes of a file from ``offset``."""

    def change(path: Path) -> None:
        data = bytearray(path.read_bytes())
        for i in range(offset, offset + length):
            data[i] ^= 0xFF
        path.write_bytes(bytes(data))

    return change


def _pack(fmt: str, offset: int, *values) -> Callable[[Path], None]:
    """``struct.pack_into`` on a file."""

    def change(path: Path) -> None:
        data = bytearray(path.read_bytes())
        struct.pack_into(fmt, data, offset, *values)
        path.write_bytes(bytes(data))

    return change


# -- NIfTI-1 -------------------------------------------------------------------------------

N1 = nib.Nifti1Header
N2 = nib.Nifti2Header
AN = nib.AnalyzeHeader


def _ext_changes(**ext) -> Builder:
    """The extension image with its extension fields (esize, flag) rewritten."""

    def change(data: bytearray) -> None:
        if "flag" in ext:
            data[348] = ext["flag"]
        if "esize" in ext:
            struct.pack_into("<i", data, 352, ext["esize"])

    return lambda d: _edit(_n1_ext(d), change)


def _flag_without_extension(d: Path) -> Path:
    """Extension flag 1 at byte 348, vox_offset 352: the 'extension' is the data."""
    return _edit(_n1(d), lambda data: data.__setitem__(348, 1))


def _unaligned_offset(d: Path) -> Path:
    """vox_offset 358 (not a multiple of 16): 6 zero bytes, then the data at 358."""

    def change(data: bytearray) -> None:
        data[352:352] = b"\x00" * 6
        _patch_bytes(data, N1, "vox_offset", 358.0)

    return _edit(_n1(d), change)


def _big_endian_intact(d: Path) -> Path:
    header = nib.Nifti1Header(endianness=">")
    header.set_data_dtype(">i2")
    img = nib.Nifti1Image(_array(), AFFINE, header=header)
    img.header.set_sform(AFFINE, code=1)
    path = _save(img, d / "be.nii")
    if path.read_bytes()[:4] != struct.pack(">i", 348):
        raise AssertionError("nibabel wrote a little-endian header")
    return path


def _big_endian(d: Path) -> Path:
    """A big-endian .nii with datatype 9999 (written big-endian)."""
    path = _big_endian_intact(d)
    data = bytearray(path.read_bytes())
    struct.pack_into(">h", data, 70, 9999)
    path.write_bytes(bytes(data))
    return path


def _cases_nifti1() -> list[Case]:
    out: list[Case] = []
    add = out.append
    add(
        Case(
            "nifti1-empty-file",
            "a zero-length .nii (nibabel: ImageFileError 'Empty file')",
            _raw("x.nii", b""),
            NotAnImageError,
            matches=r"empty|too short|0 bytes",
        )
    )
    add(
        Case(
            "nifti1-ten-bytes",
            "a 10-byte .nii (nibabel: ImageFileError, header too short)",
            _raw("x.nii", b"\x5c\x01\x00\x00" + b"\x00" * 6),
            NotAnImageError,
            matches=r"too short|\b10 bytes",
        )
    )
    add(
        Case(
            "nifti1-truncated-header",
            "a .nii cut to 200 bytes, inside its header (nibabel: ImageFileError)",
            _truncate(_n1, lambda n: 200),
            NotAnImageError,
            matches=r"too short|200 bytes",
            intact=_n1,
        )
    )
    build, intact = _patched(_n1, N1, sizeof_hdr=1000)
    add(
        Case(
            "nifti1-sizeof-hdr",
            "sizeof_hdr 1000 with magic 'n+1' (nibabel: sets it to 348, with a log message,"
            " and reads the image)",
            build,
            None,
            intact=intact,
        )
    )
    build, intact = _patched(_n1, N1, magic=b"abc\x00")
    add(
        Case(
            "nifti1-bad-magic",
            "magic 'abc' where 'n+1' belongs (nibabel: ImageFileError 'Cannot work out file"
            " type')",
            build,
            NotAnImageError,
            matches="magic",
            intact=intact,
        )
    )
    for value, what, nibabel_does in (
        (0, "zero", "loads, reads an empty array of shape (0,): the 240 bytes of voxels vanish"),
        (8, "eight", "guesses the other byte order, then HeaderDataError at load"),
        (-1, "negative", "guesses the other byte order, then HeaderDataError at load"),
    ):
        build, intact = _patched(_n1, N1, dim=(0, value))
        add(
            Case(
                f"nifti1-dim0-{what}",
                f"dim[0] = {value}, outside 1..7 (nibabel: {nibabel_does})",
                build,
                InvalidHeaderError,
                matches=rf"dim\[0\].*{value}|dim.*{value}",
                intact=intact,
            )
        )
    build, intact = _patched(_n1, N1, dim=(2, -5))
    add(
        Case(
            "nifti1-negative-dim",
            "dim[2] = -5 (nibabel: loads, numpy ValueError 'negative count' at the read)",
            build,
            InvalidHeaderError,
            matches=r"dim.*-5",
            intact=intact,
        )
    )
    build, intact = _patched(_n1, N1, dim_all=(7, 32767, 32767, 32767, 32767, 32767, 32767, 32767))
    add(
        Case(
            "nifti1-dims-overflow-int64",
            "dims 32767^7: the byte count overflows int64 (nibabel: loads, OverflowError"
            " from mmap at the read); refused at load, without allocating",
            build,
            TruncatedFileError,
            matches=r"describes \d+ bytes",
            intact=intact,
        )
    )
    build, intact = _patched(_n1, N1, dim_all=(4, 32767, 32767, 32767, 32767))
    add(
        Case(
            "nifti1-dims-exabytes",
            "dims 32767^4 int16 (2 EB) in a 600-byte file (nibabel: loads, MemoryError at"
            " the read); refused at load, without allocating",
            build,
            TruncatedFileError,
            matches=r"holds \d+ bytes",
            intact=intact,
        )
    )
    build, intact = _patched(_n1, N1, datatype=9999)
    add(
        Case(
            "nifti1-datatype-unknown",
            "datatype 9999 (nibabel: HeaderDataError 'data code 9999 not recognized')",
            build,
            UnsupportedDataTypeError,
            matches=r"datatype.*9999|9999",
            intact=intact,
        )
    )
    build, intact = _patched(_n1, N1, bitpix=32)
    add(
        Case(
            "nifti1-bitpix-disagrees",
            "datatype int16 with bitpix 32 (nibabel: trusts datatype, ignores bitpix)",
            build,
            None,
            intact=intact,
        )
    )
    for value, what, nibabel_does in (
        (float("nan"), "nan", "ValueError 'cannot convert float NaN to integer'"),
        (float("inf"), "inf", "OverflowError 'cannot convert float infinity to integer'"),
        (-352.0, "negative", "HeaderDataError 'vox offset -352 too low'"),
    ):
        build, intact = _patched(_n1, N1, vox_offset=value)
        add(
            Case(
                f"nifti1-vox-offset-{what}",
                f"vox_offset {value} (nibabel: {nibabel_does} at load)",
                build,
                InvalidHeaderError,
                matches=r"vox_offset",
                intact=intact,
            )
        )
    build, intact = _patched(_n1, N1, vox_offset=1e9)
    add(
        Case(
            "nifti1-vox-offset-beyond-eof",
            "vox_offset 1e9 in a 600-byte file (nibabel: loads, fails at the read)",
            build,
            TruncatedFileError,
            matches=r"vox_offset|holds \d+ bytes",
            intact=intact,
        )
    )
    add(
        Case(
            "nifti1-vox-offset-unaligned",
            "vox_offset 358, not a multiple of 16, with the data there (nibabel: reads it"
            " at 358, as the offset says)",
            _unaligned_offset,
            None,
            intact=_n1,
        )
    )
    build, intact = _patched(_n1, N1, vox_offset=0.0)
    add(
        Case(
            "nifti1-vox-offset-zero",
            "vox_offset 0 in a single .nii: the data would overlap the header (nibabel:"
            " reads from byte 0, the header's bytes as voxels: 348, 0, 0, ...)",
            build,
            InvalidHeaderError,
            matches=r"vox_offset",
            intact=intact,
        )
    )
    for value, what in ((float("nan"), "nan"), (float("inf"), "inf"), (0.0, "zero")):
        build, intact = _patched(_n1, N1, pixdim=(1, value))
        add(
            Case(
                f"nifti1-pixdim-{what}-with-sform",
                f"pixdim[1] = {value} with a usable sform (nibabel: the affine is the"
                " sform; zooms follow the sform)",
                build,
                None,
                intact=intact,
            )
        )
    for value, what, nibabel_does in (
        (float("nan"), "nan", "the qform's column holds NaN"),
        (0.0, "zero", "sets a zero pixdim to 1 at load, with a log message"),
    ):
        build, intact = _patched(_n1_qform_only, N1, pixdim=(3, value))
        add(
            Case(
                f"nifti1-pixdim-{what}-qform-only",
                f"pixdim[3] = {value} in a qform-only image (nibabel: {nibabel_does})",
                build,
                None,
                intact=intact,
            )
        )
    build, intact = _patched(_n1_qform_only, N1, pixdim=(2, -2.0))
    add(
        Case(
            "nifti1-pixdim-negative-qform",
            "pixdim[2] = -2 in a qform-only image (nibabel: fixes it to its absolute value"
            " at load, with a log message)",
            build,
            None,
            intact=intact,
        )
    )
    build, intact = _patched(_n1_qform_only, N1, quatern_b=0.9, quatern_c=0.9, quatern_d=0.9)
    add(
        Case(
            "nifti1-quaternion-not-unit-qform-only",
            "quatern b, c, d = 0.9 (b²+c²+d² > 1) and no sform (nibabel: ValueError 'w2"
            " should be positive' at load)",
            build,
            InvalidHeaderError,
            matches=r"quatern",
            intact=intact,
        )
    )
    build, intact = _patched(_n1, N1, quatern_b=0.9, quatern_c=0.9, quatern_d=0.9)
    add(
        Case(
            "nifti1-quaternion-not-unit-with-sform",
            "quatern b, c, d = 0.9 with a usable sform (nibabel: the affine is the sform)",
            build,
            None,
            intact=intact,
        )
    )
    build, intact = _patched(_n1, N1, srow_x=(1, float("nan")))
    add(
        Case(
            "nifti1-sform-nan",
            "NaN in srow_x with sform_code 1 (nibabel: loads it, the affine holds the NaN;"
            " voxray fails only where an orientation is needed)",
            build,
            None,
            intact=intact,
        )
    )
    build, intact = _patched(
        _n1, N1, srow_x_all=(0, 0, 0, 0), srow_y_all=(0, 0, 0, 0), srow_z_all=(0, 0, 0, 0)
    )
    add(
        Case(
            "nifti1-sform-all-zero",
            "an all-zero sform with sform_code 1 (nibabel: uses it as the affine)",
            build,
            None,
            intact=intact,
        )
    )
    for value, what in ((float("nan"), "nan"), (float("inf"), "inf"), (0.0, "zero")):
        build, intact = _patched(_n1, N1, scl_slope=value, scl_inter=10.0)
        add(
            Case(
                f"nifti1-scl-slope-{what}",
                f"scl_slope {value}, scl_inter 10 (nibabel: a zero or non-finite slope"
                " means unscaled; the intercept is ignored)",
                build,
                None,
                intact=intact,
            )
        )
    build, intact = _patched(_n1, N1, scl_slope=2.0, scl_inter=float("nan"))
    add(
        Case(
            "nifti1-scl-inter-nan",
            "scl_slope 2 with scl_inter NaN (nibabel: HeaderDataError 'Valid slope but"
            " invalid intercept' at load)",
            build,
            InvalidHeaderError,
            matches=r"scl_inter|intercept",
            intact=intact,
        )
    )
    build, intact = _patched(_rgb, N1, scl_slope=2.0)
    add(
        Case(
            "nifti1-rgb-scaled",
            "scl_slope 2 on RGB24 data (nibabel: loads, numpy UFuncTypeError at the read)",
            build,
            UnsupportedDataTypeError,
            at="read",
            matches=r"scale factor",
            intact=intact,
        )
    )
    add(
        Case(
            "nifti1-extension-esize-not-16",
            "extension esize 20, not a multiple of 16 (nibabel: reads it, warns)",
            _ext_changes(esize=20),
            None,
            intact=_n1_ext,
        )
    )
    add(
        Case(
            "nifti1-extension-esize-negative",
            "extension esize -16 (nibabel: ValueError 'read length must be non-negative' at load)",
            _ext_changes(esize=-16),
            InvalidHeaderError,
            matches=r"esize -16",
            intact=_n1_ext,
        )
    )
    add(
        Case(
            "nifti1-extension-past-the-end",
            "extension esize 1e6, past vox_offset and the file's end (nibabel:"
            " HeaderDataError 'failed to read extension content' at load)",
            _ext_changes(esize=1_000_000),
            InvalidHeaderError,
            matches=r"esize 1000000",
            intact=_n1_ext,
        )
    )
    add(
        Case(
            "nifti1-extension-flag-without-extension",
            "extension flag 1 but vox_offset 352: the 'extension' would be the data"
            " (nibabel: reads no extension past vox_offset)",
            _flag_without_extension,
            None,
            intact=_n1,
        )
    )
    add(
        Case(
            "nifti1-data-short-by-one-byte",
            "the data section one byte short (nibabel: loads, fails at the read); the size"
            " is known at load, so voxray refuses there",
            _truncate(_n1, lambda n: n - 1),
            TruncatedFileError,
            matches=r"holds \d+ bytes",
            intact=_n1,
        )
    )
    build, intact = _patched(_n1, N1, datatype=2304)
    add(
        Case(
            "nifti1-datatype-outgrows-data",
            "datatype 2304 (RGBA32, 4 bytes a voxel) on a file holding int16 data"
            " (nibabel: loads, OSError at the read)",
            build,
            TruncatedFileError,
            matches=r"holds \d+ bytes",
            intact=intact,
        )
    )
    build, intact = _patched(_n1, N1, datatype=0)
    add(
        Case(
            "nifti1-datatype-zero",
            "datatype 0 (DT_UNKNOWN) (nibabel: HeaderDataError at load)",
            build,
            UnsupportedDataTypeError,
            matches=r"datatype.*\b0\b",
            intact=intact,
        )
    )
    build, intact = _patched(
        _n1_qform_only, N1, quatern_b=float("nan"), quatern_c=0.0, quatern_d=0.0
    )
    add(
        Case(
            "nifti1-quaternion-nan-qform-only",
            "quatern_b NaN and no sform (nibabel: loads, the affine holds NaNs; as for a NaN"
            " sform, voxray fails only where an orientation is needed)",
            build,
            None,
            intact=intact,
        )
    )
    build, intact = _patched(_n1, N1, sform_code=0, qform_code=0)
    add(
        Case(
            "nifti1-no-transform",
            "qform_code and sform_code 0 (nibabel: the affine from the pixdims alone)",
            build,
            None,
            intact=intact,
        )
    )
    build, intact = _patched(_n1, N1, sform_code=-7, qform_code=300)
    add(
        Case(
            "nifti1-transform-codes-out-of-range",
            "sform_code -7, qform_code 300, not NIfTI xform codes (nibabel: sets both to 0"
            " at load, with a log message; the affine comes from the pixdims)",
            build,
            None,
            intact=intact,
        )
    )
    build, intact = _patched(_n1, N1, slice_code=250, dim_info=255, xyzt_units=255)
    add(
        Case(
            "nifti1-slice-and-units-garbage",
            "slice_code 250, dim_info 255, xyzt_units 255 (nibabel: ignores them for the data)",
            build,
            None,
            intact=intact,
        )
    )
    build, intact = _patched(_n1, N1, intent_code=3000)
    add(
        Case(
            "nifti1-cifti-intent-on-nifti1",
            "intent_code 3000 (a CIFTI-2 intent) on a NIfTI-1 file without CIFTI XML"
            " (nibabel: a plain Nifti1Image)",
            build,
            None,
            intact=intact,
        )
    )

    def gz_short_header(d: Path) -> Path:
        path = d / "x.nii.gz"
        path.write_bytes(gzip.compress(_n1(d).read_bytes()[:200], mtime=0))
        return path

    add(
        Case(
            "nifti1-gz-header-truncated",
            "a .nii.gz whose stream ends 200 bytes in, inside the header (nibabel:"
            " ImageFileError)",
            gz_short_header,
            NotAnImageError,
            matches=r"too short|200 bytes",
        )
    )

    add(
        Case(
            "nifti1-big-endian-datatype-unknown",
            "a big-endian .nii with datatype 9999 (nibabel: HeaderDataError)",
            _big_endian,
            UnsupportedDataTypeError,
            matches=r"9999",
            intact=_big_endian_intact,
        )
    )
    return out


# -- NIfTI-2 -------------------------------------------------------------------------------


def _cases_nifti2() -> list[Case]:
    out: list[Case] = []
    build, intact = _patched(_n2, N2, magic=b"n+9\x00")
    out.append(
        Case(
            "nifti2-bad-magic",
            "NIfTI-2 sizeof_hdr 540 with magic 'n+9' (nibabel: HeaderDataError 'magic"
            " string is not valid' at load)",
            build,
            InvalidHeaderError,
            matches=r"magic",
            intact=intact,
        )
    )
    build, intact = _patched(_n2, N2, dim_all=(3, 100_000, 100_000, 100_000))
    out.append(
        Case(
            "nifti2-dims-1e15-voxels",
            "dims 10^5 x 10^5 x 10^5 (10^15 int16 voxels) in a 1 kB file (nibabel: loads,"
            " MemoryError at the read); refused at load, nothing allocated",
            build,
            TruncatedFileError,
            matches=r"holds \d+ bytes",
            intact=intact,
        )
    )
    build, intact = _patched(_n2, N2, dim_all=(3, 2**40, 2**40, 2**40))
    out.append(
        Case(
            "nifti2-dims-overflow-int64",
            "dims 2^40 cubed: the voxel count overflows int64 (nibabel: loads, OverflowError"
            " at the read); refused at load",
            build,
            TruncatedFileError,
            matches=r"describes \d+ bytes",
            intact=intact,
        )
    )
    build, intact = _patched(_n2, N2, vox_offset=-544)
    out.append(
        Case(
            "nifti2-vox-offset-negative",
            "NIfTI-2 vox_offset -544 (nibabel: HeaderDataError 'too low' at load)",
            build,
            InvalidHeaderError,
            matches=r"vox_offset",
            intact=intact,
        )
    )
    build, intact = _patched(_n2, N2, datatype=1234)
    out.append(
        Case(
            "nifti2-datatype-unknown",
            "NIfTI-2 datatype 1234 (nibabel: HeaderDataError)",
            build,
            UnsupportedDataTypeError,
            matches=r"1234",
            intact=intact,
        )
    )
    return out


# -- pairs and Analyze ---------------------------------------------------------------------


def _cases_pairs() -> list[Case]:
    out: list[Case] = []
    out.append(
        Case(
            "pair-missing-img",
            "p.hdr without p.img (nibabel: loads, FileNotFoundError at the read)",
            _then(_pair, lambda p: p.with_suffix(".img").unlink()),
            ImageNotFoundError,
            matches=r"missing|not found|no such",
            intact=_pair,
            names="p.img",
        )
    )
    out.append(
        Case(
            "pair-img-too-short",
            "p.img half the size the header describes (nibabel: loads, fails at the read)",
            _truncate(_pair, lambda n: n // 2, target="p.img"),
            TruncatedFileError,
            matches=r"holds \d+ bytes",
            intact=_pair,
            names="p.img",
        )
    )
    build, intact = _patched(_pair, N1, vox_offset=-100.0)
    out.append(
        Case(
            "pair-vox-offset-negative",
            "a pair's vox_offset -100 (nibabel: loads, OverflowError from mmap at the read)",
            build,
            InvalidHeaderError,
            matches=r"vox_offset|negative",
            intact=intact,
        )
    )
    build, intact = _patched(_pair, N1, dim=(1, 0))
    out.append(
        Case(
            "pair-zero-dim",
            "a pair with dim[1] = 0: a zero-length axis, a valid (empty) array shape; the"
            " .img may hold more than the header describes (nibabel: reads it empty)",
            build,
            None,
            intact=intact,
        )
    )
    build, intact = _patched(_analyze, AN, orient=b"9")
    out.append(
        Case(
            "analyze-bad-orient",
            "Analyze orient '9', not one of 0..5 (nibabel: ignores orient)",
            build,
            None,
            intact=intact,
        )
    )
    build, intact = _patched(_analyze, AN, datatype=77)
    out.append(
        Case(
            "analyze-datatype-unknown",
            "Analyze datatype 77 (nibabel: HeaderDataError)",
            build,
            UnsupportedDataTypeError,
            matches=r"77",
            intact=intact,
        )
    )
    build, intact = _patched(_analyze, AN, dim=(3, -1))
    out.append(
        Case(
            "analyze-negative-dim",
            "Analyze dim[3] = -1 (nibabel: loads, OverflowError from mmap at the read)",
            build,
            InvalidHeaderError,
            matches=r"dim.*-1",
            intact=intact,
        )
    )
    build, intact = _patched(_analyze, AN, vox_offset=4096.0)
    out.append(
        Case(
            "analyze-vox-offset-beyond-img",
            "Analyze vox_offset 4096 with a 240-byte .img (nibabel: loads, OSError at the read)",
            build,
            TruncatedFileError,
            matches=r"offset 4096",
            intact=intact,
            names="a.img",
        )
    )
    build, intact = _patched(_pair, N1, magic=b"n+1\x00")
    out.append(
        Case(
            "pair-single-file-magic",
            "a pair's .hdr with the single-file magic 'n+1' (nibabel: reads the pair,"
            " data from the .img at vox_offset 0)",
            build,
            None,
            intact=intact,
        )
    )
    out.append(
        Case(
            "pair-header-named-nii",
            "a pair's 348-byte .hdr (magic 'ni1', vox_offset 0) renamed .nii: its data is"
            " elsewhere (nibabel: reads the header's own bytes as voxels, 348, 3, ...)",
            _renamed(_pair, "p.nii"),
            InvalidHeaderError,
            matches=r"vox_offset.*0",
            intact=_pair,
        )
    )
    out.append(
        Case(
            "pair-img-gz-truncated",
            "a gzipped pair whose p.img.gz lost its last 30 bytes (nibabel: loads, OSError"
            " at the read)",
            _truncate(_pair_gz, lambda n: n - 30, target="p.img.gz"),
            CorruptGzipError,
            at="read",
            matches=r"truncated",
            intact=_pair_gz,
            names="p.img.gz",
        )
    )
    return out


def _pair_gz(d: Path) -> Path:
    img = nib.Nifti1Pair(_array(), AFFINE)
    img.header.set_sform(AFFINE, code=1)
    _save(img, d / "p.img.gz")
    return d / "p.hdr.gz"


# -- .nii.gz -------------------------------------------------------------------------------


def _gz_bytes(change: Callable[[bytearray], bytes | None]) -> Builder:
    """The .nii.gz, its compressed bytes changed."""

    def build(d: Path) -> Path:
        path = _n1_gz(d)
        data = bytearray(path.read_bytes())
        new = change(data)
        path.write_bytes(bytes(new if new is not None else data))
        return path

    return build


def _xor_at(data: bytearray, i: int, mask: int = 0xFF) -> None:
    data[i] ^= mask


def _scramble_middle(data: bytearray) -> None:
    for i in range(len(data) // 2, len(data) // 2 + 64):
        data[i] ^= 0x5A


def _cases_gzip() -> list[Case]:
    out: list[Case] = []
    out.append(
        Case(
            "niigz-truncated",
            "the .nii.gz cut at 2/3 of its compressed bytes (nibabel: OSError at the read)",
            _gz_bytes(lambda b: b[: len(b) * 2 // 3]),
            CorruptGzipError,
            at="read",
            matches=r"truncated",
            intact=_n1_gz,
        )
    )
    out.append(
        Case(
            "niigz-bad-crc",
            "CRC-32 in the gzip trailer flipped: the data may be wrong (nibabel:"
            " ImageFileError 'Cannot work out file type' at load)",
            _gz_bytes(lambda b: _xor_at(b, len(b) - 8)),
            CorruptGzipError,
            at="read",
            matches=r"data check|crc",
            intact=_n1_gz,
        )
    )
    out.append(
        Case(
            "niigz-bad-isize",
            "ISIZE in the gzip trailer off by one (nibabel: ImageFileError 'Cannot work out"
            " file type' at load)",
            _gz_bytes(lambda b: _xor_at(b, len(b) - 1, 0x01)),
            CorruptGzipError,
            at="read",
            matches=r"length check|isize",
            intact=_n1_gz,
        )
    )
    out.append(
        Case(
            "niigz-trailing-garbage",
            "eight bytes of garbage after the gzip stream (nibabel: reads the image and"
            " never looks past it)",
            _gz_bytes(lambda b: bytes(b) + b"garbage!"),
            None,
            warning=TrailingDataWarning,
            intact=_n1_gz,
        )
    )
    out.append(
        Case(
            "niigz-garbage-then-valid",
            "100 bytes of garbage, then a valid gzip stream (nibabel: ImageFileError 'is"
            " not a gzip file'); the message must say it is not gzip",
            _gz_bytes(lambda b: b"\x00garbage" * 12 + b"...." + bytes(b)),
            NotAnImageError,
            matches=r"gzip",
            intact=_n1_gz,
        )
    )
    out.append(
        Case(
            "niigz-deflate-damaged",
            "64 bytes in the middle of the deflate data scrambled (nibabel: ImageFileError"
            " 'Cannot work out file type' at load)",
            _gz_bytes(_scramble_middle),
            CorruptGzipError,
            at="read",
            matches=r"compressed byte \d+",
            intact=_n1_gz,
        )
    )

    def more_volumes(d: Path) -> Path:
        path = _n1_gz(d)
        return _edit(path, lambda data: _patch_bytes(data, N1, "dim", 6, 4))

    out.append(
        Case(
            "niigz-dims-lie",
            "the header claims 6 volumes, the stream holds 3 (nibabel: loads, fails at the"
            " read); the stream's length is known only when decompressed",
            more_volumes,
            TruncatedFileError,
            at="read",
            matches=r"holds \d+ decompressed bytes",
            intact=_n1_gz,
        )
    )

    def overflowing_dims(d: Path) -> Path:
        def change(data: bytearray) -> None:
            for i, n in enumerate((7, 32767, 32767, 32767, 32767, 32767, 32767, 32767)):
                _patch_bytes(data, N1, "dim", n, i)

        return _edit(_n1_gz(d), change)

    out.append(
        Case(
            "niigz-dims-overflow-int64",
            "dims 32767^7 in a .nii.gz (nibabel: loads, OverflowError at the read);"
            " refused at load: no gzip stream of that size can hold it",
            overflowing_dims,
            TruncatedFileError,
            matches=r"gzip stream of \d+ bytes",
            intact=_n1_gz,
        )
    )

    def zero_length_member(d: Path) -> Path:
        path = _n1_gz(d)
        path.write_bytes(gzip.compress(b"", mtime=0))
        return path

    out.append(
        Case(
            "niigz-empty-stream",
            "a valid gzip stream of zero bytes (nibabel: ImageFileError, header too short)",
            zero_length_member,
            NotAnImageError,
            matches=r"empty|too short|0 bytes",
            intact=_n1_gz,
        )
    )

    def offset_past_stream(d: Path) -> Path:
        return _edit(_n1_gz(d), lambda data: _patch_bytes(data, N1, "vox_offset", 1e9))

    out.append(
        Case(
            "niigz-vox-offset-beyond-stream",
            "vox_offset 1e9 in a 1.5 kB .nii.gz (nibabel: loads, OSError at the read);"
            " refused at load: no gzip stream that size holds that much",
            offset_past_stream,
            TruncatedFileError,
            matches=r"offset 1000000000",
            intact=_n1_gz,
        )
    )
    out.append(
        Case(
            "niigz-not-compressed",
            "a plain .nii's bytes named .nii.gz (nibabel: ImageFileError 'is not a gzip"
            " file'); voxray knows the content by its first bytes and reads it: the data"
            " cannot be wrong, so this is tolerated",
            _renamed(_n1, "y.nii.gz"),
            None,
            intact=_n1,
            oracle=_n1,
        )
    )
    out.append(
        Case(
            "nifti1-gzip-named-nii",
            "a gzip-compressed .nii named .nii (nibabel: ImageFileError 'Cannot work out"
            " file type'); read by its gzip magic, tolerated as above",
            _gzipped(_n1, "y.nii"),
            None,
            intact=_n1,
            oracle=_n1,
        )
    )
    return out


def _renamed(base: Builder, name: str) -> Builder:
    """``base``'s file under another name (its bytes unchanged)."""

    def build(d: Path) -> Path:
        return base(d).rename(d / name)

    return build


def _gzipped(base: Builder, name: str) -> Builder:
    """``base``'s file gzip-compressed, under ``name``."""

    def build(d: Path) -> Path:
        path = base(d)
        (d / name).write_bytes(gzip.compress(path.read_bytes(), mtime=0))
        path.unlink()
        return d / name

    return build


# -- NIfTI-Zarr ----------------------------------------------------------------------------

ZSHAPE = (8, 8, 8)


def _zarr_array() -> np.ndarray:
    """Nonzero where i < 4 only: the chunks over i >= 4 are empty, and to_zarr (zarr's
    default) does not write all-fill-value chunks."""
    arr = np.zeros(ZSHAPE, np.int16)
    arr[:4] = _array((4, 8, 8))
    return arr


@functools.cache
def _zarr_files() -> tuple[tuple[str, bytes], ...]:
    """The files of the undamaged store, written once by ``vx.to_zarr`` per process."""
    import tempfile

    from ..image import Image
    from ..open import to_zarr

    with tempfile.TemporaryDirectory() as tmp:
        store = Path(tmp) / "bad.nii.zarr"
        to_zarr(Image(_zarr_array(), AFFINE), str(store), chunks=(4, 4, 4), levels=1)
        files = sorted(p for p in store.rglob("*") if p.is_file())
        return tuple((str(p.relative_to(store)), p.read_bytes()) for p in files)


def _zarr(d: Path) -> Path:
    """A small NIfTI-Zarr store written by ``vx.to_zarr`` (one level, 4x4x4 chunks)."""
    store = d / "bad.nii.zarr"
    for name, data in _zarr_files():
        (store / name).parent.mkdir(parents=True, exist_ok=True)
        (store / name).write_bytes(data)
    return store


def _zarr_json(path_in_store: str, change: Callable[[dict], object]) -> Builder:
    def build(d: Path) -> Path:
        store = _zarr(d)
        doc = store / path_in_store
        meta = json.loads(doc.read_text())
        change(meta)
        doc.write_text(json.dumps(meta))
        return store

    return build


def _data_chunks(store: Path) -> list[Path]:
    return sorted(p for p in (store / "0" / "c").rglob("*") if p.is_file())


def _without_chunk(base: Builder) -> Builder:
    def build(d: Path) -> Path:
        store = base(d)
        (store / "0" / "c" / "0" / "0" / "0").unlink()
        return store

    return build


def _nifti_chunk(store: Path) -> Path:
    return next(p for p in sorted((store / "nifti" / "c").rglob("*")) if p.is_file())


def _zarr_missing_chunk_oracle(d: Path) -> Path:
    arr = _zarr_array()
    arr[:4, :4, :4] = 0  # Zarr chunk c/0/0/0 is (z, y, x) = k, j, i in 0..3
    img = nib.Nifti1Image(arr, AFFINE)
    return _save(img, d / "oracle.nii")


def _cases_zarr() -> list[Case]:
    out: list[Case] = []

    def not_json(d: Path) -> Path:
        store = _zarr(d)
        (store / "zarr.json").write_bytes(b"{{{ not json")
        return store

    out.append(
        Case(
            "zarr-root-json-not-json",
            "the store's zarr.json is not JSON (nibabel: cannot read Zarr)",
            not_json,
            CorruptStoreError,
            matches=r"zarr\.json|json",
            intact=_zarr,
        )
    )
    out.append(
        Case(
            "zarr-shape-x10",
            "the array's zarr.json shape is 10x the NIfTI header's: reads past the data"
            " would give fill values",
            _zarr_json(
                "0/zarr.json", lambda m: m.__setitem__("shape", [n * 10 for n in m["shape"]])
            ),
            InvalidHeaderError,
            matches=r"shape",
            intact=_zarr,
        )
    )
    out.append(
        Case(
            "zarr-dtype-differs",
            "the array's data_type float64, the NIfTI header's int16",
            _zarr_json("0/zarr.json", lambda m: m.__setitem__("data_type", "float64")),
            InvalidHeaderError,
            matches=r"dtype|data_type|float64",
            intact=_zarr,
        )
    )

    def unmarked(d: Path) -> Path:
        """A store as a writer that omits empty chunks leaves it (no voxray.all_chunks)."""
        import zarr

        store = _zarr(d)
        level = zarr.open_array(str(store / "0"), mode="r+")
        attrs = dict(level.attrs.get("voxray") or {})
        attrs.pop("all_chunks", None)
        level.attrs["voxray"] = attrs
        return store

    out.append(
        Case(
            "zarr-missing-chunk-unmarked",
            "a chunk missing from an array not marked voxray.all_chunks (a writer that omits"
            " all-zero chunks, as Zarr allows): Zarr defines it as the fill value, zeros",
            _without_chunk(unmarked),
            None,
            intact=unmarked,
            oracle=_zarr_missing_chunk_oracle,
        )
    )

    out.append(
        Case(
            "zarr-missing-chunk",
            "a chunk deleted from a store vx.to_zarr wrote: it writes every chunk (all-zero"
            " ones too) and marks the arrays voxray.all_chunks, so the chunk is lost, not"
            " empty",
            _without_chunk(_zarr),
            CorruptStoreError,
            at="read",
            matches=r"chunk",
            intact=_zarr,
        )
    )

    out.append(
        Case(
            "zarr-codec-byte-order-edited",
            "the level's bytes codec edited to big-endian after writing: the stored bytes"
            " would read as other values; its voxray.signature says little",
            _zarr_json(
                "0/zarr.json",
                lambda m: m["codecs"][0]["configuration"].__setitem__("endian", "big"),
            ),
            CorruptStoreError,
            matches=r"endian|big|signature|changed",
            intact=_zarr,
        )
    )

    def flipped_chunk(d: Path) -> Path:
        store = _zarr(d)
        chunk = _data_chunks(store)[0]
        data = bytearray(chunk.read_bytes())
        for i in range(10, len(data) - 4, 7):
            data[i] ^= 0xFF
        chunk.write_bytes(bytes(data))
        return store

    out.append(
        Case(
            "zarr-chunk-bytes-flipped",
            "bytes of a compressed chunk flipped: the codec cannot decode it",
            flipped_chunk,
            CorruptStoreError,
            at="read",
            matches=r"chunk|decode",
            intact=_zarr,
        )
    )

    def nifti_chunk_damaged(d: Path) -> Path:
        store = _zarr(d)
        _nifti_chunk(store).write_bytes(b"\x00" * 40)
        return store

    out.append(
        Case(
            "zarr-nifti-header-damaged",
            "the nifti header array's (uncompressed, 348-byte) chunk replaced by 40 bytes:"
            " it cannot be decoded to the array's shape",
            nifti_chunk_damaged,
            CorruptStoreError,
            matches=r"nifti|header",
            intact=_zarr,
        )
    )

    def nifti_chunk_garbage(d: Path) -> Path:
        store = _zarr(d)
        _nifti_chunk(store).write_bytes(b"\x07" * 348)
        return store

    out.append(
        Case(
            "zarr-nifti-header-garbage",
            "the nifti header array holds 348 bytes that are no NIfTI header (sizeof_hdr,"
            " magic wrong)",
            nifti_chunk_garbage,
            InvalidHeaderError,
            matches=r"nifti.*header",
            intact=_zarr,
        )
    )

    def nifti_negative_dim(d: Path) -> Path:
        store = _zarr(d)
        chunk = _nifti_chunk(store)
        data = bytearray(chunk.read_bytes())
        _patch_bytes(data, N1, "dim", -3, 1)
        chunk.write_bytes(bytes(data))
        return store

    out.append(
        Case(
            "zarr-nifti-header-negative-dim",
            "the store's NIfTI header has dim[1] = -3",
            nifti_negative_dim,
            InvalidHeaderError,
            matches=r"dim.*-3",
            intact=_zarr,
        )
    )

    def nifti_missing(d: Path) -> Path:
        store = _zarr(d)
        shutil.rmtree(store / "nifti")
        return store

    out.append(
        Case(
            "zarr-nifti-header-missing",
            "the nifti header array deleted from a store whose zarr.json says nifti_zarr:"
            " true; OME-Zarr's scale and translation cannot hold the rotation or origin",
            nifti_missing,
            CorruptStoreError,
            matches=r"nifti",
            intact=_zarr,
        )
    )

    def nifti_json_damaged(d: Path) -> Path:
        store = _zarr(d)
        (store / "nifti" / "zarr.json").write_bytes(b'{"zarr_format": 3, "shape": [')
        return store

    out.append(
        Case(
            "zarr-nifti-json-not-json",
            "the nifti header array's zarr.json cut mid-document",
            nifti_json_damaged,
            CorruptStoreError,
            matches=r"nifti|json",
            intact=_zarr,
        )
    )
    return out


# -- other formats -------------------------------------------------------------------------


def _mgh(d: Path) -> Path:
    img = nib.MGHImage(_array(dtype=np.float32), AFFINE)
    return _save(img, d / "x.mgh")


def _mgz(d: Path) -> Path:
    img = nib.MGHImage(_array((16, 16, 16), np.float32), AFFINE)
    return _save(img, d / "x.mgz")


MGH = nib.freesurfer.mghformat.MGHHeader


def _par_without(field: str) -> Builder:
    def build(d: Path) -> Path:
        par = _copy("phantom_EPI_asc_CLEAR_2_1.PAR", "phantom_EPI_asc_CLEAR_2_1.REC")(d)
        lines = par.read_bytes().split(b"\n")
        par.write_bytes(b"\n".join(line for line in lines if field.encode() not in line))
        return par

    return build


_PAR = ("phantom_EPI_asc_CLEAR_2_1.PAR", "phantom_EPI_asc_CLEAR_2_1.REC")


def _par_first_row(edit: Callable[[list[str]], list[str]]) -> Builder:
    """The phantom PAR/REC with the first row of its image table edited (as a list of
    columns: slice, echo, dynamic, phase, type, sequence, index, pixel bits, scan
    percentage, recon x, recon y, rescale intercept, rescale slope, scale slope, ...)."""

    def build(d: Path) -> Path:
        par = _copy(*_PAR)(d)
        lines = par.read_bytes().split(b"\n")
        i = next(n for n, line in enumerate(lines) if line.strip()[:1].isdigit())
        lines[i] = " ".join(edit(lines[i].decode().split())).encode()
        par.write_bytes(b"\n".join(lines))
        return par

    return build


def _set_column(column: int, value: str) -> Callable[[list[str]], list[str]]:
    return lambda cols: [*cols[:column], value, *cols[column + 1 :]]


_AFNI = ("scaled+tlrc.HEAD", "scaled+tlrc.BRIK")


def _afni_head(name: str) -> Builder:
    """nibabel's damaged HEAD, beside a copy of a BRIK of the right size (example4d's
    BRIK is gzipped: the HEAD's BRICK sizes decide what a BRIK must hold)."""

    def build(d: Path) -> Path:
        head = _copy(name)(d)
        shutil.copyfile(
            NIBABEL_DATA / "example4d+orig.BRIK.gz", d / name.replace("HEAD", "BRIK.gz")
        )
        return head

    return build


def _replace_in_file(old: bytes, new: bytes, after: str) -> Callable[[Path], None]:
    """Replace the first ``old`` after the text ``after`` in a file."""

    def change(path: Path) -> None:
        data = path.read_bytes()
        start = data.index(after.encode())
        i = data.index(old, start)
        path.write_bytes(data[:i] + new + data[i + len(old) :])

    return change


def _drop_attribute(name: str) -> Callable[[Path], None]:
    """Remove one ``type = ...`` / ``name = NAME`` / ``count`` / values block of a HEAD."""

    def change(path: Path) -> None:
        blocks = path.read_text().split("\n\n")
        path.write_text("\n\n".join(b for b in blocks if f"name = {name}\n" not in b + "\n"))

    return change


def _cases_other() -> list[Case]:
    out: list[Case] = []
    build, intact = _patched(_mgh, MGH, type=7)
    out.append(
        Case(
            "mgh-bad-dtype",
            "MGH type code 7, not one of 0, 1, 3, 4, 10 (nibabel: KeyError 7 at load)",
            build,
            UnsupportedDataTypeError,
            matches=r"type code 7",
            intact=intact,
        )
    )
    out.append(
        Case(
            "mgh-truncated",
            "the .mgh cut 100 bytes into its data (nibabel: loads, fails at the read)",
            _truncate(_mgh, lambda n: 284 + 100),
            TruncatedFileError,
            matches=r"holds \d+ bytes",
            intact=_mgh,
        )
    )
    build, intact = _patched(_mgh, MGH, dims_all=(100_000, 100_000, 100_000, 1))
    out.append(
        Case(
            "mgh-dims-lie",
            "MGH dims 10^5 cubed float32 in a 1 kB file (nibabel: OSError EINVAL at load);"
            " refused at load, nothing allocated",
            build,
            TruncatedFileError,
            matches=r"holds \d+ bytes",
            intact=intact,
        )
    )
    build, intact = _patched(_mgh, MGH, version=2)
    out.append(
        Case(
            "mgh-version-2",
            "MGH version 2, not 1 (nibabel: HeaderDataError 'Unknown MGH format version')",
            build,
            NotAnImageError,
            matches=r"version.*2",
            intact=intact,
        )
    )
    build, intact = _patched(_mgh, MGH, dims=(1, -5))
    out.append(
        Case(
            "mgh-negative-dim",
            "MGH dims[1] = -5 (nibabel: loads, numpy fails at the read)",
            build,
            InvalidHeaderError,
            matches=r"-5",
            intact=intact,
        )
    )
    out.append(
        Case(
            "mgz-not-compressed",
            "a plain .mgh's bytes named .mgz (nibabel: ZranError at the read); read by"
            " its first bytes, tolerated: the data cannot be wrong",
            _renamed(_mgh, "x.mgz"),
            None,
            intact=_mgh,
            oracle=_mgh,
        )
    )
    out.append(
        Case(
            "mgz-truncated",
            "the .mgz cut at half its compressed bytes (nibabel: loads, OSError at the"
            " read); voxray reads the footer after the data at load, so it fails there",
            _truncate(_mgz, lambda n: n // 2),
            CorruptGzipError,
            matches=r"truncated",
            intact=_mgz,
        )
    )
    out.append(
        Case(
            "minc1-bad-magic",
            "MINC1 netCDF magic 'CDF' damaged to 'CDX' (nibabel: cannot work out the type)",
            _then(_copy("tiny.mnc"), _xor(2, ord("F") ^ ord("X"))),
            NotAnImageError,
            matches=r"magic|not a|netcdf|hdf5",
            intact=_copy("tiny.mnc"),
        )
    )
    out.append(
        Case(
            "minc1-truncated",
            "MINC1 cut to half its bytes (nibabel: ValueError 'cannot reshape' at load)",
            _truncate(_copy("tiny.mnc"), lambda n: n // 2),
            TruncatedFileError,
            matches=r"truncated",
            intact=_copy("tiny.mnc"),
        )
    )
    out.append(
        Case(
            "minc2-bad-dimension",
            "nibabel's minc2_baddim.mnc: dimension variables without the attributes nibabel"
            " expects (nibabel: reads it with a UserWarning, default step and start)",
            _copy("minc2_baddim.mnc"),
            None,
        )
    )
    out.append(
        Case(
            "minc2-truncated",
            "MINC2 (HDF5) cut to 2 kB (nibabel: OSError from h5py at load)",
            _truncate(_copy("small.mnc"), lambda n: 2048),
            TruncatedFileError,
            matches=r"truncated",
            intact=_copy("small.mnc"),
        )
    )
    out.append(
        Case(
            "minc1-dimension-name-damaged",
            "tiny.mnc with a netCDF name length at byte 40 set to 2^31-1, garbling the"
            " dimension names (nibabel: KeyError at load)",
            _then(_copy("tiny.mnc"), _pack(">i", 40, 0x7FFFFFFF)),
            MincHeaderError,
            matches=r"MINC",
            intact=_copy("tiny.mnc"),
        )
    )
    out.append(
        Case(
            "minc1-no-attributes",
            "nibabel's minc1-no-att.mnc: dimension variables without step/start attributes"
            " (nibabel: reads it with defaults)",
            _copy("minc1-no-att.mnc"),
            None,
        )
    )
    out.append(
        Case(
            "minc2-no-attributes",
            "nibabel's minc2-no-att.mnc: the MINC2 form of the same (nibabel: reads it)",
            _copy("minc2-no-att.mnc"),
            None,
        )
    )
    out.append(
        Case(
            "minc2-superblock-damaged",
            "small.mnc with 16 bytes of its HDF5 superblock inverted at byte 48 (nibabel:"
            " OSError from h5py at load)",
            _then(_copy("small.mnc"), _invert(48, 16)),
            NotAnImageError,
            matches=r"HDF5",
            intact=_copy("small.mnc"),
        )
    )
    out.append(
        Case(
            "minc2-object-header-damaged",
            "small.mnc with 16 bytes of an HDF5 object header inverted at byte 800"
            " (nibabel: KeyError 'bad object header version number' at load)",
            _then(_copy("small.mnc"), _invert(800, 16)),
            MincHeaderError,
            matches=r"MINC",
            intact=_copy("small.mnc"),
        )
    )
    out.append(
        Case(
            "afni-bad-datatype",
            "nibabel's bad_datatype+orig.HEAD: BRICK_TYPES names no dtype (nibabel:"
            " AFNIImageError)",
            _afni_head("bad_datatype+orig.HEAD"),
            AFNIDataTypeError,
            matches=r"BRICK_TYPES|datatype|dtype",
        )
    )
    out.append(
        Case(
            "afni-bad-attribute",
            "nibabel's bad_attribute+orig.HEAD: an attribute that cannot be parsed"
            " (nibabel: AFNIHeaderError)",
            _afni_head("bad_attribute+orig.HEAD"),
            AFNIHeaderError,
            matches=r"attribute|HEAD|parse",
        )
    )
    out.append(
        Case(
            "afni-missing-brik",
            "a HEAD without its BRIK (nibabel: loads, FileNotFoundError at the read)",
            _then(_copy(*_AFNI), lambda p: (p.parent / _AFNI[1]).unlink()),
            ImageNotFoundError,
            matches=r"missing|not found|no such",
            intact=_copy(*_AFNI),
            names="scaled+tlrc.BRIK",
        )
    )
    out.append(
        Case(
            "afni-brik-truncated",
            "the BRIK cut to half the bytes the HEAD describes (nibabel: loads, fails at"
            " the read)",
            _truncate(_copy(*_AFNI), lambda n: n // 2, target=_AFNI[1]),
            TruncatedFileError,
            matches=r"holds \d+ bytes",
            intact=_copy(*_AFNI),
            names="scaled+tlrc.BRIK",
        )
    )
    out.append(
        Case(
            "afni-brick-types-unknown",
            "scaled+tlrc.HEAD with BRICK_TYPES 9, no AFNI type code (nibabel:"
            " AFNIImageError 'Can't deduce image data type' at load)",
            _then(
                _copy(*_AFNI),
                _replace_in_file(b"count = 1\n 1\n", b"count = 1\n 9\n", "BRICK_TYPES"),
            ),
            AFNIDataTypeError,
            matches=r"BRICK_TYPES",
            intact=_copy(*_AFNI),
        )
    )
    out.append(
        Case(
            "afni-dataset-rank-missing",
            "scaled+tlrc.HEAD without its DATASET_RANK attribute (nibabel: KeyError at load)",
            _then(_copy(*_AFNI), _drop_attribute("DATASET_RANK")),
            AFNIHeaderError,
            matches=r"DATASET_RANK",
            intact=_copy(*_AFNI),
        )
    )
    out.append(
        Case(
            "parrec-missing-field",
            "the PAR's 'Max. number of slices' line removed (nibabel: KeyError at load)",
            _par_without("Max. number of slices/locations"),
            ParrecHeaderError,
            matches=r"slices|field|missing",
            intact=_copy(*_PAR),
        )
    )
    out.append(
        Case(
            "parrec-truncated-recording",
            "nibabel's phantom_truncated.PAR: fewer slices than the header says (nibabel:"
            " PARRECError without permit_truncated)",
            _copy("phantom_truncated.PAR", "phantom_truncated.REC"),
            ParrecHeaderError,
            matches=r"truncat",
        )
    )
    out.append(
        Case(
            "parrec-rec-too-short",
            "the REC cut to half its bytes (nibabel: loads, fails at the read)",
            _truncate(_copy(*_PAR), lambda n: n // 2, target=_PAR[1]),
            TruncatedFileError,
            matches=r"holds \d+ bytes",
            intact=_copy(*_PAR),
            names=_PAR[1],
        )
    )
    out.append(
        Case(
            "parrec-missing-rec",
            "a PAR without its REC (nibabel: FileNotFoundError)",
            _then(_copy(*_PAR), lambda p: (p.parent / _PAR[1]).unlink()),
            ImageNotFoundError,
            matches=r"[Nn]o such file|missing",
            intact=_copy(*_PAR),
            names=_PAR[1],
        )
    )
    out.append(
        Case(
            "parrec-image-row-short",
            "the first image-table row lacks its last 5 columns (nibabel: IndexError at load)",
            _par_first_row(lambda cols: cols[:-5]),
            ParrecHeaderError,
            matches=r"PAR",
            intact=_copy(*_PAR),
        )
    )
    out.append(
        Case(
            "parrec-rescale-intercept-nan",
            "the first slice's rescale intercept NaN (nibabel: reads that slice as NaN,"
            " as the header says)",
            _par_first_row(_set_column(11, "NaN")),
            None,
            intact=_copy(*_PAR),
        )
    )
    out.append(
        Case(
            "ecat-matrix-list-damaged",
            "tinypet.v's first matrix-list entry points its frame to record 10^6 (nibabel's"
            " ecat.load: TypeError 'buffer is too small' at load)",
            _then(_copy("tinypet.v"), _pack(">i", 512 + 16 + 4, 10**6)),
            InvalidHeaderError,
            matches=r"matrix list",
            intact=_copy("tinypet.v"),
        )
    )
    out.append(
        Case(
            "ecat-frame-datatype-unknown",
            "tinypet.v's frame subheader data type 99 (nibabel's ecat.load: KeyError 99 at load)",
            _then(_copy("tinypet.v"), _pack(">h", 1024, 99)),
            UnsupportedDataTypeError,
            matches=r"data type code 99",
            intact=_copy("tinypet.v"),
        )
    )
    out.append(
        Case(
            "ecat-truncated",
            "tinypet.v cut 100 bytes short, inside its only frame (nibabel's ecat.load:"
            " loads, OSError at the read)",
            _truncate(_copy("tinypet.v"), lambda n: n - 100),
            TruncatedFileError,
            matches=r"holds \d+ bytes|truncat",
            intact=_copy("tinypet.v"),
        )
    )
    out.append(
        Case(
            "ecat-header-truncated",
            "tinypet.v cut to 1 kB, inside its subheaders (nibabel's ecat.load: TypeError"
            " 'buffer is too small' at load)",
            _truncate(_copy("tinypet.v"), lambda n: 1024),
            InvalidHeaderError,
            matches=r"truncated",
            intact=_copy("tinypet.v"),
        )
    )
    out.append(
        Case(
            "ecat-bad-magic",
            "tinypet.v with its 'MATRIX' magic overwritten (nibabel: cannot work out the type)",
            _then(
                _copy("tinypet.v"),
                lambda p: _edit(p, lambda b: b.__setitem__(slice(0, 6), b"XXXXXX")),
            ),
            NotAnImageError,
            matches=r"magic|not a|MATRIX",
            intact=_copy("tinypet.v"),
        )
    )

    def cifti_xml(d: Path) -> Path:
        path = _copy("row_major.dconn.nii")(d)

        def change(data: bytearray) -> None:
            i = data.find(b"<CIFTI")
            data[i : i + 6] = b"<{{{{{"

        return _edit(path, change)

    out.append(
        Case(
            "cifti-xml-damaged",
            "the CIFTI-2 XML extension made unparseable (nibabel: xml ExpatError at load)",
            cifti_xml,
            InvalidHeaderError,
            matches=r"xml|cifti",
            intact=_copy("row_major.dconn.nii"),
        )
    )
    build, intact = _patched(_copy("row_major.dconn.nii"), N2, dim=(5, 7))
    out.append(
        Case(
            "cifti-dims-disagree-with-xml",
            "the dconn's dim[5] 7 where its XML's brain models count 10 (nibabel: reads"
            " shape (7, 10) with a UserWarning that the shapes disagree; voxray keeps that"
            " tolerance, warning included)",
            build,
            None,
            warning=UserWarning,
            intact=intact,
        )
    )
    out.append(
        Case(
            "cifti-data-short",
            "the dconn cut 8 bytes short of its data (nibabel: loads, OSError at the read)",
            _truncate(_copy("row_major.dconn.nii"), lambda n: n - 8),
            TruncatedFileError,
            matches=r"holds \d+ bytes",
            intact=_copy("row_major.dconn.nii"),
        )
    )
    return out


#: Every malformed case, in order (names are unique: :data:`CORPUS` is keyed by them).
CASES: tuple[Case, ...] = (
    *_cases_nifti1(),
    *_cases_nifti2(),
    *_cases_pairs(),
    *_cases_gzip(),
    *_cases_zarr(),
    *_cases_other(),
)

#: Every malformed case, by name.
CORPUS: dict[str, Case] = {case.name: case for case in CASES}
