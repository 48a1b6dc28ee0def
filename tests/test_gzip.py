"""Random access into .nii.gz through the seek-point index, asserted on I/O counters."""

from __future__ import annotations

import gzip
import os
import threading

import nibabel as nib
import numpy as np
import pytest

import voxray as vx
from voxray.sources import GzipIndex, LocalSpec, clear_cache, flush_index_writes, open_source
from voxray.sources.gzcache import cache_path, find_index, load_index, sidecar_path, store_index
from voxray.sources.gzindex import IndexFormatError
from voxray.testing import write_nifti

SHAPE = (64, 64, 32, 24)  # 256 KiB volumes, 6 MiB of data


def _series(seed=0):
    rng = np.random.default_rng(seed)
    base = rng.integers(0, 2000, SHAPE[:3]).astype(np.int16)
    return np.stack(
        [base + rng.integers(-50, 50, SHAPE[:3]).astype(np.int16) for _ in range(SHAPE[3])], -1
    )


@pytest.fixture
def series_gz(tmp_path, fresh_cache):
    arr = _series()
    h = nib.Nifti1Header()
    h.set_data_dtype(np.int16)
    return write_nifti(tmp_path / "bold.nii.gz", arr, h), arr


def stats(img):
    return open_source(img.dataobj.reader.source).stats


def spacing(img):
    """The largest distance between seek points (the spacing plus at most one block)."""
    idx = open_source(img.dataobj.reader.source).index
    return int(np.diff(np.asarray(idx.out)).max(initial=idx.spacing))


def test_load_reads_only_the_header(series_gz):
    p, _ = series_gz
    img = vx.load(p)
    s = stats(img)
    assert s.bytes_inflated < 64 * 1024
    assert s.bytes_read <= 64 * 1024
    assert find_index(img.dataobj.reader.source) is None


def test_first_full_read_builds_and_stores_the_index(series_gz):
    p, arr = series_gz
    img = vx.load(p)
    np.testing.assert_array_equal(np.asarray(img.dataobj), arr)
    flush_index_writes()  # the index is stored in the background
    spec = img.dataobj.reader.source
    assert find_index(spec) == cache_path(spec)
    s = stats(img)
    assert s.bytes_inflated <= arr.nbytes + 64 * 1024  # one pass, not one per chunk
    idx = load_index(spec)
    assert idx.complete and idx.uncompressed_size == arr.nbytes + 352
    gaps = np.diff(np.asarray(idx.out))
    assert gaps.min() >= idx.spacing  # points are at least a spacing apart...
    assert gaps.max() <= idx.spacing + 256 * 1024  # ...and at most one deflate block more


def test_one_volume_of_an_indexed_file_decompresses_one_spacing_plus_the_volume(series_gz):
    p, arr = series_gz
    np.asarray(vx.load(p).dataobj)  # index it
    clear_cache()  # a fresh process: only the stored index is shared
    img = vx.load(p)
    s = stats(img)
    s.reset()
    vol = img.dataobj[..., 17]
    np.testing.assert_array_equal(vol, arr[..., 17])
    assert s.bytes_inflated <= spacing(img) + arr[..., 17].nbytes
    compressed = os.path.getsize(p)
    assert s.bytes_read < compressed / 2


def test_dask_graph_never_decompresses_per_chunk(series_gz):
    p, arr = series_gz
    img = vx.load(p, chunks={3: 1})
    x = img.to_dask()
    assert x.numblocks[3] == SHAPE[3]
    np.testing.assert_array_equal(x.compute(scheduler="threads"), arr)
    src = open_source(img.dataobj.reader.source)
    # One pass, plus at most one spacing per chunk read behind the pass's frontier
    # (dask computes chunks in its own order, not the file's).
    gap = spacing(img)
    assert src.stats.bytes_inflated <= 2 * (arr.nbytes + 352) + x.npartitions * gap
    assert src.stats.bytes_inflated < x.npartitions * arr.nbytes / 4


def test_mean_over_time_matches_nibabel(series_gz):
    p, arr = series_gz
    got = vx.load(p).to_dask().mean(axis=-1).compute()
    np.testing.assert_allclose(got, nib.load(p).get_fdata().mean(-1))
    np.testing.assert_allclose(got, arr.mean(-1))


