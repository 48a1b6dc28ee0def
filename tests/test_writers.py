"""Out-of-core NIfTI writing: fidelity (nibabel reads it back), atomicity, parallel writers."""

from __future__ import annotations

import gzip
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import nibabel as nib
import numpy as np
import pytest

import voxray as vx
from voxray.sources import clear_cache, open_source
from voxray.testing import write_nifti

OUTPUTS = (".nii", ".nii.gz", ".img", ".hdr.gz")


def _same_values(a, b):
    a, b = np.asarray(a), np.asarray(b)
    assert a.shape == b.shape
    if a.dtype.fields is None:
        np.testing.assert_array_equal(a, b)
    else:
        assert a.tobytes() == b.tobytes()


def _header_fields(h):
    out = {"zooms": tuple(float(z) for z in h.get_zooms())}
    for field in (
        "qform_code",
        "sform_code",
        "xyzt_units",
        "intent_code",
        "intent_p1",
        "descrip",
        "toffset",
        "slice_code",
        "slice_start",
        "slice_end",
        "slice_duration",
        "dim_info",
        "cal_min",
        "cal_max",
    ):
        if field in h:
            out[field] = h[field].tolist() if hasattr(h[field], "tolist") else h[field]
    return out


@pytest.mark.parametrize("suffix", OUTPUTS)
def test_round_trip_over_the_corpus(corpus, tmp_path, suffix):
    for entry in corpus.values():
        src = nib.load(entry.path)
        out = tmp_path / (entry.name.replace(":", "_").replace(".", "_") + suffix)
        vx.save(vx.load(entry.path), out)
        back = nib.load(out)
        _same_values(np.asanyarray(back.dataobj), np.asanyarray(src.dataobj))
        a, b = np.asanyarray(back.dataobj).dtype, np.asanyarray(src.dataobj).dtype
        assert a.newbyteorder("=") == b.newbyteorder("="), entry.name
        np.testing.assert_allclose(back.affine, src.affine, atol=1e-6, err_msg=entry.name)
        if isinstance(src.header, nib.Nifti1Header) and isinstance(back.header, nib.Nifti1Header):
            assert _header_fields(back.header) == _header_fields(src.header), entry.name
            assert [(e.get_code(), e.get_content()) for e in back.header.extensions] == [
                (e.get_code(), e.get_content()) for e in src.header.extensions
            ]
        if suffix.endswith(".gz"):
            paths = (
                [out]
                if suffix == ".nii.gz"
                else [out, out.with_name(out.name.replace(".hdr.gz", ".img.gz"))]
            )
            assert subprocess.run(["gzip", "-t", *map(str, paths)]).returncode == 0


def test_unchanged_image_reproduces_header_bytes(corpus, tmp_path):
    for name in (
        "scaled-int16.nii",
        "extensions.nii",
        "nifti2.nii",
        "be-int16-4d.nii",
        "oblique.nii",
        "nibabel:functional.nii",
        "scaled-be-int32.nii",
    ):
        src = corpus[name].path
        img = vx.load(src)
        out = tmp_path / f"{name.replace(':', '_')}.nii"
        vx.save(img, out)
        offset = img.dataobj.offset
        assert out.read_bytes()[:offset] == Path(src).read_bytes()[:offset], name
        assert out.read_bytes()[offset:] == Path(src).read_bytes()[offset:], name
        gz = tmp_path / f"{name.replace(':', '_')}.nii.gz"
        vx.save(img, gz)
        assert gzip.decompress(gz.read_bytes()) == Path(src).read_bytes()


def test_scaling_and_stored_integers_kept_exactly(corpus, tmp_path):
    """nibabel's load-then-save rescales; voxray keeps the stored ints and the scaling."""
    src = corpus["scaled-int16.nii.gz"].path
    out = tmp_path / "copy.nii.gz"
    vx.save(vx.load(src), out)
    a, b = nib.load(src), nib.load(out)
    assert (b.dataobj.slope, b.dataobj.inter) == (a.dataobj.slope, a.dataobj.inter)
    np.testing.assert_array_equal(b.dataobj.get_unscaled(), a.dataobj.get_unscaled())


def test_changed_affine_updates_both_forms_like_nibabel(corpus, tmp_path):
    src = vx.load(corpus["le-int16-4d.nii"].path)
    sub = src.slicer[2:-3, ::-1, 1:]
    vx.save(sub, tmp_path / "vx.nii")
    ref = nib.Nifti1Image(np.asarray(sub.dataobj), sub.affine, nib.load(src.get_filename()).header)
    nib.save(ref, tmp_path / "nib.nii")
    a, b = nib.load(tmp_path / "vx.nii"), nib.load(tmp_path / "nib.nii")
    for form in ("get_qform", "get_sform"):
        (ma, ca), (mb, cb) = (
            getattr(a.header, form)(coded=True),
            getattr(b.header, form)(coded=True),
        )
        assert ca == cb
        if ma is not None or mb is not None:
            np.testing.assert_allclose(ma, mb, atol=1e-6)
    np.testing.assert_array_equal(np.asanyarray(a.dataobj), np.asanyarray(b.dataobj))


