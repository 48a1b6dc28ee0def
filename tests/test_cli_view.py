"""``voxray view PATH OUT``: pictures of every format, their modes, orientation, remote
reads, the Zarr pyramid level chosen by the output's pixels (counted in bytes served),
atomic writes and one-line errors.

Pictures are read back with ``matplotlib.image.imread``: their size in pixels is checked
against ``--width`` x ``--dpi`` and the line the command prints, and a picture counts as
drawn when a good part of it is not the black background and its pixels vary.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import warnings
from pathlib import Path

import nibabel as nib
import numpy as np
import pytest

import voxray as vx
from voxray.cli import main
from voxray.errors import VoxrayError
from voxray.testing import NIBABEL_DATA
from voxray.testing.httpserver import RangeServer

mpimg = pytest.importorskip("matplotlib.image")

LINE = re.compile(r"^wrote (?P<out>.+) \((?P<w>\d+)x(?P<h>\d+) px\): (?P<what>.+)$")


def view(capsys, *argv) -> tuple[int, str, str]:
    """Run ``voxray view ARGV``; (exit status, stdout, stderr)."""
    try:
        rc = main(["view", *map(str, argv)])
    except SystemExit as e:  # argparse
        rc = e.code
    out, err = capsys.readouterr()
    return rc, out, err


def wrote(out: str) -> re.Match:
    lines = out.strip().splitlines()
    assert len(lines) == 1, out
    m = LINE.match(lines[0])
    assert m, lines[0]
    return m


def read_png(path, width: int, m: re.Match) -> np.ndarray:
    """The picture at ``path``: ``width`` pixels wide, the size the line says."""
    rgba = mpimg.imread(path)
    assert rgba.ndim == 3 and rgba.shape[2] in (3, 4)
    assert rgba.shape[1] == width == int(m["w"])
    assert rgba.shape[0] == int(m["h"])
    return rgba


def assert_drawn(rgba: np.ndarray, background=(0.0, 0.0, 0.0)) -> None:
    """Not blank: more than the letters and labels differ from the background, and the
    picture's values vary."""
    rgb = rgba[..., :3]
    differs = np.abs(rgb - np.asarray(background)).max(axis=-1) > 0.02
    assert differs.mean() > 0.05, differs.mean()
    assert len(np.unique(rgb.reshape(-1, 3), axis=0)) > 8
    assert rgb.std() > 0.02


def no_leftovers(directory) -> None:
    """Only finished files: no temporary or lock file of a write is left behind."""
    names = os.listdir(directory)
    assert not [n for n in names if n.startswith(".")], names


# -- every format ---------------------------------------------------------------------

#: A representative file of every format voxray opens in nibabel's shipped data.
FORMATS = [
    "anatomical.nii",  # NIfTI-1, LAS
    "example4d.nii.gz",  # gzip, 4-D, oblique-ish
    "example_nifti2.nii.gz",  # NIfTI-2
    "test.mgz",  # MGH (gzip)
    "minc1_1_scale.mnc",  # MINC1
    "minc2_1_scale.mnc",  # MINC2
    "small.mnc",  # MINC2, 3-D
    "phantom_EPI_asc_CLEAR_2_1.PAR",  # PAR/REC
    "example4d+orig.HEAD",  # AFNI, BRIK.gz
    "scaled+tlrc.HEAD",  # AFNI, scaled
    "tinypet.v",  # ECAT 7
]


@pytest.fixture(scope="module")
def anat_zarr(tmp_path_factory):
    """anatomical.nii as a NIfTI-Zarr store with a pyramid of two levels."""
    d = tmp_path_factory.mktemp("zarr")
    return vx.to_zarr(NIBABEL_DATA / "anatomical.nii", str(d / "anat.nii.zarr"), levels=2)


