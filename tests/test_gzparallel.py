"""The parallel first pass over never-indexed gzip streams (sources/gzparallel.py).

Every check compares the parallel pass with the serial one (and with zlib): the same
bytes, an index that serves every range the same, the same errors at the same offsets.
Small chunks (``VOXRAY_GZ_CHUNK``) make small files take the parallel path.
"""

from __future__ import annotations

import gzip
import warnings
import zlib

import nibabel as nib
import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import voxray as vx
from voxray.errors import CorruptGzipError, TrailingDataWarning, TruncatedFileError, VoxrayError
from voxray.sources import GzipSource, clear_cache, open_source
from voxray.sources import gzparallel as gp
from voxray.sources.local import LocalFileSource

CHUNK = 16 * 1024


@pytest.fixture
def parallel(monkeypatch):
    """Small chunks and no size threshold: every pass over a few chunks is parallel."""
    monkeypatch.setenv("VOXRAY_GZ_CHUNK", str(CHUNK))
    monkeypatch.setenv("VOXRAY_GZ_PARALLEL_MIN", "0")
    monkeypatch.setenv("VOXRAY_IO_THREADS", "2")


def _payload(n: int, seed: int = 0, kind: str = "int16") -> bytes:
    """Image-like bytes: noisy int16 volumes (long back-reference chains), text, zeros."""
    rng = np.random.default_rng(seed)
    if kind == "int16":
        base = rng.integers(0, 2000, n // 2)
        return (base + rng.integers(-40, 40, n // 2)).astype("<i2").tobytes()
    if kind == "repetitive":
        words = rng.choice([b"voxel ", b"affine ", b"header ", b"\x00\x00\x10"], n // 6)
        return b"".join(words)[:n]
    if kind == "zeros":
        return bytes(n)
    return rng.integers(0, 256, n, dtype=np.uint8).tobytes()  # incompressible: stored blocks


def _deflate(data: bytes, level: int = 6, strategy: int = zlib.Z_DEFAULT_STRATEGY) -> bytes:
    c = zlib.compressobj(level, zlib.DEFLATED, 31, 8, strategy)
    return c.compress(data) + c.flush()


def _source(path, serial: bool = False) -> GzipSource:
    src = GzipSource(LocalFileSource(str(path)))
    src._serial_only = serial
    return src


def _full(src: GzipSource, n: int) -> bytes:
    buf = bytearray(n)
    src.readinto(0, buf)
    return bytes(buf)


def _check_index_serves_ranges(src: GzipSource, ref: bytes, seed: int = 0) -> None:
    """Reads behind the frontier go through the index: every range is the same bytes."""
    rng = np.random.default_rng(seed)
    assert src.index.complete and src.index.uncompressed_size == len(ref)
    out = np.asarray(src.index.out)
    assert np.all(np.diff(out) > 0)
    for _ in range(30):
        a = int(rng.integers(0, len(ref)))
        b = min(len(ref), a + int(rng.integers(1, 5 * CHUNK)))
        assert src.read(a, b - a) == ref[a:b]


STREAMS = {
    "int16 level 6": lambda: _deflate(_payload(400_000)),
    "int16 level 1": lambda: _deflate(_payload(400_000, 1), 1),
    "int16 level 9": lambda: _deflate(_payload(400_000, 2), 9),
    "text-like": lambda: _deflate(_payload(600_000, 3, "repetitive")),
    "fixed Huffman only": lambda: _deflate(_payload(300_000, 4), 6, zlib.Z_FIXED),
    "Huffman only": lambda: _deflate(_payload(300_000, 5), 6, zlib.Z_HUFFMAN_ONLY),
    "RLE": lambda: _deflate(_payload(300_000, 6), 6, zlib.Z_RLE),
    "stored blocks (level 0)": lambda: _deflate(_payload(200_000, 7), 0),
    "incompressible": lambda: _deflate(_payload(200_000, 8, "random")),
    "mostly zeros": lambda: _deflate(_payload(3_000_000, 9, "zeros") + _payload(100_000, 9)),
    "many members": lambda: b"".join(
        gzip.compress(_payload(50_000, 10 + i), mtime=0) for i in range(6)
    ),
    "tiny and empty members": lambda: b"".join(
        [
            _deflate(_payload(300_000, 20)),
            gzip.compress(b"", mtime=0),
            gzip.compress(b"x", mtime=0),
            _deflate(_payload(100_000, 21)),
        ]
    ),
    "zero padding after the stream": lambda: _deflate(_payload(300_000, 22)) + bytes(5000),
}


@pytest.mark.parametrize("name", list(STREAMS))
def test_parallel_pass_equals_serial_and_zlib(tmp_path, parallel, name):
    comp = STREAMS[name]()
    p = tmp_path / "s.gz"
    p.write_bytes(comp)
    ref = b"".join(_members(comp))
    par, ser = _source(p), _source(p, serial=True)
    assert _full(par, len(ref)) == ref
    assert _full(ser, len(ref)) == ref
    assert par.index.members == ser.index.members
    _check_index_serves_ranges(par, ref)
    # every gzip member start is a point with no window, as in the serial index
    starts = {par.index.out[i] for i in range(len(par.index)) if not par.index.window(i)}
    assert starts == {ser.index.out[i] for i in range(len(ser.index)) if not ser.index.window(i)}


def _members(comp: bytes):
    """Each gzip member's decompressed bytes (zlib's own reading)."""
    rest = comp
    while rest and rest.strip(b"\x00"):
        d = zlib.decompressobj(31)
        yield d.decompress(rest)
        rest = d.unused_data


def test_the_pass_really_runs_in_parallel_and_inflates_each_byte_about_once(
    tmp_path, parallel, monkeypatch
):
    chunk = 1024 * 1024
    monkeypatch.setenv("VOXRAY_GZ_CHUNK", str(chunk))
    ref = _payload(24_000_000, 30)
    p = tmp_path / "s.gz"
    p.write_bytes(_deflate(ref))
    src = _source(p)
    seen = []
    orig = gp._Decoder.__call__

    def spy(self, k, start_bit, window, buf=None):
        c = orig(self, k, start_bit, window, buf)
        seen.append((k, c.start is not None and window is None))
        return c

    gp._Decoder.__call__ = spy
    try:
        assert _full(src, len(ref)) == ref
    finally:
        gp._Decoder.__call__ = orig
    speculative = [k for k, spec in seen if spec]
    assert len(speculative) >= 0.8 * (p.stat().st_size // chunk)
    # the window fix-ups re-inflate a little at each chunk's start, nothing more
    assert src.stats.bytes_inflated <= len(ref) * 1.35
    assert src.index.complete


@pytest.mark.parametrize("stop_frac", [0.3, 0.7])
def test_a_partial_read_stops_early_and_the_next_read_goes_on(tmp_path, parallel, stop_frac):
    ref = _payload(8_000_000, 31)
    p = tmp_path / "s.gz"
    p.write_bytes(_deflate(ref))
    src = _source(p)
    a = int(len(ref) * stop_frac)
    assert src.read(a, 1000) == ref[a : a + 1000]
    assert not src.index.complete
    assert src.index.frontier_out < len(ref)
    # behind the frontier (the index or the last chunk in memory), then on to the end
    assert src.read(10, 5000) == ref[10:5010]
    assert src.read(len(ref) - 777, 777) == ref[-777:]
    _check_index_serves_ranges(src, ref, seed=1)


def test_highly_compressible_chunks_are_capped_and_continue_serially(
    tmp_path, parallel, monkeypatch
):
    monkeypatch.setattr(gp, "MAX_OUT", 256 * 1024)
    ref = _payload(400_000, 32) + bytes(3_000_000) + _payload(400_000, 33)
    p = tmp_path / "s.gz"
    p.write_bytes(_deflate(ref))
    src = _source(p)
    assert _full(src, len(ref)) == ref
    _check_index_serves_ranges(src, ref, seed=2)


def _error_of(src: GzipSource, n: int):
    try:
        with warnings.catch_warnings(record=True) as w:
            warnings.simplefilter("always")
            _full(src, n)
            src.build_index()
    except VoxrayError as e:
        return type(e), str(e)
    return None, [str(x.message) for x in w if issubclass(x.category, TrailingDataWarning)]


def _damaged(comp: bytes, how: str, seed: int) -> bytes:
    rng = np.random.default_rng(seed)
    b = bytearray(comp)
    if how == "truncated":
        return bytes(b[: int(rng.integers(len(b) // 3, len(b) - 1))])
    if how == "bit flip":
        for _ in range(3):
            i = int(rng.integers(len(b) // 4, len(b) - 9))
            b[i] ^= 1 << int(rng.integers(0, 8))
        return bytes(b)
    if how == "bad crc":
        b[-8] ^= 0xFF
        return bytes(b)
    if how == "bad length":
        b[-3] ^= 0x01
        return bytes(b)
    if how == "trailing garbage":
        return bytes(b) + b"not gzip at all"
    raise AssertionError(how)


@pytest.mark.parametrize(
    "how", ["truncated", "bit flip", "bad crc", "bad length", "trailing garbage"]
)
@pytest.mark.parametrize("seed", [0, 1, 2])
def test_damaged_streams_raise_what_the_serial_pass_raises(tmp_path, parallel, how, seed):
    ref = _payload(800_000, 40 + seed)
    comp = _damaged(_deflate(ref), how, seed)
    p = tmp_path / "d.gz"
    p.write_bytes(comp)
    got = _error_of(_source(p), len(ref))
    want = _error_of(_source(p, serial=True), len(ref))
    assert got == want
    if how in ("bad crc", "bad length", "truncated"):
        assert got[0] in (CorruptGzipError, TruncatedFileError)


@settings(
    max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    sizes=st.lists(st.integers(0, 300_000), min_size=1, max_size=3),
    kinds=st.lists(st.sampled_from(["int16", "repetitive", "zeros", "random"]), min_size=3),
    level=st.integers(0, 9),
    chunk=st.sampled_from([4096, 9000, 40_000]),
    seed=st.integers(0, 1000),
)
def test_hypothesis_members_levels_chunks(tmp_path, monkeypatch, sizes, kinds, level, chunk, seed):
    monkeypatch.setenv("VOXRAY_GZ_CHUNK", str(chunk))
    monkeypatch.setenv("VOXRAY_GZ_PARALLEL_MIN", "0")
    members = [_payload(n, seed + i, kinds[i % len(kinds)]) for i, n in enumerate(sizes)]
    comp = b"".join(_deflate(m, level) for m in members)
    p = tmp_path / f"h{seed}-{chunk}-{level}.gz"
    p.write_bytes(comp)
    ref = b"".join(members)
    src = _source(p)
    if not ref:
        return
    assert _full(src, len(ref)) == ref
    _check_index_serves_ranges(src, ref, seed)


def test_voxray_load_of_a_never_indexed_nii_gz_in_parallel(tmp_path, parallel, fresh_cache):
    rng = np.random.default_rng(5)
    arr = (rng.integers(0, 3000, (40, 48, 30, 12)) - 1500).astype(np.int16)
    img = nib.Nifti1Image(arr, np.diag([2.0, 2.0, 2.5, 1.0]))
    p = tmp_path / "bold.nii.gz"
    nib.save(img, p)
    got = vx.load(p)
    np.testing.assert_array_equal(np.asarray(got.dataobj), arr, strict=True)
    src = open_source(got.dataobj.reader.source)
    assert src.index.complete
    clear_cache()
    again = vx.load(p)  # the stored index, made by the parallel pass, serves every volume
    for t in (0, 5, 11):
        np.testing.assert_array_equal(again.dataobj[..., t], arr[..., t])


def test_index_command_uses_the_parallel_pass(tmp_path, parallel, fresh_cache, capsys):
    from voxray.cli import main

    ref = _payload(1_000_000, 50)
    arr = np.frombuffer(ref, dtype=np.int16).reshape(50, 50, 200, order="F")
    p = tmp_path / "x.nii.gz"
    nib.save(nib.Nifti1Image(arr, np.eye(4)), p)
    assert main(["index", str(p)]) == 0
    clear_cache()
    img = vx.load(p)
    np.testing.assert_array_equal(img.dataobj[:, :, 123], arr[:, :, 123])


@pytest.mark.slow
def test_parallel_pass_over_http_and_on_a_process_cluster(tmp_path, monkeypatch, fresh_cache):
    from dask.distributed import Client, LocalCluster

    from voxray.testing.httpserver import RangeServer

    monkeypatch.setenv("VOXRAY_GZ_CHUNK", str(256 * 1024))
    monkeypatch.setenv("VOXRAY_GZ_PARALLEL_MIN", "0")
    rng = np.random.default_rng(6)
    arr = (rng.integers(0, 3000, (64, 64, 32, 20)) - 1500).astype(np.int16)
    nib.save(nib.Nifti1Image(arr, np.eye(4)), tmp_path / "r.nii.gz")
    with RangeServer(tmp_path) as http:
        url = http.url("r.nii.gz")
        img = vx.load(url)
        np.testing.assert_array_equal(np.asarray(img.dataobj), arr, strict=True)
        src = open_source(img.dataobj.reader.source)
        comp = (tmp_path / "r.nii.gz").stat().st_size
        # each chunk fetched about once: not a request per seek point
        assert src.raw.stats.bytes_read <= 1.5 * comp
        # A fresh cache: the workers each run a first pass of their own.
        monkeypatch.setenv("VOXRAY_CACHE_DIR", str(tmp_path / "worker-cache"))
        clear_cache()
        with (
            LocalCluster(
                n_workers=2, threads_per_worker=2, processes=True, dashboard_address=None
            ) as cluster,
            Client(cluster) as client,
        ):
            x = vx.load(url, chunks={-1: 5}).to_dask()
            np.testing.assert_array_equal(client.compute(x.sum(-1)).result(), arr.sum(-1))


def test_a_read_far_ahead_parks_what_it_passed_for_the_reads_behind(tmp_path, parallel):
    """dask runs tasks in its own order: the bytes a pass goes through for a read far
    ahead are parked, and the reads that come for them later inflate nothing."""
    ref = _payload(6_000_000, 60)
    p = tmp_path / "s.gz"
    p.write_bytes(_deflate(ref))
    src = _source(p)
    cut = 4_000_000
    assert src.read(cut, 100_000) == ref[cut : cut + 100_000]
    ahead = src.stats.bytes_inflated
    assert src._park is not None and src._park.bytes >= cut - 64 * 1024
    for a in range(0, cut, 500_000):  # every chunk behind, in reverse, then forward
        assert src.read(a, 500_000) == ref[a : a + 500_000]
    assert src.stats.bytes_inflated == ahead  # served by the park, not inflated again
    assert src._park.bytes < 64 * 1024  # and released once read
    assert src.read(1000, 2000) == ref[1000:3000]  # then through the index
    assert src.stats.bytes_inflated > ahead


def test_the_park_respects_its_budget(tmp_path, parallel, monkeypatch):
    monkeypatch.setenv("VOXRAY_GZ_PARK_BYTES", "1000000")
    ref = _payload(6_000_000, 61)
    p = tmp_path / "s.gz"
    p.write_bytes(_deflate(ref))
    src = _source(p)
    assert src.read(5_000_000, 1000) == ref[5_000_000:5_001_000]
    assert src._park.bytes <= 1_000_000
    for a in range(0, 5_000_000, 700_000):
        assert src.read(a, 700_000) == ref[a : a + 700_000]
    src.close()


def test_first_open_mean_over_time_inflates_each_chunk_once(tmp_path, parallel, fresh_cache):
    """A dask reduction over a never-indexed file, whatever order dask picks."""
    rng = np.random.default_rng(7)
    base = rng.integers(0, 2000, (32, 32, 16))
    arr = np.stack([base + rng.integers(-30, 30, base.shape) for _ in range(40)], -1)
    arr = arr.astype(np.int16)
    p = tmp_path / "bold.nii.gz"
    nib.save(nib.Nifti1Image(arr, np.eye(4)), p)
    img = vx.load(p, chunks={-1: 4})
    got = img.to_dask().mean(-1).compute(scheduler="threads")
    np.testing.assert_allclose(got, arr.mean(-1))
    src = open_source(img.dataobj.reader.source)
    used = src.stats.bytes_inflated
    # the same pass as one sequential read of the whole file (which inflates each byte
    # once, plus the window fix-ups at each of these small test chunks' starts)
    (tmp_path / "again.nii.gz").write_bytes(p.read_bytes())
    one = vx.load(tmp_path / "again.nii.gz")
    np.asarray(one.dataobj)
    once = open_source(one.dataobj.reader.source).stats.bytes_inflated
    assert used <= 1.2 * once  # measured 1.14 here (16 KiB chunks); 1.0 on the 641 MB file
