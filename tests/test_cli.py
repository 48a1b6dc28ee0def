"""``voxray info``: content, JSON, errors, and a fast start (no dask, xarray or zarr)."""

from __future__ import annotations

import json
import subprocess
import sys

import nibabel as nib
import numpy as np
import pytest

from voxray.cli import main


def test_info_text(corpus, capsys):
    p = corpus["scaled-int16.nii.gz"].path
    assert main(["info", p]) == 0
    out = capsys.readouterr().out
    for text in (
        "NIfTI-1, gzip",
        "33 x 41 x 25 x 6",
        "int16 on disk",
        "float64 in memory",
        "slope 2.5, inter -10",
        "scanner (1)",
        "aligned (2)",
        "mm",
        "chunks",
        "gzip index",
        "affine",
    ):
        assert text in out, text


def test_info_json_matches_nibabel(corpus, capsys):
    p = corpus["oblique.nii"].path
    assert main(["info", "--json", p]) == 0
    d = json.loads(capsys.readouterr().out)
    ref = nib.load(p)
    assert d["shape"] == list(ref.shape)
    assert d["nibabel_class"] == "Nifti1Image"
    np.testing.assert_allclose(d["affine"], ref.affine, atol=1e-6)
    assert d["axcodes"] == list(nib.aff2axcodes(ref.affine))
    assert d["zooms"] == pytest.approx([float(z) for z in ref.header.get_zooms()])
    assert d["sform"] == {"code": 2, "label": "aligned"}
    assert d["qform"] == {"code": 1, "label": "scanner"}
    assert d["vox_offset"] == ref.dataobj.offset
    assert d["units"] == {"space": "mm", "time": "sec"}


def test_info_on_pairs_and_analyze(corpus, capsys):
    assert main(["info", corpus["spm2-be.img"].path]) == 0
    out = capsys.readouterr().out
    assert "SPM2 Analyze" in out and "big endian" in out and "slope 2" in out


def test_info_reports_errors_cleanly(tmp_path, capsys):
    assert main(["info", str(tmp_path / "missing.nii")]) == 2
    err = capsys.readouterr().err
    assert "missing.nii" in err and "Traceback" not in err


def test_info_does_not_import_dask_xarray_or_zarr(corpus):
    p = corpus["scaled-int16.nii.gz"].path
    code = (
        "import sys\n"
        "from voxray.cli import main\n"
        f"main(['info', {p!r}])\n"
        "import voxray as vx\n"
        f"img = vx.load({p!r}); img.dataobj[..., 0]; vx.as_closest_canonical(img)\n"
        "heavy = [m for m in ('dask', 'xarray', 'zarr', 'distributed', 'fsspec')\n"
        "         if m in sys.modules]\n"
        "print('HEAVY', heavy)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    assert "HEAVY []" in out.stdout


def test_console_script(corpus):
    out = subprocess.run(
        [sys.executable, "-m", "voxray.cli", "info", "--json", corpus["nifti2.nii"].path],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert out.returncode == 0, out.stderr
    assert json.loads(out.stdout)["format"] == "NIfTI-2"
