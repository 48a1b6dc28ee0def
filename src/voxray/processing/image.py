"""Image operations with nilearn.image's and nibabel.funcs' signatures and answers, lazily.

Every function returns voxray images over dask graphs (a DataArray for DataArray input)
and reads no data at call time, except where a docstring says otherwise: a percentile
``threshold`` (exact order statistics by histogram refinement, a few reads of the data
with bounded memory), int64 data given to :func:`new_img_like` (its min and max decide
nilearn's int32 downcast) and what a ``math_img`` formula itself forces. nilearn's
``memory``, ``memory_level``, ``n_jobs`` and ``verbose`` are accepted and ignored (dask
schedules the work). A header copied as nilearn copies it gets ``cal_min``/``cal_max``
0 rather than the data's range (computing it would read the data).
"""

from __future__ import annotations

import glob
import os
import warnings
from collections.abc import Iterator

import numpy as np

from ..errors import AffineMismatchError, InputError
from .inputs import as_image, as_image_4d, check_same_grid, is_dataarray, output
from .smooth import lazy_image

__all__ = [
    "concat_imgs",
    "four_to_three",
    "index_img",
    "iter_img",
    "math_img",
    "mean_img",
    "new_img_like",
    "squeeze_image",
]


def _is_single(obj) -> bool:
    return isinstance(obj, str | os.PathLike) or is_dataarray(obj) or hasattr(obj, "affine")


def _dask(data):
    import dask.array as da

    return data if isinstance(data, da.Array) else None


def _nilearn_header(header):
    """The header nilearn's ``new_img_like(copy_header=True)`` gives (cal_* set to 0)."""
    header = header.copy()
    for key in ("scl_slope", "scl_inter", "glmax", "cal_max", "cal_min"):
        try:
            if key in header:
                header[key] = 0.0
        except TypeError:  # a header without keys
            break
    return header


def new_img_like(ref_niimg, data, affine=None, copy_header: bool = False):
    """A new image of ``ref_niimg``'s class over ``data`` (nilearn's ``new_img_like``).

    Bool data become uint8; int64 data become int32 when their range fits (for dask
    data this computes their min and max, one read). Lazy when ``data`` is a dask array.

    Parameters
    ----------
    ref_niimg : image, path, DataArray or a list of them (the first is used)
    data : numpy or dask array
    affine : array or None
        ``ref_niimg``'s affine when None.
    copy_header : bool
        Copy ``ref_niimg``'s header (scaling reset) as nilearn does.

    Returns
    -------
    Image

    Examples
    --------
    >>> import numpy as np, voxray as vx
    >>> ref = vx.Image(np.zeros((2, 2, 2), np.int16), np.diag([3, 3, 3, 1]))
    >>> img = new_img_like(ref, np.ones((2, 2, 2), bool))
    >>> img.get_data_dtype(), img.affine[0, 0]
    (dtype('uint8'), np.float64(3.0))
    """
    ref = ref_niimg
    if not _is_single(ref) and hasattr(ref, "__iter__"):
        ref = next(iter(ref))
    ref = as_image(ref, "ref_niimg")
    if affine is None:
        affine = ref.affine
    if not hasattr(data, "dtype") or not hasattr(data, "shape"):
        raise InputError(f"data: expected a numpy or dask array, got {type(data).__name__}")
    if data.dtype == bool:
        data = data.astype(np.uint8)
    if data.dtype in (np.int64, np.uint64):
        if _dask(data) is not None:
            import dask

            lo, hi = dask.compute(data.min(), data.max())
        else:
            lo, hi = np.min(data), np.max(data)
        info = np.iinfo(np.int32)
        if info.min <= lo and info.max >= hi:
            data = data.astype(np.int32)
    header = _nilearn_header(ref.header) if copy_header and ref.header is not None else None
    from ..formats.nifti import Nifti1Image

    klass = type(ref)
    if klass.__name__ == "Nifti1Pair":
        klass = Nifti1Image
    try:
        return lazy_image(data, np.asarray(affine), klass, header)
    except (TypeError, ValueError) as e:
        raise InputError(
            f"data: cannot make a {klass.__name__} of shape {data.shape}: {e}"
        ) from None


