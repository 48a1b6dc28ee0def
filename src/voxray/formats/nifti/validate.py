"""The one check between "the bytes of a header" and "an image".

nibabel parses NIfTI-1/2 and Analyze headers and has rules for what it accepts:
its header ``check`` fixes some fields (a zero pixdim becomes 1, an invalid
qform or sform code becomes 0, a vox_offset below the header is raised with a
warning) and refuses others. What it does not check, numpy or Python fails on
later with an error that names neither the file nor the field: ``int(nan)``
for a NaN ``vox_offset``, ``w2 should be positive`` for a quaternion that is
not a rotation, ``read length must be non-negative`` for an extension whose
size is negative, a byte-swapped parse of everything when ``dim[0]`` is out of
range in both byte orders.

:func:`check_raw` runs on the unchecked parse (before nibabel's ``check``
"fixes" anything and before any size in the header is used), :func:`check_parsed`
on nibabel's checked header. Every refusal is an
:class:`~voxray.errors.InvalidHeaderError` (or subclass) naming the file, the
field and its value. Where nibabel has a fallback, voxray takes it: an unusable
qform with a usable sform (nibabel uses the sform), NaN pixdims under an sform,
a NaN or zero ``scl_slope`` (unscaled), NaN pixdims or sform rows when nothing
needs the orientation: those load and read as nibabel reads them, and only the
operations that need an orientation (``as_closest_canonical``, world
coordinates' axis codes) refuse, with an :class:`~voxray.errors.InvalidAffineError`.
"""

from __future__ import annotations

import math
import struct

import numpy as np

from ...errors import InvalidAffineError, InvalidHeaderError, UnsupportedDataTypeError

__all__ = ["check_dtype", "check_extensions", "check_parsed", "check_raw"]

#: ``dim[0]``: the number of dimensions, 0 to 7 (NIfTI-1/2 and Analyze).
MAX_NDIM = 7


def _field(header, name: str):
    return header.get(name, None)


def check_raw(
    header, raw: bytes, name: str, *, single_file: bool = False, data_offset: bool = True
) -> None:
    """Checks on nibabel's *unchecked* parse of the header bytes ``raw``.

    Runs before any size the header gives is used to read or allocate.
    ``data_offset=False`` for a header that does not locate the data (a Zarr
    store's ``nifti`` array): its vox_offset is not used.
    """
    dim = _field(header, "dim")
    if dim is not None:
        # nibabel guesses the byte order from dim[0]; when neither order gives 0-7 it
        # parses the whole header swapped, and every later message is about garbage.
        off = header.template_dtype.fields["dim"][1]
        size = header.template_dtype.fields["dim"][0].base.itemsize
        code = {2: "h", 8: "q"}[size]
        little = struct.unpack_from("<" + code, raw, off)[0]
        big = struct.unpack_from(">" + code, raw, off)[0]
        if not (0 <= little <= MAX_NDIM or 0 <= big <= MAX_NDIM):
            raise InvalidHeaderError(
                f"{name!r}: dim[0] (the number of dimensions) is {little} ({big} read "
                f"big-endian); it must be 0 to {MAX_NDIM}"
            )
        ndim = int(dim[0])
        if ndim == 0 and any(int(n) > 1 for n in dim[1:]):
            # nibabel reads shape (0,): the voxels the other dims describe would vanish.
            raise InvalidHeaderError(
                f"{name!r}: dim[0] (the number of dimensions) is 0, but dim = "
                f"{[int(n) for n in dim]!r} describes voxels; it must be 1 to {MAX_NDIM}"
            )
        dims = [int(n) for n in dim[1 : ndim + 1]]
        if any(n < 0 for n in dims):
            raise InvalidHeaderError(
                f"{name!r}: negative dimension in dim = {[int(n) for n in dim]!r} "
                f"(dim[{1 + next(i for i, n in enumerate(dims) if n < 0)}])"
            )
    offset = _field(header, "vox_offset") if data_offset else None
    if offset is not None:
        value = float(offset)
        if not math.isfinite(value):
            raise InvalidHeaderError(
                f"{name!r}: vox_offset (the data offset) is {value}; it must be a finite "
                f"number of bytes"
            )
        if value < 0:
            raise InvalidHeaderError(
                f"{name!r}: vox_offset (the data offset) is {value}; it cannot be negative"
            )
        if value == 0 and single_file:
            # nibabel's check lets 0 through, then reads the header's own bytes as voxels.
            raise InvalidHeaderError(
                f"{name!r}: vox_offset (the data offset) is 0 in a single-file image: its "
                f"data starts after the header and extension flag, at byte "
                f"{header.template_dtype.itemsize + 4} or later"
            )
    slope, inter = _field(header, "scl_slope"), _field(header, "scl_inter")
    if slope is not None and inter is not None:
        s, i = float(slope), float(inter)
        # nibabel: a NaN or zero slope means "no scaling", whatever the intercept.
        if math.isfinite(s) and s != 0 and not math.isfinite(i):
            raise InvalidHeaderError(
                f"{name!r}: scl_inter is {i} with scl_slope {s}: the intercept of a scaled "
                f"image must be finite"
            )


