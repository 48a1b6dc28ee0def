"""PAR headers: nibabel parses them; this module feeds it the bytes and names the file
in every error.

The PAR file is text (tens of kilobytes): it is read whole through voxray's sources
(local files, open file objects, URLs), decoded as nibabel's text-mode open decodes
it, and handed to ``nibabel.parrec.PARRECHeader.from_fileobj`` with nibabel's own
``permit_truncated`` and ``strict_sort``. nibabel's header then gives everything the
reader needs, as plain values: the image shape, the stored dtype, the REC row of every
output slice (``get_sorted_slice_indices``) and the per-slice scaling
(``get_data_scaling(scaling)``).
"""

from __future__ import annotations

import io
import locale
import warnings

import numpy as np
from nibabel.parrec import PARRECError, PARRECHeader

from ...errors import (
    InputError,
    ParrecHeaderError,
    TruncatedFileError,
    VoxrayError,
)
from ...reader import ArrayLayout
from ...sources import open_source
from .reader import ParrecReader, scaled_dtype

__all__ = ["MAX_PAR_BYTES", "ParrecHeaderError", "make_reader", "parse_par", "read_par"]

#: PAR files longer than this are refused (real ones are well under a megabyte).
MAX_PAR_BYTES = 64 * 2**20

#: First bytes of every PAR file (what :meth:`ParrecFormat.sniff` looks for).
PAR_MAGIC = b"# === DATA DESCRIPTION FILE"

SCALINGS = ("dv", "fp")


def read_par(spec, name: str) -> bytes:
    """The whole PAR file behind ``spec``."""
    src = open_source(spec)
    size = src.size
    if size is not None and size > MAX_PAR_BYTES:
        raise ParrecHeaderError(
            f"{name!r} has {size} bytes; a PAR header is text of at most {MAX_PAR_BYTES} bytes"
        )
    return src.read_prefix(MAX_PAR_BYTES)


def parse_par(
    data: bytes | str, name: str, *, permit_truncated: bool = False, strict_sort: bool = False
) -> PARRECHeader:
    """nibabel's ``PARRECHeader`` of PAR text, every failure a :class:`ParrecHeaderError`.

    Examples
    --------
    >>> from voxray.testing import NIBABEL_DATA
    >>> par = (NIBABEL_DATA / "phantom_EPI_asc_CLEAR_2_1.PAR").read_bytes()
    >>> parse_par(par, "x.PAR").get_data_shape()
    (64, 64, 9, 3)
    >>> parse_par(b"hello", "bad.PAR")
    Traceback (most recent call last):
    ...
    voxray.errors.ParrecHeaderError: 'bad.PAR' is not a PAR header: ...
    """
    if isinstance(data, bytes):
        if not data.lstrip().startswith(b"#"):
            raise ParrecHeaderError(
                f"{name!r} is not a PAR header: it should start with {PAR_MAGIC.decode()!r}"
            )
        try:  # as nibabel's text-mode open: the locale's encoding, universal newlines
            text = data.decode(locale.getpreferredencoding(False))
        except UnicodeDecodeError as e:
            raise ParrecHeaderError(f"{name!r}: the PAR header is not text ({e})") from None
    else:
        text = data
    try:
        # nibabel's warnings (unknown version, permitted truncation) get the file's name
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            header = PARRECHeader.from_fileobj(
                io.StringIO(text, newline=None),
                permit_truncated=permit_truncated,
                strict_sort=strict_sort,
            )
    except VoxrayError:
        raise
    except PARRECError as e:
        raise ParrecHeaderError(f"{name!r}: {e}") from None
    except Exception as e:  # nibabel's parser raises whatever a malformed line causes
        raise ParrecHeaderError(
            f"{name!r}: cannot parse the PAR header ({type(e).__name__}: {e})"
        ) from None
    for w in caught:
        warnings.warn_explicit(f"{name}: {w.message}", w.category, w.filename, w.lineno)
    return header


def make_reader(
    header: PARRECHeader, rec_spec, rec_name: str, scaling: str = "dv"
) -> ParrecReader:
    """The reader of a REC file as nibabel's ``PARRECArrayProxy(rec, header, scaling=)``
    reads it; refuses a REC too short for the slices the image uses."""
    if scaling not in SCALINGS:
        raise InputError(
            f"{rec_name!r}: scaling must be 'dv' (console values) or 'fp' (floating point), "
            f"not {scaling!r}"
        )
    try:
        shape = tuple(int(n) for n in header.get_data_shape())
        raw = np.dtype(header.get_data_dtype())
        rows = tuple(int(r) for r in header.get_sorted_slice_indices())
        with np.errstate(divide="ignore", invalid="ignore"):  # nibabel's values, inf included
            slopes, inters = header.get_data_scaling(scaling)
    except (PARRECError, ValueError, KeyError, IndexError) as e:
        raise ParrecHeaderError(f"{rec_name!r}: the PAR header is inconsistent: {e}") from None
    slopes = np.asarray(slopes).ravel(order="F")
    inters = np.asarray(inters).ravel(order="F")
    row_bytes = shape[0] * shape[1] * raw.itemsize
    needed = (max(rows) + 1) * row_bytes if rows else 0
    size = open_source(rec_spec).size
    if size is not None and size < needed:
        raise TruncatedFileError(
            f"{rec_name!r} holds {size} bytes, but its PAR header describes {len(rows)} slices "
            f"of {shape[0]}x{shape[1]} {raw} (up to REC row {max(rows)}), ending at byte "
            f"{needed}"
        )
    return ParrecReader(
        rec_spec,
        ArrayLayout(shape, scaled_dtype(raw, slopes, inters)),
        raw.str,
        rows,
        tuple(float(v) for v in slopes),
        tuple(float(v) for v in inters),
    )
