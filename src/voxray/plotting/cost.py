"""What a picture of an image costs, worked out before anything is read.

What a thumbnail costs is worked out before anything is read (:func:`thumbnail_cost`):
the three planes ``plot_ortho`` would read are recorded by running its plane geometry
on a stand-in volume, then priced with the reader's own read plan:

* data in memory: nothing;
* an uncompressed file, local or remote: the bytes of the planes' byte ranges;
* a ``.nii.gz`` whose seek index is complete, stored (cache or sidecar) or written
  into the file by voxray: the planes plus at most one seek-point spacing per range;
* a ``.nii.gz`` never indexed: every decompressed byte up to the planes' last one
  (the build pass inflates from where it stopped; to the end of the stream when
  little is left after them, as the pass then completes the index), plus the reads
  behind the pass's frontier, so a large file gets no thumbnail and the repr says how
  to index it (``voxray index PATH``);
* a remote object: its cache blocks and the gaps its merged requests read through;
* readers that are not byte ranges (Zarr: the chunks the planes touch; MINC, PAR/REC,
  ECAT, AFNI: all of volume 0, and an AFNI ``.BRIK.gz`` its stream as above);
* a dask array voxray did not make from a reader, or a selection of one: unknown.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import replace

import numpy as np

from ..errors import VoxrayError
from ..planning import AxisSel, normalize_index, plan_read, selection_shape
from ..proxy import DaskProxy

__all__ = ["Cost", "da_data", "is_dask", "price", "stored_index", "thumbnail_cost"]

#: Bytes a remote source caches per block (its reads are whole blocks).
_BLOCK = 256 * 1024


def thumbnail_cost(img) -> int | None:
    """Estimated bytes read or inflated to draw ``plot_ortho(img)`` (volume 0, the
    centre of the field of view); None when it cannot be bounded.

    Works for voxray and nibabel images and for voxray DataArrays; reads nothing but
    (for a ``.nii.gz``) whether a seek index exists. See the module docstring for the
    rules.

    Examples
    --------
    >>> import numpy as np, voxray as vx
    >>> thumbnail_cost(vx.Image(np.zeros((4, 5, 6), np.int16), np.eye(4)))
    0
    """
    return price(img).nbytes


class Cost:
    """``nbytes`` (None: unbounded, and ``why``), for messages the work it is (``verb``:
    read, inflate or decode) and whether it is a pass over a never-indexed gzip stream."""

    def __init__(
        self, nbytes: int | None, verb: str = "read", unindexed_gzip: bool = False, why: str = ""
    ):
        self.nbytes = None if nbytes is None else int(nbytes)
        self.verb = verb
        self.unindexed_gzip = unindexed_gzip
        self.why = why


def price(obj) -> Cost:
    from .volume import as_volume

    vol = as_volume(obj)
    keys = _plane_keys(vol)
    if type(obj).__module__.startswith("xarray."):
        return _array_cost(da_data(obj), keys, obj)
    dataobj = obj.dataobj
    if isinstance(dataobj, DaskProxy):
        dataobj = dataobj.to_dask()
    if len(dataobj.shape) == 5 and vol.ndim == 4:  # as as_volume reads a (i, j, k, 1, v) image
        keys = [(*k[:3], 0, k[3]) for k in keys]
    return _array_cost(dataobj, keys, None)


def _plane_keys(vol) -> list[tuple]:
    """The keys ``plot_ortho`` reads, found by running its planes on a stand-in volume."""
    from .planes import ortho_planes

    keys: list[tuple] = []

    def record(key):
        keys.append(tuple(key))
        return np.zeros(selection_shape(normalize_index(key, vol.shape)))

    ortho_planes(replace(vol, reader=record), None, 0)
    return keys


def _array_cost(data, keys: list[tuple], da) -> Cost:
    if isinstance(data, np.ndarray):
        return Cost(0)
    reader = getattr(data, "reader", None)
    view = getattr(data, "view", None)
    if reader is not None and view is not None:  # voxray's ArrayProxy
        return _reader_cost(reader, [view.compose(k).base for k in keys])
    if is_dask(data):
        found = _graph_reader(data)
        if found is None or tuple(found.shape) != tuple(data.shape):
            return Cost(None, why="its data is a dask computation voxray cannot price")
        if da is not None and tuple(da.dims) != ("i", "j", "k", "t")[: da.ndim]:
            return Cost(None, why="its dims are not in voxray's i, j, k, t order")
        return _reader_cost(found, [normalize_index(k, found.shape) for k in keys])
    inner = _lazily_indexed_reader(data)
    if inner is not None:
        return _reader_cost(inner, [normalize_index(k, inner.shape) for k in keys])
    if getattr(data, "is_proxy", False):  # nibabel's own proxies
        return _nibabel_proxy_cost(data, keys)
    return Cost(None, why=f"its data is a {type(data).__name__}, whose reads voxray cannot price")


def is_dask(obj) -> bool:
    return type(obj).__module__.startswith("dask.") and hasattr(obj, "__dask_graph__")


def _graph_reader(arr):
    """The voxray reader behind a dask array made by ``from_array`` over it (and nothing
    else: a graph of two layers), or None."""
    graph = arr.__dask_graph__()
    layers = getattr(graph, "layers", None)
    if layers is None or len(layers) > 2:
        return None
    for name, layer in layers.items():
        if not str(name).startswith("original-"):
            continue
        for value in layer.values():
            found = _unwrap_reader(getattr(value, "value", value))
            if found is not None:
                return found
    return None


def _unwrap_reader(obj, depth: int = 0):
    """A voxray reader inside xarray's indexing adapters (``.array`` chains)."""
    from ..reader import BaseReader

    while obj is not None and depth < 8:
        if isinstance(obj, BaseReader):
            return obj
        key = getattr(obj, "key", None)
        if key is not None and any(
            not (isinstance(k, slice) and k == slice(None)) for k in getattr(key, "tuple", ())
        ):
            return None  # a lazily indexed selection of the reader: not the whole array
        nxt = getattr(obj, "reader", None)
        obj = nxt if nxt is not None else getattr(obj, "array", None)
        depth += 1
    return None


