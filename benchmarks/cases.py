"""Benchmark cases. Each returns the operation to time (setup is not timed);
``run.py`` runs every case in a fresh process and records wall time and peak RSS."""

from __future__ import annotations

import numpy as np


def nib_full(path):
    import nibabel as nib

    img = nib.load(path)
    if str(path).endswith(".gz"):
        return lambda: np.asanyarray(img.dataobj)  # nibabel's fastest call for a .nii.gz
    return lambda: np.array(img.dataobj)  # np.array: nibabel's asarray of a .nii is a memmap


def vx_full(path):
    import voxray as vx

    img = vx.load(path)
    return lambda: np.asarray(img.dataobj)


def nib_volume(path):
    import nibabel as nib

    img = nib.load(path)
    return lambda: img.dataobj[..., img.shape[-1] // 2]


def vx_volume(path):
    import voxray as vx

    img = vx.load(path)
    return lambda: img.dataobj[..., img.shape[-1] // 2]


def nib_last_volume(path):
    import nibabel as nib

    img = nib.load(path)
    return lambda: img.dataobj[..., -1]


def vx_last_volume(path):
    import voxray as vx

    img = vx.load(path)
    return lambda: img.dataobj[..., -1]


def nib_mean(path):
    import nibabel as nib

    img = nib.load(path)
    return lambda: img.get_fdata().mean(-1)


def vx_mean(path):
    import voxray as vx

    img = vx.load(path)
    return lambda: img.to_dask().mean(axis=-1).compute()


def vx_index(path):
    from voxray.cli import main

    return lambda: main(["index", path])


def vx_xarray_mean(path):
    import voxray as vx

    da = vx.open_dataarray(path)
    return lambda: da.mean("t").compute()


def _out():
    import os

    return os.environ["VOXRAY_BENCH_OUT"]


def nib_save_gz(path):
    import nibabel as nib

    img = nib.load(path)
    return lambda: nib.save(img, _out())


def vx_save_gz(path):
    import voxray as vx

    img = vx.load(path)
    return lambda: vx.save(img, _out(), progress=False)


def _fresh_out():
    import shutil

    shutil.rmtree(_out(), ignore_errors=True)
    return _out()


def niizarr_convert(path):
    from niizarr import nii2zarr

    out = _fresh_out()
    return lambda: nii2zarr(path, out, chunk=64)


def vx_zarr_convert(path):
    import voxray as vx

    out = _fresh_out()
    return lambda: vx.to_zarr(path, out, chunks=64, progress=False)


def vx_zarr_default(path):
    import voxray as vx

    out = _fresh_out()
    return lambda: vx.to_zarr(path, out, progress=False)


# -- object storage (local servers; run.py starts them) ----------------------------------


def _remote_options():
    import json
    import os

    return json.loads(os.environ.get("VOXRAY_BENCH_OPTIONS", "{}"))


def nib_remote_last_volume(url):
    """What nibabel users do today: download the object, then read it."""
    import os
    import tempfile

    import fsspec
    import nibabel as nib

    fs, path = fsspec.core.url_to_fs(url, **_remote_options())
    local = os.path.join(tempfile.mkdtemp(), url.rsplit("/", 1)[-1])

    def op():
        fs.get(path, local)
        np.asarray(nib.load(local).dataobj[..., -1])
        nbytes = os.path.getsize(local)
        os.unlink(local)
        return {"bytes": nbytes}

    return op


def vx_remote_last_volume(url):
    """Open by URL and read the last volume (the index from the cache), counting bytes."""
    import fsspec

    import voxray as vx
    from voxray.sources import open_source

    # Imports are setup, as in nibabel's case (which builds its filesystem there too).
    fsspec.get_filesystem_class(url.split("://")[0])

    def op():
        img = vx.load(url, storage_options=_remote_options())
        np.asarray(img.dataobj[..., -1])
        src = open_source(img.dataobj.reader.source)
        return {"bytes": getattr(src, "raw", src).stats.bytes_read}

    return op


def range_get_64k(url):
    """One 64 KiB range request to the object (the server's cost per request)."""
    import fsspec

    fs, path = fsspec.core.url_to_fs(url, **_remote_options())
    fs.info(path)

    def op():
        n = len(fs.cat_file(path, start=0, end=65536))
        return {"bytes": n}

    return op