def test_concurrent_readers_on_an_unindexed_file(series_gz):
    p, arr = series_gz
    img = vx.load(p)
    errors = []
    rng = np.random.default_rng(1)
    keys = [
        (slice(None), slice(int(a), int(a) + 5), slice(None), int(t))
        for a, t in zip(rng.integers(0, 59, 24), rng.integers(0, SHAPE[3], 24))
    ]

    def work(key):
        try:
            np.testing.assert_array_equal(img.dataobj[key], arr[key])
        except Exception as e:  # collected and re-raised below
            errors.append(e)

    threads = [threading.Thread(target=work, args=(k,)) for k in keys]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors, errors[0]


def test_multimember_gzip(tmp_path, fresh_cache):
    arr = _series(3)[..., :6]
    h = nib.Nifti1Header()
    h.set_data_dtype(np.int16)
    single = write_nifti(tmp_path / "s.nii", arr, h).read_bytes()
    cuts = [*range(0, len(single), 300_000), len(single)]
    p = tmp_path / "m.nii.gz"
    p.write_bytes(b"".join(gzip.compress(single[a:b]) for a, b in zip(cuts, cuts[1:])))
    img = vx.load(p)
    np.testing.assert_array_equal(np.asarray(img.dataobj), arr)
    idx = open_source(img.dataobj.reader.source).index
    assert idx.members == len(cuts) - 1
    # every member start is a seek point, with no window to store
    member_points = [i for i in range(len(idx)) if not idx.window(i)]
    assert len(member_points) == len(cuts) - 1
    clear_cache()
    img = vx.load(p)
    for t in (0, 3, 5):
        np.testing.assert_array_equal(img.dataobj[..., t], arr[..., t])


