"""NIfTI-Zarr: OME-Zarr 0.5 stores that keep the full NIfTI header."""

from .reader import ZarrReader, ZarrSpec, is_zarr, load_zarr
from .writer import to_zarr

__all__ = ["ZarrReader", "ZarrSpec", "is_zarr", "load_zarr", "to_zarr"]
