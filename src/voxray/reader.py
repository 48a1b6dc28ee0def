"""The base reader every format uses: plan -> read -> view -> scale.

An :class:`ArrayLayout` says how an array's values sit in a source (shape,
dtype, offset, scaling, order) as plain values. A reader pairs one with a
source spec and answers basic selections with scaled values, exactly what
nibabel's proxies return; :class:`BaseReader` does the indexing (basic and
advanced), the scaling and the deterministic dask token, and a format's
reader supplies only :meth:`BaseReader.read_raw`. Readers hold plain values,
so they pickle small and are what dask graph tasks carry; the source behind a
spec is opened once per process.
"""

from __future__ import annotations

import math
import os
import threading
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import ClassVar

import numpy as np
from nibabel.volumeutils import apply_read_scaling

from .errors import InvalidHeaderError, UnsupportedDataTypeError
from .planning import AxisSel, assemble, normalize_index, plan_read
from .sources import open_source

__all__ = ["ArrayLayout", "BaseReader", "ProxyReader", "Reader", "clear_proxies", "scale"]


def scale(raw: np.ndarray, slope, inter, dtype=None) -> np.ndarray:
    """Apply ``raw * slope + inter`` exactly as nibabel's ``ArrayProxy`` does.

    The result dtype depends only on ``raw.dtype``, the slope and intercept
    (and their types) and ``dtype``, never on the values, so chunks scale to
    the same dtype as the whole array would.
    """
    if raw.dtype.fields is not None:  # RGB and other structured data: no arithmetic
        if (slope, inter) != (1, 0) and not (np.isnan(slope) and np.isnan(inter)):
            raise UnsupportedDataTypeError(
                f"a scale factor (slope {slope!r}, intercept {inter!r}) cannot apply to the "
                f"structured datatype {raw.dtype} (RGB-like data has no numeric values)"
            )
        if dtype is not None and np.dtype(dtype).fields is None:
            raise UnsupportedDataTypeError(
                f"the structured datatype {raw.dtype} (RGB-like data) has no {np.dtype(dtype)} "
                f"values; read it unscaled, as stored"
            )
        return raw
    scl_slope = np.asanyarray(slope)
    scl_inter = np.asanyarray(inter)
    use_dtype = scl_slope.dtype if dtype is None else dtype
    if np.can_cast(scl_slope, use_dtype):
        scl_slope = scl_slope.astype(use_dtype)
    if np.can_cast(scl_inter, use_dtype):
        scl_inter = scl_inter.astype(use_dtype)
    scaled = apply_read_scaling(raw, scl_slope, scl_inter)
    if dtype is not None:
        scaled = scaled.astype(np.promote_types(scaled.dtype, dtype), copy=False)
        scaled = scaled.astype(dtype, copy=False)
    return scaled


@dataclass(frozen=True)
class ArrayLayout:
    """Where and how an array is stored: everything a read needs, as plain values.

    ``slope`` and ``inter`` keep the types nibabel's header gives (a Python
    float for NIfTI, ``np.float32`` for SPM Analyze): they decide the scaled dtype.
    """

    shape: tuple[int, ...]
    dtype: np.dtype
    offset: int = 0
    slope: object = 1.0
    inter: object = 0.0
    order: str = "F"
    _scaled: np.dtype = field(default=None, init=False, repr=False, compare=False)  # type: ignore[assignment]

    def __post_init__(self):
        object.__setattr__(self, "shape", tuple(int(n) for n in self.shape))
        object.__setattr__(self, "dtype", np.dtype(self.dtype))
        object.__setattr__(self, "offset", int(self.offset))
        if any(n < 0 for n in self.shape):
            raise InvalidHeaderError(f"negative dimension in shape {self.shape!r}")
        if self.offset < 0:
            raise InvalidHeaderError(f"the data offset (vox_offset) {self.offset} is negative")

    @classmethod
    def from_header(cls, header) -> ArrayLayout:
        """The layout nibabel's ``ArrayProxy(file, header)`` would read."""
        slope, inter = header.get_slope_inter()
        return cls(
            header.get_data_shape(),
            header.get_data_dtype(),
            header.get_data_offset(),
            1.0 if slope is None else slope,
            0.0 if inter is None else inter,
        )

    @property
    def nbytes(self) -> int:
        return math.prod(self.shape) * self.dtype.itemsize

    @property
    def is_scaled(self) -> bool:
        return bool((self.slope, self.inter) != (1, 0))

    def scaled_dtype(self, dtype=None) -> np.dtype:
        """dtype of the scaled array (what ``np.asarray(proxy, dtype)`` returns)."""
        if dtype is None and self._scaled is not None:
            return self._scaled
        out = scale(np.zeros(1, self.dtype), self.slope, self.inter, dtype).dtype
        if dtype is None:
            object.__setattr__(self, "_scaled", out)
        return out

    def scale(self, raw: np.ndarray, dtype=None, name: str | None = None) -> np.ndarray:
        """``raw`` scaled (see :func:`scale`); ``name`` (the file) goes into errors."""
        try:
            return scale(raw, self.slope, self.inter, dtype)
        except UnsupportedDataTypeError as e:
            if name is None:
                raise
            raise UnsupportedDataTypeError(f"{name!r}: {e}") from None

    def __getstate__(self):
        return {
            k: getattr(self, k) for k in ("shape", "dtype", "offset", "slope", "inter", "order")
        }

    def __setstate__(self, state):
        for k, v in state.items():
            object.__setattr__(self, k, v)
        object.__setattr__(self, "_scaled", None)


