"""Images as xarray DataArrays: select by millimetres, reduce over time, stay lazy.

Runs on the 4-D image nibabel ships (and, when nilearn is installed, its MNI152
template); the test suite executes it.
"""

from __future__ import annotations

import numpy as np

import voxray as vx
from voxray.testing import NIBABEL_DATA, nilearn_data_dir

# Open lazily: dims i, j, k, t; world coordinates x, y, z (mm, RAS+) from the affine.
da = vx.open_dataarray(NIBABEL_DATA / "example4d.nii.gz")
print(da.sizes, "axes", da.vx.axcodes, "zooms", da.vx.zooms)
print("t (s):", da.t.values)

# This image is oblique, so x, y, z are coupled over (i, j, k): select a world box by
# label slices (the voxel bounding box of that box comes back, still lazy).
region = da.sel(x=slice(-20, 20), y=slice(0, 40), z=slice(10, 30))
print("region around (0, 20, 20) mm:", dict(region.sizes))

# A time series at a world coordinate (nearest voxel; a point outside the image raises
# KeyError instead of wrapping around).
ts = da.sel(x=0.0, y=20.0, z=20.0, method="nearest")
print(
    "time series at (0, 20, 20) mm:",
    ts.values,
    "at voxel",
    np.round(da.vx.world_to_voxel([0.0, 20.0, 20.0])).astype(int),
)

# The mean image: a lazy reduction over time, computed chunk by chunk.
mean = da.mean("t")
print("mean image:", mean.dims, float(mean.mean()))

# Lazy reorientation keeps every voxel's world coordinates.
ras = vx.as_closest_canonical(da)
print(
    "canonical:",
    ras.vx.axcodes,
    "same value at (0, 20, 20) mm:",
    float(ras.sel(x=0.0, y=20.0, z=20.0, method="nearest").isel(t=0)) == float(ts.isel(t=0)),
)

mni_dir = nilearn_data_dir()
if mni_dir is not None:
    # An axis-aligned image in MNI space: one 1-D coordinate per world axis, so label
    # slices and exact labels work like any index. The posterior cingulate, MNI (0, -52, 26):
    t1 = vx.open_dataarray(mni_dir / "mni_icbm152_t1_tal_nlin_sym_09a_converted.nii.gz")
    print("MNI template:", dict(t1.sizes), t1.attrs.get("sform_code"))
    print("T1 at MNI (0, -52, 26):", int(t1.sel(x=0, y=-52, z=26)))
    slab = t1.sel(z=slice(20, 30)).mean("k")
    print("axial slab z in [20, 30] mm:", dict(slab.sizes))
