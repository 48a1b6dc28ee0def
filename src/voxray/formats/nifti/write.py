"""Out-of-core NIfTI writing: ``.nii``, ``.nii.gz``, pairs and Analyze, in parallel,
atomically.

The output class follows nibabel's ``save`` (the suffix decides; ``Nifti1Image``
<-> ``Nifti1Pair`` and friends convert), and the header is nibabel's: the image's
header updated for shape and affine exactly as ``update_header`` does. The values
come from the shared value plan (:mod:`voxray.writers.values`); for a raw copy of
an unchanged image the stored ``scl_slope``/``scl_inter`` fields and the data
offset are kept bit for bit, so loading and saving reproduces the header bytes.

Data is written in contiguous slabs (whole fast axes, a run of the slowest):
``.nii`` slabs land in their regions in parallel (:class:`~voxray.writers.pipeline.
RegionWriter`); ``.nii.gz`` slabs are compressed in parallel into random-access
gzip members (:mod:`voxray.writers.gzip`). Files go to a temporary file in the
destination directory, fsynced, then renamed; open file objects (``to_bytes``,
``to_stream``) are written in order.

A write to paths runs under :func:`voxray.writers.atomic.guarded`: the image file's
lock is held for the whole write (a pair's header and ``.mat`` included), stale
temporaries of those files are removed first, and a file-system failure anywhere
(a full disk, a file-size limit, in a worker thread or a dask task) is one
``WriteFailedError`` after every temporary file is gone.
"""

from __future__ import annotations

import contextlib
import io
import os
from dataclasses import dataclass

import numpy as np
from nibabel import analyze, imageclasses, nifti1, nifti2
from nibabel.filename_parser import splitext_addext, types_filenames

from ...errors import NotAnImageError
from ...image import nibabel_class_of
from ...writers import pipeline
from ...writers.atomic import AtomicFile, StreamTarget, guarded
from ...writers.data import write_members, write_plain
from ...writers.gzip import DEFAULT_COMPRESSLEVEL, MemberWriter, gzip_member
from ...writers.values import (
    ValuePlan,
    WriteError,
    as_image,
    plan_values,
    refuse_overwriting_sources,
)
from .header import SUPPORTED_CLASSES

__all__ = ["DEFAULT_COMPRESSLEVEL", "NiftiPlan", "output_class", "plan_nifti", "save"]


@dataclass
class NiftiPlan:
    """A NIfTI/Analyze file to write: the header (and its bytes) and the values."""

    klass: type
    header: object
    header_bytes: bytes
    values: ValuePlan
    offset: int
    mat_bytes: bytes | None = None  # SPM Analyze: the affine's .mat file, as nibabel writes it

    @property
    def single(self) -> bool:
        return len(self.klass.files_types) == 1


def output_class(src_class: type, filename: str) -> tuple[type, bool]:
    """The nibabel class ``nibabel.save`` would write ``filename`` as, and whether gzipped."""
    src_class = nibabel_class_of(src_class)
    _, ext, trailing = splitext_addext(filename, (".gz", ".bz2", ".zst"))
    if trailing and trailing.lower() != ".gz":
        raise NotAnImageError(
            f"{filename!r}: voxray writes uncompressed or .gz files, not {trailing!r}"
        )
    lext = ext.lower()
    gz = bool(trailing)
    if lext in src_class.valid_exts and src_class.__name__ in SUPPORTED_CLASSES:
        return src_class, gz
    conversions = {
        (nifti1.Nifti1Image, ".img"): nifti1.Nifti1Pair,
        (nifti1.Nifti1Image, ".hdr"): nifti1.Nifti1Pair,
        (nifti2.Nifti2Image, ".img"): nifti2.Nifti2Pair,
        (nifti2.Nifti2Image, ".hdr"): nifti2.Nifti2Pair,
        (nifti1.Nifti1Pair, ".nii"): nifti1.Nifti1Image,
        (nifti2.Nifti2Pair, ".nii"): nifti2.Nifti2Image,
    }
    if (src_class, lext) in conversions:
        return conversions[src_class, lext], gz
    for klass in imageclasses.all_image_classes:
        if klass.__name__ in SUPPORTED_CLASSES and lext in klass.valid_exts:
            return klass, gz
    raise NotAnImageError(
        f"{filename!r}: cannot work out the file type from the suffix {ext!r}; voxray writes "
        f".nii, .nii.gz, .hdr/.img (optionally .gz) and .nii.zarr stores"
    )


