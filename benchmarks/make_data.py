"""Realistic benchmark data from a real brain template (never committed).

A 4-D int16 BOLD-like series of >= 600 MB built from nilearn's MNI152 T1
template: downsampled to 2 mm, a tissue-dependent signal with slow drift,
Gaussian noise in the brain and Rician-like noise outside it (so it compresses
about 2:1 with gzip, like real fMRI). Written as ``.nii`` and as ``.nii.gz`` at
gzip level 6.
"""

from __future__ import annotations

import argparse
import gzip
import os
import shutil
from pathlib import Path

import nibabel as nib
import numpy as np

from voxray.testing import nilearn_data_dir

DATA = Path(os.environ.get("VOXRAY_BENCH_DATA", Path(__file__).parent / "data"))
T1 = "mni_icbm152_t1_tal_nlin_sym_09a_converted.nii.gz"


def template() -> nib.Nifti1Image:
    d = nilearn_data_dir()
    if d is None or not (d / T1).exists():
        raise SystemExit("the benchmarks need nilearn's MNI template: pip install -e '.[bench]'")
    return nib.load(d / T1)


def bold(nt: int = 300, path: Path | None = None) -> Path:
    """The 4-D series (98 x 116 x 94 x nt int16; nt=300 gives 641 MB)."""
    path = path or DATA / "bold.nii"
    if path.exists():
        return path
    path.parent.mkdir(parents=True, exist_ok=True)
    t1 = template()
    d = np.asarray(t1.dataobj, dtype=np.float32)
    s = [n // 2 * 2 for n in d.shape]
    d = d[: s[0], : s[1], : s[2]].reshape(s[0] // 2, 2, s[1] // 2, 2, s[2] // 2, 2).mean((1, 3, 5))
    affine = t1.affine.copy()
    affine[:3, :3] *= 2
    rng = np.random.default_rng(0)
    brain = d > 10
    base = d * 40
    hdr = nib.Nifti1Header()
    hdr.set_data_dtype(np.int16)
    hdr.set_data_shape((*d.shape, nt))
    hdr.set_qform(affine, code=4)
    hdr.set_sform(affine, code=4)
    hdr.set_xyzt_units("mm", "sec")
    hdr["pixdim"][4] = 2.0
    tmp = path.with_suffix(".tmp")
    with open(tmp, "wb") as f:
        hdr.write_to(f)
        f.write(b"\x00" * (int(hdr.get_data_offset()) - f.tell()))
        for t in range(nt):
            drift = 1 + 0.02 * np.sin(t / 30) + 0.0001 * t
            noise = rng.normal(0, 20, d.shape).astype(np.float32)
            vol = base * drift + np.where(brain, noise, np.abs(noise) * 0.4)
            f.write(np.clip(vol, -32768, 32767).astype(np.int16).tobytes(order="F"))
    os.replace(tmp, path)
    return path


def gzipped(src: Path, level: int = 6) -> Path:
    dst = src.with_name(src.name + ".gz")
    if dst.exists():
        return dst
    tmp = dst.with_suffix(".tmp")
    with open(src, "rb") as fi, gzip.open(tmp, "wb", compresslevel=level) as fo:
        shutil.copyfileobj(fi, fo, 16 * 2**20)
    os.replace(tmp, dst)
    return dst


def anatomical_4x(path: Path | None = None) -> Path:
    """The MNI T1 resampled to 4x its voxel count (313 x 370 x 300 int16, ~0.63 mm), gzipped."""
    path = path or DATA / "t1_4x.nii.gz"
    if path.exists():
        return path
    from scipy.ndimage import zoom

    t1 = template()
    factor = 4 ** (1 / 3)
    data = zoom(np.asarray(t1.dataobj, dtype=np.float32) * 40, factor, order=1)
    affine = t1.affine.copy()
    affine[:3, :3] /= factor
    img = nib.Nifti1Image(np.clip(data, 0, 32767).astype(np.int16), affine)
    img.header.set_xyzt_units("mm")
    img.header.set_sform(affine, code=4)
    img.header.set_qform(affine, code=4)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name("tmp-" + path.name)
    nib.save(img, tmp)
    os.replace(tmp, path)
    return path


if __name__ == "__main__":
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--nt", type=int, default=300)
    args = ap.parse_args()
    p = bold(args.nt)
    print(p, p.stat().st_size)
    g = gzipped(p)
    print(g, g.stat().st_size)
