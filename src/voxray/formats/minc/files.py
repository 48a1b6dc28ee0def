"""Opening MINC files as nibabel's ``Minc1File`` / ``Minc2File``, lazily, once per process.

nibabel does the MINC part: dimension order, affine, zooms, valid range and the
per-slice ``image-min`` / ``image-max`` scaling (``Minc1File._normalize``).
What differs is where the stored values come from:

* MINC1 (netCDF classic): voxray parses the header (:mod:`.netcdf`), reads the
  small variables (dimensions, ``image-min``, ``image-max``), and gives nibabel's
  ``Minc1File`` an image variable whose data is a lazy C-order, big-endian
  array read by byte ranges through voxray's sources (local ``pread``, the gzip
  seek index of ``.mnc.gz``, HTTP/S3 ranges). nibabel itself reads the whole
  image into memory when it opens the file.
* MINC2 (HDF5): h5py opens the file (a local path natively, anything else
  through :class:`SourceFile`, a read-only file object over a voxray source),
  and nibabel's ``Minc2File`` reads each selection from the dataset; HDF5
  decompresses only the chunks a selection touches.

Both openers return a :class:`ScaledMinc`, the object a
:class:`voxray.reader.ProxyReader` caches per process: ``scaled[key]`` is
``minc_file.get_scaled_data(key)`` for a basic key, with negative steps read
ascending and flipped (h5py takes only positive steps), and errors turned into
voxray errors that name the file.
"""

from __future__ import annotations

import io
import math
import os
import types
from contextlib import contextmanager

import numpy as np

from ...errors import (  # noqa: F401  (re-exported)
    InvalidHeaderError,
    MincDependencyError,
    MincHeaderError,
    MincReadError,
    NotAnImageError,
    TruncatedFileError,
    VoxrayError,
)
from ...planning import View
from ...proxy import ArrayProxy
from ...reader import ArrayLayout, Reader
from ...sources import open_source
from .netcdf import NcHeader, NcVariable, NeedMoreBytes, NetcdfError, parse_header

__all__ = [
    "MincDependencyError",
    "MincHeaderError",
    "MincReadError",
    "ScaledMinc",
    "SourceFile",
    "local_path",
    "minc1_file",
    "netcdf_of",
    "open_minc1",
    "open_minc2",
]

#: Variables up to this size are read when the header is (``image-min``, dimensions...).
SMALL_VARIABLE = 1 << 20
#: First read of a MINC1 header; doubled until the header fits.
HEADER_PREFIX = 64 * 1024


# -- MINC1 ---------------------------------------------------------------------------


class RawVariable:
    """A netCDF variable's stored values, read lazily by byte ranges (C order, big-endian).

    Basic indexing and ``np.asarray`` read only the bytes needed; a record variable
    (first dimension unlimited, records interleaved with other record variables)
    reads one block per record it touches.
    """

    def __init__(self, spec, var: NcVariable, recsize: int):
        self.spec = spec
        self.var = var
        self.recsize = recsize
        self.shape = var.shape
        self.dtype = var.dtype
        self.ndim = len(var.shape)

    def _block(self, shape: tuple[int, ...], offset: int) -> ArrayProxy:
        rev = tuple(reversed(shape))
        reader = Reader(self.spec, ArrayLayout(rev, self.dtype, offset))
        view = View.identity(rev).transpose(tuple(reversed(range(len(rev)))))
        return ArrayProxy.from_reader(reader, view)

    def __getitem__(self, key) -> np.ndarray:
        var = self.var
        if not var.is_record:
            return self._block(var.shape, var.begin).sliced(key).get_unscaled()
        # One block per record: index the records, then each record.
        keys = key if isinstance(key, tuple) else (key,)
        if Ellipsis in keys:
            i = keys.index(Ellipsis)
            keys = keys[:i] + (slice(None),) * (self.ndim - len(keys) + 1) + keys[i + 1 :]
        keys = keys + (slice(None),) * (self.ndim - len(keys))
        first, rest = keys[0], keys[1:]
        records = np.arange(var.shape[0])[first]
        parts = [
            self._block(var.shape[1:], var.begin + int(r) * self.recsize)
            .sliced(rest)
            .get_unscaled()
            for r in np.atleast_1d(records)
        ]
        if np.ndim(records) == 0:
            return parts[0]
        if not parts:
            empty = np.empty((0, *var.shape[1:]), self.dtype)
            return empty[(slice(None), *rest)]
        out = np.empty((len(parts), *parts[0].shape), self.dtype)  # np.stack goes native
        for i, part in enumerate(parts):
            out[i] = part
        return out

    def __array__(self, dtype=None, copy=None) -> np.ndarray:
        arr = self[...]
        return arr if dtype is None else arr.astype(dtype, copy=False)


