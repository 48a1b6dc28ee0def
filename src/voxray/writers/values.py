"""The value plan: which stored values a writer writes, for any format.

Given an image and the output header (nibabel's header API: ``get_data_dtype``,
``has_data_slope``, ``set_slope_inter``), :func:`plan_values` picks one of three
paths and sets the header's scaling to match:

* **raw** -- the image is a voxray file proxy (possibly sliced or reoriented) and
  the stored dtype is unchanged (byte order aside): the stored values are copied
  and their scaling kept. (nibabel rescales on every load-then-save.)
* **CF** -- a DataArray whose encoding still names its stored dtype and
  ``scale_factor``/``add_offset``: values are encoded back with that scaling.
* **computed** -- anything else: nibabel's rules, chunk by chunk. When the header
  asks for scaling (NaN slope and intercept, as nibabel leaves them), one pass finds
  the finite range and NaNs, nibabel's own array writer chooses slope and intercept
  from it (the choice depends only on that range), and nibabel's ``array_to_file``
  converts each chunk, so the bytes are nibabel's bytes.
"""

from __future__ import annotations

import io
import math
import os
from dataclasses import dataclass

import numpy as np
from nibabel.arraywriters import ArrayWriter, WriterError, get_slope_inter, make_array_writer
from nibabel.volumeutils import array_to_file

from ..errors import InputError, WriteError
from ..image import Image
from ..proxy import ArrayProxy, DaskProxy
from ..reader import BaseReader
from ..sources import is_url

__all__ = [
    "ValuePlan",
    "WriteError",
    "as_image",
    "plan_values",
    "refuse_overwriting_sources",
    "source_paths",
]


#: In-memory arrays up to this size are encoded at once, without a dask graph.
IN_MEMORY_DIRECT = 64 * 2**20


def as_image(obj) -> tuple[Image, tuple | None]:
    """(voxray image, CF scaling of a DataArray or None) for anything a writer takes:
    a voxray image, a DataArray with voxray's layout, or a nibabel image."""
    if isinstance(obj, Image):
        return obj, None
    if type(obj).__name__ == "DataArray" and hasattr(obj, "vx"):
        img = obj.vx.to_image()
        enc = obj.encoding
        cf = None
        if "dtype" in enc and ("scale_factor" in enc or "add_offset" in enc):
            cf = (
                np.dtype(enc["dtype"]),
                float(enc.get("scale_factor", 1.0)),
                float(enc.get("add_offset", 0.0)),
            )
        return img, cf
    if hasattr(obj, "dataobj") and hasattr(obj, "header") and hasattr(obj, "affine"):
        return Image.from_image(obj), None
    raise TypeError(
        f"cannot save {type(obj).__name__}: expected an image (voxray or nibabel) or a DataArray"
    )


def source_paths(img) -> set[str]:
    """Local files the image's data is read from (its provenance, and the readers in its
    proxy or dask graph); not merely the file it was last saved to."""
    out = {p for p in img.provenance.files if not is_url(p)}
    obj = img.dataobj
    readers = []
    if isinstance(obj, ArrayProxy):
        readers.append(obj.reader)
    elif isinstance(obj, DaskProxy):
        graph = obj.to_dask().__dask_graph__()
        readers.extend(v for v in graph.values() if isinstance(v, BaseReader))
    for reader in readers:
        path = getattr(reader.source, "path", None)
        if path:
            out.add(path)
    return out


def refuse_overwriting_sources(img, targets) -> None:
    """Refuse to write over a file the image reads its data from."""
    sources = source_paths(img)
    for target in targets:
        if not os.path.exists(target):
            continue
        for src in sources:
            if os.path.exists(src) and os.path.samefile(src, target):
                raise InputError(
                    f"refusing to overwrite {target!r}: the image being saved reads its data "
                    f"from it; save to another path"
                )


@dataclass
class ValuePlan:
    """What a writer writes: stored values of ``out_dtype`` (native byte order)."""

    kind: str  # "raw", "cf" or "computed"
    out_dtype: np.dtype
    shape: tuple[int, ...]
    proxy: ArrayProxy | None = None  # raw: the file proxy whose stored values are copied
    data: object = None  # cf / computed: a dask array of the stored values

    @property
    def nbytes(self) -> int:
        return math.prod(self.shape) * np.dtype(self.out_dtype).itemsize

    @property
    def in_memory(self) -> bool:
        """The stored values are one numpy array already (a small in-memory image)."""
        return isinstance(self.data, np.ndarray)

    def to_dask(self):
        """The stored values as a dask array (raw plans build theirs on demand)."""
        if self.data is None:
            data = self.proxy.to_dask(raw=True)
            self.data = data if data.dtype == self.out_dtype else data.astype(self.out_dtype)
        if self.in_memory:
            import dask.array as da

            from ..planning import default_chunks

            chunks = default_chunks(self.shape, np.dtype(self.out_dtype).itemsize)
            return da.from_array(self.data, chunks=chunks)
        return self.data


