"""MINC1 (netCDF classic) and MINC2 (HDF5), read lazily; nibabel's MINC is read-only, so
is voxray's.

Which class a ``.mnc`` file is comes from its first bytes, as in nibabel
(``b"CDF"``: MINC1, ``b"\\x89HDF"``: MINC2), so suffix-less files open too.
nibabel does every MINC-specific step: ``Minc1File`` / ``Minc2File`` give the
dtype, shape, zooms and affine (the header is nibabel's ``MincHeader`` built
from them, as in nibabel's ``from_file_map``) and apply the per-slice
``image-min`` / ``image-max`` scaling. voxray supplies the stored values
(:mod:`.files`) and the chunked graph:

* the data object is a voxray :class:`~voxray.proxy.ArrayProxy` over a
  :class:`~voxray.reader.ProxyReader`, whose opener (a module-level function
  with plain arguments: the file's spec or path) opens the file once per
  process; each dask chunk calls ``get_scaled_data(chunk)``, so scaling is
  applied per chunk, element for element as nibabel's whole-array read;
* MINC1's image variable is read by byte ranges through voxray's sources
  (local, ``.mnc.gz`` through the gzip seek index, URLs); MINC2 is read by h5py
  (a local path natively; URLs and file objects through a file object over a
  voxray source);
* dask chunks are whole numbers of HDF5 chunks for a chunked MINC2 dataset,
  grown along the fastest (last) axes up to voxray's 64 MiB default; contiguous
  images get C-order slabs along the first (slowest) axis.

Writing is refused (:class:`MincWriteError`): save MINC images as NIfTI or
NIfTI-Zarr (``vx.save(img, "x.nii.gz")``, ``vx.to_zarr(img, "x.nii.zarr")``).
"""

from __future__ import annotations

import math
import os

from ...errors import (
    MincWriteError,
    NotAnImageError,
)
from ...image import Provenance, class_for_nibabel, nibabel_class_of
from ...planning import DEFAULT_CHUNK_BYTES, default_chunks, expand_chunks
from ...proxy import ArrayProxy
from ...reader import ArrayLayout, ProxyReader
from ...sources import FileObjSpec, is_url, local_spec, open_source, remote_locator
from .. import Format, for_filename, locator, register
from .files import (
    MincDependencyError,
    MincHeaderError,
    MincReadError,
    local_path,
    nibabel_errors,
    open_minc1,
    open_minc2,
)

__all__ = [
    "MINC",
    "MincDependencyError",
    "MincFormat",
    "MincHeaderError",
    "MincReadError",
    "MincWriteError",
    "aligned_chunks",
]

_NETCDF = (b"CDF\x01", b"CDF\x02")
_HDF5 = b"\x89HDF\r\n\x1a\n"
_CONTAINER = {"minc1": "netCDF", "minc2": "HDF5"}


def _kind(head: bytes) -> str | None:
    if head[:4] in _NETCDF:
        return "minc1"
    if head[:8] == _HDF5:
        return "minc2"
    return None


class MincFormat(Format):
    """MINC1 and MINC2 (see the package docstring)."""

    name = "minc"
    suffixes = (".mnc.gz", ".mnc.bz2", ".mnc.zst", ".mnc")

    def sniff(self, head: bytes) -> bool:
        return _kind(head) is not None

    def open(self, filename, *, klass=None, chunks="auto", storage_options=None, **kw):
        filename = os.fspath(filename)
        if kw:
            raise TypeError(f"MINC files take no options {sorted(kw)!r}")
        filename, locate = locator(filename, storage_options)
        spec = locate(filename)
        from nibabel.fileholders import FileHolder

        fmap = {"image": FileHolder(filename=filename)}
        if klass is not None and self.claims(filename):
            fmap = _nibabel_file_map(klass, filename)
        return _image(spec, fmap, chunks, klass)

    def open_file_map(self, klass, file_map, *, chunks="auto"):
        holder = file_map["image"]
        if holder.fileobj is not None:
            spec = FileObjSpec(holder.fileobj)
        elif holder.filename:
            name = os.fspath(holder.filename)
            spec = remote_locator(None)(name) if is_url(name) else local_spec(name)
        else:
            from ...errors import ImageNotFoundError

            raise ImageNotFoundError("the file map's 'image' has no file name or file object")
        return _image(spec, file_map, chunks, klass)

    def save(self, img, filename, **kw) -> None:
        filename = os.fspath(filename)
        other = for_filename(filename)
        if other is not None and other is not self:  # img.to_filename("x.nii.gz")
            if other.name == "nifti" and hasattr(img, "conversion_dtype"):
                kw.setdefault("dtype", img.conversion_dtype)  # per-slice scaling: floats
            other.save(img, filename, **kw)
            return
        raise MincWriteError(
            f"{filename!r}: voxray does not write MINC files (nibabel's MINC support is "
            f"read-only); write NIfTI (.nii, .nii.gz) or NIfTI-Zarr (.nii.zarr) instead"
        )

    def write_file_map(self, img, file_map, **kw) -> None:
        raise MincWriteError(
            f"{img.get_filename() or type(img).__name__!r}: voxray does not write MINC files "
            f"(nibabel's MINC support is read-only); write NIfTI or NIfTI-Zarr instead"
        )