def read_nc_header(spec) -> NcHeader:
    """The netCDF header of the file ``spec`` names (reads a prefix, longer if needed)."""
    src = open_source(spec)
    n = HEADER_PREFIX
    while True:
        head = src.read_prefix(n)
        try:
            return parse_header(head)
        except NeedMoreBytes as e:
            if len(head) < n:  # the file ends inside its header
                raise TruncatedFileError(
                    f"{spec.name!r}: the file ends at byte {len(head)}, inside its netCDF "
                    f"(MINC1) header"
                ) from None
            n = max(2 * n, e.needed)
        except NetcdfError as e:
            raise NotAnImageError(
                f"{spec.name!r}: not a MINC1 (netCDF classic) file: {e}"
            ) from None


def _small_values(spec, hdr: NcHeader, var: NcVariable) -> np.ndarray:
    """The values of a small variable, read now (as nibabel's netcdf_file holds them)."""
    src = open_source(spec)
    if not var.is_record:
        buf = bytearray(var.nbytes)
        if buf:
            src.readinto(var.begin, buf)
        return np.frombuffer(bytes(buf), var.dtype).reshape(var.shape).copy()
    per = math.prod(var.shape[1:]) * var.itemsize
    bufs = [bytearray(per) for _ in range(var.shape[0])]
    if per:
        src.read_many([(var.begin + r * hdr.recsize, b) for r, b in enumerate(bufs)])
    raw = b"".join(bytes(b) for b in bufs)
    return np.frombuffer(raw, var.dtype).reshape(var.shape).copy()


def _check_extent(spec, hdr: NcHeader) -> None:
    """Fail now, not at the first read, if the file is shorter than its variables."""
    size = open_source(spec).size
    if size is None:
        return
    end = 0
    for var in hdr.variables.values():
        if var.is_record:
            if var.shape[0]:
                per = math.prod(var.shape[1:]) * var.itemsize
                end = max(end, var.begin + (var.shape[0] - 1) * hdr.recsize + per)
        elif var.nbytes:
            end = max(end, var.begin + var.nbytes)
    if end > size:
        raise TruncatedFileError(
            f"{spec.name!r} has {size} bytes, but its MINC1 variables end at byte {end}: "
            f"the file is truncated"
        )


def netcdf_of(spec):
    """What nibabel's ``Minc1File`` needs of a ``netcdf_file``: ``variables`` (nibabel's
    ``netcdf_variable`` objects; the image's data a lazy :class:`RawVariable`)."""
    from nibabel.externals.netcdf import netcdf_variable

    hdr = read_nc_header(spec)
    if "image" not in hdr.variables:
        raise NotAnImageError(f"{spec.name!r} is a netCDF file without an 'image' variable")
    _check_extent(spec, hdr)
    variables = {}
    for name, var in hdr.variables.items():
        if name != "image" and var.nbytes <= SMALL_VARIABLE:
            data = _small_values(spec, hdr, var)
        else:
            data = RawVariable(spec, var, hdr.recsize)
        variables[name] = netcdf_variable(
            data, var.typecode, var.itemsize, var.shape, var.dimensions, dict(var.attributes)
        )
    return types.SimpleNamespace(
        variables=variables, dimensions=hdr.dimensions, _attributes=hdr.attributes
    )


def minc1_file(spec):
    """nibabel's ``Minc1File`` over the file ``spec`` names, with a lazy image variable."""
    from nibabel.minc1 import Minc1File

    ncfile = netcdf_of(spec)
    with nibabel_errors(spec.name):
        return Minc1File(ncfile)


def open_minc1(spec) -> ScaledMinc:
    """The scaled MINC1 values of ``spec`` (a ProxyReader opener: plain arguments)."""
    return ScaledMinc(minc1_file(spec), spec.name)


# -- MINC2 ---------------------------------------------------------------------------


class SourceFile(io.RawIOBase):
    """A read-only, seekable file object over a voxray source (for h5py's file driver).

    Reads go through :func:`voxray.sources.open_source`, so remote objects are read by
    ranges through the block cache and every byte is counted in the source's stats.
    """

    def __init__(self, spec):
        super().__init__()
        self.spec = spec
        self.name = spec.name
        self._src = open_source(spec)
        self._pos = 0

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return True

    def tell(self) -> int:
        return self._pos

    def seek(self, offset: int, whence: int = 0) -> int:
        if whence == 0:
            self._pos = offset
        elif whence == 1:
            self._pos += offset
        elif whence == 2:
            self._pos = self._size() + offset
        else:
            raise ValueError(f"invalid whence {whence!r}")
        return self._pos

    def _size(self) -> int:
        size = self._src.size
        if size is None:  # a gzip stream whose index is not complete: h5py needs the end
            raise MincReadError(f"{self.name!r}: the size of the stream is not known")
        return size

    def readinto(self, buffer) -> int:
        mv = memoryview(buffer).cast("B")
        n = max(0, min(mv.nbytes, self._size() - self._pos))
        if n:
            self._src.readinto(self._pos, mv[:n])
            self._pos += n
        return n


