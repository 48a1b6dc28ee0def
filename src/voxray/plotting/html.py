"""Notebook HTML for images and voxray DataArrays: a table, and a thumbnail when it is cheap.

:func:`image_html` and :func:`dataarray_html` describe an image (file, class, shape,
dtypes, zooms, axis codes, affine, lazy or in memory, chunking) in one self-contained
block of HTML (inline CSS scoped to ``.vx-repr``, every text escaped) that reads well
in Jupyter's light and dark themes, and add a small orthogonal view
(:func:`~voxray.plotting.plot_ortho`, an inline PNG) only when drawing it costs a
bounded number of bytes.

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

A thumbnail is drawn when that cost is at most ``max_bytes``. A repr never raises: a
field or a thumbnail that fails is replaced by a note saying what happened.
"""

from __future__ import annotations

import base64
import html
import io
import math
from collections.abc import Callable, Sequence
from dataclasses import replace

import numpy as np

from ..errors import MissingDependencyError, VoxrayError
from ..planning import AxisSel, normalize_index, plan_read, selection_shape
from ..proxy import DaskProxy

__all__ = ["MAX_THUMBNAIL_BYTES", "dataarray_html", "image_html", "thumbnail_cost"]

#: Largest estimated read (or inflate) a thumbnail may cost, in bytes.
MAX_THUMBNAIL_BYTES = 64 * 2**20
#: Thumbnail width in pixels (its height follows the field of view).
THUMB_WIDTH = 360
THUMB_DPI = 90
#: Beyond a seek point, an indexed gzip read inflates at most a spacing plus one block.
_BLOCK = 256 * 1024

CSS = """
.vx-repr { font-family: var(--jp-ui-font-family, system-ui, sans-serif); font-size: 13px;
  line-height: 1.35; color: inherit; display: flex; flex-wrap: wrap; gap: 12px;
  align-items: flex-start; margin: 4px 0; }
.vx-repr table { border-collapse: collapse; margin: 0; }
.vx-repr .vx-table { border: 1px solid rgba(128, 128, 128, 0.45); min-width: 22em; }
.vx-repr .vx-table > thead th { background: #1f4e79; color: #ffffff; text-align: left;
  padding: 4px 8px; font-weight: 600; }
.vx-repr .vx-table > thead .vx-sub { font-weight: 400; opacity: 0.85; }
.vx-repr .vx-table > tbody > tr > th { text-align: left; padding: 2px 8px; font-weight: 600;
  white-space: nowrap; vertical-align: top; opacity: 0.8; }
.vx-repr .vx-table > tbody > tr > td { text-align: left; padding: 2px 8px;
  vertical-align: top; font-family: var(--jp-code-font-family, monospace);
  font-size: 12px; word-break: break-all; }
.vx-repr .vx-table > tbody > tr:nth-child(even) { background: rgba(128, 128, 128, 0.10); }
.vx-repr .vx-affine td { padding: 0 6px; text-align: right; border: 0; }
.vx-repr .vx-note { font-style: italic; opacity: 0.8; white-space: normal;
  font-family: var(--jp-ui-font-family, system-ui, sans-serif); }
.vx-repr .vx-thumb { background: #000000; padding: 6px; border-radius: 3px; }
.vx-repr .vx-thumb img { display: block; max-width: 100%; height: auto; }
"""


# -- what a thumbnail costs ---------------------------------------------------------------


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
    return _cost(img).nbytes


class _Cost:
    """``nbytes`` (None: unbounded, and ``why``), for messages the work it is (``verb``:
    read, inflate or decode) and whether it is a pass over a never-indexed gzip stream."""

    def __init__(
        self, nbytes: int | None, verb: str = "read", unindexed_gzip: bool = False, why: str = ""
    ):
        self.nbytes = None if nbytes is None else int(nbytes)
        self.verb = verb
        self.unindexed_gzip = unindexed_gzip
        self.why = why


def _cost(obj) -> _Cost:
    from .volume import as_volume

    vol = as_volume(obj)
    keys = _plane_keys(vol)
    if type(obj).__module__.startswith("xarray."):
        return _array_cost(_da_data(obj), keys, obj)
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


