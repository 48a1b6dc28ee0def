"""AFNI BRIK/HEAD: skeleton, being built (issue 11)."""

from __future__ import annotations

from .. import Format, register

__all__ = ["AFNI"]


class AfniFormat(Format):
    name = "afni"
    suffixes = (
        ".brik.gz",
        ".brik",
        ".head",
    )


AFNI = register(AfniFormat())