def _h5py():
    try:
        import h5py
    except ImportError:
        raise MincDependencyError(
            "reading MINC2 (HDF5) files needs h5py: pip install voxray[hdf5]"
        ) from None
    return h5py


def open_h5(target, name: str):
    """``h5py.File`` of a local path, or of a spec through :class:`SourceFile`."""
    h5py = _h5py()
    try:
        if isinstance(target, str):
            return h5py.File(target, "r")
        return h5py.File(SourceFile(target), "r")
    except VoxrayError:
        raise
    except FileNotFoundError:
        from ...errors import ImageNotFoundError

        raise ImageNotFoundError(f"{name!r} does not exist") from None
    except OSError as e:
        msg = str(e)
        if "truncated" in msg or "eof" in msg.lower():
            raise TruncatedFileError(
                f"{name!r}: the HDF5 (MINC2) file is truncated: {e}"
            ) from None
        raise NotAnImageError(f"{name!r}: not a readable HDF5 (MINC2) file: {e}") from None


def open_minc2(target, name: str) -> ScaledMinc:
    """The scaled MINC2 values of ``target``, a local path or a source spec (a
    ProxyReader opener: plain arguments); ``chunks`` is the HDF5 chunk shape."""
    from nibabel.minc2 import Minc2File

    h5 = open_h5(target, name)
    with nibabel_errors(name):  # a damaged HDF5 tree fails the lookup itself
        has_group = "minc-2.0" in h5
    if not has_group:
        h5.close()
        raise NotAnImageError(f"{name!r} is an HDF5 file without a 'minc-2.0' group")
    with nibabel_errors(name):
        minc_file = Minc2File(h5)
        chunks = h5["minc-2.0"]["image"]["0"]["image"].chunks  # where Minc2File reads
    return ScaledMinc(minc_file, name, None if chunks is None else tuple(map(int, chunks)))


# -- scaled values, errors ------------------------------------------------------------


@contextmanager
def nibabel_errors(name: str):
    """Turn what nibabel and h5py raise on a bad header into a voxray error naming the file."""
    try:
        yield
    except VoxrayError:
        raise
    except Exception as e:
        raise MincHeaderError(
            f"{name!r}: not a MINC image nibabel can read: {type(e).__name__}: {e}".rstrip(": ")
        ) from e


class ScaledMinc:
    """``minc_file.get_scaled_data(key)`` behind ``[]``: nibabel's values for basic keys."""

    def __init__(self, minc_file, name: str, chunks: tuple[int, ...] | None = None):
        self.minc_file = minc_file
        self.name = name
        #: The HDF5 chunk shape of a MINC2 image (None: contiguous, or MINC1).
        self.chunks = chunks
        with nibabel_errors(name):
            self.shape = tuple(minc_file.get_data_shape())
            self.stored_dtype = np.dtype(minc_file.get_data_dtype())

    @property
    def dtype(self) -> np.dtype:
        """dtype of the scaled values, as ``Minc1File._normalize`` returns them."""
        if np.issubdtype(self.stored_dtype, np.floating):
            return self.stored_dtype
        return np.dtype(np.float64)

    def __getitem__(self, key) -> np.ndarray:
        keys = key if isinstance(key, tuple) else (key,)
        ascending, flips = [], []
        for k in keys:  # h5py takes positive steps only: read ascending, then flip
            if isinstance(k, slice) and k.step is not None and k.step < 0:
                idx = range(*k.indices(self.shape[len(ascending)]))
                if len(idx):
                    k = slice(idx[-1], idx[0] + 1, -k.step)
                else:
                    k = slice(0, 0)
                flips.append(sum(not isinstance(a, int) for a in ascending))
            ascending.append(k)
        try:
            arr = self.minc_file.get_scaled_data(tuple(ascending))
        except VoxrayError:
            raise
        except Exception as e:  # h5py's OSErrors: the bytes; nibabel's: the scaling fields
            error = MincReadError if isinstance(e, OSError) else MincHeaderError
            raise error(
                f"{self.name!r}: reading {tuple(ascending)!r} failed: {type(e).__name__}: {e}"
            ) from e
        arr = np.asarray(arr)
        if flips:
            arr = arr[
                tuple(
                    slice(None, None, -1) if a in flips else slice(None) for a in range(arr.ndim)
                )
            ]
        return arr


def local_path(spec) -> str | None:
    """The path of an uncompressed local file spec (None for anything else)."""
    path = getattr(spec, "path", None)
    if path is None or getattr(spec, "compression", None):
        return None
    return os.fspath(path)
