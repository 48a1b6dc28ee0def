"""Brain masks and masking, with nilearn 0.14.1's signatures and answers.

``compute_epi_mask`` / ``compute_background_mask`` compute the mean volume lazily (one
streamed pass over the 4-D image), then do the 3-D work in memory (a volume is small).
``apply_mask`` returns a lazy ``(t, n_voxels)`` dask array chunked along ``t`` as the
image is; ``unmask`` returns a lazy image.

>>> import numpy as np, voxray as vx
>>> from voxray.masking.mask import apply_mask
>>> img = vx.Image(np.arange(24.0).reshape(2, 3, 4, 1).repeat(3, 3), np.eye(4))
>>> m = vx.Image((np.arange(24).reshape(2, 3, 4) % 2).astype("u1"), np.eye(4))
>>> apply_mask(img, m).shape
(3, 12)
"""

from __future__ import annotations

import numpy as np
from scipy import ndimage

from ..errors import InputError
from ..processing.inputs import as_image, check_same_grid, label, new_image, output

__all__ = ["compute_epi_mask", "compute_background_mask", "apply_mask", "unmask", "load_mask"]


def load_mask(mask_img, what: str = "mask_img"):
    """(boolean numpy mask, voxray image) for a mask, checked as nilearn's
    ``load_mask_img`` checks it (3-D; values 0 and one other)."""
    img = as_image(mask_img, what)
    if img.ndim == 4 and img.shape[3] == 1:
        img = new_image(img.to_dask()[..., 0], img.affine, like=img)
    if img.ndim != 3:
        raise InputError(f"{label(mask_img, what)}: a 3-D mask is needed, got shape {img.shape!r}")
    data = np.asarray(img.to_dask().compute())
    data = np.where(np.isfinite(data), data, 0) if data.dtype.kind == "f" else data
    values = np.unique(data)
    if len(values) == 1 and values[0] == 0:
        raise InputError(f"{label(mask_img, what)}: the mask is invalid as it is empty")
    if len(values) == 2 and 0 not in values:
        raise InputError(
            f"{label(mask_img, what)}: background must be 0, mask values {values.tolist()!r}"
        )
    if len(values) > 2:
        raise InputError(
            f"{label(mask_img, what)}: mask not made of 2 values: {values[:10].tolist()!r}"
        )
    return data.astype(bool), img


def _largest_connected_component(mask: np.ndarray) -> np.ndarray:
    labels, n = ndimage.label(mask)
    if n <= 1:
        return mask.astype(bool)
    count = np.bincount(labels.ravel().astype(int))
    count[0] = 0
    return labels == count.argmax()


def _post_process(mask, opening, connected, msg):
    import warnings

    if opening:
        opening = int(opening)
        mask = ndimage.binary_erosion(mask, iterations=opening)
    if not mask.any():
        warnings.warn(f"Computed an empty mask. {msg}", UserWarning, stacklevel=3)
    elif connected:
        mask = _largest_connected_component(mask)
    if opening:
        mask = ndimage.binary_dilation(mask, iterations=2 * opening)
        mask = ndimage.binary_erosion(mask, iterations=opening)
    return mask


def _mean_volume(epi_img, target_affine, target_shape, what):
    """nilearn's ``compute_mean`` (without smoothing): (mean volume, affine)."""
    img = as_image(epi_img, what)
    if img.ndim not in (3, 4):
        raise InputError(f"{label(epi_img, what)}: 3-D or 4-D image needed, got {img.ndim}-D")
    data = img.to_dask()
    mean = data.mean(axis=-1) if img.ndim == 4 else data
    mean = np.asarray(mean.compute())
    affine = img.affine
    if target_affine is not None or target_shape is not None:
        from ..processing.resample import resample_img

        res = resample_img(
            new_image(mean, affine), target_affine=target_affine, target_shape=target_shape
        )
        affine = res.affine
        mean = np.asarray(res.to_dask().compute())
    return mean, affine, img


def _smooth_1(arr: np.ndarray, affine: np.ndarray, fwhm: float) -> np.ndarray:
    """nilearn's ``smooth_array(arr, np.eye(4), fwhm, ensure_finite=True)``."""
    from scipy.ndimage import gaussian_filter1d

    if arr.dtype.kind in "iu":
        arr = arr.astype(np.float64 if arr.dtype.itemsize == 8 else np.float32)
    arr = arr.copy()
    arr[~np.isfinite(arr)] = 0
    vox = np.sqrt(np.sum(affine[:3, :3] ** 2, axis=0))
    sigma = fwhm / (np.sqrt(8 * np.log(2)) * vox)
    for n, s in enumerate(sigma):
        if s > 0.0:
            gaussian_filter1d(arr, s, output=arr, axis=n)
    return arr


