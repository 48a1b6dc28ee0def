"""Notebook HTML for images and voxray DataArrays: a table, and a thumbnail when it is cheap.

:func:`image_html` and :func:`dataarray_html` describe an image (file, class, shape,
dtypes, zooms, axis codes, affine, lazy or in memory, chunking) in one self-contained
block of HTML (inline CSS scoped to ``.vx-repr``, every text escaped) that reads well
in Jupyter's light and dark themes, and add a small orthogonal view
(:func:`~voxray.plotting.plot_ortho`, an inline PNG) only when drawing it costs a
bounded number of bytes.

What a thumbnail costs comes from :mod:`voxray.plotting.cost` (before anything is
read). A thumbnail is drawn when that cost is at most ``max_bytes``. A repr never raises: a
field or a thumbnail that fails is replaced by a note saying what happened.
"""

from __future__ import annotations

import base64
import html
import io
import math
from collections.abc import Callable

import numpy as np

from ..errors import MissingDependencyError, VoxrayError
from ..proxy import DaskProxy
from .cost import Cost, da_data, is_dask, price, stored_index, thumbnail_cost

__all__ = ["MAX_THUMBNAIL_BYTES", "dataarray_html", "image_html", "thumbnail_cost"]

#: Largest estimated read (or inflate) a thumbnail may cost, in bytes.
MAX_THUMBNAIL_BYTES = 64 * 2**20
#: Thumbnail width in pixels (its height follows the field of view).
THUMB_WIDTH = 360
THUMB_DPI = 90
#: Beyond a seek point, an indexed gzip read inflates at most a spacing plus one block.

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
        if isinstance(dataobj, np.ndarray) or is_dask(dataobj) or (slope, inter) == (1, 0):
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
    if isinstance(dataobj, DaskProxy) or is_dask(dataobj):
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
        elif stored_index(src, reader.source):
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
            cost = price(obj)
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


def _too_costly(obj, cost: Cost, max_bytes: int) -> str:
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


def _da_storage(da) -> str:
    data = da_data(da)
    if isinstance(data, np.ndarray):
        return "in memory"
    if is_dask(data):
        return "lazy (a dask array)"
    return "lazy (xarray's lazy indexing)"
