"""``voxray view PATH OUT.png``: a picture of an image, reading only what it shows.

Four pictures, one per run: three orthogonal slices through a world point (the default),
a mosaic of evenly spaced slices (``--mosaic``), a carpet plot of a 4-D image
(``--carpet``) or the time course of one voxel or sphere (``--timecourse X,Y,Z``). Any
image ``voxray.load`` opens, local or by URL (``-o KEY=VALUE`` passes fsspec storage
options). OUT's suffix names the file type (``.png``, ``.svg``, ``.pdf``, anything
matplotlib's ``savefig`` writes); it is written atomically (a temporary file beside it,
then a rename) and one line says what it shows.

For a Zarr store with a pyramid, the slices and the mosaic are drawn from the coarsest
level that still has at least as many voxels along each panel's sides as the panel has
pixels (``--dpi`` x ``--width``): a thumbnail of a 1 mm brain reads a few kilobytes of
a coarse level, not the planes of level 0. ``--level N`` chooses one. Time courses and
carpet plots always read level 0 (a coarser level would average voxels before their
series are standardised).
"""

from __future__ import annotations

import argparse
import dataclasses
import math
import os
import struct

import numpy as np

from ..errors import InputError, NoSuchLevelError, VoxrayError
from .options import add_storage_options, storage_options

__all__ = ["add_parser", "choose_level", "run"]

#: The panels of the orthogonal view and of a mosaic, by their axes' labels.
PANELS = ("sagittal", "coronal", "axial")
#: File types whose size is counted in pixels (the others are vector formats).
RASTER = ("png", "jpg", "jpeg", "tif", "tiff", "webp", "raw", "rgba", "gif")


def _triple(text: str) -> tuple[float, float, float]:
    parts = text.replace(" ", "").split(",")
    try:
        xyz = tuple(float(p) for p in parts)
    except ValueError:
        xyz = ()
    if len(xyz) != 3 or not all(math.isfinite(c) for c in xyz):
        raise argparse.ArgumentTypeError(
            f"expected three world coordinates in mm, X,Y,Z (e.g. 0,-18,12; a negative first "
            f"one as --coords=-10,0,0), got {text!r}"
        )
    return xyz  # type: ignore[return-value]


def _positive(kind):
    def parse(text: str):
        try:
            value = kind(text)
        except ValueError:
            value = None
        if value is None or not (value > 0 and math.isfinite(value)):
            raise argparse.ArgumentTypeError(f"expected a positive {kind.__name__}, got {text!r}")
        return value

    parse.__name__ = kind.__name__
    return parse


def _level(text: str):
    if text == "auto":
        return text
    try:
        level = int(text)
    except ValueError:
        level = -1
    if level < 0:
        raise argparse.ArgumentTypeError(f"expected 'auto' or a level number >= 0, got {text!r}")
    return level