def test_float_data_to_an_integer_dtype_is_scaled_as_nibabel_does(tmp_path):
    rng = np.random.default_rng(3)
    data = rng.normal(100, 30, (20, 18, 16, 5))
    data[0, 0, 0, 0] = np.nan
    data[1, 1, 1, 1] = np.inf
    hdr = nib.Nifti1Header()
    hdr.set_data_dtype(np.int16)
    affine = np.diag([2, 2, 2, 1.0])
    nib.save(nib.Nifti1Image(data, affine, hdr), tmp_path / "nib.nii")
    import dask.array as da

    vx.save(
        vx.Image(da.from_array(data, chunks=(20, 18, 16, 2)), affine, hdr), tmp_path / "vx.nii"
    )
    a, b = nib.load(tmp_path / "vx.nii"), nib.load(tmp_path / "nib.nii")
    assert (a.dataobj.slope, a.dataobj.inter) == (b.dataobj.slope, b.dataobj.inter)
    assert (tmp_path / "vx.nii").read_bytes() == (tmp_path / "nib.nii").read_bytes()


def test_float_image_keeps_its_float_dtype(tmp_path):
    data = np.random.default_rng(0).normal(size=(6, 7, 8)).astype(np.float32)
    vx.save(vx.Image(data, np.eye(4)), tmp_path / "f.nii.gz")
    back = nib.load(tmp_path / "f.nii.gz")
    assert back.get_data_dtype() == np.float32
    np.testing.assert_array_equal(np.asanyarray(back.dataobj), data)


def test_dataarray_round_trip_keeps_encoding(corpus, tmp_path):
    src = corpus["scaled-int16.nii.gz"].path
    da = vx.open_dataarray(src)
    da.vx.to_nifti(tmp_path / "from_da.nii")
    back = nib.load(tmp_path / "from_da.nii")
    ref = nib.load(src)
    np.testing.assert_array_equal(back.dataobj.get_unscaled(), ref.dataobj.get_unscaled())
    assert back.dataobj.slope == ref.dataobj.slope and back.dataobj.inter == ref.dataobj.inter
    np.testing.assert_allclose(back.affine, ref.affine, atol=1e-6)
    mean = da.mean("t")
    vx.save(mean, tmp_path / "mean.nii.gz")
    np.testing.assert_allclose(
        nib.load(tmp_path / "mean.nii.gz").get_fdata(), ref.get_fdata().mean(-1), rtol=1e-6
    )


def test_written_gzip_is_random_access_without_a_pass_or_cache(tmp_path, monkeypatch):
    shape = (64, 64, 40, 40)  # 320 KiB volumes, 4 gzip members of 4 MiB
    arr = np.random.default_rng(5).integers(0, 3000, shape).astype(np.int16)
    h = nib.Nifti1Header()
    h.set_data_dtype(np.int16)
    src = write_nifti(tmp_path / "src.nii", arr, h)
    out = tmp_path / "out.nii.gz"
    vx.save(vx.load(src), out)
    monkeypatch.setenv("VOXRAY_CACHE_DIR", str(tmp_path / "empty-cache"))
    clear_cache()
    img = vx.load(out)
    s = open_source(img.dataobj.reader.source).stats
    s.reset()
    np.testing.assert_array_equal(img.dataobj[..., -1], arr[..., -1])
    # the trailer read plus at most one member and the volume: no pass over the file
    assert s.bytes_inflated <= 4 * 2**20 + arr[..., -1].nbytes
    assert s.bytes_read <= 64 * 1024 + 70 + os.path.getsize(out) // 2
    assert not (tmp_path / "empty-cache").exists()  # nothing had to be cached


def test_refuses_to_overwrite_the_file_being_read(corpus, tmp_path):
    p = tmp_path / "src.nii"
    p.write_bytes(Path(corpus["le-int16-4d.nii"].path).read_bytes())
    img = vx.load(p)
    with pytest.raises(vx.VoxrayError, match="refusing to overwrite"):
        vx.save(img, p)
    with pytest.raises(vx.VoxrayError, match="refusing to overwrite"):
        vx.save(vx.open_dataarray(p), p)
    assert vx.load(p).dataobj[0, 0, 0, 0] == img.dataobj[0, 0, 0, 0]


def test_pairs_are_written_whole(corpus, tmp_path):
    img = vx.load(corpus["le-int16-4d.nii"].path)
    vx.save(img, tmp_path / "p.img")
    assert (tmp_path / "p.hdr").exists() and (tmp_path / "p.img").exists()
    assert not [f for f in os.listdir(tmp_path) if f.endswith(".tmp")]
    np.testing.assert_array_equal(
        np.asanyarray(nib.load(tmp_path / "p.hdr").dataobj), np.asarray(img.dataobj)
    )


