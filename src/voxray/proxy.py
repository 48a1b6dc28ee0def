"""Array proxies: nibabel's proxy API over voxray's readers and over dask arrays.

The proxy contract is nibabel's (``nibabel.arrayproxy``): a read-only
``shape``, ``ndim``, ``is_proxy`` (True); ``np.asarray(proxy)`` returns the
scaled array, ``proxy[basic index]`` the scaled selection, both with exactly
nibabel's dtype and values; nothing outside the proxy (a file position, the
header it was made from) changes what it returns. :class:`ArrayProxy` adds
nibabel's ``dtype``, ``offset``, ``slope``, ``inter``, ``get_unscaled()`` and
``reshape``, accepts nibabel's ``ArrayProxy(file_like, header_or_spec)``
signature, and reads only the bytes a selection needs.

Both proxies are lazy all the way: :meth:`ArrayProxy.sliced` and
:meth:`ArrayProxy.reoriented` return new proxies that still read only what
they show, and ``to_dask()`` gives the dask graph.
"""

from __future__ import annotations

import os

import numpy as np

from .planning import View
from .reader import ArrayLayout, Reader
from .sources import FileObjSpec, local_spec

__all__ = ["ArrayProxy", "DaskProxy", "is_dask_array"]


def is_dask_array(obj) -> bool:
    """True for a dask array, without importing dask."""
    return type(obj).__module__.startswith("dask.") and hasattr(obj, "__dask_graph__")


def _spec_tuple(spec) -> ArrayLayout:
    shape, dtype, *rest = spec
    offset, slope, inter = (list(rest) + [0, 1.0, 0.0][len(rest) :])[:3]
    return ArrayLayout(shape, dtype, offset, slope, inter)


