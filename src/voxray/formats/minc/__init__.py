"""MINC1 (netCDF) and MINC2 (HDF5): skeleton, being built (issue 11)."""

from __future__ import annotations

from .. import Format, register

__all__ = ["MINC"]


class MincFormat(Format):
    name = "minc"
    suffixes = (".mnc",)


MINC = register(MincFormat())
