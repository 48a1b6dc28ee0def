"""Images: nibabel's image API over lazy proxies.

An :class:`Image` wraps a real nibabel image (``Nifti1Image``, ``Nifti1Pair``,
``Nifti2Image``, ``AnalyzeImage``, ...) whose ``dataobj`` is a voxray proxy.
Header handling, affine selection, ``get_fdata`` caching, ``in_memory`` and
``uncache`` are therefore exactly nibabel's; what voxray changes is that the
data stays on disk until asked for, reads only what is asked for, does it in
parallel, and that slicing and reorientation stay lazy:

* ``img.slicer[...]`` returns a lazy image whose affine keeps every voxel's
  world position, for steps, negative starts and reversed slices too
  (nibabel 5.4's slicer keeps the old origin for ``[::-1]``: nibabel #1533);
* ``img.as_reoriented(ornt)`` and :func:`as_closest_canonical` flip and
  transpose views; no data is read.
"""

from __future__ import annotations

import os

import numpy as np
from nibabel import analyze, nifti1, nifti2, spm2analyze, spm99analyze
from nibabel.orientations import aff2axcodes, inv_ornt_aff, io_orientation

from .layout import file_map, local_spec, read_header
from .planning import normalize_index
from .proxy import ArrayProxy, DaskProxy, is_dask_array
from .reader import Reader

__all__ = ["Image", "aff2axcodes", "as_closest_canonical", "load"]

_CLASS_FOR_HEADER = (  # most derived first
    (nifti2.Nifti2Header, nifti2.Nifti2Image),
    (nifti1.Nifti1Header, nifti1.Nifti1Image),
    (spm2analyze.Spm2AnalyzeHeader, spm2analyze.Spm2AnalyzeImage),
    (spm99analyze.Spm99AnalyzeHeader, spm99analyze.Spm99AnalyzeImage),
    (analyze.AnalyzeHeader, analyze.AnalyzeImage),
)
_NIB_CLASSES = {k for _, k in _CLASS_FOR_HEADER} | {nifti1.Nifti1Pair, nifti2.Nifti2Pair}


def _class_for_header(header) -> type:
    for hclass, klass in _CLASS_FOR_HEADER:
        if isinstance(header, hclass):
            return klass
    return nifti1.Nifti1Image


def _lazy(dataobj):
    return DaskProxy(dataobj) if is_dask_array(dataobj) else dataobj