class BaseReader:
    """Scaled basic (and advanced) selections of one stored array.

    Subclasses are frozen dataclasses with ``source`` and ``layout`` fields (plus
    whatever plain values they need) and implement :meth:`read_raw`.
    ``reader[key]`` returns scaled values (what nibabel's proxy returns), so a
    reader can back ``dask.array.from_array`` directly.
    """

    source: object
    layout: ArrayLayout
    #: Whether the layout's slope and intercept are all the scaling there is (False for
    #: formats that scale per slice, volume or frame inside :meth:`read_raw`).
    scales_by_layout: ClassVar[bool] = True

    @property
    def shape(self) -> tuple[int, ...]:
        return self.layout.shape

    @property
    def ndim(self) -> int:
        return len(self.layout.shape)

    @property
    def dtype(self) -> np.dtype:
        """dtype of the scaled values."""
        try:
            return self.layout.scaled_dtype()
        except UnsupportedDataTypeError as e:  # a scale factor on RGB data
            raise UnsupportedDataTypeError(f"{self.name!r}: {e}") from None

    @property
    def name(self) -> str:
        return self.source.name

    def with_layout(self, layout: ArrayLayout) -> BaseReader:
        """The same array read with another layout (e.g. unscaled, or reshaped)."""
        from dataclasses import replace

        return replace(self, layout=layout)

    def read_raw(self, sel: tuple[AxisSel, ...]) -> np.ndarray:
        """The unscaled stored values of one selection per axis (integer axes dropped)."""
        raise NotImplementedError

    def __getitem__(self, key) -> np.ndarray:
        """Scaled values of ``key``: basic indices are read directly; advanced ones
        (lists, arrays, as dask may pass) read their bounding box, then index it."""
        keys = key if isinstance(key, tuple) else (key,)
        if any(isinstance(k, list | np.ndarray) and np.ndim(k) > 0 for k in keys):
            box, post = _split_advanced(keys, self.layout.shape)
            return self[box][post]
        sel = normalize_index(key, self.layout.shape)
        arr = self.read_raw(tuple(s for s in sel if s is not None))
        if any(s is None for s in sel):
            arr = arr[
                tuple(None if s is None else slice(None) for s in sel if s is None or not s.drop)
            ]
        return self.layout.scale(arr, name=self.name)

    def _token_extra(self) -> tuple:
        return ()

    def __dask_tokenize__(self):
        lay = self.layout
        return (
            f"voxray.{type(self).__name__}",
            self.source,
            lay.shape,
            lay.dtype.str,
            lay.offset,
            repr(lay.slope),
            repr(lay.inter),
            *self._token_extra(),
        )


@dataclass(frozen=True)
class Reader(BaseReader):
    """Reads the bytes ``layout`` describes from the file (or stream) ``source`` names."""

    source: object
    layout: ArrayLayout

    def read_raw(self, sel: tuple[AxisSel, ...]) -> np.ndarray:
        lay = self.layout
        src = open_source(self.source)
        plan = plan_read(lay.shape, lay.dtype.itemsize, sel, src.request_cost)
        buf = np.empty(plan.nbytes, np.uint8)
        if plan.nbytes:
            src.read_ranges(plan.ranges, buf, lay.offset)
        return assemble(plan, buf, lay.dtype)