def add_parser(sub) -> None:
    p = sub.add_parser(
        "view",
        help="draw orthogonal slices, a mosaic, a carpet plot or a time course to PNG/SVG/PDF "
        "(reads only what it shows)",
        description="Draw a picture of PATH into OUT: by default sagittal, coronal and axial "
        "slices through a world point (neurological: the subject's right on the right). "
        "Reads only the planes it shows; for a Zarr store with a pyramid, the coarsest "
        "level that still fills the picture's pixels. OUT is replaced atomically; its "
        "suffix names the file type (.png, .svg, .pdf, ...).",
    )
    p.add_argument("path", metavar="PATH", help="image file, Zarr store or URL (s3://, https://)")
    p.add_argument("out", metavar="OUT", help="picture to write: .png, .svg, .pdf, ...")
    mode = p.add_mutually_exclusive_group()
    mode.add_argument(
        "--mosaic",
        action="store_true",
        help="a lightbox of evenly spaced slices (see --axis, --n)",
    )
    mode.add_argument(
        "--carpet", action="store_true", help="a carpet plot of a 4-D image (voxels x time)"
    )
    mode.add_argument(
        "--timecourse",
        type=_triple,
        metavar="X,Y,Z",
        help="the time course of a 4-D image at world point X,Y,Z (mm)",
    )
    p.add_argument(
        "--coords",
        type=_triple,
        metavar="X,Y,Z",
        help="world point (mm, RAS+) the slices go through (default: the centre of the field "
        "of view); write a negative first coordinate as --coords=-10,0,0",
    )
    p.add_argument("--t", type=int, default=None, metavar="N", help="volume of a 4-D image (0)")
    p.add_argument(
        "--radiological",
        action="store_true",
        help="mirror coronal and axial slices (the subject's right on the left)",
    )
    p.add_argument(
        "--axis", choices=("x", "y", "z"), default=None, help="--mosaic: world axis cut (z)"
    )
    p.add_argument("--n", type=_positive(int), default=None, help="--mosaic: slices (12)")
    p.add_argument(
        "--radius",
        type=_positive(float),
        default=None,
        metavar="MM",
        help="--timecourse: mean over a sphere of this radius (mm)",
    )
    p.add_argument("--cmap", default=None, metavar="NAME", help="matplotlib colour map (gray)")
    p.add_argument("--vmin", type=float, default=None, metavar="V", help="lower display limit")
    p.add_argument("--vmax", type=float, default=None, metavar="V", help="upper display limit")
    p.add_argument("--title", default=None, metavar="T", help="title drawn on the picture")
    p.add_argument(
        "--dpi", type=_positive(int), default=100, metavar="N", help="pixels per inch (100)"
    )
    p.add_argument(
        "--width",
        type=_positive(float),
        default=None,
        metavar="INCHES",
        help="picture width; the height follows the picture's shape (default: the "
        "picture's own, 9 in for slices)",
    )
    p.add_argument(
        "--level",
        type=_level,
        default="auto",
        metavar="N",
        help="pyramid level of a Zarr store ('auto': the coarsest that fills the pixels)",
    )
    add_storage_options(p)
    p.set_defaults(run=run)


# -- checks before anything is read --------------------------------------------------


def _mode(args) -> str:
    if args.mosaic:
        return "mosaic"
    if args.carpet:
        return "carpet"
    if args.timecourse is not None:
        return "timecourse"
    return "ortho"


#: Options each picture takes (beyond PATH, OUT, --dpi, --width, --title, -o).
_TAKES = {
    "ortho": {"coords", "t", "radiological", "cmap", "vmin", "vmax"},
    "mosaic": {"axis", "n", "t", "radiological", "cmap", "vmin", "vmax"},
    "carpet": {"cmap", "vmin", "vmax"},
    "timecourse": {"radius"},
}
_DEFAULTS = {"radiological": False, "level": "auto"}
_WHAT = {
    "ortho": "the orthogonal slices",
    "mosaic": "--mosaic",
    "carpet": "--carpet",
    "timecourse": "--timecourse",
}


def _check_options(args, mode: str) -> None:
    for name in ("coords", "t", "radiological", "axis", "n", "radius", "cmap", "vmin", "vmax"):
        given = getattr(args, name) != _DEFAULTS.get(name)
        if given and name not in _TAKES[mode]:
            users = [_WHAT[m] for m in _TAKES if name in _TAKES[m]]
            raise InputError(f"--{name} is for {' and '.join(users)}, not {_WHAT[mode]}")
    if args.level != "auto" and mode not in ("ortho", "mosaic"):
        raise InputError(
            f"--level is for the orthogonal slices and --mosaic; {_WHAT[mode]} reads level 0"
        )
    if args.vmin is not None and args.vmax is not None and not args.vmin < args.vmax:
        raise InputError(f"--vmin {args.vmin:g} must be less than --vmax {args.vmax:g}")
    if args.cmap is not None:
        import matplotlib as mpl

        if args.cmap not in mpl.colormaps:
            raise InputError(
                f"--cmap {args.cmap!r} is not a matplotlib colour map; try gray, viridis, "
                "hot, magma, RdBu_r (matplotlib.colormaps lists them all)"
            )


