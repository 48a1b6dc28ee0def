"""``voxray convert SRC DST``: between .nii, .nii.gz and pairs, out of core."""

from __future__ import annotations

import sys

from .options import add_storage_options, storage_options

__all__ = ["add_parser", "run"]


def add_parser(sub) -> None:
    p = sub.add_parser(
        "convert",
        help="convert between .nii, .nii.gz, .hdr/.img and .nii.zarr (out of core, atomic)",
        description="Read SRC lazily and write DST in the format its suffix names. Unchanged "
        "data keeps its on-disk values and scaling exactly.",
    )
    p.add_argument("src", help="source image")
    p.add_argument("dst", help="destination (.nii, .nii.gz, .hdr/.img, optionally .gz)")
    p.add_argument("--dtype", help="on-disk data type of DST (default: SRC's)")
    p.add_argument("--compresslevel", type=int, default=None, help="gzip level (default 3)")
    p.add_argument("--overwrite", action="store_true", help="replace an existing Zarr store")
    p.add_argument("--quiet", "-q", action="store_true", help="no progress bar")
    add_storage_options(p)
    p.set_defaults(run=run)


def run(args) -> int:
    from ..open import load, save, to_zarr
    from ..writers import DEFAULT_COMPRESSLEVEL

    options = storage_options(args)  # for URLs: SRC, and a Zarr DST
    img = load(args.src, storage_options=options)
    show = not args.quiet and sys.stderr.isatty()
    if args.dst.rstrip("/").endswith(".zarr"):
        if args.dtype:
            raise SystemExit("voxray convert: --dtype is for NIfTI outputs")
        to_zarr(img, args.dst, overwrite=args.overwrite, progress=show, storage_options=options)
    else:
        level = DEFAULT_COMPRESSLEVEL if args.compresslevel is None else args.compresslevel
        save(img, args.dst, dtype=args.dtype, compresslevel=level, progress=show)
    print(f"{args.src} -> {args.dst}")
    return 0
