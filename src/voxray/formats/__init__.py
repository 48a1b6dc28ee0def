"""Format plug-ins: one package per file format, each opening and writing its files.

A format is a :class:`Format` registered with :func:`register`. It claims file
names by suffix and byte streams by their first bytes (:meth:`Format.sniff`),
opens them lazily as voxray image classes it defines (subclasses of
:class:`voxray.image.Image` and of a nibabel class), and writes images out of
core with the shared parts in :mod:`voxray.writers`. :mod:`voxray.open`
dispatches ``load`` and ``save`` over the registry; nothing in the image,
reader or writer layers knows any format by name, so adding one is adding a
package here.
"""

from __future__ import annotations

from ..errors import UnsupportedFormatError

__all__ = ["Format", "for_filename", "for_header_bytes", "formats", "locator", "register"]


class Format:
    """One file format: what it claims, how it opens, how it writes.

    Subclasses set :attr:`name` and :attr:`suffixes` and implement the methods
    their format supports; the defaults refuse with a clear error.
    """

    #: Short name (``"nifti"``, ``"zarr"``...).
    name: str = ""
    #: Lower-case file-name endings it claims, longest first (``".nii.gz"``, ``".nii"``).
    suffixes: tuple[str, ...] = ()
    #: Whether a local path is a directory store (Zarr) rather than a file.
    is_directory: bool = False
    #: Whether the format writes files (read-only formats' :meth:`save` refuses).
    writes: bool = False

    def claims(self, filename: str) -> bool:
        """Whether ``filename`` ends with one of this format's suffixes."""
        return _bare(filename).endswith(self.suffixes)

    def sniff(self, head: bytes) -> bool:
        """Whether the first bytes of a (decompressed) file are this format's."""
        return False

    def open(self, filename: str, *, klass=None, chunks="auto", storage_options=None, **kw):
        """A lazy image of ``filename`` (of ``klass`` when given)."""
        raise UnsupportedFormatError(f"{filename!r}: voxray cannot read {self.name} files")

    def open_file_map(self, klass, file_map, *, chunks="auto"):
        """A lazy image of ``klass`` over nibabel's ``file_map``."""
        raise UnsupportedFormatError(f"voxray cannot read {self.name} file maps")

    def save(self, img, filename: str, **kw) -> None:
        """Write ``img`` to ``filename`` out of core (the class follows the suffix)."""
        raise UnsupportedFormatError(
            f"{filename!r}: voxray cannot write {self.name} files (nibabel cannot either); "
            f"write NIfTI (.nii, .nii.gz) or NIfTI-Zarr (.nii.zarr) instead"
        )

    def write_file_map(self, img, file_map, **kw) -> None:
        """Write ``img`` (of one of this format's classes) to ``file_map``, out of core."""
        raise UnsupportedFormatError(
            f"voxray cannot write {self.name} file maps; write NIfTI or NIfTI-Zarr instead"
        )

    def __repr__(self) -> str:
        return f"<voxray format {self.name!r} {self.suffixes}>"


def locator(filename: str, storage_options: dict | None = None):
    """``(name, locate)`` for a file a format opens: a URL keeps its name and gets fsspec's
    locator (``storage_options`` apply), a local path loses any ``file://``; ``locate(name)``
    gives the source spec of that file or of a file beside it."""
    from ..sources import is_url, local_spec, remote_locator

    if is_url(filename):
        return filename, remote_locator(storage_options)
    return filename.removeprefix("file://"), local_spec


def _bare(filename: str) -> str:
    """A name as suffixes are matched: lower case, no trailing slash, no URL query."""
    return filename.rstrip("/").lower().split("?", 1)[0]


_FORMATS: list[Format] = []


def register(fmt: Format) -> Format:
    """Add a format to the registry (a later registration of the same name replaces it)."""
    _FORMATS[:] = [f for f in _FORMATS if f.name != fmt.name] + [fmt]
    return fmt


def formats() -> tuple[Format, ...]:
    """The registered formats, in registration order."""
    return tuple(_FORMATS)


def for_filename(filename: str) -> Format | None:
    """The format whose suffix ``filename`` ends with (the longest suffix wins)."""
    best, length = None, 0
    name = _bare(filename)
    for f in _FORMATS:
        for s in f.suffixes:
            if name.endswith(s) and len(s) > length:
                best, length = f, len(s)
    return best


def for_header_bytes(head: bytes) -> Format | None:
    """The first format whose :meth:`Format.sniff` takes these (decompressed) bytes."""
    for f in _FORMATS:
        if f.sniff(head):
            return f
    return None


# The built-in plug-ins (each imports only what a header read needs at import time).
# CIFTI-2 before NIfTI: its suffixes are longer, and a NIfTI-2 file with a CIFTI
# extension is CIFTI whatever its name (as in nibabel).
from . import afni, cifti, ecat, mgh, minc, nifti, parrec, zarr  # noqa: E402

__all__ += ["afni", "cifti", "ecat", "mgh", "minc", "nifti", "parrec", "zarr"]
