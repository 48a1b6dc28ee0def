"""CIFTI-2 (NIfTI-2 with a CIFTI extension): skeleton, being built (issue 11)."""

from __future__ import annotations

from .. import Format, register

__all__ = ["CIFTI"]


class CiftiFormat(Format):
    name = "cifti"
    suffixes = (
        ".dtseries.nii",
        ".dscalar.nii",
        ".dlabel.nii",
        ".dconn.nii",
        ".ptseries.nii",
        ".pscalar.nii",
        ".pconn.nii",
        ".pdconn.nii",
        ".dpconn.nii",
        ".plabel.nii",
        ".dfan.nii",
        ".fibertemp.nii",
    )


CIFTI = register(CiftiFormat())
