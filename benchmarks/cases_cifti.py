"""CIFTI-2 benchmark cases (dense connectome rows). Each returns the operation to time;
setup (imports, opening the file) is not timed. ``benchmarks/cifti.py`` runs each case in
a fresh process through ``run.measure``."""

from __future__ import annotations

import numpy as np

BLOCK = 1000


def _row(img) -> int:
    return img.shape[0] // 2 + 1


def nib_row(path):
    import nibabel as nib

    img = nib.load(path)
    return lambda: img.dataobj[_row(img), :]


def nib_row_mmap(path):
    import nibabel as nib

    img = nib.load(path)
    # nibabel's whole array is a np.memmap of the file: index it, then copy the row out
    return lambda: np.array(np.asanyarray(img.dataobj)[_row(img), :])


def vx_row(path):
    import voxray as vx

    img = vx.load(path)
    return lambda: img.dataobj[_row(img), :]


def nib_block(path):
    import nibabel as nib

    img = nib.load(path)
    r0 = _row(img) - BLOCK // 2
    return lambda: np.asanyarray(img.dataobj[r0 : r0 + BLOCK, :])


def nib_block_mmap(path):
    import nibabel as nib

    img = nib.load(path)
    r0 = _row(img) - BLOCK // 2
    return lambda: np.array(np.asanyarray(img.dataobj)[r0 : r0 + BLOCK, :])


def vx_block(path):
    import voxray as vx

    img = vx.load(path)
    r0 = _row(img) - BLOCK // 2
    return lambda: np.asanyarray(img.dataobj[r0 : r0 + BLOCK, :])


def nib_column(path):
    import nibabel as nib

    img = nib.load(path)
    return lambda: img.dataobj[:, _row(img)]


def vx_column(path):
    import voxray as vx

    img = vx.load(path)
    return lambda: img.dataobj[:, _row(img)]
