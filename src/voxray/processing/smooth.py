"""Gaussian smoothing, lazily: nibabel's ``smooth_image`` and nilearn's ``smooth_img``.

Both are separable Gaussian filters (scipy's ``gaussian_filter1d`` applied axis after
axis). Each axis is one ``dask.array.map_overlap`` whose depth on that axis is scipy's
kernel radius ``int(truncate * sigma + 0.5)`` and whose boundary is ``"none"``: inner
chunk edges see their neighbours' true values, the image's own edges get scipy's
``mode``, so every voxel equals the whole-image filter. Chunks along a smoothed axis are
made at least the depth (an axis shorter than two kernel radii becomes one chunk); chunks
along time are left as they are (time is never smoothed unless nibabel's vector ``fwhm``
asks). Each input chunk is read once; halos are slices of neighbouring chunks.
"""

from __future__ import annotations

import numpy as np

from ..errors import InputError
from .inputs import as_image, is_dataarray, out_class_for, output

__all__ = ["fwhm2sigma", "sigma2fwhm", "smooth_image", "smooth_img"]

SIGMA2FWHM = np.sqrt(8 * np.log(2))
TRUNCATE = 4.0
_DEFAULT = object()  # nibabel's default out_class, Nifti1Image
_MODES = (
    "reflect",
    "constant",
    "nearest",
    "mirror",
    "wrap",
    "grid-wrap",
    "grid-mirror",
    "grid-constant",
)


def fwhm2sigma(fwhm):
    """Convert a FWHM to the sigma of a Gaussian kernel (nibabel's ``fwhm2sigma``).

    Examples
    --------
    >>> float(round(fwhm2sigma(6), 6))
    2.547965
    """
    return np.asarray(fwhm) / SIGMA2FWHM


def sigma2fwhm(sigma):
    """Convert a Gaussian kernel's sigma to a FWHM (nibabel's ``sigma2fwhm``).

    Examples
    --------
    >>> float(round(sigma2fwhm(fwhm2sigma(6)), 6))
    6.0
    """
    return np.asarray(sigma) * SIGMA2FWHM


def filter1d_block(block, sigma, axis, mode, cval, radius):
    """scipy's ``gaussian_filter1d`` on one (halo-padded) block, dtype kept as scipy
    keeps it (module level so graphs pickle)."""
    from scipy.ndimage import gaussian_filter1d

    return gaussian_filter1d(
        block, sigma, axis=axis, mode=mode, cval=cval, truncate=TRUNCATE, radius=radius
    )


