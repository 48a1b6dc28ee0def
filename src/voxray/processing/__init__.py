"""Out-of-core image processing with nibabel's and nilearn's signatures and answers.

Every function takes voxray or nibabel images, paths or DataArrays and returns a lazy
voxray image (a DataArray for DataArray input) whose dask graph reads each input chunk
about once and holds a few chunks at a time, never the whole image:

* resampling (``resample.py``): nibabel's ``resample_from_to``, ``resample_to_output``,
  ``conform``; nilearn's ``resample_img``, ``resample_to_img``;
* smoothing (``smooth.py``): nibabel's ``smooth_image``, nilearn's ``smooth_img``;
* image operations (``image.py``): nilearn's ``mean_img``, ``math_img``, ``concat_imgs``,
  ``index_img``, ``iter_img``, ``new_img_like``; nibabel's ``four_to_three``,
  ``squeeze_image``; ``threshold.py``: nilearn's ``threshold_img``.

>>> import voxray.processing as vp
>>> callable(vp.resample_to_img) and callable(vp.smooth_img)
True
"""

from __future__ import annotations

import importlib

_MODULES = {
    "resample": (
        "resample_from_to",
        "resample_to_output",
        "conform",
        "resample_img",
        "resample_to_img",
    ),
    "smooth": ("smooth_image", "smooth_img", "fwhm2sigma", "sigma2fwhm"),
    "image": (
        "mean_img",
        "math_img",
        "concat_imgs",
        "index_img",
        "iter_img",
        "new_img_like",
        "four_to_three",
        "squeeze_image",
    ),
    "threshold": ("threshold_img",),
}
_WHERE = {name: module for module, names in _MODULES.items() for name in names}

__all__ = sorted(_WHERE)


def __getattr__(name: str):
    module = _WHERE.get(name)
    if module is None:
        raise AttributeError(f"module 'voxray.processing' has no attribute {name!r}")
    value = getattr(importlib.import_module(f"{__name__}.{module}"), name)
    globals()[name] = value
    return value


def __dir__():
    return sorted(set(globals()) | set(__all__))