def _array_cost(data, keys: list[tuple], da) -> _Cost:
    if isinstance(data, np.ndarray):
        return _Cost(0)
    reader = getattr(data, "reader", None)
    view = getattr(data, "view", None)
    if reader is not None and view is not None:  # voxray's ArrayProxy
        return _reader_cost(reader, [view.compose(k).base for k in keys])
    if _is_dask(data):
        found = _graph_reader(data)
        if found is None or tuple(found.shape) != tuple(data.shape):
            return _Cost(None, why="its data is a dask computation voxray cannot price")
        if da is not None and tuple(da.dims) != ("i", "j", "k", "t")[: da.ndim]:
            return _Cost(None, why="its dims are not in voxray's i, j, k, t order")
        return _reader_cost(found, [normalize_index(k, found.shape) for k in keys])
    inner = _lazily_indexed_reader(data)
    if inner is not None:
        return _reader_cost(inner, [normalize_index(k, inner.shape) for k in keys])
    if getattr(data, "is_proxy", False):  # nibabel's own proxies
        return _nibabel_proxy_cost(data, keys)
    return _Cost(None, why=f"its data is a {type(data).__name__}, whose reads voxray cannot price")


def _is_dask(obj) -> bool:
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


def _reader_cost(reader, sels: Sequence[tuple[AxisSel, ...]]) -> _Cost:
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
            return _Cost(sum(ends), "inflate", unindexed_gzip=True)
        return _Cost(sum(_fetched(src, r) for r in reads))
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
    return _Cost(math.prod(lay.shape[:3]) * lay.dtype.itemsize, "decode")


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


def _gzip_cost(src, spec, reads: list[list[tuple[int, int]]], total: int) -> _Cost:
    """``reads``: the byte ranges of each read, in order; ``total``: the stream's
    decompressed size as the header says (offset + data)."""
    from ..sources.gzip import FINISH_WITHIN

    idx = src.index
    step = idx.spacing + _BLOCK
    if idx.complete or _stored_index(src, spec):  # inflate from the seek point before each
        return _Cost(sum(n + min(step, o) for r in reads for o, n in r))
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
    return _Cost(cost, "inflate", unindexed_gzip=frontier > start)


def _stored_index(src, spec) -> bool:
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


def _zarr_cost(reader, sels) -> _Cost | None:
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
    return _Cost(total, "decode")


def _nibabel_proxy_cost(proxy, keys) -> _Cost:
    """nibabel's ``ArrayProxy``: plane reads of the file; a ``.gz`` is one stream that a
    backward seek inflates again from its start."""
    shape = tuple(proxy.shape)
    dtype = getattr(proxy, "dtype", None)
    offset = getattr(proxy, "offset", None)
    file_like = getattr(proxy, "file_like", None)
    if dtype is None or offset is None or getattr(proxy, "order", "F") != "F":
        itemsize = np.dtype(dtype or np.float64).itemsize
        return _Cost(math.prod(shape[:3]) * itemsize, "decode")
    itemsize = np.dtype(dtype).itemsize
    plans = [plan_read(shape, itemsize, normalize_index(k, shape)) for k in keys]
    name = str(getattr(file_like, "name", file_like) or "")
    if name.endswith((".gz", ".mgz")):
        ends = [offset + int((p.ranges[:, 0] + p.ranges[:, 1]).max(initial=0)) for p in plans]
        return _Cost(sum(ends), "inflate", unindexed_gzip=True)
    return _Cost(sum(p.nbytes for p in plans))


# -- the table ----------------------------------------------------------------------------


def _esc(value) -> str:
    return html.escape(str(value), quote=True)


def _num(v: float) -> str:
    """A number rounded for the table: ``2``, ``-90.5``, ``0.001``."""
    v = float(v)
    if not math.isfinite(v):
        return str(v)
    out = np.format_float_positional(round(v, 3), trim="-")
    return "0" if out in ("-0", "0.") else out.rstrip(".")


def _shape(shape) -> str:
    return "(" + ", ".join(str(int(n)) for n in shape) + ("," if len(shape) == 1 else "") + ")"


def _affine_table(affine) -> str:
    rows = "".join(
        "<tr>" + "".join(f"<td>{_esc(_num(v))}</td>" for v in row) + "</tr>"
        for row in np.asarray(affine, np.float64)
    )
    return f'<table class="vx-affine">{rows}</table>'


def _axcodes(affine) -> str:
    from nibabel.orientations import aff2axcodes

    from .planes import axis_alignment

    codes = "".join(str(c) for c in aff2axcodes(np.asarray(affine)))
    return codes + ("" if axis_alignment(affine) is not None else " (oblique)")


def _field(rows: list, label: str, compute: Callable[[], str], raw: bool = False) -> None:
    """Add a row; a value that cannot be worked out says why instead of raising."""
    try:
        value = compute()
        rows.append((label, value if raw else _esc(value)))
    except Exception as e:  # a repr never raises: the row says what went wrong
        rows.append((label, _note(f"unavailable ({type(e).__name__}: {e})")))


