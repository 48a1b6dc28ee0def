"""Processing benchmark cases (issue 14): resample, smooth, mask + clean, seed map.

Each function does its imports and untimed setup and returns the operation to time;
``processing.py`` runs each in a fresh process. Every timed operation starts from the
path (the load is timed) and ends with the result written (an image to ``.nii``) or,
for the (t, n_voxels) matrix, held as a numpy array in the process (``*_npy`` cases
write it to a ``.npy`` instead, out of core). The output path is ``$VOXRAY_BENCH_OUT``;
the precomputed brain mask (nilearn's ``compute_epi_mask`` of the series, computed once
by processing.py) is ``$VOXRAY_BENCH_MASK``. With ``$VOXRAY_BENCH_KEEP`` set, a matrix
held in memory is also saved (after the timing) to ``$VOXRAY_BENCH_OUT`` for checking.

The peers run in their natural form: nibabel's image from ``nib.load(path)`` handed to
nilearn / nibabel.processing, which read it whole (nibabel's fastest read of a .nii);
voxray's from ``vx.load(path)``, lazy, computed on dask's threaded scheduler (one thread
per core) while it writes.
"""

from __future__ import annotations

import os

import numpy as np

#: The 3 mm isotropic grid: a 3x3 target affine, nilearn's bounding-box convention.
TARGET_3MM = np.diag([3.0, 3.0, 3.0])
FWHM = 6.0
#: The seed: a 6 mm sphere about the posterior cingulate (nilearn's seed-to-voxel
#: tutorial's PCC coordinate, MNI mm).
SEED_MM = (0.0, -52.0, 18.0)
SEED_RADIUS = 6.0
CLEAN = {"detrend": True, "standardize": "zscore_sample"}


def _out() -> str:
    return os.environ["VOXRAY_BENCH_OUT"]


def _mask_path() -> str:
    return os.environ["VOXRAY_BENCH_MASK"]


def _keep(x) -> dict:
    """Untimed: the matrix, saved for the check when asked (processing.py does it once)."""
    if os.environ.get("VOXRAY_BENCH_KEEP"):
        return {"_save": x}
    return {}


def seed_columns(mask: np.ndarray, affine: np.ndarray) -> np.ndarray:
    """Columns of the masked matrix (C order over i, j, k, as ``data[mask]``) whose voxel
    centres lie within ``SEED_RADIUS`` mm of ``SEED_MM``."""
    ijk = np.argwhere(mask)  # C order: the masked matrix's columns
    xyz = ijk @ affine[:3, :3].T + affine[:3, 3]
    return np.flatnonzero(np.linalg.norm(xyz - np.asarray(SEED_MM), axis=1) <= SEED_RADIUS)


def standardized_seed(X, cols: np.ndarray) -> np.ndarray:
    """The seed's time course: the mean of the cleaned columns ``cols``, z-scored (ddof=1)."""
    seed = np.asarray(X[:, cols].mean(axis=1, dtype=np.float64))
    return (seed - seed.mean()) / seed.std(ddof=1)


def seed_map_numpy(X: np.ndarray, cols: np.ndarray) -> np.ndarray:
    """Pearson correlation of every column of X (cleaned: each column z-scored with
    ddof=1, so r = seed . x / (t - 1)) with the seed; nilearn's seed-to-voxel tutorial's
    ``dot(X.T, seed) / n``, with the sample convention. A constant column gives 0."""
    return (standardized_seed(X, cols) @ X) / (X.shape[0] - 1)


def _nib_img(path):
    import nibabel as nib

    return nib.load(path)


# -- nilearn -------------------------------------------------------------------------


def _nl_resample(path, interpolation, clip=True):
    from nilearn.image import resample_img

    def op():
        img = _nib_img(path)
        out = resample_img(
            img,
            target_affine=TARGET_3MM,
            interpolation=interpolation,
            force_resample=True,
            copy_header=True,
            clip=clip,
        )
        out.to_filename(_out())

    return op


def nl_resample_cubic(path):
    """``nilearn.image.resample_img(img, diag(3, 3, 3), "continuous")`` to .nii."""
    return _nl_resample(path, "continuous")


def nl_resample_linear(path):
    """``nilearn.image.resample_img(img, diag(3, 3, 3), "linear")`` to .nii."""
    return _nl_resample(path, "linear")


def nl_resample_linear_noclip(path):
    """``resample_img(img, diag(3, 3, 3), "linear", clip=False)`` to .nii."""
    return _nl_resample(path, "linear", clip=False)


