"""From an AFNI file name to its parsed ``.HEAD`` and the layout of its ``.BRIK``.

An AFNI dataset is two files: ``x+orig.HEAD`` (text attributes) and ``x+orig.BRIK``,
optionally gzipped (``x+orig.BRIK.gz``; the HEAD is never compressed). Either name
opens the pair, as in nibabel. nibabel parses the text (``AFNIHeader.from_fileobj``):
this module only reads the HEAD's bytes through a voxray source (local, URL or file
object), turns nibabel's errors into voxray's, finds the BRIK (plain first, then
``.gz``, as nibabel's ``filespec_to_file_map``) and checks that it holds the bytes
the header describes before anything is read.
"""

from __future__ import annotations

import io
import math
from dataclasses import dataclass

import numpy as np
from nibabel import brikhead
from nibabel.brikhead import AFNIHeader
from nibabel.spatialimages import HeaderDataError, ImageDataError

from ...errors import (  # noqa: F401  (re-exported)
    AFNIDataTypeError,
    AFNIHeaderError,
    ImageNotFoundError,
    InvalidHeaderError,
    NotAnImageError,
    TruncatedFileError,
    UnsupportedDataTypeError,
)
from ...reader import ArrayLayout
from ...sources import open_source

__all__ = [
    "MAX_HEAD",
    "AFNIDataTypeError",
    "AFNIHeaderError",
    "AfniInfo",
    "file_names",
    "parse_head",
    "read_header",
]

#: Largest ``.HEAD`` voxray reads (real ones are a few KiB).
MAX_HEAD = 64 * 2**20
#: deflate cannot expand data more than ~1032:1; a header claiming more is lying.
MAX_DEFLATE_RATIO = 1032


@dataclass
class AfniInfo:
    """What reading a HEAD found: nibabel's header, the BRIK and how to read it."""

    header: AFNIHeader
    header_name: str
    image_name: str
    header_spec: object
    data_spec: object
    layout: ArrayLayout
    factors: tuple[float, ...] | None

    @property
    def affine(self) -> np.ndarray:
        return self.header.get_affine()


def file_names(filename: str) -> tuple[str, list[str]]:
    """``(HEAD name, BRIK names to try in order)`` for any name of an AFNI dataset.

    The suffix's case is kept (``.HEAD`` <-> ``.BRIK``, ``.head`` <-> ``.brik``), as
    nibabel's file-name rules do; a URL's query stays on the name it was given with.

    >>> file_names("sub/x+orig.HEAD")
    ('sub/x+orig.HEAD', ['sub/x+orig.BRIK', 'sub/x+orig.BRIK.gz'])
    >>> file_names("x+tlrc.BRIK.gz")
    ('x+tlrc.HEAD', ['x+tlrc.BRIK.gz'])
    """
    path = filename.partition("?")[0]
    lower = path.lower()
    for suffix in (".brik.gz", ".brik", ".head"):
        if lower.endswith(suffix):
            break
    else:
        raise NotAnImageError(
            f"{filename!r} is not an AFNI file name: expected a .HEAD, .BRIK or .BRIK.gz suffix"
        )
    stem, ext = path[: -len(suffix)], path[len(path) - len(suffix) :]
    upper = ext[1:2].isupper()
    head, brik = (".HEAD", ".BRIK") if upper else (".head", ".brik")
    given = filename
    if suffix == ".head":
        return given, [stem + brik, stem + brik + ".gz"]
    if suffix == ".brik":
        return stem + head, [given, stem + brik + ".gz"]
    return stem + head, [given]


def parse_head(data: bytes, name: str) -> AFNIHeader:
    """nibabel's ``AFNIHeader`` of a HEAD's bytes, with voxray's errors."""
    try:
        text = io.TextIOWrapper(io.BytesIO(data), encoding="utf-8")
        return AFNIHeader.from_fileobj(text)
    except UnicodeDecodeError as e:
        raise AFNIHeaderError(f"{name!r} is not an AFNI HEAD text file: {e}") from None
    except brikhead.AFNIImageError as e:
        raise AFNIDataTypeError(
            f"{name!r}: BRICK_TYPES is not one data type voxray or nibabel can read ({e}); "
            f"valid are 0 (uint8), 1 (int16), 3 (float32) and 5 (complex), one for all volumes"
        ) from None
    except (HeaderDataError, ImageDataError) as e:
        raise AFNIHeaderError(f"{name!r}: invalid AFNI header: {e}") from None
    except KeyError as e:
        raise AFNIHeaderError(f"{name!r}: the AFNI header has no attribute {e}") from None
    except (ValueError, TypeError, IndexError) as e:
        raise AFNIHeaderError(f"{name!r}: invalid AFNI header: {e}") from None