def test_stored_index_roundtrip_and_checks(series_gz):
    p, _ = series_gz
    np.asarray(vx.load(p).dataobj)
    flush_index_writes()
    spec = LocalSpec.for_path(p, "gzip")
    data = cache_path(spec).read_bytes()
    idx = GzipIndex.from_bytes(data, {"size": spec.size, "mtime_ns": spec.mtime_ns})
    assert idx.complete
    with pytest.raises(IndexFormatError, match="changed"):
        GzipIndex.from_bytes(data, {"size": spec.size + 1, "mtime_ns": spec.mtime_ns})
    damaged = bytearray(data)
    damaged[len(damaged) // 2] ^= 1
    with pytest.raises(IndexFormatError, match="checksum"):
        GzipIndex.from_bytes(bytes(damaged), None)
    with pytest.raises(IndexFormatError):
        GzipIndex.from_bytes(data[:100], None)


def test_damaged_cache_entry_is_rebuilt_not_trusted(series_gz):
    p, arr = series_gz
    np.asarray(vx.load(p).dataobj)
    flush_index_writes()
    spec = LocalSpec.for_path(p, "gzip")
    path = cache_path(spec)
    data = bytearray(path.read_bytes())
    data[-10] ^= 0xFF
    path.write_bytes(bytes(data))
    clear_cache()
    img = vx.load(p)
    np.testing.assert_array_equal(img.dataobj[..., 5], arr[..., 5])
    assert open_source(spec).stats.bytes_inflated >= arr[..., :6].nbytes  # rebuilt, by a pass


def test_changed_file_gets_a_new_index(series_gz):
    p, arr = series_gz
    np.asarray(vx.load(p).dataobj)
    old = LocalSpec.for_path(p, "gzip")
    new_arr = arr + 1
    h = nib.Nifti1Header()
    h.set_data_dtype(np.int16)
    write_nifti(p, new_arr, h)
    os.utime(p, ns=(old.mtime_ns + 10**9, old.mtime_ns + 10**9))
    clear_cache()
    np.testing.assert_array_equal(vx.load(p).dataobj[..., 7], new_arr[..., 7])


def test_sidecar_wins_and_stale_sidecar_is_ignored(series_gz):
    p, arr = series_gz
    np.asarray(vx.load(p).dataobj)
    flush_index_writes()
    spec = LocalSpec.for_path(p, "gzip")
    idx = load_index(spec)
    store_index(spec, idx, sidecar=True)
    cache_path(spec).unlink()
    assert find_index(spec) == sidecar_path(spec)
    clear_cache()
    img = vx.load(p)
    img.dataobj[..., 20]
    assert stats(img).bytes_inflated <= spacing(img) + arr[..., 20].nbytes
    # A sidecar made for another version of the file is not trusted.
    os.utime(p, ns=(spec.mtime_ns + 10**9, spec.mtime_ns + 10**9))
    clear_cache()
    img = vx.load(p)
    np.testing.assert_array_equal(img.dataobj[..., 20], arr[..., 20])
    assert stats(img).bytes_inflated >= arr[..., :20].nbytes


def test_reading_behind_the_frontier_uses_the_partial_index(series_gz):
    p, arr = series_gz
    img = vx.load(p)
    np.testing.assert_array_equal(img.dataobj[..., 20], arr[..., 20])  # pass runs to vol 20
    s = stats(img)
    s.reset()
    np.testing.assert_array_equal(img.dataobj[..., 2], arr[..., 2])
    assert s.bytes_inflated <= spacing(img) + arr[..., 2].nbytes


def test_index_command_cache_and_sidecar(series_gz, capsys):
    from voxray.cli import main

    p, arr = series_gz
    spec = LocalSpec.for_path(p, "gzip")
    assert main(["index", str(p)]) == 0
    out = capsys.readouterr()
    assert "seek points" in out.out and out.err == ""  # no progress bar off a terminal
    assert find_index(spec) == cache_path(spec)
    assert main(["index", "--sidecar", str(p)]) == 0
    assert sidecar_path(spec).is_file()
    clear_cache()
    img = vx.load(p)
    np.testing.assert_array_equal(img.dataobj[..., 23], arr[..., 23])
    assert stats(img).bytes_inflated <= spacing(img) + arr[..., 23].nbytes


def test_index_command_refuses_uncompressed_files(corpus, capsys):
    from voxray.cli import main

    assert main(["index", corpus["le-int16-4d.nii"].path]) == 2
    assert "not gzip-compressed" in capsys.readouterr().err


def _gz_entries(corpus):
    return [e for e in corpus.values() if "gzip" in e.tags]


@pytest.mark.parametrize("state", ["fresh cache, no index", "warm cache, stored index"])
def test_every_gzip_corpus_file_with_and_without_index(corpus, fresh_cache, state):
    entries = _gz_entries(corpus)
    assert len(entries) >= 20
    if state.startswith("warm"):
        for e in entries:
            np.asarray(vx.load(e.path).dataobj)
        clear_cache()  # a new process: only the stored indexes are shared
    for e in entries:
        ref = np.asanyarray(nib.load(e.path).dataobj)
        img = vx.load(e.path)
        stored = find_index(img.dataobj.reader.source) is not None
        assert stored == state.startswith("warm"), e.name
        got = img.to_dask(chunks={-1: 1} if img.ndim > 3 else "auto").compute(scheduler="threads")
        np.testing.assert_array_equal(got, ref, strict=True)
        vol = (Ellipsis, img.shape[-1] // 2) if img.ndim > 3 else (slice(None), 0)
        np.testing.assert_array_equal(img.dataobj[vol], ref[vol])


@pytest.mark.slow
def test_gzip_corpus_on_a_process_cluster_fresh_and_warm(corpus, fresh_cache):
    from dask.distributed import Client, LocalCluster

    entries = [
        e
        for e in _gz_entries(corpus)
        if e.name.split(":")[-1]
        in (
            "scaled-int16.nii.gz",
            "be-int16-4d.nii.gz",
            "multimember.nii.gz",
            "5d.nii.gz",
            "nifti2.nii.gz",
            "pair-gz.hdr.gz",
            "example4d.nii.gz",
            "dtype-be-complex128.nii.gz",
        )
    ]
    with (
        LocalCluster(
            n_workers=2, threads_per_worker=2, processes=True, dashboard_address=None
        ) as cluster,
        Client(cluster) as client,
    ):
        for _state in ("fresh", "warm"):
            for e in entries:
                ref = np.asanyarray(nib.load(e.path).dataobj)
                x = vx.load(e.path, chunks={-1: 1} if len(ref.shape) > 3 else "auto").to_dask()
                np.testing.assert_array_equal(client.compute(x).result(), ref, strict=True)
            client.run(flush_index_writes)  # the workers' indexes are now stored


def test_index_progress_bar_on_a_terminal(series_gz):
    import fcntl
    import os
    import pty
    import select
    import struct
    import subprocess
    import sys
    import termios

    p, _ = series_gz
    leader, follower = pty.openpty()
    fcntl.ioctl(follower, termios.TIOCSWINSZ, struct.pack("HHHH", 24, 100, 0, 0))
    proc = subprocess.Popen(
        [sys.executable, "-m", "voxray.cli", "index", "--force", str(p)],
        stderr=follower,
        stdout=subprocess.PIPE,
        env=dict(os.environ, COLUMNS="80"),
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
    assert b"indexing bold.nii.gz" in err
    assert b"%" in err
