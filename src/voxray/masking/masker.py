"""``NiftiMasker`` with nilearn 0.14.1's parameters, defaults and answers, lazily.

``transform`` returns a lazy dask ``(t, n_voxels)`` array (``.compute()`` gives
nilearn's numpy answer); ``inverse_transform`` a lazy image. The steps run in
nilearn's order: resample the images to the mask's grid (when it differs), smooth, mask
(:func:`voxray.masking.apply_mask`), clean (:func:`voxray.masking.clean`).

>>> import numpy as np, voxray as vx
>>> img = vx.Image(np.random.default_rng(0).random((4, 4, 4, 6)), np.eye(4))
>>> NiftiMasker(mask_img=vx.Image(np.ones((4, 4, 4), "u1"), np.eye(4))).fit_transform(img).shape
(6, 64)
"""

from __future__ import annotations

import inspect
import warnings

import numpy as np

from ..errors import InputError
from ..processing.inputs import as_image, label, new_image
from .mask import apply_mask, compute_background_mask, compute_epi_mask, load_mask, unmask
from .signal import clean

__all__ = ["NiftiMasker"]

_STRATEGIES = {"background": compute_background_mask, "epi": compute_epi_mask}


class NiftiMasker:
    """Apply a mask to 4-D images and clean the signals (nilearn's ``NiftiMasker``).

    Parameters
    ----------
    mask_img : image-like, optional
        The mask; computed at ``fit`` by ``mask_strategy`` when None.
    runs, smoothing_fwhm, standardize, standardize_confounds, detrend, low_pass,
    high_pass, t_r, target_affine, target_shape, mask_strategy, mask_args, dtype,
    clean_args :
        As nilearn (``mask_strategy``: "background" or "epi"; the template strategies
        are not supported).
    high_variance_confounds : bool
        Must be False (True raises InputError: not supported).
    memory, memory_level, verbose, reports, cmap :
        Accepted for compatibility, ignored (no reports are made).

    Attributes
    ----------
    mask_img_ : voxray image
        The fitted (resampled) mask.
    n_elements_ : int
        The number of voxels in the mask.

    Examples
    --------
    >>> import numpy as np, voxray as vx
    >>> data = np.zeros((6, 6, 6, 4)); data[2:4, 2:4, 2:4] = 1.0
    >>> m = NiftiMasker().fit(vx.Image(data, np.eye(4)))
    >>> m.n_elements_
    8
    """

    def __init__(
        self,
        mask_img=None,
        runs=None,
        smoothing_fwhm=None,
        standardize=False,
        standardize_confounds=True,
        detrend=False,
        high_variance_confounds=False,
        low_pass=None,
        high_pass=None,
        t_r=None,
        target_affine=None,
        target_shape=None,
        mask_strategy="background",
        mask_args=None,
        dtype=None,
        memory=None,
        memory_level=1,
        verbose=0,
        reports=True,
        cmap="gray",
        clean_args=None,
    ):
        self.mask_img = mask_img
        self.runs = runs
        self.smoothing_fwhm = smoothing_fwhm
        self.standardize = standardize
        self.standardize_confounds = standardize_confounds
        self.detrend = detrend
        self.high_variance_confounds = high_variance_confounds
        self.low_pass = low_pass
        self.high_pass = high_pass
        self.t_r = t_r
        self.target_affine = target_affine
        self.target_shape = target_shape
        self.mask_strategy = mask_strategy
        self.mask_args = mask_args
        self.dtype = dtype
        self.memory = memory
        self.memory_level = memory_level
        self.verbose = verbose
        self.reports = reports
        self.cmap = cmap
        self.clean_args = clean_args

    def fit(self, imgs=None, y=None) -> NiftiMasker:
        """Compute (or load) the mask, then resample it to ``target_affine`` /
        ``target_shape`` (nearest), as nilearn does.

        Parameters
        ----------
        imgs : image-like, optional
            Needed when no ``mask_img`` was given.
        y : ignored

        Returns
        -------
        self

        Examples
        --------
        >>> import numpy as np, voxray as vx
        >>> m = NiftiMasker(vx.Image(np.ones((2, 2, 2), "u1"), np.eye(4))).fit()
        >>> m.mask_img_.shape
        (2, 2, 2)
        """
        if self.high_variance_confounds:
            raise InputError("high_variance_confounds=True: not supported by voxray's NiftiMasker")
        if self.mask_img is None:
            if imgs is None:
                raise InputError(
                    "imgs=None: NiftiMasker.fit() needs images when no mask_img is given"
                )
            func = _STRATEGIES.get(self.mask_strategy)
            if func is None:
                raise InputError(
                    f"mask_strategy={self.mask_strategy!r}: expected one of {sorted(_STRATEGIES)}"
                )
            sig = inspect.signature(func).parameters
            args = {k: v for k, v in (self.mask_args or {}).items() if k in sig}
            skipped = [k for k in (self.mask_args or {}) if k not in sig]
            if skipped:
                warnings.warn(
                    f"The following arguments are not supported by the masking strategy "
                    f"{self.mask_strategy!r}: {skipped}",
                    UserWarning,
                    stacklevel=2,
                )
            mask = func(imgs, **args)
        else:
            mask = self.mask_img
            if imgs is not None:
                warnings.warn(
                    "[NiftiMasker.fit] Generation of a mask has been requested (imgs != None) "
                    "while a mask was given at masker creation. Given mask will be used.",
                    RuntimeWarning,
                    stacklevel=2,
                )
        data, img = load_mask(mask, "mask_img")
        img = new_image(data.astype(np.uint8), img.affine)
        if self.target_affine is not None or self.target_shape is not None:
            from ..processing.resample import resample_img

            img = resample_img(
                img,
                target_affine=self.target_affine,
                target_shape=self.target_shape,
                interpolation="nearest",
                copy=False,
            )
        data, img = load_mask(img, "mask_img")
        self.mask_img_ = new_image(data.astype(np.uint8), img.affine)
        self._mask = data
        self.n_elements_ = int(data.sum())
        self.clean_args_ = {} if self.clean_args is None else dict(self.clean_args)
        return self

    def __sklearn_is_fitted__(self) -> bool:
        return hasattr(self, "mask_img_")

    def _check_fitted(self) -> None:
        if not hasattr(self, "mask_img_"):
            raise InputError("NiftiMasker: this instance is not fitted yet; call fit first")

    def transform(self, imgs, confounds=None, sample_mask=None):
        """Extract and clean the signals, lazily.

        Parameters
        ----------
        imgs : image-like
            3-D or 4-D image.
        confounds, sample_mask : optional
            As ``nilearn.signal.clean``.

        Returns
        -------
        dask.array.Array
            ``(t, n_voxels)`` (``(n_voxels,)`` for a 3-D image); ``.compute()`` gives
            nilearn's answer.

        Examples
        --------
        >>> import numpy as np, voxray as vx
        >>> m = NiftiMasker(vx.Image(np.ones((2, 2, 2), "u1"), np.eye(4))).fit()
        >>> m.transform(vx.Image(np.ones((2, 2, 2, 3)), np.eye(4))).shape
        (3, 8)
        """
        self._check_fitted()
        img = as_image(imgs, "imgs")
        three_d = img.ndim == 3
        if img.ndim not in (3, 4):
            raise InputError(f"{label(imgs, 'imgs')}: a 3-D or 4-D image is needed")
        if three_d:
            img = new_image(img.to_dask()[..., None], img.affine, like=img)
        if self.dtype is not None:
            img = new_image(
                img.to_dask().astype(_nilearn_dtype(img, self.dtype)), img.affine, like=img
            )
        m = self.mask_img_
        if img.shape[:3] != m.shape or not np.allclose(img.affine, m.affine):
            from ..processing.resample import resample_img

            warnings.warn(
                "imgs are being resampled to the mask_img resolution.", UserWarning, stacklevel=2
            )
            img = resample_img(
                img, target_affine=m.affine, target_shape=m.shape, interpolation="continuous"
            )
        if self.smoothing_fwhm is not None:
            from ..processing.smooth import smooth_img

            img = smooth_img(img, self.smoothing_fwhm)
        signals = apply_mask(img, m)
        out = clean(
            signals,
            detrend=self.detrend,
            standardize=self.standardize,
            standardize_confounds=self.standardize_confounds,
            t_r=self.t_r,
            low_pass=self.low_pass,
            high_pass=self.high_pass,
            confounds=confounds,
            sample_mask=sample_mask,
            runs=self.runs,
            **self.clean_args_,
        )
        return out[0] if three_d and out.shape[0] == 1 else out

    def fit_transform(self, imgs, y=None, confounds=None, sample_mask=None):
        """``fit(imgs)`` then ``transform(imgs, confounds, sample_mask)``.

        Examples
        --------
        >>> import numpy as np, voxray as vx
        >>> data = np.zeros((6, 6, 6, 4)); data[2:4, 2:4, 2:4] = 1.0
        >>> NiftiMasker().fit_transform(vx.Image(data, np.eye(4))).shape
        (4, 8)
        """
        return self.fit(imgs).transform(imgs, confounds=confounds, sample_mask=sample_mask)

    def inverse_transform(self, X):
        """Unmask ``X`` (numpy or dask, 1-D or 2-D) to a lazy image.

        Examples
        --------
        >>> import numpy as np, voxray as vx
        >>> m = NiftiMasker(vx.Image(np.ones((2, 2, 2), "u1"), np.eye(4))).fit()
        >>> m.inverse_transform(np.zeros((3, 8))).shape
        (2, 2, 2, 3)
        """
        self._check_fitted()
        return unmask(X, self.mask_img_)


def _nilearn_dtype(img, dtype):
    """nilearn's ``get_target_dtype`` ("auto": int32 for ints, else float32)."""
    src = img.to_dask().dtype
    if dtype == "auto":
        return np.int32 if src.kind == "i" else np.float32
    try:
        return np.dtype(dtype)
    except TypeError as e:
        raise InputError(f"dtype={dtype!r}: {e}") from None