def _note(text: str) -> str:
    return f'<span class="vx-note">{_esc(text)}</span>'


def _filename(img) -> str | None:
    try:
        name = img.get_filename()
    except Exception:  # images without a file map
        name = None
    if not name:
        files = sorted(getattr(getattr(img, "provenance", None), "files", ()) or ())
        name = files[0] if files else None
    return str(name) if name else None


def _class_name(img) -> str:
    klass = type(img)
    nib_class = getattr(img, "nibabel_class", None)
    if klass.__module__.startswith("voxray") and nib_class is not None and nib_class is not klass:
        return f"voxray.{klass.__name__} (nibabel.{nib_class.__name__})"
    if klass.__module__.startswith("nibabel"):
        return f"nibabel.{klass.__name__}"
    return f"{klass.__module__}.{klass.__qualname__}"


def _dtypes(img) -> str:
    disk = np.dtype(img.get_data_dtype())
    dataobj = img.dataobj
    values = getattr(dataobj, "scaled_dtype", None)
    if values is None:
        slope, inter = getattr(dataobj, "slope", 1.0), getattr(dataobj, "inter", 0.0)
        if isinstance(dataobj, np.ndarray) or _is_dask(dataobj) or (slope, inter) == (1, 0):
            values = np.dtype(dataobj.dtype)
        else:
            from ..reader import scale

            values = scale(np.zeros(1, disk), slope, inter).dtype
    values = np.dtype(values)
    text = f"{disk.name} on disk"
    if values != disk:
        text += f", {values.name} values"
    slope, inter = getattr(dataobj, "slope", 1.0), getattr(dataobj, "inter", 0.0)
    if (slope, inter) != (1, 0) and not (np.isnan(slope) and np.isnan(inter)):
        text += f" (slope {_num(slope)}, intercept {_num(inter)})"
    return text


def _zooms(zooms) -> str:
    return "(" + ", ".join(_num(z) for z in zooms) + ")"


def _chunks_text(chunks) -> str:
    """``24 chunks of (64, 64, 32, 1)`` for dask's chunks tuple."""
    chunks = tuple(tuple(int(n) for n in c) for c in chunks)
    n = math.prod(len(c) for c in chunks)
    size = tuple(max(c, default=0) for c in chunks)
    return f"1 chunk of {_shape(size)}" if n == 1 else f"{n} chunks of {_shape(size)}"


def _image_chunks(img) -> str:
    dataobj = img.dataobj
    if isinstance(dataobj, np.ndarray):
        return "one numpy array"
    reader, view = getattr(dataobj, "reader", None), getattr(dataobj, "view", None)
    if reader is not None and view is not None and view.is_identity(reader.shape):
        from ..graph import resolve_chunks

        requested = getattr(dataobj, "requested_chunks", "auto")
        if requested is None or requested == "auto":  # no dask needed to know them
            return _chunks_text(resolve_chunks("auto", reader.shape, reader.dtype))
    if hasattr(img, "to_dask"):
        return _chunks_text(img.to_dask().chunks)
    return "not chunked (nibabel proxy)"


def _access(img) -> str:
    """How the bytes are reached: file type, and a gzip stream's index state."""
    dataobj = img.dataobj
    if isinstance(dataobj, np.ndarray):
        return "in memory"
    if isinstance(dataobj, DaskProxy) or _is_dask(dataobj):
        return "lazy (a dask array)"
    reader = getattr(dataobj, "reader", None)
    if reader is None:
        return "lazy (nibabel proxy)" if getattr(dataobj, "is_proxy", False) else "lazy"
    return "lazy: " + _source_text(reader)


def _source_text(reader) -> str:
    from ..reader import Reader
    from ..sources import GzipSource, open_source

    if not isinstance(reader, Reader):
        return "reads only the selections asked for"
    src = open_source(reader.source)
    remote = hasattr(reader.source, "etag")
    where = "by byte ranges" if remote else "by os.pread"
    if isinstance(src, GzipSource):
        idx = src.index
        if idx.complete:
            state = "indexed (random access)"
        elif _stored_index(src, reader.source):
            state = "an index is stored (random access)"
        else:
            state = f"not indexed yet (decompressed to {_mb(idx.frontier_out)} so far)"
        return f"gzip, {state}"
    return f"reads only the selections asked for, {where}"


def _mb(n: int) -> str:
    return f"{n / 2**20:.1f} MB" if n >= 2**20 else f"{n / 1024:.0f} KiB"


