"""The default pyramid: halved down to an overview of at most 64 voxels a side.

OME-Zarr viewers open the smallest level first, so a store should have one that is small
whatever its chunks: a 1 mm MNI-sized anatomical (182 x 218 x 182, one 14 MiB chunk) gets
3 levels, not the single level "until the smallest fits in one chunk" gave.
"""

from __future__ import annotations

import nibabel as nib
import numpy as np
import pytest
import zarr

import voxray as vx
from voxray.formats.zarr.writer import OVERVIEW_SIDE, default_levels
from voxray.testing import write_nifti

#: FSL's MNI152 1 mm grid (LAS): voxel (90, 126, 72) is the origin.
MNI_1MM = np.array(
    [[-1.0, 0, 0, 90], [0, 1.0, 0, -126], [0, 0, 1.0, -72], [0, 0, 0, 1]], dtype=np.float64
)


@pytest.fixture(scope="module")
def mni_anat(tmp_path_factory):
    """A 1 mm MNI-sized int16 anatomical: a smooth head-like blob plus a little noise."""
    d = tmp_path_factory.mktemp("mni")
    i, j, k = np.ogrid[:182, :218, :182]
    r2 = ((i - 91) / 70.0) ** 2 + ((j - 109) / 90.0) ** 2 + ((k - 91) / 75.0) ** 2
    rng = np.random.default_rng(0)
    arr = np.where(r2 < 1, 600 + 300 * np.cos(3 * r2), 0) + rng.integers(0, 20, (182, 218, 182))
    h = nib.Nifti1Header()
    h.set_data_dtype(np.int16)
    h.set_xyzt_units("mm")
    h.set_sform(MNI_1MM, code=4)
    h.set_qform(MNI_1MM, code=4)
    return write_nifti(d / "anat.nii", arr.astype(np.int16), h), arr.astype(np.int16)


def _shapes(store):
    g = zarr.open_group(store, mode="r")
    return [g[d["path"]].shape for d in g.attrs["ome"]["multiscales"][0]["datasets"]]


def test_mni_1mm_gets_three_levels_and_level_1_loads(mni_anat, tmp_path):
    src, arr = mni_anat
    store = vx.to_zarr(src, str(tmp_path / "anat.nii.zarr"))
    # Zarr order (z, y, x); the largest side 218 -> 109 -> 55 (<= 64)
    assert _shapes(store) == [(182, 218, 182), (91, 109, 91), (46, 55, 46)]
    lvl1 = vx.load(store, level=1)
    assert lvl1.shape == (91, 109, 91)
    assert type(lvl1).__name__ == "Nifti1Image" and isinstance(lvl1, nib.Nifti1Image)
    want = arr.astype(np.float64)
    for a in range(3):
        want = 0.5 * (
            want.take(range(0, want.shape[a], 2), a) + want.take(range(1, want.shape[a], 2), a)
        )
    np.testing.assert_array_equal(np.asarray(lvl1.dataobj), np.rint(want).astype(np.int16))
    np.testing.assert_allclose(lvl1.header.get_zooms(), (2.0, 2.0, 2.0))
    assert vx.load(store, level=-1).shape == (46, 55, 46)


def test_explicit_levels_still_win(mni_anat, tmp_path):
    src, _ = mni_anat
    assert len(_shapes(vx.to_zarr(src, str(tmp_path / "one.nii.zarr"), levels=1))) == 1


@pytest.mark.parametrize(
    ("zshape", "spatial", "chunk", "n"),
    [
        ((64, 64, 64), (0, 1, 2), (64, 64, 64), 1),  # small enough already
        ((65, 64, 64), (0, 1, 2), (65, 64, 64), 2),
        ((97, 115, 97), (0, 1, 2), (97, 115, 97), 2),  # 2 mm MNI
        ((300, 97, 115, 97), (1, 2, 3), (1, 97, 115, 97), 2),  # 4-D: t is never halved
        ((512, 512), (0, 1), (512, 512), 4),  # 2-D: 512, 256, 128, 64
        ((80, 100, 90), (0, 1, 2), (32, 32, 32), 3),  # small chunks: until one chunk holds it
        ((700, 600, 500), (0, 1, 2), (128, 128, 128), 5),  # 700 -> 350 -> 175 -> 88 -> 44
    ],
)
def test_default_levels(zshape, spatial, chunk, n):
    assert default_levels(zshape, spatial, chunk) == n


def test_every_image_larger_than_the_overview_gets_a_pyramid():
    for side in range(OVERVIEW_SIDE + 1, 600, 7):
        zshape = (side, 40, 30)
        n = default_levels(zshape, (0, 1, 2), zshape)
        assert n >= 2
        last = side
        for _ in range(n - 1):
            last = (last + 1) // 2
        assert last <= OVERVIEW_SIDE < 2 * last  # the first level that small, no further