def _layout(header: AFNIHeader, name: str) -> tuple[ArrayLayout, tuple[float, ...] | None]:
    """The BRIK's raw layout and per-volume factors, every field checked."""
    info = header.info
    try:
        shape = tuple(int(n) for n in header.get_data_shape())
        header.get_affine()
    except KeyError as e:
        raise AFNIHeaderError(f"{name!r}: the AFNI header has no attribute {e}") from None
    except (ValueError, TypeError, IndexError) as e:
        raise AFNIHeaderError(
            f"{name!r}: invalid DATASET_RANK, DATASET_DIMENSIONS or IJK_TO_DICOM_REAL ({e})"
        ) from None
    if len(shape) != 4 or any(n <= 0 for n in shape):
        raise AFNIHeaderError(
            f"{name!r}: DATASET_DIMENSIONS {info.get('DATASET_DIMENSIONS')!r} and DATASET_RANK "
            f"{info.get('DATASET_RANK')!r} give the shape {shape!r}; expected 3 positive "
            f"dimensions and at least one volume"
        )
    # Before nibabel's get_data_scaling, which allocates one factor per sub-brick: a
    # lying DATASET_RANK[1] (1e11) would be a 745 GiB allocation. AFNI lists one
    # BRICK_TYPES entry per sub-brick, and the HEAD is at most MAX_HEAD bytes.
    types = info.get("BRICK_TYPES")
    n_types = len(types) if isinstance(types, (list, tuple)) else 1
    if shape[3] > n_types:
        raise AFNIHeaderError(
            f"{name!r}: DATASET_RANK {info.get('DATASET_RANK')!r} says {shape[3]} sub-bricks, "
            f"but BRICK_TYPES lists {n_types}; AFNI writes one BRICK_TYPES entry per sub-brick"
        )
    try:
        scaling = header.get_data_scaling()
    except (KeyError, ValueError, TypeError, IndexError) as e:
        raise AFNIHeaderError(f"{name!r}: invalid BRICK_FLOAT_FACS ({e})") from None
    factors = None if scaling is None else tuple(float(f) for f in scaling)
    return ArrayLayout(shape, header.get_data_dtype(), header.get_data_offset()), factors


def read_header(filename: str, locate) -> AfniInfo:
    """Find and parse the HEAD of ``filename`` (either file of the pair), then find its
    BRIK; ``locate(name)`` gives the source spec of a file name."""
    header_name, candidates = file_names(filename)
    try:
        hspec = locate(header_name)
    except ImageNotFoundError:
        if header_name == filename:
            raise
        raise ImageNotFoundError(
            f"{filename!r} is the BRIK of an AFNI dataset, but its HEAD {header_name!r} is missing"
        ) from None
    data = open_source(hspec).read_prefix(MAX_HEAD + 1)
    if len(data) > MAX_HEAD:
        raise InvalidHeaderError(
            f"{header_name!r} is larger than {MAX_HEAD} bytes: not an AFNI HEAD file"
        )
    header = parse_head(data, header_name)
    layout, factors = _layout(header, header_name)

    dspec = image_name = None
    for name in candidates:
        try:
            dspec = locate(name)
        except ImageNotFoundError:
            continue
        image_name = name
        break
    if dspec is None:
        raise ImageNotFoundError(
            f"{header_name!r} is the HEAD of an AFNI dataset, but its BRIK is missing (looked "
            f"for {', '.join(repr(c) for c in candidates)})"
        )
    check_data_size(dspec, layout, image_name)
    return AfniInfo(header, header_name, image_name, hspec, dspec, layout, factors)


def check_data_size(spec, layout: ArrayLayout, name: str) -> None:
    """Refuse a header whose data would run past the end of the BRIK (or its gzip stream)."""
    end = layout.offset + math.prod(layout.shape) * layout.dtype.itemsize
    src = open_source(spec)
    size = src.size
    if size is None:  # a gzip stream not indexed yet: only the deflate bound is known
        compressed = getattr(spec, "size", None)
        if compressed is None:
            return
        limit = MAX_DEFLATE_RATIO * compressed
        if end > limit:
            raise TruncatedFileError(
                f"{name!r}: the header describes {end} bytes of data (shape {layout.shape!r}, "
                f"{layout.dtype}), but a gzip stream of {compressed} bytes holds at most {limit}"
            )
        return
    if end > size:
        raise TruncatedFileError(
            f"{name!r} holds {size} bytes, but its header describes {end} bytes of data "
            f"(shape {layout.shape!r}, {layout.dtype})"
        )