@pytest.mark.parametrize("name", [*FORMATS, "anat.nii.zarr"])
def test_every_format_gives_a_picture_of_the_size_asked(name, anat_zarr, tmp_path, capsys):
    src = anat_zarr if name.endswith(".zarr") else NIBABEL_DATA / name
    out = tmp_path / "out.png"
    rc, stdout, err = view(capsys, src, out, "--width", 4, "--dpi", 50)
    assert rc == 0, err
    m = wrote(stdout)
    assert m["out"] == str(out)
    assert m["what"].startswith("sagittal/coronal/axial through (")
    assert ("volume 0 of" in m["what"]) == (len(vx.load(src).shape) == 4)
    assert ("level 0 of 2 (2.0 mm)" in m["what"]) == name.endswith(".zarr")
    assert_drawn(read_png(out, 200, m))
    no_leftovers(tmp_path)


def test_vector_file_types_and_the_width(tmp_path, capsys):
    src = NIBABEL_DATA / "anatomical.nii"
    for suffix, magic in ((".svg", b"<?xml"), (".pdf", b"%PDF")):
        out = tmp_path / f"out{suffix}"
        rc, stdout, err = view(capsys, src, out, "--width", 6)
        assert rc == 0, err
        assert stdout.startswith(f"wrote {out} (6x") and " in): sagittal" in stdout
        assert out.read_bytes()[:5].startswith(magic)
    rc, stdout, _ = view(capsys, src, tmp_path / "big.png", "--dpi", 80)
    assert rc == 0
    read_png(tmp_path / "big.png", 720, wrote(stdout))  # the default 9 in
    no_leftovers(tmp_path)


def test_the_output_is_replaced_atomically(tmp_path, capsys):
    out = tmp_path / "out.png"
    out.write_bytes(b"old picture")
    src = NIBABEL_DATA / "functional.nii"
    rc, _, _ = view(capsys, src, out, "--t", 99)  # fails before anything is written
    assert rc == 2 and out.read_bytes() == b"old picture"
    inode = out.stat().st_ino
    rc, stdout, _ = view(capsys, src, out, "--t", 3, "--width", 3, "--dpi", 40)
    assert rc == 0 and "volume 3 of 20" in stdout
    assert out.stat().st_ino != inode  # a new file renamed into place, not rewritten
    read_png(out, 120, wrote(stdout))
    no_leftovers(tmp_path)


@pytest.mark.slow
def test_every_nibabel_file_voxray_opens_is_drawn_or_refused_in_one_line(tmp_path, capsys):
    """Every image file nibabel ships: a picture, or exit 2 with one line naming it."""
    skip = (".py", ".m", ".rst", ".txt", ".REC", ".BRIK", ".BRIK.gz", ".img", ".trk", ".tck")
    drawn = refused = 0
    for path in sorted(Path(NIBABEL_DATA).iterdir()):
        if not path.is_file() or path.name.startswith(".") or path.name.endswith(skip):
            continue
        out = tmp_path / "out.png"
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            rc, stdout, err = view(capsys, path, out, "--width", 3, "--dpi", 30)
        if rc == 0:
            read_png(out, 90, wrote(stdout))
            drawn += 1
        else:
            assert rc == 2, (path, err)
            one_line(err)  # a multi-line message of nibabel's AFNI parser too
            assert path.name.split(".")[0] in err, err  # the file, or its .REC / .BRIK
            refused += 1
        out.unlink(missing_ok=True)
    assert drawn >= 20 and refused >= 20, (drawn, refused)  # 23 and 34 with nibabel 5.4
    no_leftovers(tmp_path)


# -- the other pictures -----------------------------------------------------------------


def test_mosaic(tmp_path, capsys):
    src = NIBABEL_DATA / "anatomical.nii"
    out = tmp_path / "m.png"
    rc, stdout, err = view(capsys, src, out, "--mosaic", "--n", 6, "--width", 6, "--dpi", 50)
    assert rc == 0, err
    m = wrote(stdout)
    assert m["what"] == "6 axial slices, z=-10..26 mm"  # as vx.plot_mosaic's example
    assert_drawn(read_png(out, 300, m))
    rc, stdout, err = view(capsys, src, out, "--mosaic", "--axis", "x", "--n", 4)
    assert rc == 0, err
    assert wrote(stdout)["what"].startswith("4 sagittal slices, x=")