def nl_smooth(path):
    """``nilearn.image.smooth_img(img, 6)`` to .nii."""
    from nilearn.image import smooth_img

    def op():
        smooth_img(_nib_img(path), FWHM).to_filename(_out())

    return op


def nl_mask_clean(path):
    """``nilearn.signal.clean(nilearn.masking.apply_mask(img, mask), detrend, zscore)``."""
    from nilearn.masking import apply_mask
    from nilearn.signal import clean

    def op():
        img = _nib_img(path)
        mask = _nib_img(_mask_path())
        X = clean(apply_mask(img, mask), **CLEAN)
        return _keep(X)

    return op


def nl_masker(path):
    """``NiftiMasker(mask_img, detrend, zscore_sample).fit_transform(img)``."""
    from nilearn.maskers import NiftiMasker

    def op():
        masker = NiftiMasker(mask_img=_nib_img(_mask_path()), **CLEAN)
        X = masker.fit_transform(_nib_img(path))
        return _keep(X)

    return op


def nl_seed_map(path):
    """apply_mask + clean (nilearn), the seed's mean and the correlation (numpy), then
    ``nilearn.masking.unmask(r, mask)`` to .nii."""
    from nilearn.masking import apply_mask, unmask
    from nilearn.signal import clean

    def op():
        img = _nib_img(path)
        mask = _nib_img(_mask_path())
        X = clean(apply_mask(img, mask), **CLEAN)
        cols = seed_columns(np.asarray(mask.dataobj) != 0, mask.affine)
        r = seed_map_numpy(X, cols)
        unmask(r.astype(np.float32), mask).to_filename(_out())

    return op


def nl_seed_masker(path):
    """The same with nilearn's NiftiMasker (fit_transform, then inverse_transform)."""
    from nilearn.maskers import NiftiMasker

    def op():
        mask = _nib_img(_mask_path())
        masker = NiftiMasker(mask_img=mask, **CLEAN)
        X = masker.fit_transform(_nib_img(path))
        cols = seed_columns(np.asarray(mask.dataobj) != 0, mask.affine)
        r = seed_map_numpy(X, cols)
        masker.inverse_transform(r.astype(np.float32)).to_filename(_out())

    return op


# -- nibabel.processing --------------------------------------------------------------


def nib_smooth(path):
    """``nibabel.processing.smooth_image(img, 6)`` to .nii (int16 out, as scipy gives)."""
    from nibabel.processing import smooth_image

    def op():
        smooth_image(_nib_img(path), FWHM).to_filename(_out())

    return op


# -- voxray --------------------------------------------------------------------------


def _stats(img) -> dict:
    """Bytes voxray read from storage for ``img`` (every pass counted)."""
    from voxray.sources import open_source

    return {"bytes_read": open_source(img.dataobj.reader.source).stats.bytes_read}


def _vx():
    import voxray as vx
    import voxray.masking
    import voxray.processing

    return vx


def _vx_resample(path, interpolation, clip=True):
    vx = _vx()
    from voxray.processing import resample_img

    def op():
        img = vx.load(path)
        out = resample_img(img, target_affine=TARGET_3MM, interpolation=interpolation, clip=clip)
        out.to_filename(_out())
        return _stats(img)

    return op


def vx_resample_cubic(path):
    """``voxray.processing.resample_img(img, diag(3, 3, 3), "continuous")`` to .nii."""
    return _vx_resample(path, "continuous")


def vx_resample_linear(path):
    """``voxray.processing.resample_img(img, diag(3, 3, 3), "linear")`` to .nii."""
    return _vx_resample(path, "linear")


def vx_resample_linear_noclip(path):
    """``voxray.processing.resample_img(img, diag(3, 3, 3), "linear", clip=False)``."""
    return _vx_resample(path, "linear", clip=False)


def vx_smooth(path):
    """``voxray.processing.smooth_img(img, 6)`` to .nii (nilearn's answer)."""
    vx = _vx()
    from voxray.processing import smooth_img

    def op():
        img = vx.load(path)
        smooth_img(img, FWHM).to_filename(_out())
        return _stats(img)

    return op


def vx_smooth_image(path):
    """``voxray.processing.smooth_image(img, 6)`` to .nii (nibabel's answer)."""
    vx = _vx()
    from voxray.processing import smooth_image

    def op():
        img = vx.load(path)
        smooth_image(img, FWHM).to_filename(_out())
        return _stats(img)

    return op


def _vx_clean_options() -> dict:
    """``$VOXRAY_BENCH_RECHUNK`` ("zarr" on the larger-than-memory image): clean's
    rechunk from t-chunks to column blocks through a temporary Zarr store (voxray's
    out-of-core option; the default in-memory dask rechunk can hold the whole matrix)."""
    how = os.environ.get("VOXRAY_BENCH_RECHUNK")
    return {"voxray__rechunk": how} if how else {}