# -- the thumbnail --------------------------------------------------------------------------


def _thumbnail(obj, thumbnail, max_bytes: int) -> str:
    """The thumbnail's HTML, or a note saying why there is none."""
    if thumbnail is False or thumbnail is None:
        return ""
    try:
        import matplotlib  # noqa: F401
    except ImportError:
        return _note("no thumbnail: matplotlib is not installed (pip install 'voxray[plot]')")
    try:
        if thumbnail == "auto":
            cost = _cost(obj)
            if cost.nbytes is None:
                return _note(f"no thumbnail: {cost.why or 'its cost cannot be bounded'}")
            if cost.nbytes > max_bytes:
                return _note(_too_costly(obj, cost, max_bytes))
        png = _render(obj)
    except MissingDependencyError as e:
        return _note(f"no thumbnail: {e}")
    except VoxrayError as e:
        return _note(f"no thumbnail: {type(e).__name__}: {e}")
    except Exception as e:  # a repr never raises: say what happened instead
        return _note(f"no thumbnail: drawing it failed ({type(e).__name__}: {e})")
    data = base64.b64encode(png).decode("ascii")
    return (
        f'<div class="vx-thumb"><img class="vx-thumb-img" alt="orthogonal view" '
        f'src="data:image/png;base64,{data}"></div>'
    )


def _too_costly(obj, cost: _Cost, max_bytes: int) -> str:
    limit = _mb(max_bytes)
    if cost.unindexed_gzip:
        name = _name_of(obj) or "PATH"
        return (
            f"no thumbnail: reading it would inflate {_mb(cost.nbytes)} of a never-indexed "
            f".nii.gz (more than {limit}); `voxray index {name}` builds the index"
        )
    return f"no thumbnail: drawing it would {cost.verb} {_mb(cost.nbytes)} (more than {limit})"


def _name_of(obj) -> str | None:
    if type(obj).__module__.startswith("xarray."):
        src = obj.encoding.get("source")
        return str(src) if src else None
    return _filename(obj)


def _render(obj) -> bytes:
    """``plot_ortho`` of volume 0 as PNG bytes, about :data:`THUMB_WIDTH` pixels wide."""
    from .ortho import plot_ortho
    from .planes import field_of_view
    from .volume import as_volume

    vol = as_volume(obj)
    lo, hi = field_of_view(vol)
    zooms = np.sqrt((np.asarray(vol.affine)[:3, :3] ** 2).sum(axis=0))
    ext = (hi - lo) + zooms.max()
    total_w, max_h = ext[1] + 2 * ext[0], max(ext[2], ext[1])
    width = THUMB_WIDTH / THUMB_DPI
    height = max(0.6, width * max_h / total_w * 1.06)
    fig = plot_ortho(obj, figsize=(width, height))
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=THUMB_DPI, facecolor=fig.get_facecolor())
    return buf.getvalue()


# -- the reprs ------------------------------------------------------------------------------


def _page(title: str, sub: str, rows: list, thumb: str) -> str:
    body = "".join(f"<tr><th>{_esc(k)}</th><td>{v}</td></tr>" for k, v in rows)
    table = (
        f'<table class="vx-table"><thead><tr><th colspan="2">{_esc(title)} '
        f'<span class="vx-sub">{_esc(sub)}</span></th></tr></thead><tbody>{body}</tbody></table>'
    )
    return f'<div class="vx-repr"><style>{CSS}</style>{table}{thumb}</div>'


def _fallback(obj, e: Exception) -> str:
    text = f"{type(obj).__name__}: the HTML view failed ({type(e).__name__}: {e})"
    try:
        plain = repr(obj)
    except Exception:  # a repr never raises, even when the object's own repr does
        plain = f"<{type(obj).__name__}>"
    return f'<div class="vx-repr"><pre>{_esc(plain)}</pre>{_note(text)}</div>'