def _mean3d(im):
    arr = im.to_dask()
    if arr.ndim not in (3, 4):
        raise InputError(
            f"imgs: mean_img expects 3D or 4D images, but {arr.ndim} dimensions were given"
        )
    return arr.mean(axis=-1) if arr.ndim == 4 else arr


def mean_img(
    imgs,
    target_affine=None,
    target_shape=None,
    verbose=0,
    n_jobs=1,
    copy_header: bool = True,
):
    """Mean over time of a 4-D image, or the mean of the means of a list of images
    (nilearn's ``mean_img``), lazily; ``verbose`` and ``n_jobs`` are ignored.

    ``target_affine``/``target_shape`` resample each mean with
    :func:`voxray.processing.resample_img` (nilearn's default interpolation).

    Examples
    --------
    >>> import numpy as np, voxray as vx
    >>> img = vx.Image(np.arange(16, dtype=np.float32).reshape(2, 2, 1, 4), np.eye(4))
    >>> m = mean_img(img)
    >>> m.shape, m.get_fdata()[0, 0, 0]
    ((2, 2, 1), np.float64(1.5))
    """
    items = [imgs] if _is_single(imgs) or not hasattr(imgs, "__iter__") else list(imgs)
    if not items:
        raise InputError("imgs: an empty list of images")
    ims = [as_image(obj, f"imgs[{n}]") for n, obj in enumerate(items)]

    def mean_of(im):
        mean = _mean3d(im)
        if target_affine is None and target_shape is None:
            return mean, im.affine
        from .resample import resample_img

        out = resample_img(
            lazy_image(mean, im.affine), target_affine=target_affine, target_shape=target_shape
        )
        return out.to_dask(), out.affine

    running, first_affine = mean_of(ims[0])
    t_affine, t_shape = target_affine, target_shape
    if t_affine is None or t_shape is None:
        t_affine, t_shape = first_affine, running.shape[:3]
    for im in ims[1:]:
        this = _mean3d(im)
        if this.shape[:3] != tuple(t_shape) or not np.allclose(im.affine, t_affine):
            from .resample import resample_img  # nilearn resamples onto the first's grid

            this = resample_img(
                lazy_image(this, im.affine), target_affine=t_affine, target_shape=t_shape
            ).to_dask()
        running = (running + this).astype(running.dtype)  # nilearn's in-place +=
    running = running / float(len(ims))
    out = new_img_like(ims[0], running, t_affine, copy_header=copy_header)
    return output(out, items[0])


def math_img(formula: str, copy_header_from: str | None = None, **imgs):
    """Evaluate a numpy formula over images (nilearn's ``math_img``), lazily: the
    images are dask arrays, so numpy functions (``np.mean(img, axis=-1)``, ``np.where``,
    ...) dispatch to dask. A formula that forces a value (``if``, ``float(...)``)
    computes it.

    Examples
    --------
    >>> import numpy as np, voxray as vx
    >>> a = vx.Image(np.ones((2, 2, 2, 3), np.float32), np.eye(4))
    >>> out = math_img("np.mean(a, axis=-1) * 2", a=a)
    >>> out.shape, out.get_fdata().max()
    ((2, 2, 2), np.float64(2.0))
    """
    if not isinstance(formula, str):
        raise InputError(f"formula: expected a string, got {formula!r}")
    missing = [x for x in imgs if x not in formula and x != copy_header_from]
    if missing:
        warnings.warn(
            f"Some images ({missing}) are not mentioned in the {formula=}.", stacklevel=2
        )
    if not imgs:
        raise InputError("imgs: math_img needs at least one image")
    niimgs = {k: as_image(v, k) for k, v in imgs.items()}
    check_same_grid(list(niimgs.values()), "imgs")
    if copy_header_from is not None and copy_header_from not in imgs:
        raise InputError(
            f"copy_header_from={copy_header_from!r} but {copy_header_from!r} is missing "
            f"from 'imgs' that contains: {list(imgs)!r}"
        )
    namespace = {k: im.to_dask() for k, im in niimgs.items()}
    namespace["np"] = np
    try:
        result = eval(formula, namespace)
    except Exception as e:
        raise InputError(
            f"formula: input formula couldn't be processed, you provided {formula!r}: "
            f"{type(e).__name__}: {e}"
        ) from None
    if _dask(result) is None:
        result = np.asarray(result)
    last = list(niimgs.values())[-1]
    first_input = next(iter(imgs.values()))
    if copy_header_from is None:
        return output(new_img_like(last, result, last.affine), first_input)
    ref = niimgs[copy_header_from]
    if result.ndim != ref.ndim:
        raise InputError(
            "copy_header_from: cannot copy the header, the result of the formula has a "
            f"different number of dimensions ({result.ndim}) than {copy_header_from!r} "
            f"({ref.ndim})"
        )
    return output(new_img_like(ref, result, ref.affine, copy_header=True), first_input)