def _lazily_indexed_reader(data):
    """The reader behind xarray's lazy indexing (``open_dataarray(..., chunks=None)``)."""
    if not type(data).__module__.startswith("xarray."):
        return None
    return _unwrap_reader(data)


def _reader_cost(reader, sels: Sequence[tuple[AxisSel, ...]]) -> Cost:
    from ..reader import Reader
    from ..sources import GzipSource, open_source

    lay = reader.layout
    if isinstance(reader, Reader):
        src = open_source(reader.source)
        plans = [plan_read(lay.shape, lay.dtype.itemsize, s, src.request_cost) for s in sels]
        reads = [
            [(lay.offset + int(off), int(n)) for off, n, _ in p.ranges.tolist()] for p in plans
        ]
        if isinstance(src, GzipSource):
            return _gzip_cost(src, reader.source, reads, lay.offset + lay.nbytes)
        if _is_gzip_fileobj(reader.source):  # a stream: every read inflates from its start
            ends = [max((o + n for o, n in r), default=0) for r in reads]
            return Cost(sum(ends), "inflate", unindexed_gzip=True)
        return Cost(sum(_fetched(src, r) for r in reads))
    if hasattr(reader, "perm"):  # a Zarr array's reader: the chunks the planes touch
        chunked = _zarr_cost(reader, sels)
        if chunked is not None:
            return chunked
    # Readers that are not byte ranges of the values (MINC, PAR/REC, ECAT, AFNI): at most
    # the volume the planes lie in; in a gzip stream (AFNI's .BRIK.gz), the stored
    # volumes up to its end.
    stored = getattr(reader, "stored", lay)
    vol = math.prod(stored.shape[:3]) * stored.dtype.itemsize
    if getattr(reader.source, "compression", None) == "gzip":
        src = open_source(reader.source)
        if isinstance(src, GzipSource):
            # Each read inflates through the last volume it selects.
            vols = [_last(s[3]) if len(s) > 3 else 0 for s in sels]
            reads = [[(stored.offset + t * vol, vol)] for t in vols]
            return _gzip_cost(src, reader.source, reads, stored.offset + stored.nbytes)
    return Cost(math.prod(lay.shape[:3]) * lay.dtype.itemsize, "decode")


def _last(s: AxisSel) -> int:
    """The last index (in file order) a selection along one axis reaches."""
    first, step, _ = s.ascending()
    return first + (s.count - 1) * step


