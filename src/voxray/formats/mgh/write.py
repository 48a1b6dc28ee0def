"""Out-of-core MGH writing: ``.mgh`` and ``.mgz``, in parallel, atomically.

The header is nibabel's: an ``MGHImage`` of the image's data, affine and header
(``MGHImage.from_image`` for an image of another class, as ``nibabel.save``
converts) updated exactly as nibabel's ``update_header`` does, so ``delta``,
``Mdc`` and ``Pxyz_c`` come from the affine and the footer (TR, flip angle, TE,
TI, FoV) is kept. MGH has no scaling: the shared value plan
(:mod:`voxray.writers.values`) copies stored values of an unchanged dtype and
otherwise converts with nibabel's array writer, refusing a type MGH cannot hold
(uint8, int16, uint16, int32 and float32 only) or values that need scaling.

The file is laid out as nibabel writes it: 90 header bytes, zeros to byte 284,
the big-endian data in Fortran order, the 20 footer bytes (FreeSurfer's tags
after them are not written, as nibabel writes none). ``.mgh`` data slabs land in
their regions of a preallocated temporary file in parallel; ``.mgz`` is
written as random-access gzip members (a header member, data members of a few
MiB compressed in parallel, a footer member, voxray's trailer index), so any
gzip reader sees nibabel's bytes and voxray reads it back without a pass. Files
are renamed into place when complete; open file objects (``to_bytes``) are
written in order from their start, as nibabel's ``writehdr_to`` seeks to 0.

A file is written holding its lock, after its stale temporaries are removed, and a
file-system failure (a full disk, a file-size limit, in any worker thread) is one
``WriteFailedError`` after the temporary file is gone
(:func:`voxray.writers.atomic.guarded`).
"""

from __future__ import annotations

import os
from dataclasses import dataclass

from nibabel.freesurfer.mghformat import DATA_OFFSET, MGHError, MGHHeader
from nibabel.freesurfer.mghformat import MGHImage as NibMGHImage

from ...errors import NotAnImageError
from ...image import nibabel_class_of
from ...writers import pipeline
from ...writers.atomic import AtomicFile, StreamTarget, guarded
from ...writers.data import write_members, write_plain
from ...writers.gzip import DEFAULT_COMPRESSLEVEL, MemberWriter
from ...writers.values import (
    ValuePlan,
    WriteError,
    as_image,
    plan_values,
    refuse_overwriting_sources,
)
from .header import FOOTER_SIZE, HEADER_SIZE

__all__ = ["MGHPlan", "plan_mgh", "save", "write_file_map"]


@dataclass
class MGHPlan:
    """An MGH file to write: nibabel's header, its bytes (284 header bytes, 20 footer
    bytes) and the values."""

    header: MGHHeader
    header_bytes: bytes
    footer_bytes: bytes
    values: ValuePlan

    @property
    def size(self) -> int:
        """Bytes of the (uncompressed) file."""
        return DATA_OFFSET + self.values.nbytes + len(self.footer_bytes)


class _Unscaled:
    """The MGH header as the value plan sees it: a header without scaling fields
    (``MGHHeader`` has no ``set_slope_inter``; any scaling but the identity is refused)."""

    has_data_slope = False
    has_data_intercept = False

    def __init__(self, header: MGHHeader, name: str):
        self.header = header
        self.name = name

    def get_data_dtype(self):
        return self.header.get_data_dtype()

    def set_slope_inter(self, slope, inter=None) -> None:
        if slope not in (None, 1) or inter not in (None, 0):
            raise WriteError(
                f"{self.name}: MGH stores no scaling; these values would need slope {slope!r} "
                f"and intercept {inter!r} (write them as float32)"
            )


def plan_mgh(img, dtype=None, cf=None, name: str = "") -> MGHPlan:
    """What writing ``img`` as MGH means: the header nibabel would write (updated for
    shape and affine), its bytes, and the value plan.

    Examples
    --------
    >>> import numpy as np, voxray as vx
    >>> plan = plan_mgh(vx.Image(np.zeros((2, 3, 4), np.int16), np.eye(4)))
    >>> plan.header.get_data_dtype().str, len(plan.header_bytes), plan.size
    ('>f4', 284, 400)
    """
    name = name or "image"
    if img.ndim not in (3, 4):
        raise WriteError(f"{name}: MGH holds 3-D and 4-D images, not shape {tuple(img.shape)!r}")
    try:
        if issubclass(nibabel_class_of(type(img)), NibMGHImage):
            # nibabel's to_file_map writes the image's own header after update_header
            out = NibMGHImage(img.dataobj, img.affine, img.header, extra=dict(img.extra))
        else:  # nibabel.save's conversion: a fresh MGH header (float32) from the image
            out = NibMGHImage.from_image(img)
        hdr = out.header
        if dtype is not None:
            hdr.set_data_dtype(dtype)
    except (MGHError, ValueError) as e:
        raise WriteError(
            f"{name}: cannot write this image as MGH ({e}); MGH keeps uint8, int16, uint16, "
            f"int32 and float32 data of 3 or 4 dimensions"
        ) from None
    values = plan_values(img, _Unscaled(hdr, name), cf, name)
    block = hdr.binaryblock
    head = block[:HEADER_SIZE] + b"\x00" * (DATA_OFFSET - HEADER_SIZE)
    footer = block[HEADER_SIZE : HEADER_SIZE + FOOTER_SIZE]
    return MGHPlan(hdr, head, footer, values)


