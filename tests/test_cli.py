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


# -- info on Zarr stores, and on many paths ------------------------------------------------


@pytest.fixture
def zarr_stores(corpus, tmp_path):
    """A NIfTI-Zarr store with shards and a pyramid, and the same store without its header
    array (a plain OME-Zarr image)."""
    import shutil

    import voxray as vx

    src = corpus["scaled-int16.nii.gz"].path
    nz = vx.to_zarr(src, str(tmp_path / "x.nii.zarr"), chunks=8, shards=True, levels=2)
    plain = str(tmp_path / "plain.ome.zarr")
    shutil.copytree(nz, plain)
    shutil.rmtree(f"{plain}/nifti")
    # ... and without the flags that say it is NIfTI-Zarr (with them, a lost header array
    # is a damaged store, refused)
    with open(f"{plain}/zarr.json") as f:
        root = json.load(f)
    root["attributes"].get("voxray", {}).pop("nifti_zarr", None)
    for ms in root["attributes"]["ome"]["multiscales"]:
        ms.get("metadata", {}).pop("nifti_zarr", None)
    with open(f"{plain}/zarr.json", "w") as f:
        json.dump(root, f)
    return src, nz, plain


def test_info_describes_a_nifti_zarr_store(zarr_stores, capsys):
    src, store, _ = zarr_stores
    assert main(["info", store]) == 0
    captured = capsys.readouterr()
    assert "Traceback" not in captured.err
    out = captured.out
    for text in (
        "NIfTI-Zarr (OME-Zarr 0.5)",
        "blosc (cname=zstd, clevel=1, shuffle=shuffle)",
        "33 x 41 x 25 x 6",
        "slope 2.5, inter -10",
        "2, Zarr axes t, z, y, x",
        "level 0",
        "6 x 25 x 41 x 33; chunks 1 x 8 x 8 x 8",
        "level 1",
        "6 x 13 x 21 x 17",
        "shards",
    ):
        assert text in out, text

    assert main(["info", "--json", store]) == 0
    d = json.loads(capsys.readouterr().out)
    ref = nib.load(src)
    assert d["format"] == "NIfTI-Zarr" and d["nibabel_class"] == "Nifti1Image"
    assert d["compression"].startswith("blosc (cname=zstd")
    assert d["shape"] == list(ref.shape)
    np.testing.assert_allclose(d["affine"], ref.affine, atol=1e-6)
    assert d["scaling"] == {"slope": 2.5, "inter": -10.0, "applied": True}
    assert d["vox_offset"] is None
    assert d["chunks"]["shape"] == [8, 8, 8, 1]  # the stored chunks, in NIfTI order
    assert d["shards"] is not None and d["shards"]["shape"][3] >= 1
    z = d["zarr"]
    assert z["axes"] == ["t", "z", "y", "x"] and z["ome_version"] == "0.5"
    assert [lv["shape"] for lv in z["levels"]] == [[6, 25, 41, 33], [6, 13, 21, 17]]
    assert z["levels"][0]["chunks"] == {"shape": [1, 8, 8, 8], "count": 6 * 4 * 6 * 5}
    assert z["levels"][1]["scale"][1:] == pytest.approx(
        [2 * z for z in reversed(ref.header.get_zooms()[:3])]
    )
    assert d["files"]["store"]["path"] == store and d["files"]["store"]["bytes"] > 0


def test_info_describes_a_plain_ome_zarr_store(zarr_stores, capsys):
    _, _, plain = zarr_stores
    assert main(["info", "--json", plain]) == 0
    d = json.loads(capsys.readouterr().out)
    assert d["format"] == "OME-Zarr" and d["zarr"]["nifti_header"] is False
    assert main(["info", plain]) == 0
    assert "OME-Zarr 0.5, blosc" in capsys.readouterr().out


def test_info_takes_many_paths(corpus, zarr_stores, capsys):
    paths = [corpus["oblique.nii"].path, zarr_stores[1], corpus["spm2-be.img"].path]
    assert main(["info", *paths]) == 0
    out = capsys.readouterr().out
    assert out.count("\npath ") + out.startswith("path ") == 3
    assert "NIfTI-1" in out and "NIfTI-Zarr" in out and "SPM2 Analyze" in out

    assert main(["info", "--json", *paths]) == 0
    ds = json.loads(capsys.readouterr().out)
    assert isinstance(ds, list) and [d["format"] for d in ds] == [
        "NIfTI-1",
        "NIfTI-Zarr",
        "SPM2 Analyze",
    ]
    # one path: one object, as before
    assert main(["info", "--json", paths[0]]) == 0
    assert isinstance(json.loads(capsys.readouterr().out), dict)