class Image:
    """A lazy image with nibabel's image API.

    ``Image(dataobj, affine, header=None, extra=None, file_map=None, dtype=None)``
    builds one like ``nibabel.Nifti1Image(dataobj, affine, header)`` does (the
    nibabel class follows the header's type): from a numpy array it is an array
    image (``in_memory`` is True and ``dataobj`` is that array); from a dask
    array it stays lazy. :func:`load` opens one from a file.

    Examples
    --------
    >>> import numpy as np
    >>> img = Image(np.zeros((4, 5, 6), np.int16), np.diag([2, 2, 2, 1]))
    >>> img.shape, img.in_memory, aff2axcodes(img.affine)
    ((4, 5, 6), True, ('R', 'A', 'S'))
    >>> img.slicer[::-1].affine[0].tolist()   # voxel 0 is old voxel 3: x = 2 * 3
    [-2.0, 0.0, 0.0, 6.0]
    """

    def __init__(self, dataobj, affine, header=None, extra=None, file_map=None, dtype=None):
        klass = _class_for_header(header)
        self._nib = klass(
            _lazy(dataobj), affine, header, extra=extra, file_map=file_map, dtype=dtype
        )
        self._chunks = "auto"

    @classmethod
    def _wrap(cls, nib_img, chunks="auto") -> Image:
        obj = cls.__new__(cls)
        obj._nib = nib_img
        obj._chunks = chunks
        return obj

    def _derive(self, dataobj, affine) -> Image:
        """A new image of the same class with new data and affine (header follows, as nibabel)."""
        new = type(self._nib)(dataobj, affine, self._nib.header, extra=self._nib.extra.copy())
        return Image._wrap(new, self._chunks)

    # -- construction ----------------------------------------------------------

    @classmethod
    def from_filename(cls, filename, *, mmap=True, keep_file_open=None, chunks="auto") -> Image:
        """Open an image lazily (same as :func:`load`); ``mmap`` and ``keep_file_open``
        are validated for nibabel compatibility and otherwise ignored."""
        if mmap not in (True, False, "c", "r"):
            raise ValueError("mmap should be one of {True, False, 'c', 'r'}")
        if keep_file_open not in (None, True, False):
            raise ValueError("keep_file_open must be one of {None, True, False}")
        return load(filename, chunks=chunks)

    @classmethod
    def from_image(cls, img) -> Image:
        """A voxray image from a voxray or nibabel image, keeping its data lazy."""
        if isinstance(img, Image):
            return cls._wrap(
                type(img._nib)(img.dataobj, img.affine, img.header, extra=img.extra.copy()),
                img._chunks,
            )
        klass = type(img) if type(img) in _NIB_CLASSES else nifti1.Nifti1Image
        dataobj = img.dataobj
        if getattr(dataobj, "is_proxy", False) and not isinstance(dataobj, ArrayProxy | DaskProxy):
            dataobj = _from_nibabel_proxy(dataobj)
        header = klass.header_class.from_header(img.header)
        return cls._wrap(klass(dataobj, img.affine, header, extra=dict(img.extra)))

    def to_nibabel(self):
        """A real nibabel image (same class) whose ``dataobj`` is this image's lazy proxy."""
        return type(self._nib)(
            self.dataobj,
            self.affine,
            self.header.copy(),
            extra=self.extra.copy(),
            file_map=self._nib.file_map,
        )

    # -- nibabel's image API ---------------------------------------------------

    @property
    def dataobj(self):
        return self._nib.dataobj

    @property
    def affine(self) -> np.ndarray:
        return self._nib.affine

    @property
    def header(self):
        return self._nib.header

    @property
    def extra(self) -> dict:
        return self._nib.extra

    @property
    def shape(self) -> tuple[int, ...]:
        return self._nib.shape

    @property
    def ndim(self) -> int:
        return self._nib.ndim

    @property
    def in_memory(self) -> bool:
        return self._nib.in_memory

    @property
    def file_map(self):
        return self._nib.file_map

    @file_map.setter
    def file_map(self, value) -> None:
        self._nib.file_map = value

    @property
    def rw(self) -> bool:
        """Whether the image can be saved (nibabel's ``rw`` class attribute)."""
        return self.nibabel_class.rw

    @property
    def valid_exts(self) -> tuple[str, ...]:
        return self.nibabel_class.valid_exts

    @property
    def nibabel_class(self) -> type:
        """The nibabel image class this image behaves as (e.g. ``Nifti1Image``)."""
        return type(self._nib)

    def get_data_dtype(self) -> np.dtype:
        return self._nib.get_data_dtype()

    def set_data_dtype(self, dtype) -> None:
        self._nib.set_data_dtype(dtype)

    def get_fdata(self, caching="fill", dtype=np.float64) -> np.ndarray:
        """Floating-point data with scaling applied; caching as nibabel's ``get_fdata``."""
        return self._nib.get_fdata(caching=caching, dtype=dtype)

    def get_data(self, caching="fill"):
        """Removed in nibabel 5 (raises nibabel's ``ExpiredDeprecationError``); use get_fdata."""
        return self._nib.get_data(caching)

    def uncache(self) -> None:
        self._nib.uncache()

    def update_header(self) -> None:
        self._nib.update_header()

    def get_filename(self) -> str | None:
        return self._nib.get_filename()

    def set_filename(self, filename) -> None:
        self._nib.set_filename(filename)

    def to_filename(self, filename, dtype=None, **kwargs) -> None:
        """Write the image to ``filename`` out of core (see :func:`voxray.save`)."""
        from .writers import save

        save(self, filename, dtype=dtype, **kwargs)

    def __getitem__(self, key):
        raise TypeError(
            "Cannot slice image objects; consider using `img.slicer[slice]` to generate a "
            "sliced image (see documentation for caveats) or slicing image array data with "
            "`img.dataobj[slice]` or `img.get_fdata()[slice]`"
        )

    def __str__(self) -> str:
        return str(self._nib)

    def __repr__(self) -> str:
        where = self.get_filename()
        lazy = "in memory" if self.in_memory else "lazy"
        return (
            f"<voxray.Image {self.nibabel_class.__name__} shape={self.shape} "
            f"dtype={self.get_data_dtype()} {lazy}{f' {where!r}' if where else ''}>"
        )

    # -- voxray: lazy derivations ---------------------------------------------

    def to_dask(self, chunks=None):
        """The data (scaled, as ``np.asarray(dataobj)``) as a dask array."""
        obj = self.dataobj
        if isinstance(obj, ArrayProxy | DaskProxy):
            return obj.to_dask(chunks)
        import dask.array as da

        from .graph import resolve_chunks

        arr = np.asanyarray(obj)
        return da.from_array(
            arr, chunks=resolve_chunks(chunks or self._chunks, arr.shape, arr.dtype)
        )

    @property
    def slicer(self) -> ImageSlicer:
        """Lazy slicing into a new image: ``img.slicer[10:-10, ::2, :, 5]``."""
        return ImageSlicer(self)

    def as_reoriented(self, ornt) -> Image:
        """Apply an orientation change lazily (see ``nibabel``'s ``as_reoriented``)."""
        ornt = np.asarray(ornt)
        if np.array_equal(ornt, [[0, 1], [1, 1], [2, 1]]):
            return self
        new_affine = self.affine.dot(inv_ornt_aff(ornt, self.shape))
        obj = self.dataobj
        if isinstance(obj, ArrayProxy | DaskProxy):
            data = obj.reoriented(ornt)
        else:
            from nibabel.orientations import apply_orientation

            data = apply_orientation(np.asanyarray(obj), ornt)
        img = self._derive(data, new_affine)
        hdr = img.header
        if hasattr(hdr, "get_dim_info"):  # as nibabel's Nifti1Pair.as_reoriented
            hdr.set_dim_info(*[None if d is None else int(ornt[d, 0]) for d in hdr.get_dim_info()])
        return img

    def to_xarray(self, name: str | None = None):
        """This image as a lazy, dask-backed xarray DataArray.

        Dims ``i, j, k`` then ``t``, ``u, v, w``; coordinates ``x, y, z`` (mm, RAS+)
        derived lazily from the affine, ``t`` in seconds; the name comes from the file.
        """
        from .xarray import to_dataarray

        return to_dataarray(self, name=name)