# -- writing the data ------------------------------------------------------------------


def _write_gzip(plan: MGHPlan, target, level: int, update) -> None:
    """Header member, data members, footer member, trailer index."""
    out = MemberWriter(target, level, on_raw=update)
    out.write_bytes(plan.header_bytes)
    write_members(plan.values, out, level)
    if plan.footer_bytes:
        out.write_bytes(plan.footer_bytes)
    out.finish()


def write_plan(plan: MGHPlan, dest, gz: bool, level: int, progress) -> None:
    """Write ``plan`` to ``dest`` (a path, atomically and under its lock, or
    ``(file object, position)``)."""
    if isinstance(dest, str):
        with guarded(dest):
            _write_plan(plan, dest, gz, level, progress)
    else:
        _write_plan(plan, dest, gz, level, progress)


def _write_plan(plan: MGHPlan, dest, gz: bool, level: int, progress) -> None:
    name = dest if isinstance(dest, str) else "stream"
    bar = pipeline.progress_bar(plan.values.nbytes, name, progress)
    update = (lambda n: bar.update(n)) if bar else (lambda n: None)
    if isinstance(dest, str):
        target = AtomicFile(dest, None if gz else plan.size)
    else:
        target = StreamTarget(dest[0], 0)  # nibabel's writehdr_to seeks to 0
    try:
        if gz:
            _write_gzip(plan, target, level, update)
        else:
            target.write(plan.header_bytes)
            write_plain(plan.values, target, DATA_OFFSET, update)
            if target.path is not None:
                footer_at = DATA_OFFSET + plan.values.nbytes
                done = 0
                while done < len(plan.footer_bytes):
                    done += os.pwrite(target.fd, plan.footer_bytes[done:], footer_at + done)
            else:
                target.write(plan.footer_bytes)
        target.sync()
        target.commit()
    except BaseException:
        target.abort()
        raise
    finally:
        if bar:
            bar.close()


def _gzipped(filename: str) -> bool:
    lower = filename.lower()
    if lower.endswith(".mgz"):
        return True
    if lower.endswith(".mgh"):
        return False
    raise NotAnImageError(
        f"{filename!r}: an MGH file is named .mgh (uncompressed) or .mgz (gzipped)"
    )


def save(
    img,
    filename,
    *,
    dtype=None,
    compresslevel: int = DEFAULT_COMPRESSLEVEL,
    progress: bool | None = None,
) -> None:
    """Write an image (voxray, nibabel or a DataArray) as MGH (``.mgh``) or MGZ (``.mgz``),
    out of core.

    Parameters
    ----------
    img : image or xarray.DataArray
        An MGH image keeps its header (footer included); any other image is converted as
        ``nibabel.save`` converts it (a new MGH header: float32 unless ``dtype``).
    filename : str or os.PathLike
        ``.mgh`` or ``.mgz``.
    dtype : dtype-like, optional
        On-disk data type: uint8, int16, uint16, int32 or float32.
    compresslevel : int
        gzip level for ``.mgz`` (zlib-ng; default 3).
    progress : bool, optional
        Show a progress bar (default: when stderr is a terminal).

    Examples
    --------
    >>> import tempfile, numpy as np, voxray as vx
    >>> out = tempfile.mkdtemp() + "/ones.mgz"
    >>> vx.save(vx.Image(np.ones((4, 5, 6), np.int16), np.eye(4)), out)
    >>> img = vx.load(out)
    >>> type(img).__name__, img.get_data_dtype().str, img.dataobj[1, 2, 3]
    ('MGHImage', '>f4', np.float32(1.0))
    """
    filename = os.path.abspath(os.fspath(filename))
    gz = _gzipped(filename)
    img, cf = as_image(img)
    _write(img, filename, gz, dtype, cf, compresslevel, progress, filename)


def write_file_map(
    img,
    file_map,
    *,
    dtype=None,
    compresslevel: int = DEFAULT_COMPRESSLEVEL,
    progress: bool | None = None,
) -> None:
    """Write ``img`` to nibabel's ``file_map``: a file name (``.mgz`` gzipped, as nibabel's
    openers do) or an open file object (written plain, as nibabel does)."""
    holder = file_map["image"]
    if holder.fileobj is not None:
        dest, gz = (holder.fileobj, holder.pos), False
        name = holder.filename or getattr(holder.fileobj, "name", None) or "file object"
    elif holder.filename:
        dest = name = os.path.abspath(os.fspath(holder.filename))
        gz = _gzipped(dest)
    else:
        raise NotAnImageError("the file map has no file name or file object for 'image'")
    _write(img, dest, gz, dtype, None, compresslevel, progress, name)


def _write(img, dest, gz, dtype, cf, level, progress, name) -> None:
    plan = plan_mgh(img, dtype, cf, name=str(name))
    if isinstance(dest, str):
        refuse_overwriting_sources(img, {dest})
    write_plan(plan, dest, gz, level, progress)
