"""Plotting benchmark cases: one volume of a 4-D image drawn as three orthogonal
slices and saved to PNG. Each function does its imports (setup, untimed) and returns
the operation to time; ``plot.py`` runs each in a fresh process.

Every timed operation starts from the path (the load is timed) and ends with the PNG
written, so all cases pay for the same steps: open, read, draw, encode. The volume is
``$VOXRAY_BENCH_T`` (default: the middle one), the PNG goes to ``$VOXRAY_BENCH_OUT``.
matplotlib runs on the Agg backend everywhere (``MPLBACKEND=Agg``, set by plot.py and
again here).
"""

from __future__ import annotations

import os

import numpy as np


def _t(shape) -> int:
    t = os.environ.get("VOXRAY_BENCH_T")
    return int(t) if t is not None else shape[-1] // 2


def _out() -> str:
    return os.environ["VOXRAY_BENCH_OUT"]


def _pyplot():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def _show_slices(plt, slices, title):
    """nibabel's "Nibabel images" tutorial's ``show_slices``, then the PNG."""
    fig, axes = plt.subplots(1, len(slices))
    for i, slice_ in enumerate(slices):
        axes[i].imshow(slice_.T, cmap="gray", origin="lower")
    fig.suptitle(title)
    fig.savefig(_out())
    plt.close(fig)


# -- nibabel -------------------------------------------------------------------------


def nib_walkthrough(path):
    """The walkthrough's way: ``get_fdata()`` of the whole image, three centre slices."""
    import nibabel as nib

    plt = _pyplot()

    def op():
        img = nib.load(path)
        data = img.get_fdata()
        i, j, k = (n // 2 for n in data.shape[:3])
        t = _t(data.shape)
        slices = [data[i, :, :, t], data[:, j, :, t], data[:, :, k, t]]
        _show_slices(plt, slices, f"Center slices, volume {t}")

    return op


def nib_proxy_slices(path):
    """nibabel's lazy way: three proxy slices, each read on its own (indexed_gzip for .gz)."""
    import nibabel as nib

    plt = _pyplot()

    def op():
        img = nib.load(path)
        i, j, k = (n // 2 for n in img.shape[:3])
        t = _t(img.shape)
        d = img.dataobj
        slices = [np.asanyarray(s) for s in (d[i, :, :, t], d[:, j, :, t], d[:, :, k, t])]
        _show_slices(plt, slices, f"Center slices, volume {t}")

    return op


def nib_proxy_volume(path):
    """nibabel's lazy way, one read: the volume ``dataobj[..., t]``, then three slices."""
    import nibabel as nib

    plt = _pyplot()

    def op():
        img = nib.load(path)
        i, j, k = (n // 2 for n in img.shape[:3])
        t = _t(img.shape)
        vol = np.asanyarray(img.dataobj[..., t])
        slices = [vol[i, :, :], vol[:, j, :], vol[:, :, k]]
        _show_slices(plt, slices, f"Center slices, volume {t}")

    return op


def nilearn_plot_anat(path):
    """nilearn: ``plot_anat(index_img(img, t))`` (index_img reads the whole series)."""
    _pyplot()
    import nibabel as nib
    from nilearn import image, plotting

    def op():
        img = nib.load(path)
        t = _t(img.shape)
        display = plotting.plot_anat(image.index_img(img, t), title=f"volume {t}")
        display.savefig(_out())
        display.close()

    return op


# -- voxray --------------------------------------------------------------------------


def _stats(img) -> dict:
    """Bytes voxray read from storage (and inflated, for .nii.gz) for ``img``."""
    from voxray.sources import open_source

    src = open_source(img.dataobj.reader.source)
    inner = src.stats.snapshot()
    raw = getattr(src, "raw", None)
    out = {"bytes_read": (raw.stats if raw is not None else src.stats).bytes_read}
    if raw is not None:
        out["bytes_inflated"] = inner["bytes_inflated"]
    return out


def _voxray():
    import importlib

    _pyplot()  # imports are setup, as pyplot's are for the peers
    for module in ("matplotlib.figure", "matplotlib.backends.backend_agg", "voxray.plotting"):
        importlib.import_module(module)
    import voxray as vx

    return vx


def vx_plot_ortho(path):
    """``vx.plot_ortho(vx.load(path), t=t)`` saved to PNG."""
    vx = _voxray()

    def op():
        img = vx.load(path)
        fig = vx.plot_ortho(img, t=_t(img.shape))
        fig.savefig(_out())
        return _stats(img)

    return op


def vx_plot_mosaic(path):
    """``vx.plot_mosaic(vx.load(path), t=t)`` (12 axial slices) saved to PNG."""
    vx = _voxray()

    def op():
        img = vx.load(path)
        fig = vx.plot_mosaic(img, t=_t(img.shape))
        fig.savefig(_out())
        return _stats(img)

    return op