def test_carpet(tmp_path, capsys):
    out = tmp_path / "c.png"
    rc, stdout, err = view(capsys, NIBABEL_DATA / "functional.nii", out, "--carpet", "--dpi", 40)
    assert rc == 0, err
    m = wrote(stdout)
    assert re.fullmatch(r"carpet plot, \d+ rows x 20 volumes", m["what"]), m["what"]
    assert_drawn(read_png(out, 320, m))  # plot_carpet's 8 in


def test_timecourse(tmp_path, capsys):
    out = tmp_path / "t.png"
    src = NIBABEL_DATA / "functional.nii"
    rc, stdout, err = view(capsys, src, out, "--timecourse", "0,0,10", "--width", 5, "--dpi", 40)
    assert rc == 0, err
    m = wrote(stdout)
    assert m["what"] == "time course at (0, 0, 10) mm, 20 volumes"
    assert_drawn(read_png(out, 200, m), background=(1.0, 1.0, 1.0))
    rc, stdout, err = view(capsys, src, out, "--timecourse", "0,0,10", "--radius", 6)
    assert rc == 0, err
    assert "(sphere of 6 mm)" in stdout


# -- orientation ----------------------------------------------------------------------------


def marker_image(path) -> Path:
    """A LAS image (i runs right to left) of zeros with a bright 3-voxel cube on the
    subject's right, at world (12, 0, 0) mm."""
    data = np.zeros((21, 21, 21), np.float32)
    data[3:6, 9:12, 9:12] = 1  # i = 4: x = 20 - 2 * 4 = 12
    affine = np.array([[-2.0, 0, 0, 20], [0, 2, 0, -20], [0, 0, 2, -20], [0, 0, 0, 1]])
    nib.save(nib.Nifti1Image(data, affine), path)
    return path


def marker_sides(rgba: np.ndarray) -> list[str]:
    """For each panel (left to right): which half of it holds the marker."""
    rgb = rgba[..., :3]
    purple = np.abs(rgb - (0.267, 0.005, 0.329)).max(axis=-1) < 0.05  # viridis(0)
    yellow = (rgb[..., 0] > 0.85) & (rgb[..., 1] > 0.8) & (rgb[..., 2] < 0.3)  # viridis(1)
    cols = np.flatnonzero((purple | yellow).any(axis=0))
    runs = np.split(cols, np.flatnonzero(np.diff(cols) > 1) + 1)
    assert len(runs) == 3, [(r[0], r[-1]) for r in runs]
    sides = []
    for run in runs:
        marked = np.flatnonzero(yellow[:, run].any(axis=0))
        assert marked.size, "no marker in a panel"
        centre = (len(run) - 1) / 2
        middle = marked.mean()
        sides.append(
            "middle"
            if abs(middle - centre) < 0.1 * len(run)
            else "right"
            if middle > centre
            else "left"
        )
    return sides


def test_radiological_mirrors_the_coronal_and_axial_panels(tmp_path, capsys):
    src = marker_image(tmp_path / "marker.nii")
    common = ["--coords", "12,0,0", "--cmap", "viridis", "--vmin", 0, "--vmax", 1]
    common += ["--width", 6, "--dpi", 60]
    rc, stdout, err = view(capsys, src, tmp_path / "neuro.png", *common)
    assert rc == 0, err
    neuro = marker_sides(read_png(tmp_path / "neuro.png", 360, wrote(stdout)))
    rc, stdout, err = view(capsys, src, tmp_path / "radio.png", *common, "--radiological")
    assert rc == 0, err
    assert stdout.rstrip().endswith("mm, radiological")
    radio = marker_sides(read_png(tmp_path / "radio.png", 360, wrote(stdout)))
    # sagittal: the marker is at the cut's centre (y = z = 0); the subject's right is on
    # the right (neurological) or on the left (radiological) of coronal and axial panels
    assert neuro == ["middle", "right", "right"]
    assert radio == ["middle", "left", "left"]