@dataclass(frozen=True)
class ProxyReader(BaseReader):
    """Reads through a proxy a format opens once per process: for formats whose values
    are not a strided block of bytes voxray can plan (HDF5 chunks, per-slice scaling
    tables, ECAT frames), wrapping the format's own (nibabel's) proxy.

    The reader holds plain values only: ``opener`` is a module-level function and
    ``opener(*args)`` returns the proxy (anything indexable with basic indices, such as
    nibabel's ``MincImageArrayProxy``). The proxy is cached per process, keyed by the
    opener, its arguments and ``source`` (the file's spec, whose size and mtime make a
    changed file a new key), so graph tasks pickle small and each worker process opens
    the file once. ``layout`` has the shape and dtype of the values the proxy returns,
    already scaled (its slope and intercept stay 1 and 0). ``serialize`` reads one
    selection at a time per process (h5py and nibabel's file objects are not safe under
    concurrent reads of one handle).
    """

    source: object
    layout: ArrayLayout
    opener: Callable
    args: tuple = ()
    serialize: bool = True
    scales_by_layout: ClassVar[bool] = False

    def read_raw(self, sel: tuple[AxisSel, ...]) -> np.ndarray:
        proxy, lock = _cached_proxy(self)
        key = tuple(s.as_index() for s in sel)
        if lock is None:
            arr = proxy[key]
        else:
            with lock:
                arr = proxy[key]
        return np.asarray(arr).astype(self.layout.dtype, copy=False)

    def _token_extra(self) -> tuple:
        return (f"{self.opener.__module__}.{self.opener.__qualname__}", self.args)


_PROXY_CACHE_SIZE = 16
_proxies: OrderedDict[tuple, tuple] = OrderedDict()
_proxies_lock = threading.Lock()


def _cached_proxy(reader: ProxyReader) -> tuple[object, threading.Lock | None]:
    key = (reader.opener, reader.args, reader.source)
    with _proxies_lock:
        hit = _proxies.get(key)
        if hit is not None:
            _proxies.move_to_end(key)
            return hit
    entry = (reader.opener(*reader.args), threading.Lock() if reader.serialize else None)
    with _proxies_lock:
        entry = _proxies.setdefault(key, entry)
        while len(_proxies) > _PROXY_CACHE_SIZE:
            _proxies.popitem(last=False)
    return entry


def clear_proxies() -> None:
    """Forget the proxies :class:`ProxyReader` opened in this process."""
    with _proxies_lock:
        _proxies.clear()


def _reset_proxies_after_fork() -> None:
    global _proxies_lock
    _proxies.clear()
    _proxies_lock = threading.Lock()


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_reset_proxies_after_fork)


def _split_advanced(keys: tuple, shape: tuple[int, ...]) -> tuple[tuple, tuple]:
    """Split an index with advanced parts into a basic bounding-box read and an index
    of that box with the same numpy semantics (ints stay positional among arrays)."""
    expanded: list = []
    for k in keys:  # boolean masks index as their nonzero positions
        if isinstance(k, list | np.ndarray) and np.asarray(k).dtype == bool:
            expanded.extend(np.nonzero(np.asarray(k)))
        else:
            expanded.append(k)
    n_real = sum(k is not None and k is not Ellipsis for k in expanded)
    box: list = []
    post: list = []
    axis = 0
    for k in expanded:
        if k is None:
            post.append(None)
        elif k is Ellipsis:
            for _ in range(len(shape) - n_real):
                box.append(slice(None))
                post.append(slice(None))
                axis += 1
        elif isinstance(k, slice):
            box.append(k)
            post.append(slice(None))
            axis += 1
        elif isinstance(k, list | np.ndarray) and np.ndim(k) > 0:
            idx = np.asarray(k)
            if idx.dtype.kind not in "iu":
                raise IndexError(
                    f"arrays used as indices must be of integer type, not {idx.dtype}"
                )
            n = shape[axis]
            if idx.size and (idx.min() < -n or idx.max() >= n):
                raise IndexError(f"index out of bounds for axis {axis} with size {n}")
            idx = np.where(idx < 0, idx + n, idx)
            lo = int(idx.min()) if idx.size else 0
            hi = int(idx.max()) + 1 if idx.size else 0
            box.append(slice(lo, hi))
            post.append(idx - lo)
            axis += 1
        else:
            i = int(k) % shape[axis] if -shape[axis] <= int(k) < shape[axis] else int(k)
            box.append(slice(i, i + 1))
            post.append(0)
            axis += 1
    return tuple(box), tuple(post)
