"""``voxray convert SRC DST``: from any format voxray reads to any it writes, out of core.

SRC is anything ``voxray.load`` opens (NIfTI, MGH/MGZ, CIFTI-2, MINC, PAR/REC, AFNI, ECAT,
Zarr); DST's suffix names the format written (NIfTI, MGH/MGZ, CIFTI-2, NIfTI-Zarr).
"""

from __future__ import annotations

import os
import sys

from ..errors import DestinationExistsError, InputError, NotAnImageError, VoxrayError
from .options import add_storage_options, storage_options

__all__ = ["add_parser", "run"]

#: What DST may end with, as the help and the errors say it.
DESTINATIONS = (
    ".nii, .nii.gz, .hdr/.img (optionally .gz), .mgh, .mgz, a CIFTI-2 name (.dtseries.nii...) "
    "or .nii.zarr (Zarr store)"
)


def add_parser(sub) -> None:
    p = sub.add_parser(
        "convert",
        help="convert any image voxray reads to NIfTI, MGH/MGZ, CIFTI-2 or NIfTI-Zarr "
        "(out of core, atomic)",
        description="Read SRC lazily and write DST in the format its suffix names. Unchanged "
        "data keeps its on-disk values and scaling exactly. File destinations are replaced "
        "atomically; an existing Zarr store is replaced only with --overwrite.",
    )
    p.add_argument("src", metavar="SRC", help="source image or Zarr store (a path or URL)")
    p.add_argument("dst", metavar="DST", help=f"destination: {DESTINATIONS}; a path or URL")
    p.add_argument("--dtype", help="on-disk data type of a file DST (default: SRC's)")
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
    """``"zarr"`` or ``"file"`` by DST's suffix; a format voxray does not write is refused
    before anything is read."""
    from ..open import find_format

    try:
        fmt = find_format(dst, sniff=False)
    except NotAnImageError:
        fmt = None
    if dst.lower().split("?", 1)[0].endswith((".bz2", ".zst")):
        fmt = None  # no random access: voxray writes neither
    if fmt is None or not fmt.writes:
        what = f" ({fmt.name} is read-only)" if fmt is not None else ""
        raise NotAnImageError(
            f"{dst!r}: cannot write this output format{what}; DST ends in {DESTINATIONS}"
        )
    return "zarr" if fmt.is_directory else "file"


def run(args) -> int:
    from ..open import load, save, to_zarr
    from ..sources import is_url
    from ..writers import DEFAULT_COMPRESSLEVEL

    kind = _kind(args.dst)
    if kind == "zarr":
        for flag, value in (("--dtype", args.dtype), ("--compresslevel", args.compresslevel)):
            if value is not None:
                raise InputError(
                    f"{flag} is for file destinations (.nii, .nii.gz, .hdr/.img, .mgz...), "
                    f"not the Zarr store {args.dst!r}"
                )
        if not args.overwrite and not is_url(args.dst) and os.path.exists(args.dst):
            raise DestinationExistsError(
                f"{args.dst!r} already exists; pass --overwrite to replace it"
            )
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
            raise type(e)(text.replace("overwrite=True (--overwrite)", "--overwrite")) from None
    else:
        level = DEFAULT_COMPRESSLEVEL if args.compresslevel is None else args.compresslevel
        save(img, args.dst, dtype=args.dtype, compresslevel=level, progress=show)
    print(f"{args.src} -> {args.dst}")
    return 0