def _spm_mat(klass: type, affine) -> bytes | None:
    """The ``.mat`` file nibabel writes beside an SPM99/SPM2 image with this affine."""
    if "mat" not in dict(klass.files_types) or affine is None:
        return None
    from nibabel.fileholders import FileHolder

    bufs = {kind: io.BytesIO() for kind, _ in klass.files_types}
    tiny = klass(np.zeros((1, 1, 1), np.uint8), affine)  # nibabel encodes flips and origin
    tiny.to_file_map({kind: FileHolder(fileobj=b) for kind, b in bufs.items()})
    return bufs["mat"].getvalue() or None


def _same_scaling(source, layout) -> bool:
    slope, inter = source.get_slope_inter()
    return (1.0 if slope is None else slope) == layout.slope and (
        0.0 if inter is None else inter
    ) == layout.inter


def plan_nifti(img, klass: type, dtype=None, cf=None, name: str = "") -> NiftiPlan:
    """What writing ``img`` as nibabel class ``klass`` means: the header nibabel would
    write (updated for shape and affine), its bytes, and the value plan."""
    klass = nibabel_class_of(klass)
    out = klass(img.dataobj, img.affine, img.header, extra=dict(img.extra))
    hdr = out.header
    offset = None
    if img.nibabel_class is klass:
        # nibabel writes the image's own header: scaling and data offset set on it
        # are honoured (a new image of another class starts from unset ones).
        for field in ("scl_slope", "scl_inter"):
            if field in hdr:
                hdr[field] = img.header[field]
        offset = img.header.get_data_offset() or None
    if dtype is not None:
        hdr.set_data_dtype(dtype)
    values = plan_values(img, hdr, cf, name)
    single = len(klass.files_types) == 1
    source = img.provenance.header
    if (
        values.kind == "raw"
        and isinstance(source, analyze.AnalyzeHeader)  # NIfTI, Analyze: scl_* fields
        and "scl_slope" in source
        and "scl_slope" in hdr
        and _same_scaling(source, values.proxy.reader.layout)
    ):
        hdr["scl_slope"] = source["scl_slope"]  # the stored fields, bit for bit
        if "scl_inter" in hdr:
            hdr["scl_inter"] = source["scl_inter"]
        if single and type(source) is type(hdr):
            offset = source.get_data_offset()
    if single:
        minimum = hdr.single_vox_offset + hdr.extensions.get_sizeondisk()
        if offset and offset < minimum:
            raise WriteError(
                f"{name or 'image'}: vox_offset is set to {offset}, but the header and its "
                f"extensions need at least {minimum} bytes"
            )
        hdr.set_data_offset(max(minimum, offset or 0))
    else:
        hdr.set_data_offset(offset or 0)
    buf = io.BytesIO()
    hdr.write_to(buf)
    head = buf.getvalue()
    data_offset = hdr.get_data_offset()
    if single:
        head += b"\x00" * (data_offset - len(head))
    return NiftiPlan(klass, hdr, head, values, data_offset, _spm_mat(klass, out.affine))


# -- writing the data ------------------------------------------------------------------


def _write_gzip(plan: NiftiPlan, target, level: int, bar, with_header: bool) -> None:
    out = MemberWriter(target, level, on_raw=(lambda n: bar.update(n)) if bar else None)
    if with_header:
        out.write_bytes(plan.header_bytes)
    elif plan.offset:
        out.write_bytes(b"\x00" * plan.offset)
    write_members(plan.values, out, level)
    out.finish()


def _updater(bar):
    return (lambda n: bar.update(n)) if bar else (lambda n: None)


def _target(spec, size: int | None):
    """An atomic file for a path, or a stream target for ``(file object, position)``."""
    if isinstance(spec, str):
        return AtomicFile(spec, size)
    return StreamTarget(*spec)


def write_plan(plan: NiftiPlan, files: dict, gz: bool, level: int, progress) -> None:
    """Write ``plan`` to ``files`` (kind -> path, or (open file object, position)), atomically
    for paths.

    A pair's two files are both complete before either is in place, and the old header
    goes first, so no moment shows an old header over new data. Paths are written
    holding the image file's lock (:func:`~voxray.writers.atomic.guarded`).
    """
    primary = files["image"]
    if not isinstance(primary, str):
        _write_plan(plan, files, gz, level, progress)
        return
    others = [p for p in files.values() if isinstance(p, str) and p != primary]
    if not plan.mat_bytes:
        others = [p for p in others if p != files.get("mat")]
    with guarded(primary, others):
        _write_plan(plan, files, gz, level, progress)


