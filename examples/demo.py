"""voxray's main job on a sample image that ships with nibabel.

Describes the image (what ``voxray info`` prints), computes its mean volume over time
lazily (a dask graph over chunked reads, computed in parallel), then draws three
orthogonal slices through it (``vx.plot_ortho``, which reads only those planes) into
``demo-output/<name>.png`` and says where.

    python examples/demo.py [IMAGE]
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

import numpy as np

import voxray as vx
from voxray.cli import main as voxray_cli
from voxray.testing import NIBABEL_DATA


def run(path: str) -> np.ndarray:
    print(f"$ voxray info {path}")
    voxray_cli(["info", path])
    print()

    img = vx.load(path)  # reads the header only
    print(f"{img!r}")
    print(
        f"  is a nibabel.{img.nibabel_class.__name__}: {isinstance(img, img.nibabel_class)} "
        f"(so nibabel and nilearn take it as it is)"
    )
    data = img.to_dask()  # a dask array over chunked reads; nothing read yet
    mean = data.mean(axis=-1) if img.ndim == 4 else data
    print(f"lazy mean volume: {mean!r}")
    t0 = time.perf_counter()
    vol = mean.compute()
    elapsed = time.perf_counter() - t0

    ijk = np.unravel_index(np.argmax(vol), vol.shape)
    xyz = img.affine @ np.r_[ijk, 1]
    print(f"computed in {elapsed * 1000:.0f} ms: shape {vol.shape}, dtype {vol.dtype}")
    print(
        f"  min {vol.min():.2f}  max {vol.max():.2f}  mean {vol.mean():.2f}  std {vol.std():.2f}"
    )
    print(
        f"  brightest voxel {tuple(int(i) for i in ijk)} at "
        f"({xyz[0]:.1f}, {xyz[1]:.1f}, {xyz[2]:.1f}) mm, "
        f"axes {''.join(vx.aff2axcodes(img.affine))}"
    )
    return vol


def show(path: str, out_dir: str | Path = "demo-output") -> Path | None:
    """Draw ``vx.plot_ortho`` of the image into ``out_dir/<name>.png``; None when there
    is no picture (without matplotlib, the message says how to install it)."""
    img = vx.load(path)
    t = img.shape[3] // 2 if img.ndim == 4 else 0
    name = Path(path).name.split(".")[0]
    try:
        fig = vx.plot_ortho(img, t=t, title=f"{name}, volume {t}" if img.ndim == 4 else name)
    except (vx.MissingDependencyError, vx.InputError) as e:  # no matplotlib; a 5-D image
        print(f"no picture: {e}")
        return None
    out = Path(out_dir) / f"{name}.png"
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out, dpi=100)
    print(f"orthogonal slices through the centre of the field of view: wrote {out.resolve()}")
    return out


if __name__ == "__main__":
    path = sys.argv[1] if len(sys.argv) > 1 else str(NIBABEL_DATA / "example4d.nii.gz")
    run(path)
    print()
    show(path)