def _nibabel_file_map(klass, filename: str):
    from nibabel.filebasedimages import ImageFileError as NibImageFileError

    try:
        return klass.filespec_to_file_map(filename)
    except NibImageFileError as e:
        raise NotAnImageError(f"{filename!r}: {e}") from None


def _classes():
    from nibabel.minc1 import Minc1Image
    from nibabel.minc2 import Minc2Image

    return {"minc1": Minc1Image, "minc2": Minc2Image}


def _image(spec, fmap, chunks, klass=None):
    """The lazy image of the MINC file ``spec`` names (built as nibabel's
    ``Minc1Image.from_file_map`` builds it)."""
    name = spec.name
    kind = _kind(open_source(spec).read_prefix(8))
    if kind is None:
        raise NotAnImageError(
            f"{name!r}: not a MINC file (its first bytes are neither netCDF b'CDF' for MINC1 "
            f"nor HDF5 b'\\x89HDF' for MINC2)"
        )
    nklass = _classes()[kind]
    if klass is not None and nibabel_class_of(klass) is not nklass:
        raise NotAnImageError(
            f"{name!r} is a {kind.upper()} file ({_CONTAINER[kind]}), not a "
            f"{nibabel_class_of(klass).__name__[:5].upper()} one: open it with vx.load"
        )
    if kind == "minc1":
        opener, args, serialize = open_minc1, (spec,), False
    else:
        if getattr(spec, "compression", None):
            raise NotAnImageError(
                f"{name!r} is a gzip-compressed MINC2 file, which nibabel does not read either "
                f"(HDF5 compresses its chunks itself): decompress it"
            )
        opener, args, serialize = open_minc2, (local_path(spec) or spec, name), True
    scaled = opener(*args)
    minc_file = scaled.minc_file
    with nibabel_errors(name):
        affine = minc_file.get_affine()
        if affine.shape != (4, 4):
            raise MincHeaderError(
                f"{name!r}: the image does not have 3 spatial dimensions (nibabel: "
                f"'Image does not have 3 spatial dimensions')"
            )
        header = nklass.header_class(
            minc_file.get_data_dtype(), minc_file.get_data_shape(), minc_file.get_zooms()
        )
    layout = ArrayLayout(scaled.shape, scaled.dtype)
    dask_chunks = aligned_chunks(layout.shape, layout.dtype.itemsize, scaled.chunks, chunks)
    reader = ProxyReader(spec, layout, opener, args, serialize)
    proxy = ArrayProxy.from_reader(reader, chunks=dask_chunks)
    vklass = klass if klass is not None else class_for_nibabel(nklass)
    img = vklass(proxy, affine, header, file_map=fmap)
    files = frozenset() if isinstance(spec, FileObjSpec) else frozenset({name})
    img.provenance = Provenance(files=files, header=header, format="minc", chunks=dask_chunks)
    return img


def aligned_chunks(shape, itemsize: int, hdf5_chunks=None, chunks="auto", max_bytes=None):
    """Dask chunks of a MINC image: whole HDF5 chunks, or C-order slabs.

    For ``chunks="auto"`` (or None): with ``hdf5_chunks`` each dask chunk is a
    whole number of HDF5 chunks along every axis (clipped at the array's edge),
    grown along the fastest (last) axes first up to ``max_bytes`` (voxray's
    64 MiB default); without, slabs along the slowest (first) axis, as the bytes
    lie in a C-order array. A dict fills the axes it does not name the same way;
    anything else is dask's.

    Examples
    --------
    >>> aligned_chunks((40, 64, 64), 8, (10, 16, 64), max_bytes=8 * 64 * 64 * 20)
    ((20, 20), (64,), (64,))
    >>> aligned_chunks((40, 64, 64), 8, None, max_bytes=8 * 64 * 64 * 20)
    ((20, 20), (64,), (64,))
    """
    max_bytes = DEFAULT_CHUNK_BYTES if max_bytes is None else max_bytes
    shape = tuple(int(n) for n in shape)
    if hdf5_chunks is None:
        block = tuple(reversed(default_chunks(tuple(reversed(shape)), itemsize, max_bytes)))
    else:
        block = list(hdf5_chunks)
        for a in reversed(range(len(shape))):
            others = math.prod(block) // max(1, block[a]) * itemsize
            per = max(1, max_bytes // max(1, others * hdf5_chunks[a]))
            whole = math.ceil(shape[a] / max(1, hdf5_chunks[a]))
            block[a] = hdf5_chunks[a] * min(per, whole)
            if per < whole:
                break
        block = tuple(min(b, n) for b, n in zip(block, shape))
    if chunks is None or (isinstance(chunks, str) and chunks == "auto"):
        return expand_chunks(shape, block)
    if isinstance(chunks, dict):
        n = len(shape)
        chunks = tuple(chunks.get(a, chunks.get(a - n, block[a])) for a in range(n))
    return chunks


MINC = register(MincFormat())

from .images import Minc1Image, Minc2Image  # noqa: E402  (the classes need the format object)

__all__ += ["Minc1Image", "Minc2Image"]