def image_html(img, *, thumbnail="auto", max_bytes: int = MAX_THUMBNAIL_BYTES) -> str:
    """Self-contained HTML describing ``img`` (a voxray or nibabel image), for notebooks.

    Parameters
    ----------
    img : image
    thumbnail : {"auto", True, False}
        ``"auto"``: an orthogonal view of volume 0 when :func:`thumbnail_cost` is at
        most ``max_bytes``; True: always; False: never.
    max_bytes : int
        Largest read (or gzip inflate) the thumbnail may cost.

    Returns
    -------
    str
        Never raises: what cannot be shown is replaced by a note saying why.

    Examples
    --------
    >>> import numpy as np, voxray as vx
    >>> out = image_html(vx.Image(np.zeros((4, 5, 6), np.int16), np.eye(4)), thumbnail=False)
    >>> "vx-repr" in out and "in memory" in out
    True
    """
    try:
        rows: list = []
        name = _filename(img)
        _field(rows, "file", lambda: name or "in memory")
        _field(rows, "class", lambda: _class_name(img))
        _field(rows, "shape", lambda: _shape(img.shape))
        _field(rows, "dtype", lambda: _dtypes(img))
        _field(rows, "zooms", lambda: _zooms(img.header.get_zooms()))
        _field(rows, "axis codes", lambda: _axcodes(img.affine))
        _field(rows, "affine", lambda: _affine_table(img.affine), raw=True)
        _field(rows, "data", lambda: "in memory" if img.in_memory else _access(img))
        _field(rows, "chunks", lambda: _image_chunks(img))
        thumb = _thumbnail(img, thumbnail, max_bytes)
        title = type(img).__name__
        return _page(title, _shape(img.shape), rows, thumb)
    except Exception as e:  # a repr never raises
        return _fallback(img, e)


def dataarray_html(da, *, thumbnail="auto", max_bytes: int = MAX_THUMBNAIL_BYTES) -> str:
    """Self-contained HTML describing a voxray DataArray (dims ``i, j, k[, t]``): as
    :func:`image_html`, from ``da.vx`` (affine, axis codes, zooms) and ``da.encoding``
    (source file, on-disk dtype and scaling).

    Examples
    --------
    >>> import voxray as vx
    >>> from voxray.testing import NIBABEL_DATA
    >>> out = dataarray_html(vx.open_dataarray(NIBABEL_DATA / "example4d.nii.gz"))
    >>> "example4d.nii.gz" in out and "LAS" in out
    True
    """
    try:
        from ..xarray.build import affine_of

        rows: list = []
        enc = da.encoding
        _field(rows, "file", lambda: enc.get("source") or "in memory")
        _field(rows, "class", lambda: _dataarray_class(da))
        _field(rows, "dims", lambda: ", ".join(f"{d}: {n}" for d, n in da.sizes.items()))
        _field(rows, "dtype", lambda: _da_dtypes(da))
        _field(rows, "zooms", lambda: _zooms(_da_zooms(da)))
        _field(rows, "axis codes", lambda: _axcodes(affine_of(da)))
        _field(rows, "affine", lambda: _affine_table(affine_of(da)), raw=True)
        _field(rows, "data", lambda: _da_storage(da))
        _field(rows, "chunks", lambda: _chunks_text(da.chunks) if da.chunks else "not chunked")
        thumb = _thumbnail(da, thumbnail, max_bytes)
        title = f"DataArray {da.name!r}" if da.name is not None else "DataArray"
        return _page(title, _shape(da.shape), rows, thumb)
    except Exception as e:  # a repr never raises
        return _fallback(da, e)


def _dataarray_class(da) -> str:
    nib_class = da.encoding.get("nibabel_class")
    text = "xarray.DataArray"
    return text + (f" (from a nibabel.{nib_class})" if nib_class else "")


def _da_dtypes(da) -> str:
    values = np.dtype(da.dtype)
    disk = da.encoding.get("dtype")
    if disk is None:
        return f"{values.name} values"
    disk = np.dtype(disk)
    text = f"{disk.name} on disk" + (f", {values.name} values" if disk != values else "")
    if "scale_factor" in da.encoding:
        text += (
            f" (slope {_num(da.encoding['scale_factor'])}, "
            f"intercept {_num(da.encoding.get('add_offset', 0.0))})"
        )
    return text


def _da_zooms(da) -> tuple[float, ...]:
    from ..xarray.build import affine_of

    affine = affine_of(da)
    zooms = tuple(float(z) for z in np.round(np.sqrt((affine[:3, :3] ** 2).sum(axis=0)), 6))
    if "t" in da.coords and da.sizes.get("t", 0) > 1:
        t = np.asarray(da["t"])
        zooms += (float(np.round(t[1] - t[0], 9)),)
    return zooms


def _da_data(da):
    """The array behind a DataArray without loading it (``da.data`` loads xarray's lazily
    indexed arrays; the variable's wrapped array is only reachable as ``_data``)."""
    return getattr(da.variable, "_data", None)


def _da_storage(da) -> str:
    data = _da_data(da)
    if isinstance(data, np.ndarray):
        return "in memory"
    if _is_dask(data):
        return "lazy (a dask array)"
    return "lazy (xarray's lazy indexing)"
