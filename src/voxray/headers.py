"""Reading header fields that nibabel parses but does not check.

nibabel loads headers whose coded fields hold codes NIfTI does not define, and
raises (a ``KeyError``) only when a getter is asked for them. The helpers here
answer as nibabel would for a defined code, and ``"unknown"`` otherwise, so a
damaged unit field never stops a conversion or a DataArray.
"""

from __future__ import annotations

__all__ = ["name_of", "xyzt_units"]


def xyzt_units(header) -> tuple[str, str]:
    """nibabel's ``get_xyzt_units()``, with ``"unknown"`` for codes NIfTI does not define
    (nibabel loads such headers and raises a KeyError only when asked), and for headers
    that have no units.

    >>> import nibabel as nib
    >>> h = nib.Nifti1Header(); h["xyzt_units"] = 7
    >>> xyzt_units(h)
    ('unknown', 'unknown')
    """
    if not hasattr(header, "get_xyzt_units"):
        return "unknown", "unknown"
    try:
        return header.get_xyzt_units()
    except (KeyError, ValueError, TypeError):
        from nibabel.nifti1 import unit_codes

        xyzt = int(header["xyzt_units"])
        space, time = xyzt % 8, xyzt - xyzt % 8
        return unit_codes.label.get(space, "unknown"), unit_codes.label.get(time, "unknown")


def name_of(img) -> str | None:
    """The file (or store) an image reads from, for messages: its file name, else the
    first file of its provenance (a Zarr store has no file_map)."""
    try:
        name = img.get_filename()
    except Exception:  # an image class whose file_map has no "image"
        name = None
    if not name:
        files = sorted(getattr(getattr(img, "_provenance", None), "files", ()) or ())
        name = files[0] if files else None
    return name