def compute_epi_mask(
    epi_img,
    lower_cutoff: float = 0.2,
    upper_cutoff: float = 0.85,
    connected: bool = True,
    opening: int | bool = 2,
    exclude_zeros: bool = False,
    ensure_finite: bool = True,
    target_affine=None,
    target_shape=None,
    memory=None,
    verbose: int = 0,
):
    """Compute a brain mask from EPI data (nilearn's ``compute_epi_mask``).

    The mean volume is computed at call time in one streamed pass over the image's
    chunks; the histogram cut, opening and connected-component steps run in memory.

    Parameters
    ----------
    epi_img : image-like
        3-D or 4-D image (voxray, nibabel, path or DataArray).
    lower_cutoff, upper_cutoff : float
        Fractions of the sorted histogram between which the threshold is sought.
    connected : bool
        Keep only the largest connected component.
    opening : int or bool
        Number of morphological opening iterations (also smooths the mean, fwhm 1).
    exclude_zeros, ensure_finite : bool
        As nilearn.
    target_affine, target_shape : optional
        Resample the mean volume first.
    memory, verbose : ignored
        Accepted for nilearn compatibility.

    Returns
    -------
    voxray image (or DataArray for DataArray input) of dtype uint8 (as nilearn), 3-D.

    Examples
    --------
    >>> import numpy as np, voxray as vx
    >>> data = np.random.default_rng(42).normal(size=(9, 9, 9))
    >>> data[3:-2, 3:-2, 3:-2] = 10
    >>> int(compute_epi_mask(vx.Image(data, np.eye(4)), opening=False).get_fdata().sum())
    73
    """
    if not 0 <= lower_cutoff <= upper_cutoff <= 1:
        raise InputError(
            f"lower_cutoff={lower_cutoff!r}, upper_cutoff={upper_cutoff!r}: "
            "need 0 <= lower <= upper <= 1"
        )
    mean, affine, _ = _mean_volume(epi_img, target_affine, target_shape, "epi_img")
    if opening:
        nan = np.isnan(mean)
        mean = _smooth_1(mean, np.eye(4), 1)
        mean[nan] = np.nan
    if ensure_finite:
        mean = np.array(mean)
        mean[~np.isfinite(mean)] = 0
    s = np.sort(np.ravel(mean))
    if exclude_zeros:
        s = s[s != 0]
    lo = int(np.floor(lower_cutoff * len(s)))
    hi = min(int(np.floor(upper_cutoff * len(s))), len(s) - 1)
    delta = s[lo + 1 : hi + 1] - s[lo:hi]
    if delta.size == 0:
        raise InputError(
            f"epi_img {label(epi_img, 'epi_img')}: too few values between the cutoffs "
            f"{lower_cutoff!r} and {upper_cutoff!r}"
        )
    ia = delta.argmax()
    threshold = 0.5 * (s[ia + lo] + s[ia + lo + 1])
    mask = _post_process(
        mean >= threshold,
        opening,
        connected,
        "Are you sure that input data are EPI images not detrended.",
    )
    out = new_image(mask.astype(np.uint8), affine)
    return output(out, epi_img)


def compute_background_mask(
    data_imgs,
    border_size: int = 2,
    connected: bool = False,
    opening: int | bool = False,
    target_affine=None,
    target_shape=None,
    memory=None,
    verbose: int = 0,
):
    """Compute a brain mask by guessing the background from the border (nilearn's
    ``compute_background_mask``); the mean volume is computed at call time.

    Parameters
    ----------
    data_imgs : image-like
        3-D or 4-D image.
    border_size : int
        Border width whose median is the background value.
    connected, opening, target_affine, target_shape : optional
        As nilearn.
    memory, verbose : ignored
        Accepted for nilearn compatibility.

    Returns
    -------
    voxray image (uint8, 3-D).

    Examples
    --------
    >>> import numpy as np, voxray as vx
    >>> data = np.zeros((6, 6, 6)); data[2:4, 2:4, 2:4] = 1
    >>> int(compute_background_mask(vx.Image(data, np.eye(4))).get_fdata().sum())
    8
    """
    mean, affine, _ = _mean_volume(data_imgs, target_affine, target_shape, "data_imgs")
    b = int(border_size)
    border = np.hstack(
        [
            mean[:b].ravel(),
            mean[-b:].ravel(),
            mean[:, :b].ravel(),
            mean[:, -b:].ravel(),
            mean[:, :, :b].ravel(),
            mean[:, :, -b:].ravel(),
        ]
    )
    if np.isnan(border).any():
        mask = ~np.isnan(mean)
    else:
        mask = mean != np.median(border)
    mask = _post_process(
        mask, opening, connected, "Are you sure that input images have a homogeneous background."
    )
    return output(new_image(mask.astype(np.uint8), affine), data_imgs)


