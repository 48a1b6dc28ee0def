"""NIfTI-Zarr: OME-Zarr 0.5 stores that keep the full NIfTI header.

Reading gives the same lazy NIfTI image classes the NIfTI file would
(:mod:`.reader`); writing streams any image into a store with a pyramid
(:mod:`.writer`). The submodules load on first use: every ``vx.load`` asks this
format whether a path is a store, and a NIfTI file should not pay for importing
the Zarr machinery.
"""

from __future__ import annotations

import os

from ...sources import is_url
from .. import Format, register

__all__ = ["ZARR", "ZarrFormat", "is_zarr"]


def is_zarr(path) -> bool:
    """Whether ``path`` names a Zarr store (by its ``.zarr`` suffix or its zarr.json)."""
    p = os.fspath(path).rstrip("/")
    if p.endswith(".zarr"):
        return True
    return not is_url(p) and os.path.isfile(os.path.join(p.removeprefix("file://"), "zarr.json"))


class ZarrFormat(Format):
    """OME-Zarr 0.5 / NIfTI-Zarr stores (``.nii.zarr``, ``.ome.zarr``, ``.zarr``)."""

    name = "zarr"
    writes = True
    suffixes = (".nii.zarr", ".ome.zarr", ".zarr")
    is_directory = True

    def claims(self, filename: str) -> bool:
        return is_zarr(filename)

    def open(self, filename, *, klass=None, chunks="auto", storage_options=None, level=0, **kw):
        if kw:
            raise TypeError(f"unexpected arguments for a Zarr store: {sorted(kw)}")
        from .reader import load_zarr

        return load_zarr(filename, level=level, storage_options=storage_options, chunks=chunks)

    def save(self, img, filename, **kw) -> None:
        from .writer import to_zarr

        to_zarr(img, filename, **kw)


ZARR = register(ZarrFormat())


def __getattr__(name: str):
    if name in ("ZarrReader", "ZarrSpec", "load_zarr"):
        from . import reader

        return getattr(reader, name)
    if name == "to_zarr":
        from .writer import to_zarr

        return to_zarr
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