def _file_type(out: str) -> str:
    """OUT's file type, by its suffix, if matplotlib writes it."""
    from matplotlib.figure import Figure

    from ..sources import is_url

    if is_url(out):
        raise InputError(f"OUT {out!r} is a URL: voxray view writes local files")
    kinds = Figure().canvas.get_supported_filetypes()
    suffix = os.path.splitext(out)[1].lower().lstrip(".")
    if suffix not in kinds:
        raise InputError(
            f"OUT {out!r}: cannot tell the picture type from its suffix; matplotlib writes "
            + ", ".join(f".{k}" for k in sorted(kinds))
        )
    return suffix


# -- the pyramid level ---------------------------------------------------------------


def volume(img, path: str):
    """What plotting reads of ``img``, named by ``path`` as given (errors from plotting
    name it: a Zarr image has no file name of its own)."""
    from ..plotting.volume import as_volume

    return dataclasses.replace(as_volume(img), name=path)


def _dry(vol):
    """``vol`` with a reader that reads nothing (zeros of the selection's shape): for
    laying out a picture and measuring planes from metadata alone."""
    zero = np.zeros((), np.float64)

    def reader(key, _shape=vol.shape):
        return np.broadcast_to(zero, selection_shape(_shape, key))

    return dataclasses.replace(vol, reader=reader)


def selection_shape(shape: tuple[int, ...], key: tuple) -> tuple[int, ...]:
    """The shape of ``array[key]`` for a basic key of one int or slice per axis.

    >>> selection_shape((10, 20, 30, 5), (3, slice(None), slice(2, 8), 1))
    (20, 6)
    """
    out = []
    for n, k in zip(shape, key):
        if isinstance(k, slice):
            out.append(len(range(*k.indices(n))))
        elif not isinstance(k, (int, np.integer)):
            raise TypeError(f"not a basic index: {k!r}")
    return tuple(out)


def _panel_pixels(fig, dpi: int) -> list[tuple[float, float]]:
    """(width, height) in pixels of each image panel of ``fig`` at ``dpi``."""
    fw, fh = fig.get_size_inches()
    sizes = []
    for ax in fig.axes:
        if ax.get_label() in PANELS:
            ax.apply_aspect()
            pos = ax.get_position()
            sizes.append((pos.width * fw * dpi, pos.height * fh * dpi))
    return sizes


def _plane_shapes(vol, mode: str, args) -> list[tuple[int, int]]:
    """In-plane voxel counts (horizontal, vertical) of the panels ``vol`` would show."""
    from ..plotting.planes import PLANES, check_coords, check_t, ortho_planes, plane

    dry = _dry(vol)
    t = args.t or 0
    if mode == "ortho":
        return [p.data.shape for p in ortho_planes(dry, args.coords, t)]
    a = "xyz".index(args.axis or "z")
    p = plane(dry, PLANES[a][1], check_coords(dry, None), check_t(dry, t))
    return [p.data.shape]