def _finite_range(x):
    """(min, max, has_nan) of the finite values, as nibabel's ``finite_range``, one pass."""
    if isinstance(x, np.ndarray):
        if x.dtype.kind in "iub":
            return (x.min(), x.max(), False) if x.size else (np.inf, -np.inf, False)
        finite = np.isfinite(x)
        if not finite.any():
            return np.inf, -np.inf, bool(np.isnan(x).any())
        return x[finite].min(), x[finite].max(), bool(np.isnan(x).any())
    import dask
    import dask.array as da

    if x.dtype.kind in "iub":
        mn, mx = dask.compute(x.min(), x.max())
        return mn, mx, False
    finite = da.isfinite(x)
    mn, mx, has_nan = dask.compute(
        da.where(finite, x, np.inf).min(), da.where(finite, x, -np.inf).max(), da.isnan(x).any()
    )
    return mn, mx, bool(has_nan)


def _sample(dtype, mn, mx, has_nan) -> np.ndarray:
    """A tiny array with the same finite range and NaN presence as the data."""
    values = [] if not np.isfinite(mn) else [mn, mx]
    if has_nan:
        values.append(np.nan)
    return np.array(values, dtype=dtype)


def _encode(block, params):
    """Values to stored values: nibabel's ``array_to_file`` on one chunk."""
    out_dtype, inter, slope, mn, mx, nan2zero = params
    buf = io.BytesIO()
    array_to_file(
        np.asarray(block),
        buf,
        out_dtype,
        offset=None,
        intercept=inter,
        divslope=slope,
        mn=mn,
        mx=mx,
        order="F",
        nan2zero=nan2zero,
    )
    return np.ndarray(block.shape, dtype=out_dtype, buffer=buf.getbuffer(), order="F")


def plan_values(img: Image, hdr, cf=None, name: str = "") -> ValuePlan:
    """The values ``img`` is written as under the output header ``hdr``, whose scaling
    fields are set to match (see the module docstring)."""
    out_dtype = hdr.get_data_dtype()
    proxy = img.dataobj
    shape = tuple(img.shape)
    has_slope = getattr(hdr, "has_data_slope", False)
    has_inter = getattr(hdr, "has_data_intercept", False)
    layout = proxy.reader.layout if isinstance(proxy, ArrayProxy) else None
    # Scaling set on the header by the user wins, as in nibabel (values are then cast).
    unset = not has_slope or np.all(
        np.isnan((float(hdr["scl_slope"]), float(hdr["scl_inter"]) if has_inter else np.nan))
    )
    if (
        unset
        and layout is not None
        and out_dtype.newbyteorder("=") == layout.dtype.newbyteorder("=")
        and (not layout.is_scaled or has_slope)
        and (float(layout.inter) == 0 or has_inter)
    ):
        if has_slope:
            hdr.set_slope_inter(layout.slope, layout.inter if has_inter else None)
        return ValuePlan("raw", out_dtype, shape, proxy=proxy)
    if cf is not None and np.dtype(cf[0]).newbyteorder("=") == out_dtype.newbyteorder("="):
        data = img.to_dask().map_blocks(
            _encode,
            dtype=out_dtype,
            params=(out_dtype, float(cf[2]), float(cf[1]), None, None, True),
        )
        if has_slope:
            hdr.set_slope_inter(cf[1], cf[2] if has_inter else None)
        return ValuePlan("cf", out_dtype, shape, data=data)

    obj = img.dataobj
    small = isinstance(obj, np.ndarray) and obj.nbytes <= IN_MEMORY_DIRECT
    values = np.asanyarray(obj) if small else img.to_dask()
    slope = float(hdr["scl_slope"]) if has_slope else np.nan
    inter = float(hdr["scl_inter"]) if has_inter else np.nan
    needs = values.dtype != out_dtype and values.dtype.fields is None
    try:
        if needs and np.all(np.isnan((slope, inter))):
            sample = _sample(values.dtype, *_finite_range(values))
            writer = make_array_writer(sample, out_dtype, has_slope, has_inter)
            s, i = get_slope_inter(writer)
            if has_slope:  # a header without scaling (MGH) takes values as they are
                hdr.set_slope_inter(s, i)
            mn, mx = writer._writing_range() if hasattr(writer, "_writing_range") else (None, None)
            params = (
                out_dtype,
                float(getattr(writer, "inter", 0.0)),
                float(getattr(writer, "slope", 1.0)),
                mn,
                mx,
                writer._needs_nan2zero(),
            )
        else:
            if has_slope and np.all(np.isnan((slope, inter))):
                hdr.set_slope_inter(1.0, 0.0 if has_inter else None)
            writer = ArrayWriter(np.zeros(0, values.dtype), out_dtype, check_scaling=False)
            params = (out_dtype, 0.0, 1.0, None, None, writer._needs_nan2zero())
    except WriterError as e:
        raise WriteError(
            f"{name or 'image'}: cannot write {values.dtype} values as {out_dtype} ({e})"
        ) from None
    if small:  # nibabel's path: one array, encoded at once (no graph for a small image)
        return ValuePlan("computed", out_dtype, shape, data=_encode(values, params))
    data = values.map_blocks(_encode, dtype=out_dtype, params=params)
    return ValuePlan("computed", out_dtype, shape, data=data)