def _take(block: np.ndarray, mask: np.ndarray, dtype, ensure_finite: bool) -> np.ndarray:
    block = np.asarray(block, dtype=dtype)
    if ensure_finite and block.dtype.kind == "f":
        block = np.where(np.isfinite(block), block, 0).astype(dtype, copy=False)
    return np.ascontiguousarray(block[:, mask])


def apply_mask(imgs, mask_img, dtype="f", smoothing_fwhm=None, ensure_finite: bool = True):
    """Extract masked time series (nilearn's ``apply_mask``), lazily.

    Returns a ``(t, n_voxels)`` dask array, voxels in C order of the mask's True voxels,
    chunked along ``t`` as the image's ``t`` chunks; each image chunk is read once
    (the spatial chunks of one ``t`` range are merged into one task).

    Parameters
    ----------
    imgs : image-like
        4-D image (a 3-D image gives one row).
    mask_img : image-like
        3-D mask on the same grid (else AffineMismatchError).
    dtype : "f", dtype or None
        "f": keep a float dtype, else float32 (nilearn).
    smoothing_fwhm : float, optional
        Smooth first (voxray.processing.smooth_img).
    ensure_finite : bool
        Replace NaN/inf by 0.

    Returns
    -------
    dask.array.Array

    Examples
    --------
    >>> import numpy as np, voxray as vx
    >>> img = vx.Image(np.ones((2, 2, 2, 5), "i2"), np.eye(4))
    >>> apply_mask(img, vx.Image(np.ones((2, 2, 2), "u1"), np.eye(4))).dtype
    dtype('float32')
    """
    import dask.array as da

    mask, mimg = load_mask(mask_img)
    img = as_image(imgs, "imgs")
    if img.ndim == 3:
        img = new_image(img.to_dask()[..., None], img.affine, like=img)
    if img.ndim != 4:
        raise InputError(f"{label(imgs, 'imgs')}: a 3-D or 4-D image is needed, got {img.ndim}-D")
    check_same_grid([mimg, img], "mask_img and imgs")
    data = img.to_dask()
    if smoothing_fwhm is not None:
        from ..processing.smooth import smooth_img

        data = smooth_img(img, smoothing_fwhm).to_dask()
        ensure_finite = True
    if dtype == "f":
        dtype = data.dtype if data.dtype.kind == "f" else np.dtype(np.float32)
    elif dtype is not None:
        try:
            dtype = np.dtype(dtype)
        except TypeError as e:
            raise InputError(f"dtype={dtype!r}: {e}") from None
    else:
        dtype = data.dtype
    data = data.rechunk({0: -1, 1: -1, 2: -1}).transpose(3, 0, 1, 2)
    n = int(mask.sum())
    return da.map_blocks(
        _take,
        data,
        mask,
        dtype,
        ensure_finite,
        dtype=dtype,
        drop_axis=[2, 3],
        chunks=(data.chunks[0], (n,)),
    )


def _put(block: np.ndarray, mask: np.ndarray, order: str) -> np.ndarray:
    out = np.zeros((*mask.shape, block.shape[0]), dtype=block.dtype, order=order)
    out[mask, :] = block.T
    return out


def unmask(X, mask_img, order: str = "F"):
    """Bring masked data back to an image (nilearn's ``unmask``), lazily.

    Parameters
    ----------
    X : numpy or dask array
        ``(t, n_voxels)`` (-> 4-D image) or ``(n_voxels,)`` (-> 3-D image).
    mask_img : image-like
        The mask used to extract ``X``.
    order : {"F", "C"}
        Memory order of the computed blocks.

    Returns
    -------
    voxray image (DataArray if mask_img is one).

    Examples
    --------
    >>> import numpy as np, voxray as vx
    >>> m = vx.Image(np.ones((2, 2, 2), "u1"), np.eye(4))
    >>> unmask(np.arange(8.0), m).shape
    (2, 2, 2)
    """
    import dask.array as da

    mask, mimg = load_mask(mask_img)
    if order not in ("F", "C"):
        raise InputError(f"order={order!r}: expected 'F' or 'C'")
    n = int(mask.sum())
    if not isinstance(X, da.Array):
        X = np.asarray(X)
    if X.ndim not in (1, 2) or X.shape[-1] != n:
        raise InputError(f"X: expected shape (samples, {n}) or ({n},), got {X.shape!r}")
    one = X.ndim == 1
    X = da.asarray(X[None] if one else X)
    X = X.rechunk({1: -1})
    data = da.map_blocks(
        _put,
        X,
        mask,
        order,
        dtype=X.dtype,
        drop_axis=[1],
        new_axis=[0, 1, 2],
        chunks=(*((s,) for s in mask.shape), X.chunks[0]),
    )
    if one:
        data = data[..., 0]
    return output(new_image(data, mimg.affine, like=mimg), mask_img)