class ArrayProxy:
    """Lazy, chunked access to an array in a file, with nibabel's proxy API.

    Parameters
    ----------
    file_like : str, os.PathLike or file-like
        The file holding the data (gzip is detected by its magic bytes).
    spec : header or tuple
        A nibabel header, or ``(shape, dtype[, offset[, slope[, inter]]])``.
    mmap, keep_file_open
        Accepted for nibabel compatibility and validated; voxray never memory-maps
        and keeps one descriptor per file per process.
    order : {None, 'F', 'C'}
        Storage order; NIfTI is Fortran ('F', the default).

    Examples
    --------
    >>> import numpy as np, tempfile, os
    >>> path = os.path.join(tempfile.mkdtemp(), "data.bin")
    >>> np.arange(24, dtype="<i2").tofile(path)
    >>> prox = ArrayProxy(path, ((2, 3, 4), "<i2", 0, 2.0, 1.0))
    >>> prox[1, 2, :]
    array([11., 23., 35., 47.])
    """

    def __init__(self, file_like, spec, *, mmap=True, order=None, keep_file_open=None):
        if mmap not in (True, False, "c", "r"):
            raise ValueError("mmap should be one of {True, False, 'c', 'r'}")
        if order not in (None, "C", "F"):
            raise ValueError("order should be one of {None, 'C', 'F'}")
        if keep_file_open not in (None, True, False):
            raise ValueError("keep_file_open must be one of {None, True, False}")
        self.file_like = file_like
        if isinstance(file_like, str | os.PathLike):
            source = local_spec(os.fspath(file_like))
        else:
            source = FileObjSpec(file_like)
        layout = (
            ArrayLayout.from_header(spec)
            if hasattr(spec, "get_data_shape")
            else (_spec_tuple(spec))
        )
        view = View.identity(layout.shape)
        if order == "C":  # C order is Fortran order of the reversed shape
            rev = tuple(reversed(layout.shape))
            layout = ArrayLayout(rev, layout.dtype, layout.offset, layout.slope, layout.inter)
            view = View.identity(rev).transpose(tuple(reversed(range(len(rev)))))
        self._reader = Reader(source, layout)
        self._view = view
        self._chunks = "auto"

    @classmethod
    def from_reader(cls, reader: Reader, view: View | None = None, chunks="auto") -> ArrayProxy:
        obj = cls.__new__(cls)
        obj.file_like = getattr(reader.source, "path", None) or getattr(
            reader.source, "fileobj", None
        )
        obj._reader = reader
        obj._view = view if view is not None else View.identity(reader.shape)
        obj._chunks = chunks
        return obj

    def __reduce__(self):
        return (_rebuild, (self._reader, self._view, self._chunks))

    # -- nibabel's proxy API ---------------------------------------------------

    @property
    def is_proxy(self) -> bool:
        return True

    @property
    def shape(self) -> tuple[int, ...]:
        return self._view.shape

    @property
    def ndim(self) -> int:
        return len(self._view.axes)

    @property
    def dtype(self) -> np.dtype:
        """dtype on disk (nibabel's ``ArrayProxy.dtype``); the scaled one is ``scaled_dtype``."""
        return self._reader.layout.dtype

    @property
    def scaled_dtype(self) -> np.dtype:
        return self._reader.dtype

    @property
    def offset(self) -> int:
        return self._reader.layout.offset

    @property
    def slope(self):
        return self._reader.layout.slope

    @property
    def inter(self):
        return self._reader.layout.inter

    @property
    def requested_chunks(self):
        """The chunks asked for at load (``"auto"``, or anything dask takes)."""
        return self._chunks

    @property
    def reader(self) -> Reader:
        return self._reader

    @property
    def view(self) -> View:
        return self._view

    def _read(self, view: View, scaled: bool, dtype=None, scalar: bool = False) -> np.ndarray:
        arr = view.finish(self._reader.read_raw(view.base))
        if scalar and arr.ndim == 0:
            # nibabel indexes a 0-d result to a numpy scalar, which scaling turns back
            # into a 0-d array: match both.
            arr = arr[()]
        if scaled:
            arr = self._reader.layout.scale(arr, dtype, name=self._reader.name)
        return arr

    def get_unscaled(self) -> np.ndarray:
        """The on-disk values, unscaled."""
        return self._read(self._view, scaled=False)

    def __array__(self, dtype=None, copy=None) -> np.ndarray:
        # Every read makes a new array, so copy=False cannot be violated.
        arr = self._read(self._view, scaled=True, dtype=dtype)
        if dtype is not None:
            arr = arr.astype(dtype, copy=False)
        return arr

    def __getitem__(self, key) -> np.ndarray:
        return self._read(self._view.compose(key), scaled=True, scalar=True)

    def reshape(self, shape) -> ArrayProxy:
        """A proxy of the same bytes with a new shape (nibabel's ``ArrayProxy.reshape``)."""
        size = int(np.prod(self.shape))
        shape = tuple(shape)
        unknown = [i for i, n in enumerate(shape) if n == -1]
        if len(unknown) > 1:
            raise ValueError("can only specify one unknown dimension")
        if unknown:
            known = int(np.prod([n for n in shape if n != -1]))
            shape = tuple(size // known if n == -1 else n for n in shape)
        if int(np.prod(shape)) != size:
            raise ValueError(f"cannot reshape array of size {size} into shape {shape}")
        if not self._view.is_identity(self._reader.shape):
            raise ValueError("cannot reshape a sliced or reoriented proxy without reading it")
        lay = self._reader.layout
        layout = ArrayLayout(shape, lay.dtype, lay.offset, lay.slope, lay.inter)
        return ArrayProxy.from_reader(self._reader.with_layout(layout), chunks=self._chunks)

    def copy(self) -> ArrayProxy:
        return ArrayProxy.from_reader(self._reader, self._view, self._chunks)

    # -- lazy derivations ------------------------------------------------------

    def sliced(self, key) -> ArrayProxy:
        """The proxy of ``self[key]``, without reading."""
        return ArrayProxy.from_reader(self._reader, self._view.compose(key), self._chunks)

    def reoriented(self, ornt) -> ArrayProxy:
        """The proxy of ``nibabel.orientations.apply_orientation(self, ornt)``, without reading."""
        return ArrayProxy.from_reader(self._reader, _orient_view(self._view, ornt), self._chunks)

    def to_dask(self, chunks=None, raw: bool = False):
        """Dask array of the scaled values (chunks default to those given at load);
        ``raw=True`` gives the on-disk values, unscaled."""
        from .graph import to_dask

        reader = self._reader
        if raw and reader.layout.is_scaled:
            lay = reader.layout
            reader = reader.with_layout(ArrayLayout(lay.shape, lay.dtype, lay.offset))
        base = to_dask(reader, self._chunks if chunks is None else chunks)
        if self._view.is_identity(self._reader.shape):
            return base
        return self._view.finish(base[self._view.base_index()])

    def __repr__(self) -> str:
        lay = self._reader.layout
        scaling = f", slope={lay.slope!r}, inter={lay.inter!r}" if lay.is_scaled else ""
        return (
            f"<voxray.ArrayProxy {self._reader.name!r} shape={self.shape} "
            f"dtype={lay.dtype}{scaling}>"
        )


def _rebuild(reader, view, chunks):
    return ArrayProxy.from_reader(reader, view, chunks)


def _orient_view(view: View, ornt) -> View:
    """nibabel's ``apply_orientation`` as view operations: flips, then the inverse transpose."""
    ornt = np.asarray(ornt)
    n = ornt.shape[0]
    if len(view.axes) < n:
        from nibabel.orientations import OrientationError

        raise OrientationError("Data array has fewer dimensions than orientation")
    for ax, flip in enumerate(ornt[:, 1]):
        if flip == -1:
            view = view.flip(ax)
    full = np.arange(len(view.axes))
    full[:n] = np.argsort(ornt[:, 0])
    return view.transpose(tuple(int(i) for i in full))


class DaskProxy:
    """nibabel's proxy API over a dask array (for images built from dask arrays)."""

    def __init__(self, array):
        self._array = array

    @property
    def is_proxy(self) -> bool:
        return True

    @property
    def shape(self) -> tuple[int, ...]:
        return tuple(self._array.shape)

    @property
    def ndim(self) -> int:
        return self._array.ndim

    @property
    def dtype(self) -> np.dtype:
        return self._array.dtype

    @property
    def slope(self) -> float:
        return 1.0

    @property
    def inter(self) -> float:
        return 0.0

    def __array__(self, dtype=None, copy=None) -> np.ndarray:
        arr = np.asarray(self._array.compute())
        return arr if dtype is None else arr.astype(dtype, copy=False)

    def __getitem__(self, key) -> np.ndarray:
        from .planning import normalize_index

        normalize_index(key, self.shape)  # basic indexing only, as nibabel's proxies
        out = np.asarray(self._array[key].compute())
        return out[()] if out.ndim == 0 else out

    def get_unscaled(self) -> np.ndarray:
        return np.asarray(self)

    def sliced(self, key) -> DaskProxy:
        return DaskProxy(self._array[key])

    def reoriented(self, ornt) -> DaskProxy:
        view = _orient_view(View.identity(self.shape), ornt)
        return DaskProxy(view.finish(self._array[view.base_index()]))

    def to_dask(self, chunks=None):
        return self._array if chunks is None else self._array.rechunk(chunks)

    def __repr__(self) -> str:
        return (
            f"<voxray.DaskProxy shape={self.shape} dtype={self.dtype} "
            f"chunksize={self._array.chunksize}>"
        )