def _vx_matrix(vx, path):
    from voxray.masking import apply_mask, clean

    img = vx.load(path)
    X = clean(apply_mask(img, vx.load(_mask_path())), **CLEAN, **_vx_clean_options())
    return img, X


def vx_mask_clean(path):
    """``clean(apply_mask(img, mask), detrend, zscore)`` computed to a numpy array."""
    vx = _vx()

    def op():
        img, X = _vx_matrix(vx, path)
        x = np.asarray(X.compute())
        return {**_stats(img), **_keep(x)}

    return op


def vx_mask_clean_npy(path):
    """The same matrix written to a .npy (out of core: each block ``pwrite``-n)."""
    vx = _vx()

    def op():
        img, X = _vx_matrix(vx, path)
        store_npy(X, _out())
        return _stats(img)

    return op


def vx_masker(path):
    """``voxray.masking.NiftiMasker(mask_img, detrend, zscore).fit_transform(img)``."""
    vx = _vx()
    from voxray.masking import NiftiMasker

    def op():
        img = vx.load(path)
        masker = NiftiMasker(mask_img=vx.load(_mask_path()), **CLEAN)
        x = np.asarray(masker.fit_transform(img).compute())  # (the default rechunk)
        return {**_stats(img), **_keep(x)}

    return op


def vx_seed_map(path):
    """Lazy apply_mask + clean; the seed's time course computed first (one small pass
    over the seed's columns), then the correlation map, unmasked and written to .nii."""
    vx = _vx()
    from voxray.masking import unmask

    def op():
        img, X = _vx_matrix(vx, path)
        mask = vx.load(_mask_path())
        cols = seed_columns(np.asarray(mask.dataobj) != 0, mask.affine)
        seed = standardized_seed(X[:, cols].compute(), np.arange(cols.size))
        r = (seed @ X) / (X.shape[0] - 1)  # lazy: the second pass, streamed
        unmask(r.astype(np.float32), mask).to_filename(_out())
        return _stats(img)

    return op


class NpyTarget:
    """A ``.npy`` file as a ``dask.array.store`` target: each block is written where it
    goes with ``os.pwrite`` (nothing mapped, so nothing of it counts in the RSS)."""

    def __init__(self, path: str, shape, dtype, fortran: bool):
        from numpy.lib import format as npf

        self.shape, self.dtype, self.fortran = tuple(shape), np.dtype(dtype), fortran
        header = {"descr": npf.dtype_to_descr(self.dtype), "fortran_order": fortran}
        header["shape"] = self.shape
        with open(path, "wb") as f:
            npf.write_array_header_1_0(f, header)
            self.offset = f.tell()
            f.truncate(self.offset + int(np.prod(self.shape)) * self.dtype.itemsize)
        self.fd = os.open(path, os.O_WRONLY)

    def __setitem__(self, key, value):
        value = np.asarray(value, dtype=self.dtype)
        (r0, r1, _), (c0, c1, _) = (k.indices(n) for k, n in zip(key, self.shape, strict=True))
        T, V = self.shape
        size = self.dtype.itemsize
        if self.fortran:  # column c, rows r0:r1 contiguous
            if r0 == 0 and r1 == T:
                os.pwrite(self.fd, value.tobytes(order="F"), self.offset + c0 * T * size)
            else:
                for c in range(c0, c1):
                    os.pwrite(
                        self.fd, value[:, c - c0].tobytes(), self.offset + (c * T + r0) * size
                    )
        elif c0 == 0 and c1 == V:  # C order: whole rows contiguous
            os.pwrite(self.fd, value.tobytes(order="C"), self.offset + r0 * V * size)
        else:
            for r in range(r0, r1):
                os.pwrite(self.fd, value[r - r0].tobytes(), self.offset + (r * V + c0) * size)

    def close(self):
        os.close(self.fd)


def store_npy(X, path: str) -> None:
    """Write the lazy (t, n) dask array ``X`` to ``path`` (.npy), block by block, in the
    order whose blocks are contiguous."""
    import dask.array as da

    rows, cols = X.chunks
    # blocks spanning all of t: Fortran; spanning all columns: C; else the fewer writes
    fortran = len(rows) == 1 or (len(cols) > 1 and max(cols) < max(rows))
    target = NpyTarget(path, X.shape, X.dtype, fortran=fortran)
    try:
        da.store(X, target, lock=True)
    finally:
        target.close()
