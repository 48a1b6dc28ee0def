"""The ``voxray`` command line: one module per command.

Commands import only what they need, so ``voxray info`` starts without
importing dask, xarray or zarr.
"""

from __future__ import annotations

import argparse
import sys

from .. import __version__
from ..errors import VoxrayError
from . import clean, convert, index, info, view

__all__ = ["main"]

COMMANDS = (info, index, convert, clean, view)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="voxray",
        description="Out-of-core tools for neuroimaging images: NIfTI, Analyze, CIFTI-2, "
        "MGH/MGZ, MINC, PAR/REC, AFNI, ECAT and NIfTI-Zarr / OME-Zarr.",
    )
    parser.add_argument("--version", action="version", version=f"voxray {__version__}")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for command in COMMANDS:
        command.add_parser(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return int(args.run(args) or 0)
    except (VoxrayError, FileNotFoundError) as e:
        print(f"voxray {args.command}: error: {e}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"voxray {args.command}: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:  # `voxray info x | head`: the reader left; so do we, quietly
        import os

        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 141