# -- remote ---------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def bold(tmp_path_factory):
    """A 4-D .nii of 40 volumes of 240 KiB (noise over anatomy), and its size per volume."""
    d = tmp_path_factory.mktemp("bold")
    anat = np.asarray(nib.load(NIBABEL_DATA / "anatomical.nii").dataobj, np.int16)
    vol = np.tile(anat, (2, 2, 1))[:64, :64, :]  # (64, 64, 25)
    rng = np.random.default_rng(1)
    data = np.stack([vol + rng.integers(0, 5, vol.shape, dtype=np.int16) for _ in range(40)], -1)
    nib.save(nib.Nifti1Image(data, np.diag([3.0, 3.0, 3.5, 1.0])), d / "bold.nii")
    shutil.copy(NIBABEL_DATA / "example4d.nii.gz", d / "example4d.nii.gz")
    return d, data[..., 0].nbytes


def test_over_http_reads_about_one_volume(bold, tmp_path, capsys):
    d, volume_bytes = bold
    with RangeServer(d) as server:
        out = tmp_path / "h.png"
        server.reset_counts()
        rc, stdout, err = view(capsys, server.url("bold.nii"), out, "--t", 7, "--dpi", 40)
        assert rc == 0, err
        assert "volume 7 of 40" in stdout
        assert_drawn(read_png(out, 360, wrote(stdout)))
        # out of an 8 MB file: the header (one 64 KiB read) and three planes of volume 7;
        # the sagittal and the coronal planes are strided over the volume, so each reads
        # (almost) its whole span, the axial one a 64 KiB read: 532 KB, 2.6 volumes
        assert server.bytes_sent <= 3 * volume_bytes, server.bytes_sent
        rc, stdout, err = view(capsys, server.url("example4d.nii.gz"), out, "--carpet")
        assert rc == 0, err
        assert "x 2 volumes" in stdout


@pytest.mark.slow
def test_from_s3(bold, s3, tmp_path, capsys):
    d, _ = bold
    s3.fs.put(str(d / "example4d.nii.gz"), f"{s3.bucket}/sub/example4d.nii.gz")
    opts = [f"-o{k}={v}" for k, v in s3.options.items()]
    out = tmp_path / "s.png"
    url = f"s3://{s3.bucket}/sub/example4d.nii.gz"
    rc, stdout, err = view(capsys, url, out, "--t", 1, "--width", 4, "--dpi", 50, *opts)
    assert rc == 0, err
    assert "volume 1 of 2" in stdout
    assert_drawn(read_png(out, 200, wrote(stdout)))
    rc, _, err = view(capsys, f"s3://{s3.bucket}/sub/missing.nii.gz", out, *opts)
    assert rc == 2 and "missing.nii.gz" in one_line(err)
    # a store on S3: its levels are opened with the same storage options
    store = f"s3://{s3.bucket}/anat.nii.zarr"
    vx.to_zarr(NIBABEL_DATA / "anatomical.nii", store, levels=2, storage_options=s3.options)
    rc, stdout, err = view(capsys, store, out, "--width", 1, "--dpi", 40, *opts)
    assert rc == 0, err
    assert stdout.rstrip().endswith("level 1 of 2 (4.0 mm)")  # 17 voxels for 12 px panels
    read_png(out, 40, wrote(stdout))


# -- the pyramid level ----------------------------------------------------------------------

N = 192  # voxels per side of level 0; levels of 192, 96, 48, 24 and 12 voxels (1 to 16 mm)


@pytest.fixture(scope="module")
def pyramid(tmp_path_factory):
    """A 192^3 NIfTI-Zarr store (noise: it does not compress) with 5 levels, 32^3 chunks."""
    d = tmp_path_factory.mktemp("pyramid")
    data = np.random.default_rng(0).integers(0, 1000, (N, N, N), dtype=np.int16)
    vx.to_zarr(nib.Nifti1Image(data, np.eye(4)), str(d / "big.nii.zarr"), levels=5, chunks=32)
    return d


