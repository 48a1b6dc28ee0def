"""What every processing and masking call does first and last: take any image, give back
the kind it was given.

Inputs may be a voxray image, a nibabel image (its proxy becomes voxray's, so the data
stays on disk), a path or URL (opened with :func:`voxray.load`), an xarray DataArray with
voxel dims ``i, j, k[, t]`` (through ``da.vx.to_image()``), or, where nilearn takes a 4-D
image, a list of 3-D images (stacked lazily along a new fourth axis). Outputs are lazy
voxray images, or DataArrays when a DataArray was given.

>>> import numpy as np
>>> img = as_image(np.zeros((2, 3, 4)))  # doctest: +ELLIPSIS
Traceback (most recent call last):
...
voxray.errors.InputError: img: expected an image (voxray, nibabel, a path or an ...), got ndarray
"""

from __future__ import annotations

import os
import sys
from collections.abc import Iterable, Sequence

import numpy as np

from ..errors import AffineMismatchError, InputError, VoxrayError
from ..headers import name_of
from ..image import Image

__all__ = [
    "as_image",
    "as_image_4d",
    "as_images",
    "check_same_grid",
    "is_dataarray",
    "label",
    "new_image",
    "out_class_for",
    "output",
    "to_float",
]


def is_dataarray(obj) -> bool:
    """True for an xarray DataArray (xarray is not imported to find out)."""
    xr = sys.modules.get("xarray")
    return xr is not None and isinstance(obj, xr.DataArray)


def label(obj, what: str = "img") -> str:
    """How an input is named in an error: its file when it has one, else ``what``."""
    name = None
    if isinstance(obj, str | os.PathLike):
        name = os.fspath(obj)
    elif is_dataarray(obj):
        name = obj.encoding.get("source") or obj.name
    else:
        try:
            name = name_of(obj)
        except Exception:  # naming must never fail
            name = None
    return repr(name) if name else what


def as_image(obj, what: str = "img") -> Image:
    """A voxray image (lazy wherever the input was) for any image-like input."""
    if isinstance(obj, Image):
        return obj
    if isinstance(obj, str | os.PathLike):
        from ..open import load

        return load(obj)
    if is_dataarray(obj):
        try:
            return obj.vx.to_image()
        except VoxrayError:
            raise
        except (ValueError, KeyError, AttributeError) as e:
            raise InputError(f"{what}: this DataArray is not an image: {e}") from None
    from nibabel.spatialimages import SpatialImage

    if isinstance(obj, SpatialImage):
        return Image.from_image(obj)
    raise InputError(
        f"{what}: expected an image (voxray, nibabel, a path or an xarray DataArray), "
        f"got {type(obj).__name__}"
    )


def as_images(objs, what: str = "imgs") -> list[Image]:
    """A list of images from one image (3-D or 4-D) or an iterable of them."""
    if (
        isinstance(objs, str | os.PathLike)
        or not isinstance(objs, Iterable)
        or (is_dataarray(objs) or hasattr(objs, "affine"))
    ):
        return [as_image(objs, what)]
    out = [as_image(o, f"{what}[{n}]") for n, o in enumerate(objs)]
    if not out:
        raise InputError(f"{what}: an empty list of images")
    return out


def as_image_4d(objs, what: str = "imgs") -> Image:
    """A 4-D image from a 4-D image or a list of 3-D (or 4-D) images on one grid, as
    nilearn's ``check_niimg_4d`` gives: a list is concatenated lazily along axis 3."""
    imgs = as_images(objs, what)
    if len(imgs) == 1 and imgs[0].ndim == 4:
        return imgs[0]
    import dask.array as da

    check_same_grid(imgs, what)
    arrays = []
    for img in imgs:
        if img.ndim not in (3, 4):
            raise InputError(
                f"{label(img, what)}: a {img.ndim}-D image where 3-D or 4-D is needed"
            )
        arr = img.to_dask()
        arrays.append(arr[..., None] if img.ndim == 3 else arr)
    data = da.concatenate(arrays, axis=3)
    return new_image(data, imgs[0].affine, like=imgs[0])


def check_same_grid(imgs: Sequence[Image], what: str = "imgs", atol: float = 1e-5) -> None:
    """Raise :class:`~voxray.AffineMismatchError` unless every image has the first's
    spatial shape and affine (nilearn's tolerance is exact shape, allclose affine)."""
    ref = imgs[0]
    for n, img in enumerate(imgs[1:], 1):
        if img.shape[:3] != ref.shape[:3] or not np.allclose(img.affine, ref.affine, atol=atol):
            raise AffineMismatchError(
                f"{what}: {label(img, f'{what}[{n}]')} is on a different grid "
                f"(shape {img.shape[:3]}, affine {np.round(img.affine, 4)[:3].tolist()}) "
                f"from {label(ref, f'{what}[0]')} (shape {ref.shape[:3]}, affine "
                f"{np.round(ref.affine, 4)[:3].tolist()}): resample one onto the other first "
                "(voxray.processing.resample_to_img)"
            )


def new_image(data, affine, like: Image | None = None, header=None) -> Image:
    """A voxray image of ``like``'s class (Nifti1Image without one, or when the class
    cannot hold an array) over ``data`` (a dask or numpy array), keeping ``header`` (by
    default ``like``'s) as nibabel's functions keep it."""
    if header is None and like is not None:
        header = like.header
    klass = type(like) if like is not None else None
    # Without a header, nibabel would find the dtype by computing an element (a whole
    # chunk of a dask array) and refuse int64: name the dtype.
    kwargs = {"dtype": data.dtype} if header is None else {}
    if klass is not None:
        try:
            return klass(data, affine, header, **kwargs)
        except VoxrayError:
            raise
        except Exception:  # e.g. a CIFTI/ECAT/PAR class: fall back below
            pass
    from ..formats.nifti import Nifti1Image

    hdr = None
    if header is not None:
        try:
            hdr = Nifti1Image.header_class.from_header(header)
        except Exception:  # a header nibabel cannot convert: start afresh
            hdr = None
    return Nifti1Image(data, affine, hdr, **({"dtype": data.dtype} if hdr is None else {}))


def output(img: Image, *inputs, name: str | None = None):
    """``img``, or ``img`` as a lazy DataArray when the first image input was one."""
    for obj in inputs:
        if is_dataarray(obj):
            return img.to_xarray(name=name if name is not None else obj.name)
        if obj is not None:
            break
    return img


def to_float(arr, dtype=np.float64):
    """A dask or numpy array cast to a floating dtype (complex left as is)."""
    if np.issubdtype(arr.dtype, np.floating) and arr.dtype == np.dtype(dtype):
        return arr
    if np.issubdtype(arr.dtype, np.complexfloating):
        return arr
    return arr.astype(dtype)


def out_class_for(out_class, im: Image) -> type:
    """The voxray class nibabel's ``out_class`` argument names: None keeps ``im``'s
    class, a nibabel class becomes its voxray class."""
    from ..image import class_for_nibabel

    if out_class is None:
        return type(im)
    if isinstance(out_class, type) and issubclass(out_class, Image):
        return out_class
    klass = class_for_nibabel(out_class) if isinstance(out_class, type) else None
    if klass is None:
        raise InputError(f"out_class: expected an image class or None, got {out_class!r}")
    return klass
