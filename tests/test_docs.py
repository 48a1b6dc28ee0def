"""The code in README.md and docs/*.md runs as written, and the docs' claims hold.

Each page's ``python`` blocks run in order, in one namespace, in a directory holding the
files they name: ``bold.nii.gz`` (an oblique 4-D series on nibabel's example4d grid),
``sub-01_task-rest_bold.nii.gz`` and ``anat.nii.gz`` (a 1 mm T1w on FSL's MNI grid).
Lines that name a remote URL are left out (they need a bucket; tests/test_remote.py runs
the same calls against local servers); ``sh`` blocks are not run.
"""

from __future__ import annotations

import gzip
import re
import runpy
import shutil
from pathlib import Path

import nibabel as nib
import numpy as np
import pytest
import xarray as xr

import voxray as vx
from voxray.testing import NIBABEL_DATA, write_nifti

ROOT = Path(__file__).resolve().parents[1]
PAGES = ["README.md", "docs/getting-started.md", "docs/writing.md", "docs/xarray.md"]
PAGES += ["docs/zarr.md", "docs/formats.md", "docs/plotting.md", "docs/processing.md"]
#: nibabel's own test files the formats page opens by name.
NIBABEL_FILES = (
    "test.mgz",
    "row_major.dconn.nii",
    "minc2_4d.mnc",
    "phantom_EPI_asc_CLEAR_2_1.PAR",
    "phantom_EPI_asc_CLEAR_2_1.REC",
    "example4d+orig.HEAD",
    "example4d+orig.BRIK.gz",
    "tinypet.v",
)
REMOTE = re.compile(r"\b(s3|gs|az|https?)://")
MNI_1MM = np.array([[-1.0, 0, 0, 90], [0, 1, 0, -126], [0, 0, 1, -72], [0, 0, 0, 1]])


def python_blocks(page: str) -> list[str]:
    text = (ROOT / page).read_text()
    blocks = re.findall(r"^```python\n(.*?)^```", text, flags=re.M | re.S)
    return ["\n".join(ln for ln in b.splitlines() if not REMOTE.search(ln)) for b in blocks]


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    d = tmp_path_factory.mktemp("docs")
    src = nib.load(NIBABEL_DATA / "example4d.nii.gz")
    vol = np.asanyarray(src.dataobj[..., :1]).astype(np.float64)
    t = np.arange(8)
    bold = np.clip(np.rint(vol * (1 + 0.02 * np.sin(t / 2)) + t), 0, 32767).astype(np.int16)
    write_nifti(d / "bold.nii.gz", bold, src.header)

    rng = np.random.default_rng(0)
    h = nib.Nifti1Header()
    h.set_data_dtype(np.int16)
    h.set_xyzt_units("mm", "sec")
    h.set_data_shape((64, 64, 36, 12))
    h.set_zooms((2.0, 2.0, 2.0, 2.0))
    h.set_sform(np.diag([2.0, 2, 2, 1]) + np.c_[np.zeros((4, 3)), [-64, -64, -36, 0]], 4)
    write_nifti(
        d / "sub-01_task-rest_bold.nii.gz",
        rng.integers(0, 999, (64, 64, 36, 12)).astype(np.int16),
        h,
    )

    i, j, k = np.ogrid[:182, :218, :182]
    r2 = ((i - 91) / 70.0) ** 2 + ((j - 109) / 90.0) ** 2 + ((k - 91) / 75.0) ** 2
    t1 = np.where(r2 < 1, 600 + 300 * np.cos(3 * r2), 0).astype(np.int16)
    a = nib.Nifti1Header()
    a.set_data_dtype(np.int16)
    a.set_xyzt_units("mm")
    a.set_sform(MNI_1MM, code=4)
    a.set_qform(MNI_1MM, code=4)
    write_nifti(d / "anat.nii.gz", t1, a)
    for name in NIBABEL_FILES:
        shutil.copy(NIBABEL_DATA / name, d / name)
    return d