class ImageSlicer:
    """``img.slicer[...]``: a lazy sliced image whose voxels keep their world positions.

    The same rules as nibabel's ``SpatialFirstSlicer`` (no integer or new axis
    in the three spatial dimensions, no empty result), but the affine is
    ``affine @ T`` with ``T`` built from each slice's resolved start and step,
    which is right for any step sign.
    """

    def __init__(self, img: Image):
        self.img = img

    def __getitem__(self, key) -> Image:
        img = self.img
        try:
            sel = normalize_index(key, img.shape)
        except (ValueError, TypeError) as e:
            raise IndexError(*e.args) from None
        for s in sel[:3]:
            if s is None:
                raise IndexError("New axis not permitted in spatial dimensions")
            if s.drop:
                raise IndexError(
                    "Scalar indices disallowed in spatial dimensions; Use `[x]` or `x:x+1`."
                )
        if any(s is not None and s.count == 0 for s in sel):
            raise IndexError("Empty slice requested")
        transform = np.eye(4)
        for i, s in enumerate(sel[:3]):
            transform[i, i] = s.step
            transform[i, 3] = s.start
        affine = img.affine.dot(transform) if img.affine is not None else None
        obj = img.dataobj
        if isinstance(obj, ArrayProxy | DaskProxy):
            data = obj.sliced(key)
        else:
            data = np.asanyarray(obj)[key]
        return img._derive(data, affine)


