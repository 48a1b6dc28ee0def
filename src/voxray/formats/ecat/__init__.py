"""ECAT 7: skeleton, being built (issue 11)."""

from __future__ import annotations

from .. import Format, register

__all__ = ["ECAT"]


class EcatFormat(Format):
    name = "ecat"
    suffixes = (".v",)


ECAT = register(EcatFormat())