def choose_level(path: str, img, mode: str, args, options) -> tuple[object, int, int | None]:
    """(image, level, number of levels) for a Zarr store: the coarsest pyramid level whose
    planes have at least as many voxels along each panel side as that side has pixels
    (level 0 when none is that fine); ``(img, 0, None)`` for anything else.

    The levels are opened with ``voxray.load(path, level=n)``: metadata only.
    """
    from ..open import load

    if getattr(getattr(img, "provenance", None), "store", None) is None:
        if args.level != "auto":
            raise InputError(f"{path!r} is not a Zarr store: it has no pyramid levels (--level)")
        return img, 0, None
    levels = [img]
    while True:  # every level's metadata: a few small reads each
        try:
            levels.append(load(path, storage_options=options, level=len(levels)))
        except NoSuchLevelError:
            break
    if args.level != "auto":
        if args.level >= len(levels):
            raise NoSuchLevelError(
                f"{path!r} has {len(levels)} levels; --level {args.level} does not exist"
            )
        return levels[args.level], args.level, len(levels)
    if mode not in ("ortho", "mosaic") or len(levels) == 1:
        return img, 0, len(levels)
    layout = _figure(_dry(volume(img, path)), mode, args)
    pixels = [(round(w), round(h)) for w, h in _panel_pixels(layout, args.dpi)]
    chosen = 0
    for n, level in enumerate(levels[1:], start=1):
        shapes = _plane_shapes(volume(level, path), mode, args)
        if all(nh >= pw and nv >= ph for (nh, nv), (pw, ph) in zip(shapes, pixels)):
            chosen = n
        else:
            break  # coarser levels have fewer voxels still
    return levels[chosen], chosen, len(levels)


# -- drawing and writing -------------------------------------------------------------


def _figure(vol, mode: str, args):
    """The picture of ``vol`` at ``args.width`` inches (the height keeps its shape)."""
    from ..plotting import plot_carpet, plot_mosaic, plot_ortho, plot_timecourse

    common = {"title": args.title}
    limits = {"vmin": args.vmin, "vmax": args.vmax}
    if args.cmap is not None:
        limits["cmap"] = args.cmap
    if mode == "ortho":
        fig = plot_ortho(
            vol,
            coords=args.coords,
            t=args.t or 0,
            radiological=args.radiological,
            **limits,
            **common,
        )
    elif mode == "mosaic":
        fig = plot_mosaic(
            vol,
            axis=args.axis or "z",
            n=args.n or 12,
            t=args.t or 0,
            radiological=args.radiological,
            **limits,
            **common,
        )
    elif mode == "carpet":
        fig = plot_carpet(vol, **limits, **common)
    else:
        fig = plot_timecourse(vol, args.timecourse, radius=args.radius, **common)
    if args.width is not None:
        w, h = fig.get_size_inches()
        fig.set_size_inches(args.width, h * args.width / w)
        if mode in ("carpet", "timecourse"):  # laid out by tight_layout for their size
            fig.tight_layout()
    return fig


def _check_point(vol, xyz, path: str) -> None:
    """Refuse a world point outside the image: its slices would show nothing."""
    from ..plotting.planes import field_of_view

    A, b = vol.affine[:3, :3], vol.affine[:3, 3]
    ijk = np.floor(np.linalg.solve(A, np.asarray(xyz, np.float64) - b) + 0.5)
    if np.all(ijk >= 0) and np.all(ijk < np.array(vol.shape[:3])):
        return
    lo, hi = field_of_view(vol)
    fov = ", ".join(f"{a} {_num(a0)}..{_num(a1)}" for a, a0, a1 in zip("xyz", lo, hi))
    raise InputError(
        f"{path!r}: the point ({', '.join(_num(c) for c in xyz)}) mm is outside the image "
        f"(its voxel centres span {fov} mm)"
    )


def _num(x: float) -> str:
    return f"{round(float(x), 1):g}"


def _mm(zooms) -> str:
    z = [float(v) for v in zooms[:3]]

    def one(v: float) -> str:
        return f"{v:.1f}" if abs(v - round(v, 1)) < 1e-6 else f"{v:.3g}"

    return f"{one(z[0])} mm" if np.allclose(z, z[0]) else " x ".join(map(one, z)) + " mm"


def _png_size(path: str) -> tuple[int, int] | None:
    with open(path, "rb") as f:
        head = f.read(24)
    if head[:8] != b"\x89PNG\r\n\x1a\n" or head[12:16] != b"IHDR":
        return None
    return struct.unpack(">II", head[16:24])


