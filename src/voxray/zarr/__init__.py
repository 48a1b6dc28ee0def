"""NIfTI-Zarr: OME-Zarr 0.5 stores that keep the full NIfTI header.

The submodules load on first use: ``vx.load`` asks :func:`is_zarr` about every
path, and a NIfTI file should not pay for importing the Zarr machinery.
"""

from __future__ import annotations

import os

__all__ = ["ZarrReader", "ZarrSpec", "is_zarr", "load_zarr", "to_zarr"]


def is_zarr(path) -> bool:
    """Whether ``path`` names a Zarr store (by its ``.zarr`` suffix or its zarr.json)."""
    p = os.fspath(path).rstrip("/")
    if p.endswith(".zarr"):
        return True
    return "://" not in p and os.path.isfile(os.path.join(p, "zarr.json"))


def __getattr__(name: str):
    if name in ("ZarrReader", "ZarrSpec", "load_zarr"):
        from . import reader

        return getattr(reader, name)
    if name == "to_zarr":
        from .writer import to_zarr

        return to_zarr
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
