"""FreeSurfer MGH/MGZ: skeleton, being built (issue 11)."""

from __future__ import annotations

from .. import Format, register

__all__ = ["MGH"]


class MghFormat(Format):
    name = "mgh"
    suffixes = (
        ".mgz",
        ".mgh",
    )


MGH = register(MghFormat())