@pytest.mark.slow
@pytest.mark.parametrize(
    ("width", "dpi", "level", "mm", "mode"),
    [
        # slices: panels of about (width x dpi x 0.96) / 3 pixels; the coarsest level with
        # at least as many voxels: 288 px > 192 (level 0), 80 px <= 96, 38 <= 48, 19 <= 24
        (9, 100, 0, "1.0", []),
        (2.5, 100, 1, "2.0", []),
        (3, 40, 2, "4.0", []),
        (1.5, 40, 3, "8.0", []),
        # a mosaic of 4 in 3 columns: panels of about 26 px: 26 <= 48, 24 < 26
        (2, 40, 2, "4.0", ["--mosaic", "--n", 4]),
    ],
)
def test_the_level_fills_the_pixels(pyramid, width, dpi, level, mm, mode, tmp_path, capsys):
    out = tmp_path / "p.png"
    argv = [pyramid / "big.nii.zarr", out, "--width", width, "--dpi", dpi, *mode]
    rc, stdout, err = view(capsys, *argv)
    assert rc == 0, err
    m = wrote(stdout)
    assert m["what"].endswith(f", level {level} of 5 ({mm} mm)")
    read_png(out, int(width * dpi), m)


@pytest.mark.slow
def test_a_small_picture_of_a_remote_pyramid_reads_a_coarse_level(pyramid, tmp_path, capsys):
    planes_of_level_0 = 3 * N * N * 2  # three int16 planes of 192 x 192
    out = tmp_path / "small.png"
    with RangeServer(pyramid) as server:
        url = server.url("big.nii.zarr")
        server.reset_counts()
        for level in range(5):  # what opening every level costs: metadata only
            vx.load(url, level=level)
        metadata = server.bytes_sent
        server.reset_counts()
        rc, stdout, err = view(capsys, url, out, "--width", 1.5, "--dpi", 40)
        assert rc == 0, err
        assert wrote(stdout)["what"].endswith("level 3 of 5 (8.0 mm)")
        small = server.bytes_sent
        server.reset_counts()
        rc, stdout, err = view(capsys, url, out, "--width", 1.5, "--dpi", 40, "--level", 0)
        assert rc == 0, err
        assert wrote(stdout)["what"].endswith("level 0 of 5 (1.0 mm)")
        full = server.bytes_sent
    # level 3 is 24^3 voxels (27 KiB): its planes and the levels' metadata, against the
    # chunks that hold level 0's planes (every 32^3 chunk a plane crosses: 5 MB)
    assert small - metadata < planes_of_level_0 / 4, (small, metadata)
    assert small < planes_of_level_0 / 2
    assert full > 10 * small, (full, small)


def test_level_zero_for_carpets_and_choosing_a_level(tmp_path, capsys):
    store = str(tmp_path / "f.nii.zarr")
    vx.to_zarr(NIBABEL_DATA / "functional.nii", store, levels=2)
    out = tmp_path / "f.png"
    rc, stdout, err = view(capsys, store, out, "--carpet", "--dpi", 20)
    assert rc == 0, err
    assert "level" not in stdout or "level 0 of 2" in stdout
    rc, stdout, err = view(capsys, store, out, "--level", 1, "--t", 2)
    assert rc == 0, err
    assert "volume 2 of 20, level 1 of 2" in stdout
    rc, _, err = view(capsys, store, out, "--level", 2)
    assert rc == 2 and "has 2 levels; --level 2 does not exist" in err and store in err
    rc, _, err = view(capsys, store, out, "--t", 20)  # a Zarr image has no file name
    assert rc == 2 and f"{store!r} has 20 volumes: there is no volume 20" in err


# -- errors ---------------------------------------------------------------------------------


def one_line(err: str) -> str:
    assert err.count("\n") == 1 and err.startswith("voxray view: error: "), err
    assert "Traceback" not in err
    return err


def test_errors_name_the_file_in_one_line(tmp_path, capsys):
    out = tmp_path / "e.png"
    missing = tmp_path / "missing.nii"
    text = tmp_path / "notes.txt"
    text.write_text("not an image\n")
    fake = tmp_path / "fake.nii"
    fake.write_bytes(b"\0" * 400)
    anat, func = NIBABEL_DATA / "anatomical.nii", NIBABEL_DATA / "functional.nii"
    cases = [
        ([missing], "missing.nii"),
        ([text], "notes.txt"),
        ([fake], "fake.nii"),
        ([anat, "--carpet"], "is 3-D: a carpet plot needs a 4-D image"),
        ([anat, "--timecourse", "0,0,0"], "is 3-D: a time course needs a 4-D image"),
        ([anat, "--t", 2], "is 3-D: it has no volume 2"),
        ([func, "--t", 20], "has 20 volumes: there is no volume 20"),
        ([func, "--coords", "500,0,0"], "the point (500, 0, 0) mm is outside the image"),
        ([func, "--timecourse", "500,0,0"], "outside"),
        ([anat, "--level", 1], "is not a Zarr store"),
    ]
    for argv, message in cases:
        rc, stdout, err = view(capsys, argv[0], out, *argv[1:])
        assert rc == 2, (argv, err)
        assert message in one_line(err) and os.path.basename(argv[0]) in err, (argv, err)
        assert stdout == ""
    assert not out.exists()
    no_leftovers(tmp_path)