def as_closest_canonical(img, enforce_diag: bool = False):
    """The image in RAS+ voxel order (closest to the world axes), lazily.

    Like ``nibabel.as_closest_canonical``; nibabel images are wrapped first
    (their data stays lazy). A DataArray (voxray's layout) is reoriented lazily
    too, coordinates kept.
    """
    if type(img).__name__ == "DataArray" and hasattr(img, "vx"):
        out = img.vx.reorient("RAS")
        if enforce_diag:
            aff = out.vx.affine[:3, :3]
            if not np.allclose(aff, np.diag(np.diag(aff))):
                from nibabel.orientations import OrientationError

                raise OrientationError("Transformed affine is not diagonal")
        return out
    if not isinstance(img, Image):
        img = Image.from_image(img)
    out = img.as_reoriented(io_orientation(img.affine))
    if enforce_diag:
        aff = out.affine[:3, :3]
        if not np.allclose(aff, np.diag(np.diag(aff))):
            from nibabel.orientations import OrientationError

            raise OrientationError("Transformed affine is not diagonal")
    return out


def load(filename, chunks="auto", storage_options=None, *, level: int = 0) -> Image:
    """Open an image lazily: the header is read, the data stays where it is.

    Parameters
    ----------
    filename : str or os.PathLike
        ``.nii``, ``.nii.gz``, NIfTI-2, a pair or Analyze image given by either
        its ``.hdr`` or ``.img`` name (optionally gzipped), a ``.nii.zarr`` store,
        or any of these as an fsspec URL (``s3://``, ``gs://``, ``https://``...):
        remote objects are read by byte ranges.
    chunks : "auto", int, tuple or dict
        Chunks of :meth:`Image.to_dask`; ``"auto"`` gives contiguous slabs
        along the slowest axes of at most 64 MiB; anything ``dask.array``
        accepts works.
    storage_options : dict, optional
        fsspec options for remote URLs (and Zarr stores).
    level : int
        Pyramid level of a NIfTI-Zarr / OME-Zarr store (``.nii.zarr``).

    Examples
    --------
    >>> import voxray as vx
    >>> from nibabel.testing import data_path
    >>> img = vx.load(f"{data_path}/example4d.nii.gz")
    >>> img.shape, img.get_data_dtype().name, img.in_memory
    ((128, 96, 24, 2), 'int16', False)
    """
    filename = os.fspath(filename)
    from .zarr import is_zarr

    if is_zarr(filename):
        from .zarr import load_zarr

        return load_zarr(filename, level=level, storage_options=storage_options, chunks=chunks)
    from .sources.remote import is_url

    if is_url(filename):
        from .layout import remote_locator

        info = read_header(filename, remote_locator(storage_options))
    else:
        info = read_header(filename.removeprefix("file://"), local_spec)
    proxy = ArrayProxy.from_reader(Reader(info.data_spec, info.layout), chunks=chunks)
    nib = info.image_class(proxy, info.affine, info.header, file_map=file_map(info))
    if info.mat_affine is not None:
        nib._affine = info.mat_affine  # as nibabel's SPM loader does: the header stays as read
    img = Image._wrap(nib, chunks)
    # The header as stored (nibabel resets scaling and offset in the image's copy):
    # saving an unchanged image writes these fields back bit for bit.
    img._source_header = info.header
    return img


def _from_nibabel_proxy(proxy):
    """voxray's proxy for a nibabel ``ArrayProxy`` over a file; dask otherwise."""
    file_like = getattr(proxy, "file_like", None)
    spec = (
        proxy.shape,
        proxy.dtype,
        getattr(proxy, "offset", 0),
        getattr(proxy, "slope", 1.0),
        getattr(proxy, "inter", 0.0),
    )
    if file_like is not None and getattr(proxy, "order", "F") == "F" and hasattr(proxy, "offset"):
        return ArrayProxy(file_like, spec)
    import dask.array as da

    return DaskProxy(da.from_array(proxy, chunks="auto", asarray=True))