@pytest.mark.parametrize("page", PAGES)
def test_page_code_runs(page, files, tmp_path, monkeypatch):
    if "nilearn" in (ROOT / page).read_text():
        pytest.importorskip("nilearn")
    for f in files.iterdir():
        shutil.copy(f, tmp_path / f.name)
    monkeypatch.chdir(tmp_path)
    blocks = python_blocks(page)
    assert blocks, page
    ns: dict = {}
    for n, code in enumerate(blocks):
        try:
            exec(compile(code, f"{page}[python block {n}]", "exec"), ns)
        except Exception as e:
            raise AssertionError(f"{page}, python block {n} fails:\n{code}\n-> {e!r}") from e
    if page == "docs/zarr.md":  # what the page's comments say
        assert ns["lvl1"].shape == (91, 109, 91)
        assert type(ns["lvl1"]).__name__ == "Nifti1Image"
    if page == "README.md":
        assert type(ns["img"]).__name__ == "Nifti1Image"
    if page == "docs/plotting.md":  # the bytes the page quotes
        assert ns["read"] == 2142 == ns["func"].dataobj[..., 5].size * 2  # int16: volume 5
        assert ns["data"].nbytes == 171360 and ns["data"].size * 2 == 42840


def test_plotting_pictures_are_the_pages_and_small():
    """docs/images holds exactly the pictures docs/plotting.md shows, each one following
    the python block that draws it (docs/make_images.py saves them from those blocks)."""
    text = (ROOT / "docs/plotting.md").read_text()
    shown = re.findall(r"!\[[^\]]*\]\((images/[\w.-]+\.png)\)", text)
    make_images = runpy.run_path(str(ROOT / "docs/make_images.py"))
    drawn = [png for _, png in make_images["blocks"](text) if png]
    assert shown and shown == drawn
    on_disk = sorted(f"images/{p.name}" for p in (ROOT / "docs/images").glob("*.png"))
    assert on_disk == sorted(shown)
    sizes = [(ROOT / "docs" / p).stat().st_size for p in shown]
    assert max(sizes) < 150_000 and sum(sizes) < 1_000_000, sizes


def test_docs_do_not_call_images_wrappers():
    for page in [*PAGES, "docs/cloud.md"]:
        text = (ROOT / page).read_text().lower()
        assert "wrapper" not in text and "wrapped" not in text, page


# -- docs/xarray.md: a single-file NIfTI opens whatever its name ------------------------------


@pytest.mark.parametrize("source", ["example4d.nii.gz", "uncompressed"])
def test_a_nifti_named_scan_dat_opens(source, tmp_path):
    p = tmp_path / "scan.dat"
    if source == "uncompressed":
        p.write_bytes(gzip.decompress((NIBABEL_DATA / "example4d.nii.gz").read_bytes()))
    else:
        shutil.copy(NIBABEL_DATA / source, p)
    ref = np.asanyarray(nib.load(NIBABEL_DATA / "example4d.nii.gz").dataobj)

    img = vx.load(p)
    assert type(img).__name__ == "Nifti1Image" and isinstance(img, nib.Nifti1Image)
    np.testing.assert_array_equal(np.asarray(img.dataobj), ref)

    da = xr.open_dataarray(p, engine="voxray")
    assert da.dims == ("i", "j", "k", "t")
    np.testing.assert_array_equal(da.values, ref)
    np.testing.assert_array_equal(xr.open_dataarray(p).values, ref)  # the engine is guessed
    np.testing.assert_array_equal(vx.open_dataarray(p).values, ref)


def test_a_pair_header_without_its_suffix_is_refused_clearly(corpus, tmp_path):
    p = tmp_path / "scan.dat"
    shutil.copy(corpus["spm2-be.img"].path.replace(".img", ".hdr"), p)
    with pytest.raises(vx.VoxrayError, match=r"scan\.dat"):
        vx.load(p)


# -- README.md / docs/xarray.md: the engine through xarray is not dask-backed by default ------


def test_engine_defaults_to_lazy_indexing_and_open_dataarray_to_dask():
    import dask.array

    p = NIBABEL_DATA / "example4d.nii.gz"
    plain = xr.open_dataarray(p, engine="voxray")
    assert plain.chunks is None and not isinstance(plain.variable._data, dask.array.Array)
    chunked = xr.open_dataarray(p, engine="voxray", chunks={})
    ours = vx.open_dataarray(p)
    assert isinstance(ours.data, dask.array.Array) and ours.chunks == chunked.chunks
    assert ours.equals(chunked)
    # vx.open_dataarray keeps world coordinates index-computed (xarray's chunking would
    # make them dask arrays)
    assert not isinstance(ours.x.variable._data, dask.array.Array)