def _fetched(src, ranges: list[tuple[int, int]]) -> int:
    """Bytes a source fetches for one read: the ranges themselves, except that a remote
    object reads small ranges in whole cache blocks and merges ranges whose gaps are
    under its request cost (the gaps are fetched too)."""
    from ..planning import coalesce_ranges
    from ..sources.remote import BLOCK, RemoteSource

    if not isinstance(src, RemoteSource):
        return sum(n for _, n in ranges)
    small = sum(((o + n - 1) // BLOCK - o // BLOCK + 1) * BLOCK for o, n in ranges if n <= BLOCK)
    large = [(o, n) for o, n in ranges if n > BLOCK]
    return small + sum(n for _, n, _ in coalesce_ranges(large, src.request_cost))


def _gzip_cost(src, spec, reads: list[list[tuple[int, int]]], total: int) -> Cost:
    """``reads``: the byte ranges of each read, in order; ``total``: the stream's
    decompressed size as the header says (offset + data)."""
    from ..sources.gzip import FINISH_WITHIN

    idx = src.index
    step = idx.spacing + _BLOCK
    if idx.complete or stored_index(src, spec):  # inflate from the seek point before each
        return Cost(sum(n + min(step, o) for r in reads for o, n in r))
    frontier = start = idx.frontier_out
    cost = 0
    for ranges in reads:
        # Parts behind the build pass's frontier inflate from a seek point; the pass
        # inflates on from the frontier to the read's end...
        cost += sum(min(o + n, frontier) - o + min(step, o) for o, n in ranges if o < frontier)
        end = max((o + n for o, n in ranges), default=0)
        # ... and to the end of the stream when little compressed data is left (it then
        # completes the index); where the read ends in the compressed stream is estimated
        # as if the data compressed evenly, with a factor 2 to spare.
        if idx.compressed_size * (1 - end / max(total, end, 1)) <= 2 * FINISH_WITHIN:
            end = max(end, total)
        if end > frontier:
            cost += end - frontier
            frontier = end
    return Cost(cost, "inflate", unindexed_gzip=frontier > start)


def stored_index(src, spec) -> bool:
    """Whether a first read will find a complete index without a pass: one stored in the
    index cache or beside the file, or the trailer voxray writes into its own files."""
    from ..sources.gzcache import find_index
    from ..sources.gzindex import parse_trailer

    try:
        if find_index(spec) is not None:
            return True
        size = src.index.compressed_size
        n = min(size, 65536 + 64)
        return parse_trailer(src.raw.read(size - n, n), size) is not None
    except (VoxrayError, OSError):
        return False


def _is_gzip_fileobj(spec) -> bool:
    import gzip

    return isinstance(getattr(spec, "fileobj", None), gzip.GzipFile)


def _zarr_cost(reader, sels) -> Cost | None:
    from ..sources import open_source

    arr = open_source(reader.source)
    chunks = getattr(arr, "chunks", None)
    if not chunks or len(chunks) != len(reader.perm):
        return None
    itemsize = np.dtype(arr.dtype).itemsize
    total = 0
    for sel in sels:
        n = 1
        for z, axis in enumerate(reader.perm):
            lo, hi = sel[axis].ascending()[0], _last(sel[axis])
            n *= (hi // chunks[z] - lo // chunks[z] + 1) * chunks[z]
        total += n * itemsize
    return Cost(total, "decode")


def _nibabel_proxy_cost(proxy, keys) -> Cost:
    """nibabel's ``ArrayProxy``: plane reads of the file; a ``.gz`` is one stream that a
    backward seek inflates again from its start."""
    shape = tuple(proxy.shape)
    dtype = getattr(proxy, "dtype", None)
    offset = getattr(proxy, "offset", None)
    file_like = getattr(proxy, "file_like", None)
    if dtype is None or offset is None or getattr(proxy, "order", "F") != "F":
        itemsize = np.dtype(dtype or np.float64).itemsize
        return Cost(math.prod(shape[:3]) * itemsize, "decode")
    itemsize = np.dtype(dtype).itemsize
    plans = [plan_read(shape, itemsize, normalize_index(k, shape)) for k in keys]
    name = str(getattr(file_like, "name", file_like) or "")
    if name.endswith((".gz", ".mgz")):
        ends = [offset + int((p.ranges[:, 0] + p.ranges[:, 1]).max(initial=0)) for p in plans]
        return Cost(sum(ends), "inflate", unindexed_gzip=True)
    return Cost(sum(p.nbytes for p in plans))


# -- the table ----------------------------------------------------------------------------


def da_data(da):
    """The array behind a DataArray without loading it (``da.data`` loads xarray's lazily
    indexed arrays; the variable's wrapped array is only reachable as ``_data``)."""
    return getattr(da.variable, "_data", None)