def axis_chunks(chunks: tuple[int, ...], n: int, depth: int) -> tuple[int, ...]:
    """Chunks along one axis, each at least ``depth`` long (one chunk when the axis is
    shorter than two depths); unchanged when they already are."""
    if depth == 0 or min(chunks) >= depth or len(chunks) == 1:
        return chunks
    if n <= 2 * depth:
        return (n,)
    size = max(depth, max(chunks))
    out = [size] * (n // size)
    rest = n - sum(out)
    if rest:
        if rest < depth:
            out[-1] += rest
        else:
            out.append(rest)
    return tuple(out)


def gaussian_dask(arr, sigmas, mode: str = "nearest", cval: float = 0.0):
    """A separable Gaussian filter over a dask array: equal to
    ``scipy.ndimage.gaussian_filter(arr, sigmas, mode=mode, cval=cval)`` (axes in order,
    each result kept in the input's dtype as scipy does)."""
    import dask.array as da

    for axis, sigma in enumerate(sigmas):
        sigma = float(sigma)
        if not sigma > 1e-15:
            continue
        n = arr.shape[axis]
        radius = int(TRUNCATE * sigma + 0.5)
        chunks = axis_chunks(arr.chunks[axis], n, radius)
        if mode in ("wrap", "grid-wrap") and len(chunks) > 1 and n < 2 * radius:
            chunks = (n,)
        if chunks != arr.chunks[axis]:
            arr = arr.rechunk({axis: chunks})
        if len(chunks) == 1:
            depth, boundary = 0, "none"
        else:
            depth = radius
            boundary = "periodic" if mode in ("wrap", "grid-wrap") else "none"
        arr = da.map_overlap(
            filter1d_block,
            arr,
            depth={axis: depth},
            boundary={axis: boundary},
            dtype=arr.dtype,
            meta=np.empty((0,) * arr.ndim, arr.dtype),
            sigma=sigma,
            axis=axis,
            mode=mode,
            cval=cval,
            radius=radius,
        )
    return arr


def lazy_image(data, affine, klass=None, header=None):
    """A voxray image (``klass``, default Nifti1Image) over ``data``; without a header
    the data dtype is given so that nibabel does not compute an element to find it."""
    if klass is None:
        from ..formats.nifti import Nifti1Image as klass
    if header is None:
        try:
            return klass(data, affine, None, dtype=data.dtype)
        except TypeError:  # a class without a dtype argument
            pass
    return klass(data, affine, header)


def _number(value, what: str):
    try:
        out = np.asarray(value, dtype=np.float64)
    except (TypeError, ValueError):
        raise InputError(
            f"{what}: expected a number or a sequence of numbers, got {value!r}"
        ) from None
    if not np.all(np.isfinite(out)):
        raise InputError(f"{what}: expected finite numbers, got {value!r}")
    return out


def smooth_image(img, fwhm, mode: str = "nearest", cval: float = 0.0, out_class=_DEFAULT):
    """Smooth ``img`` along its voxel axes by ``fwhm`` millimetres (nibabel's
    ``nibabel.processing.smooth_image``), lazily.

    Parameters
    ----------
    img : image, path or DataArray
    fwhm : float or sequence
        A scalar smooths the three spatial axes (0 over time); a vector has one value per
        image axis. Converted to voxels with the voxel sizes of
        ``img.affine[:, :ndim]``, as nibabel does.
    mode, cval : str, float
        scipy's boundary handling (default ``"nearest"``, nibabel's).
    out_class : class or None
        The output's class (default Nifti1Image, as nibabel; None: the input's class).
        A nibabel class gives the voxray class that mixes it in.

    Returns
    -------
    Image or DataArray
        Lazy; the data dtype is the input's (as ``scipy.ndimage.gaussian_filter`` keeps it).

    Examples
    --------
    >>> import numpy as np, voxray as vx
    >>> img = vx.Image(np.eye(5)[None].repeat(3, 0), np.eye(4))
    >>> out = smooth_image(img, 2)
    >>> out.shape, out.get_fdata().round(3)[1, 2, 2]
    ((3, 5, 5), np.float64(0.333))
    """
    im = as_image(img)
    if mode not in _MODES:
        raise InputError(f"mode: expected one of {_MODES!r}, got {mode!r}")
    n_dim = im.ndim
    fwhm = _number(fwhm, "fwhm")
    if fwhm.size == 1:
        value = fwhm.ravel()[0]
        fwhm = np.zeros((n_dim,))
        fwhm[:3] = value
    if fwhm.shape != (n_dim,):
        raise InputError(
            f"fwhm: a scalar or one value per image axis ({n_dim}) is needed, "
            f"got {fwhm.tolist()!r}"
        )
    if n_dim > 4:
        raise InputError(f"img: smooth_image takes 3-D or 4-D images, got shape {im.shape!r}")
    rzs = np.asarray(im.affine)[:, :n_dim]
    vox = np.sqrt(np.sum(rzs**2, 0))
    sigmas = fwhm2sigma(fwhm / vox)
    data = gaussian_dask(im.to_dask(), sigmas, mode=mode, cval=float(cval))
    return output(_out_class(out_class, im)(data, im.affine, im.header), img)


def _out_class(out_class, im):
    if out_class is _DEFAULT:  # nibabel's smooth_image defaults to Nifti1Image
        from ..formats.nifti import Nifti1Image

        return Nifti1Image
    return out_class_for(out_class, im)


def finite_block(block):
    """Non-finite values set to 0 (nilearn's ``ensure_finite``)."""
    block = block.copy()
    block[~np.isfinite(block)] = 0
    return block


def fast_block(block):
    """nilearn's ``fwhm='fast'`` kernel on one halo-padded block (first three axes)."""
    w = 0.2 * block
    out = block.copy()
    out[:-1] += w[1:]
    out[1:] += w[:-1]
    out[:, :-1] += w[:, 1:]
    out[:, 1:] += w[:, :-1]
    out[:, :, :-1] += w[:, :, 1:]
    out[:, :, 1:] += w[:, :, :-1]
    out /= 1 + 6 * 0.2
    return out


def smooth_array_dask(arr, affine, fwhm):
    """nilearn's ``smooth_array(arr, affine, fwhm, ensure_finite=True)`` over a dask
    array."""
    import dask.array as da

    if isinstance(fwhm, int | float) and fwhm == 0.0:
        import warnings

        warnings.warn(
            f"The parameter 'fwhm' for smoothing is specified as {fwhm}. "
            "Setting it to None (no smoothing will be performed)",
            stacklevel=3,
        )
        fwhm = None
    if arr.dtype.kind in "iu":
        arr = arr.astype(np.float64 if arr.dtype in (np.int64, np.uint64) else np.float32)
    if arr.dtype.kind in "fc":
        arr = arr.map_blocks(finite_block, dtype=arr.dtype)
    if isinstance(fwhm, str):
        if fwhm != "fast":
            raise InputError(f"fwhm: expected a number, a sequence, 'fast' or None, got {fwhm!r}")
        depth = {ax: (1 if len(arr.chunks[ax]) > 1 else 0) for ax in range(3)}
        for ax in range(3):
            if depth[ax] and min(arr.chunks[ax]) < 1:
                arr = arr.rechunk({ax: axis_chunks(arr.chunks[ax], arr.shape[ax], 1)})
        return da.map_overlap(fast_block, arr, depth=depth, boundary="none", dtype=arr.dtype)
    if fwhm is None:
        return arr
    try:
        values = np.asarray([fwhm]).ravel()
        values = np.asarray([0.0 if v is None else v for v in values], dtype=np.float64)
    except (TypeError, ValueError):
        raise InputError(
            f"fwhm: expected a number, a sequence, 'fast' or None, got {fwhm!r}"
        ) from None
    vox = np.sqrt(np.sum(np.asarray(affine)[:3, :3] ** 2, axis=0))
    if values.size not in (1, 3):
        raise InputError(f"fwhm: one value or three (one per spatial axis) needed, got {fwhm!r}")
    sigma = values / (SIGMA2FWHM * vox)
    sigmas = [s if s > 0.0 else 0.0 for s in sigma] + [0.0] * (arr.ndim - sigma.size)
    return gaussian_dask(arr, sigmas, mode="reflect")


def _nilearn_class(im):
    """The class nilearn's ``new_img_like`` gives: the reference's (Nifti1Pair ->
    Nifti1Image); Nifti1Image for a class that cannot be built from an array."""
    from ..formats.nifti import Nifti1Image

    name = type(im).__name__
    return type(im) if name in ("Nifti1Image", "Nifti2Image") else Nifti1Image


def smooth_img(imgs, fwhm):
    """Smooth images with a Gaussian filter (nilearn's ``nilearn.image.smooth_img``),
    lazily.

    Non-finite values become 0, integer data become float32 (float64 for 64-bit ints),
    ``fwhm`` is in mm (a scalar, three values, ``"fast"`` or ``None``/0 for no
    smoothing); the first three axes are smoothed (scipy's default ``"reflect"`` edges).

    Parameters
    ----------
    imgs : image, path, DataArray or an iterable of them
    fwhm : float, sequence, "fast" or None

    Returns
    -------
    Image, DataArray or list
        A list when ``imgs`` was an iterable (not a string or an image).

    Examples
    --------
    >>> import numpy as np, voxray as vx
    >>> data = np.zeros((1, 3, 3)); data[0, 1, 1] = 3
    >>> out = smooth_img(vx.Image(data, np.eye(4)), fwhm=2)
    >>> out.get_fdata()[0, 1].round(6).tolist()
    [0.373787, 0.667105, 0.373787]
    """
    single = isinstance(imgs, str) or is_dataarray(imgs) or hasattr(imgs, "affine")
    if not single and not hasattr(imgs, "__iter__"):
        single = True
    items = [imgs] if single else list(imgs)
    out = []
    for n, obj in enumerate(items):
        im = as_image(obj, "imgs" if single else f"imgs[{n}]")
        data = smooth_array_dask(im.to_dask(), im.affine, fwhm)
        out.append(output(lazy_image(data, im.affine, _nilearn_class(im)), obj))
    return out[0] if single else out