def _as_ndim(im, ndim: int, what: str):
    """nilearn's ``check_niimg(ensure_ndim=...)``: 4-D of one volume -> 3-D, 3-D -> 4-D."""
    arr = im.to_dask()
    if ndim == 3 and arr.ndim == 4 and arr.shape[3] == 1:
        return arr[..., 0]
    if ndim == 4 and arr.ndim == 3:
        return arr[..., None]
    if arr.ndim != ndim:
        raise InputError(f"{what}: expected a {ndim}D image, got a {arr.ndim}D image")
    return arr


def concat_imgs(
    niimgs,
    dtype=np.float32,
    ensure_ndim=None,
    memory=None,
    memory_level=0,
    auto_resample: bool = False,
    verbose=0,
):
    """Concatenate 3-D (or 4-D) images along time (nilearn's ``concat_imgs``), lazily.

    ``dtype`` None keeps the first image's; a glob string is expanded (sorted);
    ``auto_resample`` resamples onto the first image's grid with
    :func:`voxray.processing.resample_img`; ``memory``, ``memory_level``, ``verbose``
    are ignored.

    Examples
    --------
    >>> import numpy as np, voxray as vx
    >>> vols = [vx.Image(np.full((2, 2, 2), v, np.int16), np.eye(4)) for v in (1, 2)]
    >>> out = concat_imgs(vols)
    >>> out.shape, out.get_data_dtype().name
    ((2, 2, 2, 2), 'float32')
    """
    import dask.array as da

    if isinstance(niimgs, str) and any(c in niimgs for c in "*?["):
        niimgs = sorted(glob.glob(os.path.expanduser(niimgs)))
        if not niimgs:
            raise InputError(f"niimgs: no file matches the pattern {niimgs!r}")
    if _is_single(niimgs) or not hasattr(niimgs, "__iter__"):
        niimgs = [niimgs]
    ims = [as_image(obj, f"niimgs[{n}]") for n, obj in enumerate(niimgs)]
    if not ims:
        raise InputError("niimgs: cannot concatenate empty objects")
    ndim = ensure_ndim - 1 if ensure_ndim is not None else ims[0].ndim
    if ndim not in (3, 4):
        raise InputError(f"niimgs: concatenated images must be 3D or 4D, got {ndim}D images")
    arrays = [_as_ndim(im, ndim, f"niimgs[{n}]") for n, im in enumerate(ims)]
    first = ims[0]
    for n, (im, arr) in enumerate(zip(ims, arrays, strict=True)):
        same = arr.shape[:3] == first.shape[:3] and np.allclose(im.affine, first.affine)
        if n and not same:
            if not auto_resample:
                raise AffineMismatchError(
                    f"niimgs: field of view of image #{n} is different from reference FOV "
                    f"(shape {arr.shape[:3]} vs {first.shape[:3]}); pass auto_resample=True"
                )
            from .resample import resample_img

            arrays[n] = resample_img(
                lazy_image(arr, im.affine),
                target_affine=first.affine,
                target_shape=first.shape[:3],
            ).to_dask()
    arrays = [a if a.ndim == 4 else a[..., None] for a in arrays]
    if dtype is None:
        dtype = first.to_dask().dtype
    data = da.concatenate([a.astype(dtype) for a in arrays], axis=3)
    return output(new_img_like(first, data, first.affine), niimgs[0])