def test_info_reports_a_bad_path_among_many_and_describes_the_others(corpus, tmp_path, capsys):
    good = corpus["oblique.nii"].path
    missing = str(tmp_path / "missing.nii")
    junk = tmp_path / "junk.nii"
    junk.write_bytes(b"not an image" * 100)
    assert main(["info", good, missing, str(junk), corpus["nifti2.nii"].path]) == 2
    captured = capsys.readouterr()
    assert "Traceback" not in captured.err
    err_lines = captured.err.strip().splitlines()
    assert len(err_lines) == 2
    assert "voxray info: error:" in err_lines[0] and "missing.nii" in err_lines[0]
    assert "voxray info: error:" in err_lines[1] and "junk.nii" in err_lines[1]
    assert "NIfTI-1" in captured.out and "NIfTI-2" in captured.out

    assert main(["info", "--json", good, missing]) == 2
    captured = capsys.readouterr()
    ds = json.loads(captured.out)
    assert ds[0]["format"] == "NIfTI-1"
    assert ds[1]["path"] == missing and "missing.nii" in ds[1]["error"]
    assert "missing.nii" in captured.err


# -- convert ---------------------------------------------------------------------------------


def _help(capsys, *argv) -> str:
    with pytest.raises(SystemExit):
        main([*argv, "--help"])
    return capsys.readouterr().out


def test_convert_help_names_zarr_and_what_overwrite_is_for(capsys):
    text = " ".join(_help(capsys, "convert").split())
    assert ".nii.zarr" in text
    assert "--overwrite replace an existing Zarr store (NIfTI files are always replaced" in text


def test_convert_onto_an_existing_store_names_the_flag(corpus, tmp_path, capsys):
    src = corpus["oblique.nii"].path
    store = str(tmp_path / "x.nii.zarr")
    assert main(["convert", "-q", src, store]) == 0
    capsys.readouterr()
    assert main(["convert", "-q", src, store]) == 2
    err = capsys.readouterr().err
    assert "pass --overwrite to replace it" in err and "overwrite=True" not in err
    assert main(["convert", "-q", src, store, "--overwrite"]) == 0
    capsys.readouterr()
    # a file:// URL goes past the CLI's own check: the library's message is rewritten
    assert main(["convert", "-q", src, f"file://{store}"]) == 2
    err = capsys.readouterr().err
    assert "--overwrite" in err and "overwrite=True" not in err, err


def test_convert_replaces_a_nifti_destination_without_overwrite(corpus, tmp_path, capsys):
    dst = tmp_path / "x.nii.gz"
    dst.write_bytes(b"old")
    assert main(["convert", "-q", corpus["oblique.nii"].path, str(dst)]) == 0
    ref = nib.load(corpus["oblique.nii"].path)
    np.testing.assert_array_equal(np.asanyarray(nib.load(dst).dataobj), np.asanyarray(ref.dataobj))


def test_convert_refuses_unknown_destinations_before_reading(tmp_path, capsys):
    # SRC does not exist: the DST error comes first, naming every destination suffix
    for dst in ("out.xyz", "out.nii.bz2", "out.trk", "out.mnc", "out.PAR"):
        assert main(["convert", str(tmp_path / "missing.nii"), str(tmp_path / dst)]) == 2
        err = capsys.readouterr().err
        assert dst in err and ".nii.zarr" in err and ".nii.gz" in err and "Traceback" not in err


def test_convert_refuses_nifti_options_for_a_zarr_store(corpus, tmp_path, capsys):
    src = corpus["oblique.nii"].path
    for flag in (["--dtype", "float32"], ["--compresslevel", "6"]):
        assert main(["convert", src, str(tmp_path / "x.nii.zarr"), *flag]) == 2
        err = capsys.readouterr().err
        assert f"voxray convert: error: {flag[0]} is for file destinations" in err
    assert not (tmp_path / "x.nii.zarr").exists()


@pytest.mark.slow
def test_info_and_convert_with_a_zarr_store_on_s3(corpus, s3, capsys):
    src = corpus["scaled-int16.nii.gz"].path
    url = f"s3://{s3.bucket}/x.nii.zarr"
    opts = [f"-o{k}={v}" for k, v in s3.options.items()]
    assert main(["convert", "-q", src, url, *opts]) == 0
    capsys.readouterr()
    assert main(["info", "--json", url, *opts]) == 0
    d = json.loads(capsys.readouterr().out)
    assert d["path"] == url and d["format"] == "NIfTI-Zarr"
    assert d["files"] == {"store": {"path": url, "bytes": None}}  # a bucket is not listed
    assert d["shape"] == list(nib.load(src).shape)
    assert main(["convert", "-q", src, url, *opts]) == 2
    err = capsys.readouterr().err
    assert "pass --overwrite to replace it" in err and "overwrite=True" not in err
