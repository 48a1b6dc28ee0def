"""``voxray convert SRC DST``: between .nii, .nii.gz, pairs and .nii.zarr, out of core."""

from __future__ import annotations

import os
import sys

from ..errors import NotAnImageError, VoxrayError
from .options import add_storage_options, storage_options

__all__ = ["add_parser", "run"]

#: What DST may end with, as the help and the errors say it.
DESTINATIONS = ".nii, .nii.gz, .hdr/.img (optionally .gz) or .nii.zarr (Zarr store)"
_NIFTI = (".nii", ".hdr", ".img")
_ZARR = (".zarr",)  # .nii.zarr, .ome.zarr, .zarr


def add_parser(sub) -> None:
    p = sub.add_parser(
        "convert",
        help="convert between .nii, .nii.gz, .hdr/.img and .nii.zarr (out of core, atomic)",
        description="Read SRC lazily and write DST in the format its suffix names. Unchanged "
        "data keeps its on-disk values and scaling exactly. NIfTI destinations are replaced "
        "atomically; an existing Zarr store is replaced only with --overwrite.",
    )
    p.add_argument("src", metavar="SRC", help="source image or Zarr store (a path or URL)")
    p.add_argument("dst", metavar="DST", help=f"destination: {DESTINATIONS}; a path or URL")
    p.add_argument("--dtype", help="on-disk data type of a NIfTI DST (default: SRC's)")
    p.add_argument(
        "--compresslevel", type=int, default=None, help="gzip level of a .gz DST (default 3)"
    )
    p.add_argument(
        "--overwrite",
        action="store_true",
        help="replace an existing Zarr store (NIfTI files are always replaced, atomically)",
    )
    p.add_argument("--quiet", "-q", action="store_true", help="no progress bar")
    add_storage_options(p)
    p.set_defaults(run=run)


def _kind(dst: str) -> str:
    """``"zarr"`` or ``"nifti"`` by DST's suffix; anything else is refused before reading."""
    name = dst.rstrip("/").lower().split("?", 1)[0]
    if name.endswith(_ZARR):
        return "zarr"
    if name.endswith(_NIFTI) or name.endswith(tuple(s + ".gz" for s in _NIFTI)):
        return "nifti"
    raise NotAnImageError(
        f"{dst!r}: cannot tell the output format from the suffix; DST ends in {DESTINATIONS}"
    )


def run(args) -> int:
    from ..open import load, save, to_zarr
    from ..sources import is_url
    from ..writers import DEFAULT_COMPRESSLEVEL

    kind = _kind(args.dst)
    if kind == "zarr":
        for flag, value in (("--dtype", args.dtype), ("--compresslevel", args.compresslevel)):
            if value is not None:
                raise VoxrayError(
                    f"{flag} is for NIfTI destinations (.nii, .nii.gz, .hdr/.img), not the "
                    f"Zarr store {args.dst!r}"
                )
        if not args.overwrite and not is_url(args.dst) and os.path.exists(args.dst):
            raise VoxrayError(f"{args.dst!r} already exists; pass --overwrite to replace it")
    options = storage_options(args)  # for URLs: SRC, and a Zarr DST
    img = load(args.src, storage_options=options)
    show = not args.quiet and sys.stderr.isatty()
    if kind == "zarr":
        try:
            to_zarr(
                img, args.dst, overwrite=args.overwrite, progress=show, storage_options=options
            )
        except VoxrayError as e:  # the library names its keyword; here the flag is what counts
            text = str(e)
            if "overwrite=True (--overwrite)" not in text:
                raise
            raise VoxrayError(
                text.replace("overwrite=True (--overwrite)", "--overwrite")
            ) from None
    else:
        level = DEFAULT_COMPRESSLEVEL if args.compresslevel is None else args.compresslevel
        save(img, args.dst, dtype=args.dtype, compresslevel=level, progress=show)
    print(f"{args.src} -> {args.dst}")
    return 0
