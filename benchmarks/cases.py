"""Benchmark cases. Each returns the operation to time (setup is not timed);
``run.py`` runs every case in a fresh process and records wall time, user and system
CPU time, page faults and peak RSS around it.

The baselines are each peer's fastest call for the same result (``PEER_CALLS`` names
them; run.py prints the call beside each comparison): ``np.asanyarray(img.dataobj)`` for
nibabel on a ``.nii.gz`` (indexed_gzip installed), ``np.array`` only on a ``.nii``, where
``np.asanyarray`` would return a memmap that has read nothing yet."""

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
    # Not get_fdata().mean(-1): that first makes a float64 copy of the whole series
    # (4x the int16 data); numpy's mean of the stored dtype gives the same float64 means.
    return lambda: np.asanyarray(img.dataobj).mean(-1)


def vx_mean(path):
    import voxray as vx

    img = vx.load(path)
    return lambda: img.to_dask().mean(axis=-1).compute()


def vx_index(path):
    from voxray.cli import main

    return lambda: main(["index", path])


def zlibng_inflate(path):
    """One zlib-ng inflate stream over the whole file (the single-core limit)."""
    from zlib_ng import zlib_ng

    def op():
        d = zlib_ng.decompressobj(31)
        n = 0
        with open(path, "rb") as f:
            while block := f.read(1 << 20):
                n += len(d.decompress(block))
        return {"bytes": n}

    return op


def vx_xarray_mean(path):
    import voxray as vx

    da = vx.open_dataarray(path)
    return lambda: da.mean("t").compute()


#: The call each case times, as printed in run.py's table and saved in its JSON.
PEER_CALLS = {
    "nib_full": "nibabel np.asanyarray(img.dataobj) (.nii.gz) / np.array(img.dataobj) (.nii)",
    "vx_full": "np.asarray(img.dataobj)",
    "nib_volume": "nibabel img.dataobj[..., t]",
    "vx_volume": "img.dataobj[..., t]",
    "nib_last_volume": "nibabel img.dataobj[..., -1]",
    "vx_last_volume": "img.dataobj[..., -1]",
    "nib_mean": "nibabel np.asanyarray(img.dataobj).mean(-1)",
    "vx_mean": "img.to_dask().mean(axis=-1).compute()",
    "vx_index": "voxray index PATH",
    "zlibng_inflate": "zlib_ng decompressobj, one stream, 1 MiB reads",
    "vx_xarray_mean": "vx.open_dataarray(path).mean('t').compute()",
    "nib_save_gz": "nibabel nib.save(img, out.nii.gz)",
    "vx_save_gz": "vx.save(img, out.nii.gz)",
    "niizarr_convert": "nifti-zarr nii2zarr(path, out, chunk=64)",
    "vx_zarr_convert": "vx.to_zarr(path, out, chunks=64)",
    "vx_zarr_default": "vx.to_zarr(path, out)",
    "nib_remote_last_volume": "fsspec fs.get(object) + nibabel dataobj[..., -1]",
    "vx_remote_last_volume": "vx.load(url).dataobj[..., -1] (byte ranges)",
    "range_get_64k": "fsspec fs.cat_file(path, 0, 65536)",
}


def peer_call(case: str, path) -> str:
    """The call ``case`` times on ``path`` (nib_full's depends on the file)."""
    if case == "nib_full":
        gz = str(path).endswith(".gz")
        return "nibabel np.asanyarray(img.dataobj)" if gz else "nibabel np.array(img.dataobj)"
    return PEER_CALLS[case]


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