def _write_plan(plan: NiftiPlan, files: dict, gz: bool, level: int, progress) -> None:
    name = files["image"] if isinstance(files["image"], str) else "stream"
    bar = pipeline.progress_bar(plan.values.nbytes, name, progress)
    image_size = None if gz else plan.offset + plan.values.nbytes
    targets = []
    try:
        image = _target(files["image"], image_size)
        targets.append(image)
        same = plan.single
        if not gz and same:
            image.write(plan.header_bytes)
        elif not gz and plan.offset and image.path is None:
            image.write(b"\x00" * plan.offset)
        if gz:
            _write_gzip(plan, image, level, bar, with_header=same)
        else:
            write_plain(plan.values, image, plan.offset, _updater(bar))
        if plan.mat_bytes and files.get("mat") is not None:
            mat = _target(files["mat"], None)
            targets.append(mat)
            mat.write(gzip_member(plan.mat_bytes, level) if gz else plan.mat_bytes)
        if not same:
            header = _target(files["header"], None)
            targets.append(header)
            header.write(gzip_member(plan.header_bytes, level) if gz else plan.header_bytes)
        for t in targets:
            t.sync()
        header_path = files.get("header")
        if not same and isinstance(header_path, str):
            with contextlib.suppress(FileNotFoundError):
                os.unlink(header_path)
        for t in targets:  # image, then .mat, header last
            t.commit()
    except BaseException:
        for t in targets:
            t.abort()
        raise
    finally:
        if bar:
            bar.close()


def save(
    img,
    filename,
    *,
    dtype=None,
    compresslevel: int = DEFAULT_COMPRESSLEVEL,
    progress: bool | None = None,
) -> None:
    """Write an image (voxray, nibabel or a DataArray) to NIfTI or Analyze, out of core.

    Parameters
    ----------
    img : image or xarray.DataArray
    filename : str or os.PathLike
        ``.nii``, ``.nii.gz``, ``.hdr``/``.img`` (either name, optionally ``.gz``).
    dtype : dtype-like, optional
        On-disk data type (default: the header's, as nibabel).
    compresslevel : int
        gzip level for ``.gz`` outputs (zlib-ng; default 3).
    progress : bool, optional
        Show a progress bar (default: when stderr is a terminal).

    Examples
    --------
    >>> import tempfile, numpy as np, voxray as vx
    >>> out = tempfile.mkdtemp() + "/ones.nii.gz"
    >>> vx.save(vx.Image(np.ones((4, 5, 6), np.int16), np.eye(4)), out)
    >>> vx.load(out).dataobj[1, 2, 3]
    np.int16(1)
    """
    filename = os.fspath(filename)
    img, cf = as_image(img)
    klass, gz = output_class(img.nibabel_class, filename)
    names = types_filenames(filename, klass.files_types, trailing_suffixes=(".gz",))
    files = {kind: os.path.abspath(path) for kind, path in names.items()}
    _write(img, klass, files, gz, dtype, cf, compresslevel, progress, filename)


def write_file_map(
    img,
    file_map,
    *,
    dtype=None,
    compresslevel: int = DEFAULT_COMPRESSLEVEL,
    progress: bool | None = None,
) -> None:
    """Write ``img`` (a voxray NIfTI/Analyze image) to nibabel's ``file_map``: file names
    (``.gz`` names are gzipped, as nibabel's openers do) or open file objects."""
    klass = img.nibabel_class
    files: dict = {}
    gz = False
    for kind, _ in klass.files_types:
        holder = file_map[kind]
        if holder.fileobj is not None:
            files[kind] = (holder.fileobj, holder.pos)
        elif holder.filename:
            files[kind] = os.path.abspath(os.fspath(holder.filename))
            if files[kind].lower().endswith((".bz2", ".zst")):
                raise NotAnImageError(
                    f"{files[kind]!r}: voxray writes uncompressed or .gz files (random access), "
                    f"not {os.path.splitext(files[kind])[1]!r}"
                )
            gz = gz or files[kind].lower().endswith(".gz")
        elif kind != "mat":
            raise NotAnImageError(f"the file map has no file name or file object for {kind!r}")
    if "header" not in files:
        files["header"] = files["image"]
    image = file_map["image"]
    name = image.filename or getattr(image.fileobj, "name", None) or "file object"
    _write(img, klass, files, gz, dtype, None, compresslevel, progress, name)


def _write(img, klass, files, gz, dtype, cf, level, progress, name) -> None:
    plan = plan_nifti(img, klass, dtype, cf, name=str(name))
    paths = {p for p in files.values() if isinstance(p, str)}
    if not plan.mat_bytes:
        paths.discard(files.get("mat"))
    refuse_overwriting_sources(img, paths)
    if plan.single:
        files = {"image": files["image"], "header": files["image"]}
    write_plan(plan, files, gz, level, progress)
