"""Getting started with voxray, for nibabel users (see docs/getting-started.md).

Runs on the 4-D image that ships with nibabel; the test suite executes it.
"""

from __future__ import annotations

import nibabel as nib
import numpy as np

import voxray as vx
from voxray.testing import NIBABEL_DATA

path = str(NIBABEL_DATA / "example4d.nii.gz")

# 1. Load: only the header is read. The image is a nibabel image (voxray's subclass of
#    nibabel.Nifti1Image), so it has nibabel's API.
img = vx.load(path)
print(repr(img))  # <voxray.Nifti1Image shape=(128, 96, 24, 2) dtype=int16 lazy '...'>
assert type(img).__name__ == "Nifti1Image" and isinstance(img, nib.Nifti1Image)
print("shape", img.shape, "on-disk dtype", img.get_data_dtype())
print("affine\n", img.affine.round(3))
print("zooms", img.header.get_zooms(), "units", img.header.get_xyzt_units())
print("axis codes", vx.aff2axcodes(img.affine))

# 2. dataobj is a lazy proxy (nibabel.is_proxy is True); slicing it reads only what it needs.
assert nib.is_proxy(img.dataobj)
volume = img.dataobj[..., 1]  # one volume: one contiguous byte range
print("volume 1:", volume.shape, volume.dtype)
ts = img.dataobj[64, 48, 12, :]  # one voxel's time series
print("time series at the centre:", ts)

# 3. get_fdata and caching behave exactly as in nibabel.
data = img.get_fdata(caching="unchanged")  # read, not cached
assert not img.in_memory
data = img.get_fdata()  # read and cached
assert img.in_memory and img.get_fdata() is data
img.uncache()
assert not img.in_memory

# 4. The same values nibabel gives.
assert np.array_equal(np.asarray(img.dataobj), np.asanyarray(nib.load(path).dataobj))

# 5. Slicing an image is lazy, and every voxel keeps its world position
#    (also for reversed slices, which nibabel 5.4 gets wrong).
flipped = img.slicer[::-1, 10:-10, :, 0]
print("sliced:", flipped.shape, "in memory?", flipped.in_memory)
last = np.r_[img.shape[0] - 1, 10, 0, 1]
assert np.allclose(flipped.affine @ [0, 0, 0, 1], img.affine @ last)

# 6. Reorientation is lazy too: flips and transposes of the view, no data read.
canonical = vx.as_closest_canonical(img)
print("canonical axes:", vx.aff2axcodes(canonical.affine), "lazy:", not canonical.in_memory)

# 7. The whole image as a dask array: analyses run chunk by chunk, in parallel.
mean = img.to_dask().mean(axis=-1).compute()
print("mean volume:", mean.shape, float(mean.mean()))

# 8. Code written for nibabel images (nilearn too) takes img as it is: it is one.
print("a nibabel.Nifti1Image:", isinstance(img, nib.Nifti1Image), "lazy:", not img.in_memory)
# img.to_nibabel() is kept for compatibility: a plain nibabel image over the same lazy proxy.
nimg = img.to_nibabel()
print(type(nimg).__name__, "lazy:", nib.is_proxy(nimg.dataobj))
