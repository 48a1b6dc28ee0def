"""MGH/MGZ benchmark cases (``benchmarks/mgh.py`` runs each in a fresh process; setup is
not timed). ``*_open_*`` cases time the open too: nibabel's ``load`` of a ``.mgz``
inflates the whole stream to reach the footer, voxray's reads it through the seek
index (built on first open, then cached)."""

from __future__ import annotations

import os

import numpy as np


def _out():
    return os.environ["VOXRAY_BENCH_OUT"]


def nib_full(path):
    import nibabel as nib

    img = nib.load(path)
    return lambda: np.asanyarray(img.dataobj)  # nibabel's fastest whole read of a .mgz


def vx_full(path):
    import voxray as vx

    img = vx.load(path)
    return lambda: np.asarray(img.dataobj)


def nib_last_frame(path):
    import nibabel as nib

    img = nib.load(path)
    return lambda: img.dataobj[..., -1]


def vx_last_frame(path):
    import voxray as vx

    img = vx.load(path)
    return lambda: img.dataobj[..., -1]


def nib_open_last_frame(path):
    import nibabel as nib

    return lambda: nib.load(path).dataobj[..., -1]


def vx_open_last_frame(path):
    import voxray as vx

    return lambda: vx.load(path).dataobj[..., -1]


def nib_convert(path):
    """``mri_convert x.mgz x.nii.gz`` with nibabel: load, then save (it converts)."""
    import nibabel as nib

    return lambda: nib.save(nib.load(path), _out())


def vx_convert(path):
    import voxray as vx

    return lambda: vx.save(vx.load(path), _out(), progress=False)
