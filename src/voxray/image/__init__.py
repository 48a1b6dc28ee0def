"""voxray's images: nibabel's image classes, kept lazy.

Every image voxray returns is an instance of a class that subclasses the
nibabel class nibabel would return (``voxray.Nifti1Image`` is a
``nibabel.Nifti1Image``), with :class:`Image` mixed in first. nibabel's own
code does the header handling, affine selection, ``get_fdata`` caching,
``in_memory`` and ``uncache``; the mixin changes what nibabel would do
eagerly:

* ``dataobj`` is a voxray proxy (a chunked reader, or a dask array): data stays
  where it is until asked for, and only what is asked for is read;
* ``img.slicer[...]`` returns a lazy image whose affine keeps every voxel's
  world position, for steps, negative starts and reversed slices too
  (nibabel 5.4's slicer keeps the old origin for ``[::-1]``: nibabel #1533);
* ``as_reoriented`` / :func:`as_closest_canonical` flip and transpose views;
* ``from_file_map`` / ``from_filename`` open lazily and ``to_file_map`` /
  ``to_filename`` write out of core, through the *format* of the concrete
  class (a plug-in under :mod:`voxray.formats`: this layer imports none);
* ``to_dask`` and ``to_xarray`` give the data as dask and xarray.

``Image`` is also the public factory: ``Image(dataobj, affine, header)`` builds
the voxray class matching the header's type (``Nifti1Image`` without one), and
``isinstance(img, Image)`` holds for every voxray image.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, replace

import numpy as np
from nibabel.filebasedimages import ImageFileError
from nibabel.orientations import aff2axcodes, inv_ornt_aff, io_orientation
from nibabel.spatialimages import HeaderDataError, SpatialImage

from ..errors import InvalidAffineError, VoxrayError
from ..headers import name_of
from ..planning import normalize_index
from ..proxy import ArrayProxy, DaskProxy, is_dask_array

__all__ = [
    "Image",
    "ImageSlicer",
    "Provenance",
    "aff2axcodes",
    "as_closest_canonical",
    "class_for_header",
    "class_for_nibabel",
    "orientation",
    "register_image_class",
]


@dataclass(frozen=True)
class Provenance:
    """Where an image's data comes from: the one record writers and tools consult.

    ``files`` are the files, stores or URLs the data is read from (a writer refuses
    to overwrite them); ``header`` is the header as stored, before nibabel reset
    its scaling and offset in the image's copy (so an unchanged image is written
    back bit for bit); ``format`` names the plug-in that opened it; ``store`` is
    ``(url, array path)`` for an image read from a Zarr store.
    """

    files: frozenset[str] = frozenset()
    header: object = None
    format: str | None = None
    chunks: object = "auto"
    store: tuple[str, str] | None = None

    def derived(self) -> Provenance:
        """The record of an image derived from this one (sliced, reoriented, ...):
        same files and chunks, no stored header or store of its own."""
        return replace(self, header=None, store=None)


# -- the class registry (formats register their classes; this layer imports none) ------

_BY_NIBABEL: dict[type, type] = {}
_BY_HEADER: dict[type, type] = {}
_DEFAULT: list[type] = []


def register_image_class(klass: type, *, default: bool = False) -> type:
    """Register a voxray image class (a subclass of :class:`Image` and of one nibabel
    class); ``default`` makes it the class of header-less ``Image(...)`` calls."""
    _BY_NIBABEL[nibabel_class_of(klass)] = klass
    _BY_HEADER.setdefault(klass.header_class, klass)
    if default:
        _DEFAULT[:] = [klass]
    return klass


def nibabel_class_of(klass: type) -> type:
    """The nibabel class a voxray class (or any class) behaves as."""
    for base in klass.__mro__:
        if base.__module__.startswith("nibabel."):
            return base
    return klass


def class_for_nibabel(klass: type) -> type | None:
    """The voxray class of a nibabel class (or of a voxray class), if registered."""
    return _BY_NIBABEL.get(nibabel_class_of(klass))


def class_for_header(header) -> type:
    """The voxray class for a header instance (the most derived registered header
    class it is an instance of); the default class for None or a mapping."""
    if header is not None and not isinstance(header, dict):
        for hclass in type(header).__mro__:
            if hclass in _BY_HEADER:
                return _BY_HEADER[hclass]
    if not _DEFAULT:
        raise RuntimeError("no voxray image class is registered (import voxray first)")
    return _DEFAULT[0]


class _ImageFactory(type):
    """``Image(...)`` picks the registered class for the header; subclasses build
    themselves."""

    def __call__(cls, *args, **kwargs):
        if cls is Image:
            header = kwargs.get("header", args[2] if len(args) > 2 else None)
            cls = class_for_header(header)
        return super().__call__(*args, **kwargs)


def _lazy(dataobj):
    return DaskProxy(dataobj) if is_dask_array(dataobj) else dataobj


class Image(metaclass=_ImageFactory):
    """A lazy image with nibabel's image API; mixed in before a nibabel class.

    ``Image(dataobj, affine, header=None, extra=None, file_map=None, dtype=None)``
    builds one like ``nibabel.Nifti1Image(dataobj, affine, header)`` does, as the
    voxray class matching the header: from a numpy array it is an array image
    (``in_memory`` is True and ``dataobj`` is that array); from a dask array or a
    voxray proxy it stays lazy. :func:`voxray.load` opens one from a file.

    Examples
    --------
    >>> import numpy as np, nibabel as nib
    >>> img = Image(np.zeros((4, 5, 6), np.int16), np.diag([2, 2, 2, 1]))
    >>> type(img).__name__, isinstance(img, nib.Nifti1Image), isinstance(img, Image)
    ('Nifti1Image', True, True)
    >>> img.shape, img.in_memory, aff2axcodes(img.affine)
    ((4, 5, 6), True, ('R', 'A', 'S'))
    >>> img.slicer[::-1].affine[0].tolist()   # voxel 0 is old voxel 3: x = 2 * 3
    [-2.0, 0.0, 0.0, 6.0]
    """

    #: The format plug-in that opens and writes this class (set by the plug-in).
    format = None
    #: nibabel builds proxies of this class in its own loaders.
    ImageArrayProxy = ArrayProxy

    def __init__(self, dataobj, affine, header=None, extra=None, file_map=None, dtype=None):
        kwargs = {} if dtype is None else {"dtype": dtype}
        super().__init__(_lazy(dataobj), affine, header, extra=extra, file_map=file_map, **kwargs)
        self._provenance = Provenance()

    # -- provenance and derivation --------------------------------------------------

    @property
    def provenance(self) -> Provenance:
        """Where the data comes from (see :class:`Provenance`); format plug-ins set it
        when they open an image."""
        return self._provenance

    @provenance.setter
    def provenance(self, value: Provenance) -> None:
        if not isinstance(value, Provenance):
            raise TypeError(f"provenance must be a Provenance, not {type(value).__name__}")
        self._provenance = value

    def _derive(self, dataobj, affine) -> Image:
        """A new image of the same class with new data and affine (header follows, as in
        nibabel's slicer and ``as_reoriented``)."""
        try:
            new = type(self)(dataobj, affine, self.header, extra=self.extra.copy())
        except (HeaderDataError, ValueError, np.linalg.LinAlgError) as e:
            if isinstance(e, VoxrayError):
                raise
            name = name_of(self) or "the image"
            raise InvalidAffineError(
                f"{name!r}: the derived image's affine {np.asarray(affine)[:3].tolist()!r} "
                f"cannot be stored in its header: {e}"
            ) from None
        new._provenance = self._provenance.derived()
        return new

    @property
    def nibabel_class(self) -> type:
        """The nibabel class this image is (e.g. ``nibabel.Nifti1Image``)."""
        return nibabel_class_of(type(self))

    # -- construction ---------------------------------------------------------------

    @classmethod
    def from_image(cls, img) -> Image:
        """An image of this class from any image (voxray or nibabel), data kept lazy.

        As nibabel's ``from_image``: the header is converted to this class's header
        class. Called on :class:`Image` itself, the class follows ``img``'s nibabel
        class (``Nifti1Image`` for classes voxray does not know).
        """
        klass = cls
        if cls is Image:
            klass = class_for_nibabel(type(img)) or class_for_header(None)
        dataobj = img.dataobj
        if getattr(dataobj, "is_proxy", False) and not isinstance(dataobj, ArrayProxy | DaskProxy):
            dataobj = _from_nibabel_proxy(dataobj)
        if isinstance(img, SpatialImage):
            out = klass(
                dataobj,
                img.affine,
                klass.header_class.from_header(img.header),
                extra=img.extra.copy(),
            )
        else:
            out = klass(dataobj, None, klass.header_class.from_header(img.header))
        if isinstance(img, Image):
            out._provenance = img._provenance.derived()
        return out

    @classmethod
    def from_file_map(cls, file_map, *, mmap=True, keep_file_open=None, chunks="auto"):
        """Open the image ``file_map`` names lazily (file names or open file objects,
        ``io.BytesIO`` included); ``mmap`` and ``keep_file_open`` are validated as nibabel
        does and otherwise ignored (voxray never memory-maps)."""
        _check_open_args(mmap, keep_file_open)
        return cls._format().open_file_map(cls, file_map, chunks=chunks)

    @classmethod
    def from_filename(
        cls, filename, *, mmap=True, keep_file_open=None, chunks="auto", storage_options=None
    ):
        """Open ``filename`` lazily as this class (``s3://``, ``https://`` and other fsspec
        URLs are read by byte ranges)."""
        _check_open_args(mmap, keep_file_open)
        return cls._format().open(
            os.fspath(filename), klass=cls, chunks=chunks, storage_options=storage_options
        )

    load = from_filename

    @classmethod
    def from_url(cls, url, timeout: float = 5, *, storage_options=None, chunks="auto"):
        """Open an image at a URL lazily, by byte ranges (nibabel downloads it whole).

        ``timeout`` (seconds) bounds each request, as in nibabel's ``from_url``."""
        options = dict(storage_options or {})
        if str(url).startswith(("http://", "https://")) and "timeout" not in options:
            client_timeout = _timeout(timeout)
            if client_timeout is not None:
                options["timeout"] = client_timeout
        return cls.from_filename(str(url), chunks=chunks, storage_options=options)

    @classmethod
    def _format(cls):
        if cls.format is None:
            raise TypeError(
                f"{cls.__name__} has no format: use a concrete class such as voxray.Nifti1Image"
            )
        return cls.format

    # -- writing ----------------------------------------------------------------------

    def to_file_map(self, file_map=None, dtype=None, **kwargs) -> None:
        """Write the image out of core to ``file_map`` (default: its own), as nibabel's
        ``to_file_map`` (file names or file objects); afterwards ``file_map`` is the one
        written. ``kwargs`` go to the format's writer (``compresslevel``, ``progress``)."""
        if file_map is None:
            file_map = self.file_map
        self.update_header()
        self._format().write_file_map(self, file_map, dtype=dtype, **kwargs)
        self.file_map = file_map

    def to_filename(self, filename, **kwargs) -> None:
        """Write the image to ``filename`` out of core; afterwards ``get_filename()`` is
        ``filename``, as in nibabel.

        A suffix of a sibling class (``.img`` for a ``Nifti1Image``, ``.nii`` for a
        ``Nifti1Pair``...) writes that class, as ``nibabel.save`` would, and leaves this
        image's ``file_map`` as it was (nibabel's ``to_filename`` raises there).
        """
        filename = os.fspath(filename)
        try:
            file_map = self.filespec_to_file_map(filename)
        except ImageFileError:
            self._format().save(self, filename, **kwargs)
            return
        self.to_file_map(file_map, **kwargs)

    def __getstate__(self):
        # Pickles carry the proxy (plain values), never cached arrays.
        state = self.__dict__.copy()
        state["_fdata_cache"] = None
        state["_data_cache"] = None
        return state

    # -- lazy derivations ---------------------------------------------------------------

    def to_dask(self, chunks=None):
        """The data (scaled, as ``np.asarray(dataobj)``) as a dask array."""
        obj = self.dataobj
        if isinstance(obj, ArrayProxy | DaskProxy):
            return obj.to_dask(chunks)
        import dask.array as da

        from ..graph import resolve_chunks

        arr = np.asanyarray(obj)
        return da.from_array(
            arr, chunks=resolve_chunks(chunks or self._provenance.chunks, arr.shape, arr.dtype)
        )

    ImageSlicer: type  # set below: nibabel's ``slicer`` property builds one

    def as_reoriented(self, ornt) -> Image:
        """Apply an orientation change lazily (nibabel's ``as_reoriented``, no data read)."""
        ornt = np.asarray(ornt)
        if np.array_equal(ornt, [[0, 1], [1, 1], [2, 1]]):
            return self
        new_affine = compose_affine(self.affine, inv_ornt_aff(ornt, self.shape))
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
        from ..xarray.build import to_dataarray

        return to_dataarray(self, name=name)

    def to_nibabel(self):
        """A plain nibabel image (same nibabel class) whose ``dataobj`` is this image's
        lazy proxy. Kept for compatibility: voxray images are nibabel images."""
        return self.nibabel_class(
            self.dataobj,
            self.affine,
            self.header.copy(),
            extra=self.extra.copy(),
            file_map=self.file_map,
        )

    def _repr_html_(self) -> str:
        """The notebook view: a table of the image (file, class, shape, dtype, zooms, axis
        codes, affine, storage, chunks) and an orthogonal thumbnail only when it costs a
        bounded number of bytes (see :func:`voxray.plotting.html.image_html`)."""
        from ..plotting.html import image_html

        return image_html(self)

    def orthoview(self, **kwargs):
        """An interactive viewer of three orthogonal planes that reads planes on demand.

        Overrides nibabel's ``orthoview`` (an ``OrthoSlicer3D`` over the whole array: a
        4-D file is read into memory first). Returns a
        :class:`~voxray.plotting.viewer.OrthoViewer`: click a panel to move the cursor, a
        slider picks the volume of a 4-D image; it holds three planes and reads one
        again only when the cursor leaves it. ``kwargs`` go to ``OrthoViewer``
        (``coords``, ``t``, ``radiological``, ``cmap``, ``vmin``, ``vmax``, ``figure``,
        ``title``; the title defaults to the file name, as nibabel's). As with nibabel,
        under a non-interactive backend call ``viewer.show()`` (``plt.show()``).

        Examples
        --------
        >>> import matplotlib.figure
        >>> import voxray as vx
        >>> from voxray.testing import NIBABEL_DATA
        >>> img = vx.load(NIBABEL_DATA / "example4d.nii.gz")
        >>> viewer = img.orthoview(figure=matplotlib.figure.Figure())
        >>> [ax.get_label() for ax in viewer.axes], viewer.n_volumes
        (['sagittal', 'coronal', 'axial'], 2)
        """
        from ..plotting.viewer import OrthoViewer

        kwargs.setdefault("title", name_of(self))
        return OrthoViewer(self, **kwargs)

    def __repr__(self) -> str:
        where = self.get_filename()
        lazy = "in memory" if self.in_memory else "lazy"
        return (
            f"<voxray.{type(self).__name__} shape={self.shape} "
            f"dtype={self.get_data_dtype()} {lazy}{f' {where!r}' if where else ''}>"
        )


class ImageSlicer:
    """``img.slicer[...]``: a lazy sliced image whose voxels keep their world positions.

    The same rules as nibabel's ``SpatialFirstSlicer`` (no integer or new axis
    in the three spatial dimensions, no empty result), but the affine is
    ``affine @ T`` with ``T`` built from each slice's resolved start and step,
    which is right for any step sign.
    """

    def __init__(self, img: Image):
        self.img = img

    def _selection(self, key):
        img = self.img
        keys = key if isinstance(key, tuple) else (key,)
        if any(isinstance(k, slice) and k.step == 0 for k in keys):
            raise ValueError("slice step cannot be 0")  # as nibabel's slicer
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
        return sel

    def slice_affine(self, slicer) -> np.ndarray:
        """The affine of ``img.slicer[slicer]``: every voxel keeps its world position."""
        sel = self._selection(slicer)
        transform = np.eye(4)
        for i, s in enumerate(sel[:3]):
            transform[i, i] = s.step
            transform[i, 3] = s.start
        return self.img.affine.dot(transform)

    def __getitem__(self, key) -> Image:
        img = self.img
        sel = self._selection(key)
        if any(s is not None and s.count == 0 for s in sel):
            raise IndexError("Empty slice requested")
        affine = self.slice_affine(key) if img.affine is not None else None
        obj = img.dataobj
        if isinstance(obj, ArrayProxy | DaskProxy):
            data = obj.sliced(key)
        else:
            data = np.asanyarray(obj)[key]
        return img._derive(data, affine)


Image.ImageSlicer = ImageSlicer


def compose_affine(affine, transform) -> np.ndarray:
    """``affine @ transform`` for a voxel-to-voxel ``transform`` (a flip, a permutation, a
    pyramid level's scaling), with the rotation and the translation kept apart: the
    plain product's ``nan * 0`` terms would spread a non-finite translation into the
    rotation (and nibabel then cannot store the affine in a header).

    >>> compose_affine(np.diag([2.0, 2, 2, 1]), np.diag([1.0, 1, 2, 1])).diagonal().tolist()
    [2.0, 2.0, 4.0, 1.0]
    """
    a = np.asarray(affine, dtype=np.float64)
    t = np.asarray(transform, dtype=np.float64)
    with np.errstate(invalid="ignore", over="ignore"):
        out = a.dot(t)  # nibabel's product, bit for bit, whenever it is usable
        if np.all(np.isfinite(out[:3, :3])):
            return out
        out = np.eye(4)
        out[:3, :3] = a[:3, :3] @ t[:3, :3]
        out[:3, 3] = a[:3, :3] @ t[:3, 3] + a[:3, 3]
    return out


def orientation(affine, name: str | None = None) -> np.ndarray:
    """nibabel's ``io_orientation`` of ``affine``: for each voxel axis, the world axis it
    is closest to and its direction. An affine that cannot say (non-finite values, a
    singular rotation) raises :class:`~voxray.errors.InvalidAffineError` naming ``name``,
    where nibabel would raise a ``LinAlgError`` or return NaN rows.

    >>> orientation(np.diag([-2.0, 2, 2, 1])).tolist()
    [[0.0, -1.0], [1.0, 1.0], [2.0, 1.0]]
    """
    from nibabel.orientations import OrientationError

    where = f"{name!r}: " if name else ""
    affine = np.asarray(affine, dtype=np.float64)
    # Orientation is the rotation and zooms; nibabel orients an image whose
    # translation is NaN (world coordinates then are NaN, not the voxel order).
    if not np.all(np.isfinite(affine[:3, :3])):
        raise InvalidAffineError(
            f"{where}the affine has non-finite values, so the image has no orientation: "
            f"{affine[:3].tolist()!r}"
        )
    try:
        ornt = io_orientation(affine)
    except (np.linalg.LinAlgError, OrientationError, ValueError) as e:
        raise InvalidAffineError(f"{where}the affine cannot orient the image: {e}") from None
    if np.isnan(ornt).any():
        raise InvalidAffineError(
            f"{where}the affine is singular (a voxel axis maps to no world direction), so "
            f"the image has no orientation: {affine[:3].tolist()!r}"
        )
    return ornt


def as_closest_canonical(img, enforce_diag: bool = False):
    """The image in RAS+ voxel order (closest to the world axes), lazily.

    Like ``nibabel.as_closest_canonical``; a nibabel image becomes a voxray image
    first (its data stays lazy). A DataArray (voxray's layout) is reoriented lazily
    too, coordinates kept.
    """
    if type(img).__name__ == "DataArray" and hasattr(img, "vx"):
        out = img.vx.reorient("RAS")
        aff = out.vx.affine[:3, :3]
    else:
        if not isinstance(img, Image):
            img = Image.from_image(img)
        out = img.as_reoriented(orientation(img.affine, name_of(img)))
        aff = out.affine[:3, :3]
    if enforce_diag and not np.allclose(aff, np.diag(np.diag(aff))):
        name = name_of(out) if isinstance(out, Image) else out.encoding.get("source")
        raise InvalidAffineError(
            f"{name or 'the image'!r}: the reoriented affine is not diagonal "
            f"(enforce_diag=True): {aff.tolist()!r}"
        )
    return out


def _check_open_args(mmap, keep_file_open) -> None:
    if mmap not in (True, False, "c", "r"):
        raise ValueError("mmap should be one of {True, False, 'c', 'r'}")
    if keep_file_open not in (None, True, False):
        raise ValueError("keep_file_open must be one of {None, True, False}")


def _timeout(seconds: float):
    """aiohttp's per-request timeout (None without aiohttp: the remote reader then says
    which package HTTP needs)."""
    try:
        import aiohttp
    except ImportError:
        return None
    return aiohttp.ClientTimeout(total=None, sock_connect=seconds, sock_read=seconds)


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
