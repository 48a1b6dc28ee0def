"""Masking and signal cleaning out of core, with nilearn's signatures and answers.

* ``compute_epi_mask`` (nilearn's algorithm, on a lazily computed mean volume);
* ``apply_mask(imgs, mask_img)`` -> a lazy ``(t, n_voxels)`` dask array;
  ``unmask(X, mask_img)`` -> a lazy image;
* ``clean(signals, ...)`` as ``nilearn.signal.clean`` defines it, in streamed passes;
* ``NiftiMasker`` with ``fit`` / ``transform`` / ``inverse_transform``.

>>> import voxray.masking as vm
>>> callable(vm.apply_mask) and callable(vm.clean)
True
"""

from __future__ import annotations

import importlib

_MODULES = {
    "mask": ("compute_epi_mask", "compute_background_mask", "apply_mask", "unmask"),
    "signal": ("clean",),
    "masker": ("NiftiMasker",),
}
_WHERE = {name: module for module, names in _MODULES.items() for name in names}

__all__ = sorted(_WHERE)


def __getattr__(name: str):
    module = _WHERE.get(name)
    if module is None:
        raise AttributeError(f"module 'voxray.masking' has no attribute {name!r}")
    value = getattr(importlib.import_module(f"{__name__}.{module}"), name)
    globals()[name] = value
    return value


def __dir__():
    return sorted(set(globals()) | set(__all__))
