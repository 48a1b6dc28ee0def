"""Philips PAR/REC: skeleton, being built (issue 11)."""

from __future__ import annotations

from .. import Format, register

__all__ = ["PARREC"]


class ParrecFormat(Format):
    name = "parrec"
    suffixes = (
        ".par",
        ".rec",
    )


PARREC = register(ParrecFormat())