def test_option_errors(tmp_path, capsys):
    anat = NIBABEL_DATA / "anatomical.nii"
    cases = [
        ([tmp_path / "e.bmpx"], "cannot tell the picture type from its suffix"),
        ([tmp_path / "e"], "cannot tell the picture type from its suffix"),
        ([tmp_path / "no" / "e.png"], "does not exist"),
        ([tmp_path / "e.png", "--cmap", "nope"], "'nope' is not a matplotlib colour map"),
        ([tmp_path / "e.png", "--vmin", 3, "--vmax", 1], "--vmin 3 must be less than --vmax 1"),
        ([tmp_path / "e.png", "--carpet", "--coords", "0,0,0"], "--coords is for the orthogonal"),
        ([tmp_path / "e.png", "--axis", "x"], "--axis is for --mosaic, not the orthogonal"),
        ([tmp_path / "e.png", "--timecourse", "0,0,0", "--level", 1], "--level is for"),
        ([tmp_path / "e.png", "--title", "$x^$"], "cannot draw"),  # mathtext
    ]
    for argv, message in cases:
        rc, _, err = view(capsys, anat, *argv)
        assert rc == 2, (argv, err)
        assert message in one_line(err), (argv, err)
    assert not list(tmp_path.iterdir())


def test_syntax_errors_are_argparse_errors(tmp_path, capsys):
    anat, out = NIBABEL_DATA / "anatomical.nii", tmp_path / "e.png"
    for argv, message in [
        (["--coords", "1,2"], "argument --coords: expected three world coordinates"),
        (["--coords", "a,b,c"], "argument --coords: expected three world coordinates"),
        (["--coords", "1,2,nan"], "argument --coords: expected three world coordinates"),
        (["--t", "x"], "argument --t: invalid int value"),
        (["--mosaic", "--carpet"], "argument --carpet: not allowed with argument --mosaic"),
        (["--dpi", "0"], "argument --dpi: expected a positive int"),
        (["--level", "-1"], "argument --level: expected 'auto' or a level number"),
    ]:
        rc, _, err = view(capsys, anat, out, *argv)
        assert rc == 2 and "voxray view: error: " + message in err, (argv, err)
    rc, stdout, err = view(capsys, NIBABEL_DATA / "functional.nii", out, "--coords=-10,0,10")
    assert rc == 0 and "through (-10, 0, 10) mm" in stdout, err


def test_without_matplotlib_the_error_names_the_extra(tmp_path, capsys, monkeypatch):
    monkeypatch.setitem(sys.modules, "matplotlib", None)  # import matplotlib -> ImportError
    rc, _, err = view(capsys, NIBABEL_DATA / "anatomical.nii", tmp_path / "x.png")
    assert rc == 2 and "pip install 'voxray[plot]'" in one_line(err)
    assert isinstance(vx.MissingDependencyError("x"), VoxrayError)


def test_console_script_runs_headless(tmp_path):
    env = {k: v for k, v in os.environ.items() if k not in ("DISPLAY", "MPLBACKEND")}
    out = tmp_path / "c.png"
    run = subprocess.run(
        [
            sys.executable,
            "-m",
            "voxray.cli",
            "view",
            str(NIBABEL_DATA / "example4d.nii.gz"),
            str(out),
            "--t",
            "1",
            "--dpi",
            "30",
        ],
        capture_output=True,
        text=True,
        timeout=120,
        env=env,
    )
    assert run.returncode == 0, run.stderr
    assert run.stdout.startswith(f"wrote {out} (270x") and out.exists()