KILL_SCRIPT = """
import sys, numpy as np, dask.array as da, voxray as vx
x = da.random.RandomState(0).normal(size=(128, 128, 64, 60), chunks=(128, 128, 64, 2))
vx.save(vx.Image(x.astype(np.float32), np.eye(4)), sys.argv[1], progress=False)
"""


@pytest.mark.slow
@pytest.mark.parametrize("suffix", [".nii", ".nii.gz"])
@pytest.mark.parametrize("existing", [False, True])
def test_killed_writer_leaves_the_destination_untouched(tmp_path, suffix, existing):
    dest = tmp_path / f"out{suffix}"
    old = b"old contents"
    if existing:
        dest.write_bytes(old)
    proc = subprocess.Popen([sys.executable, "-c", KILL_SCRIPT, str(dest)])
    deadline = time.time() + 60
    while time.time() < deadline:  # wait until the temporary file is being written
        tmps = [f for f in os.listdir(tmp_path) if f.endswith(".tmp")]
        if tmps and os.path.getsize(tmp_path / tmps[0]) > 1_000_000:
            break
        time.sleep(0.02)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert proc.returncode == -signal.SIGKILL
    if existing:
        assert dest.read_bytes() == old
    else:
        assert not dest.exists()


@pytest.mark.slow
def test_threads_and_a_process_cluster_write_identical_bytes(corpus, tmp_path):
    from dask.distributed import Client, LocalCluster

    src = corpus["scaled-int16.nii.gz"].path
    for suffix in (".nii", ".nii.gz"):
        vx.save(vx.load(src, chunks={3: 1}), tmp_path / f"threads{suffix}")
    with (
        LocalCluster(
            n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None
        ) as cluster,
        Client(cluster),
    ):
        for suffix in (".nii", ".nii.gz"):
            vx.save(vx.load(src, chunks={3: 1}), tmp_path / f"cluster{suffix}")
        # the documented trap: a memmap target is copied to the workers, its writes lost
        import dask.array as da

        x = da.ones((50, 50), chunks=(10, 50), dtype=np.float32)
        target = np.lib.format.open_memmap(
            tmp_path / "mm.npy", mode="w+", dtype=np.float32, shape=(50, 50)
        )
        da.store(x, target, lock=False)
        target.flush()
        assert not np.load(tmp_path / "mm.npy").any()
    for suffix in (".nii", ".nii.gz"):
        assert (tmp_path / f"threads{suffix}").read_bytes() == (
            tmp_path / f"cluster{suffix}"
        ).read_bytes()


def test_convert_command(corpus, tmp_path, capsys):
    from voxray.cli import main

    src = corpus["be-int16-4d.nii.gz"].path
    for dst in ("a.nii", "b.nii.gz", "c.img", "d.hdr.gz"):
        assert main(["convert", src, str(tmp_path / dst)]) == 0
        _same_values(
            np.asanyarray(nib.load(tmp_path / dst).dataobj), np.asanyarray(nib.load(src).dataobj)
        )
    assert main(["convert", src, str(tmp_path / "e.nii"), "--dtype", "float32"]) == 0
    assert nib.load(tmp_path / "e.nii").get_data_dtype().newbyteorder("=") == np.float32
    assert main(["convert", src, str(tmp_path / "x.txt")]) == 2
    assert "x.txt" in capsys.readouterr().err


def test_convert_shows_progress_on_a_terminal(tmp_path):
    import fcntl
    import pty
    import select
    import struct
    import termios

    arr = np.zeros((64, 64, 32, 20), np.int16)
    h = nib.Nifti1Header()
    h.set_data_dtype(np.int16)
    src = write_nifti(tmp_path / "src.nii", arr, h)
    leader, follower = pty.openpty()
    fcntl.ioctl(follower, termios.TIOCSWINSZ, struct.pack("HHHH", 24, 100, 0, 0))
    proc = subprocess.Popen(
        [sys.executable, "-m", "voxray.cli", "convert", str(src), str(tmp_path / "o.nii.gz")],
        stderr=follower,
        stdout=subprocess.PIPE,
    )
    err = b""
    while proc.poll() is None or select.select([leader], [], [], 0)[0]:
        if select.select([leader], [], [], 0.1)[0]:
            try:
                err += os.read(leader, 65536)
            except OSError:
                break
    os.close(follower)
    os.close(leader)
    assert proc.wait(timeout=120) == 0
    assert b"writing o.nii.gz" in err
    quiet = subprocess.run(
        [sys.executable, "-m", "voxray.cli", "convert", str(src), str(tmp_path / "q.nii.gz")],
        capture_output=True,
        timeout=120,
    )
    assert quiet.returncode == 0 and quiet.stderr == b""