def index_img(imgs, index):
    """Select volumes of a 4-D image (nilearn's ``index_img``), lazily: an int gives a
    3-D image, a slice, list or boolean mask a 4-D one.

    Examples
    --------
    >>> import numpy as np, voxray as vx
    >>> img = vx.Image(np.zeros((2, 2, 2, 5)), np.eye(4))
    >>> index_img(img, 2).shape, index_img(img, slice(1, 3)).shape
    ((2, 2, 2), (2, 2, 2, 2))
    """
    im = as_image_4d(imgs)
    if im.ndim != 4:
        raise InputError(f"imgs: expected a 4D image, got shape {im.shape!r}")
    if hasattr(index, "values") and hasattr(index, "iloc"):
        index = index.to_numpy().flatten()
    n = im.shape[3]
    if isinstance(index, int | np.integer) and not isinstance(index, bool):
        if index < -n or index >= n:
            raise InputError(
                f"index: integer index {index} out of range for last dimension with size {n}"
            )
    elif not isinstance(index, slice):
        arr = np.asarray(index)
        if arr.dtype == bool:
            if arr.shape != (n,):
                raise InputError(f"index: a boolean index of {arr.shape} for {n} volumes")
        elif arr.dtype.kind not in "iu" or (arr.size and (arr.min() < -n or arr.max() >= n)):
            raise InputError(f"index: expected ints, a slice or booleans in range, got {index!r}")
        index = arr
    data = im.to_dask()[..., index]
    first = imgs if _is_single(imgs) else None
    return output(new_img_like(im, data, im.affine), first)


def iter_img(imgs) -> Iterator:
    """The 3-D volumes of a 4-D image, one lazy image each (nilearn's ``iter_img``).

    Examples
    --------
    >>> import numpy as np, voxray as vx
    >>> [v.shape for v in iter_img(vx.Image(np.zeros((2, 2, 2, 3)), np.eye(4)))]
    [(2, 2, 2), (2, 2, 2), (2, 2, 2)]
    """
    im = as_image_4d(imgs)
    first = imgs if _is_single(imgs) else None
    if im.ndim == 3:
        return iter([output(new_img_like(im, im.to_dask(), im.affine), first)])
    if im.ndim != 4:
        raise InputError(f"imgs: expected a 4D image, got shape {im.shape!r}")
    arr = im.to_dask()
    return (output(new_img_like(im, arr[..., i], im.affine), first) for i in range(im.shape[3]))


def four_to_three(img) -> list:
    """Split a 4-D image into 3-D images of its class and header (nibabel's
    ``four_to_three``), lazily.

    Examples
    --------
    >>> import numpy as np, voxray as vx
    >>> len(four_to_three(vx.Image(np.zeros((2, 2, 2, 3)), np.eye(4))))
    3
    """
    im = as_image(img)
    if im.ndim != 4:
        raise InputError(f"img: expecting four dimensions, got shape {im.shape!r}")
    arr = im.to_dask()
    return [output(type(im)(arr[..., i], im.affine, im.header), img) for i in range(im.shape[3])]


def squeeze_image(img):
    """Drop trailing length-1 axes beyond the third (nibabel's ``squeeze_image``), lazily.

    Examples
    --------
    >>> import numpy as np, voxray as vx
    >>> squeeze_image(vx.Image(np.zeros((2, 3, 4, 1, 1)), np.eye(4))).shape
    (2, 3, 4)
    """
    im = as_image(img)
    shape = im.shape
    slen = len(shape)
    for bdim in shape[3:][::-1]:
        if bdim != 1:
            break
        slen -= 1
    arr = im.to_dask()
    if slen != len(shape):
        arr = arr.reshape(shape[:slen])
    return output(type(im)(arr, im.affine, im.header, im.extra), img)