def check_dtype(header, name: str) -> None:
    """The header's datatype code names a dtype nibabel (and voxray) reads."""
    code = int(header["datatype"]) if "datatype" in header else "?"
    try:
        dtype = header.get_data_dtype()
    except Exception as e:  # HeaderDataError, KeyError, TypeError... from nibabel's tables
        raise UnsupportedDataTypeError(
            f"{name!r}: datatype code {code!r} is not one voxray or nibabel can read ({e})"
        ) from None
    if dtype.kind == "V" and not dtype.fields:  # DT_UNKNOWN, DT_BINARY, float128 here...
        raise UnsupportedDataTypeError(
            f"{name!r}: datatype code {code!r} names no type voxray or nibabel can read "
            f"(nibabel: 'data code {code} not supported')"
        )


def check_extensions(header, hbytes: bytes, name: str, *, single_file: bool) -> None:
    """Walk the extension chain as nibabel will, refusing where nibabel's read would fail.

    For a single file the extensions run from the end of the header to
    ``vox_offset``; for a detached header, to the end of the file. Each extension
    is ``esize`` (int32, the whole extension, at least 8 bytes of which are esize
    and ecode) then its content.
    """
    hsize = header.template_dtype.itemsize
    if len(hbytes) < hsize + 4 or hbytes[hsize : hsize + 1] == b"\x00":
        return  # no extension flag: nibabel reads none
    order = "<" if header.endianness == "<" else ">"
    end = int(header["vox_offset"]) if single_file else len(hbytes)
    pos, index = hsize + 4, 1
    while (end - pos >= 16) if single_file else (pos < end):
        if len(hbytes) - pos < 8:
            raise InvalidHeaderError(
                f"{name!r}: extension {index} at byte {pos} is cut short: {len(hbytes) - pos} "
                f"bytes left where its 8-byte esize and ecode should be"
            )
        esize, ecode = struct.unpack_from(order + "ii", hbytes, pos)
        if esize < 8:
            raise InvalidHeaderError(
                f"{name!r}: extension {index} at byte {pos} (ecode {ecode}) has esize "
                f"{esize}; an extension's size counts its own 8-byte esize and ecode, so it is "
                f"at least 8 (and a multiple of 16)"
            )
        if pos + esize > len(hbytes) or (single_file and pos + esize > end):
            where = f"vox_offset {end}" if single_file else f"the end of the header ({end} bytes)"
            raise InvalidHeaderError(
                f"{name!r}: extension {index} at byte {pos} (ecode {ecode}) has esize {esize}, "
                f"running past {where}"
            )
        pos += esize
        index += 1


def check_parsed(header, name: str) -> np.ndarray:
    """The affine nibabel would give the image, or an error naming the fields it came
    from when nibabel cannot compute one (a qform quaternion that is not a rotation).

    Non-finite or singular affines are *returned*: nibabel loads and reads such
    images; only orientation needs the affine to be usable.
    """
    try:
        return np.asarray(header.get_best_affine(), dtype=np.float64)
    except Exception as e:  # nibabel/numpy on bytes it did not check: ValueError, LinAlgError...
        codes = {k: int(header[k]) for k in ("sform_code", "qform_code") if k in header}
        quat = [float(header[k]) for k in ("quatern_b", "quatern_c", "quatern_d") if k in header]
        if codes.get("sform_code") == 0 and codes.get("qform_code", 0) != 0 and len(quat) == 3:
            norm = sum(q * q for q in quat)
            raise InvalidAffineError(
                f"{name!r}: the qform (qform_code {codes['qform_code']}, used because "
                f"sform_code is 0) cannot be computed: quatern_b, quatern_c, quatern_d = "
                f"({', '.join(f'{q:.6g}' for q in quat)}), whose squares sum to {norm:.6g}; "
                f"a rotation's sum to at most 1 ({e})"
            ) from None
        raise InvalidAffineError(
            f"{name!r}: cannot compute the affine from the header ({codes}): {e}"
        ) from None