def save_figure(fig, out: str, kind: str, dpi: int) -> str:
    """Write ``fig`` to ``out`` atomically (a temporary file beside it, fsynced, renamed);
    returns its size, in pixels for raster types, inches for the others."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg

    from ..writers.atomic import AtomicFile, guarded

    FigureCanvasAgg(fig)  # Agg explicitly; vector types switch to their own canvas
    try:
        with guarded(out), AtomicFile(out) as f, os.fdopen(os.dup(f.fd), "wb") as fh:
            fig.savefig(fh, format=kind, dpi=dpi, facecolor=fig.get_facecolor())
    except ValueError as e:  # matplotlib cannot draw a text (mathtext in --title)
        if isinstance(e, VoxrayError):
            raise
        reason = " ".join(str(e).split())
        reason = reason if len(reason) <= 160 else reason[:157] + "..."
        raise InputError(
            f"cannot draw {out!r}: {reason} (a --title with $...$ is matplotlib mathtext; "
            "write a literal $ as \\$)"
        ) from None
    w, h = fig.get_size_inches()
    if kind not in RASTER:
        return f"{w:.3g}x{h:.3g} in"
    size = _png_size(out) if kind == "png" else None
    px_w, px_h = size if size else (int(w * dpi), int(h * dpi))
    return f"{px_w}x{px_h} px"


def _describe(vol, fig, mode: str, args, coords) -> str:
    t = f", volume {(args.t or 0) % vol.nt} of {vol.nt}" if vol.ndim == 4 else ""
    conv = ", radiological" if args.radiological else ""
    if mode == "ortho":
        where = ", ".join(_num(c) for c in coords)
        return f"sagittal/coronal/axial through ({where}) mm{t}{conv}"
    if mode == "mosaic":
        axes = [ax for ax in fig.axes if ax.get_label() in PANELS]
        cuts = [ax.texts[0].get_text() for ax in axes]
        span = f"{cuts[0]}..{cuts[-1].split('=', 1)[1]}" if len(cuts) > 1 else cuts[0]
        return f"{len(axes)} {axes[0].get_label()} slices, {span} mm{t}{conv}"
    if mode == "carpet":
        rows = fig.axes[0].images[0].get_array().shape[0]
        return f"carpet plot, {rows} rows x {vol.nt} volumes"
    where = ", ".join(_num(c) for c in args.timecourse)
    sphere = f" (sphere of {args.radius:g} mm)" if args.radius else ""
    return f"time course at ({where}) mm{sphere}, {vol.nt} volumes"


def run(args) -> int:
    try:
        return _run(args)
    except VoxrayError as e:
        # One line on stderr: some messages quote a format library's multi-line text
        # (nibabel's AFNI parser); an OSError's text comes from its errno and strerror.
        text = str(e)
        if "\n" in text and not isinstance(e, OSError):
            e.args = (" ".join(text.split()),)
        raise


def _run(args) -> int:
    from ..open import load
    from ..plotting.planes import check_coords
    from ..plotting.volume import require_matplotlib

    require_matplotlib()
    mode = _mode(args)
    _check_options(args, mode)
    kind = _file_type(args.out)
    options = storage_options(args)
    img = load(args.path, storage_options=options)
    coords = None
    if mode == "ortho":
        vol = volume(img, args.path)
        coords = check_coords(vol, args.coords)
        _check_point(vol, coords, args.path)
        args.coords = tuple(float(c) for c in coords)
    img, level, nlevels = choose_level(args.path, img, mode, args, options)
    vol = volume(img, args.path)
    fig = _figure(vol, mode, args)
    size = save_figure(fig, args.out, kind, args.dpi)
    what = _describe(vol, fig, mode, args, coords)
    if nlevels is not None:
        what += f", level {level} of {nlevels} ({_mm(img.header.get_zooms())})"
    print(f"wrote {args.out} ({size}): {what}")
    return 0
