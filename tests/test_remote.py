"""Reading from object storage: a real S3 API server (moto, 127.0.0.1) and a local HTTP
server with Range support and injected faults.

Every corpus file read from ``s3://`` and ``http://`` matches nibabel reading the
local copy. I/O is asserted through the sources' counters and the HTTP server's
own request and byte counts: opening reads the header only, a volume costs its
bytes (uncompressed) or its compressed span plus at most one seek-point spacing
(indexed ``.nii.gz``), a full read without an index streams the object once.
"""

from __future__ import annotations

import gzip
import os
import pickle
import shutil
import tempfile as _tempfile

import nibabel as nib
import numpy as np
import pytest

import voxray as vx
from voxray.errors import FileChangedError, ImageNotFoundError, VoxrayError
from voxray.sources import clear_cache, open_source
from voxray.sources import remote as remote_mod
from voxray.sources.gzcache import cache_path, find_index, sidecar_path
from voxray.sources.remote import AccessDeniedError, RangeNotSupportedError, RemoteError
from voxray.testing import build_corpus
from voxray.testing.corpus import NIBABEL_DATA
from voxray.testing.httpserver import RangeServer

_NAMES = [e.name for e in build_corpus(_tempfile.mkdtemp(prefix="voxray-corpus-names-"))]


# -- fixtures -------------------------------------------------------------------


@pytest.fixture(scope="module")
def bucket(s3_endpoint, corpus, corpus_dir, bold):
    """A bucket holding the corpus (``c/``) and the larger 4D images (``bold/``)."""
    import uuid

    import s3fs

    options = {"key": "testing", "secret": "testing", "endpoint_url": s3_endpoint}
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("AWS_DEFAULT_REGION", "us-east-1")
        fs = s3fs.S3FileSystem(skip_instance_cache=True, **options)
        name = f"voxray-{uuid.uuid4().hex[:12]}"
        fs.mkdir(name)
        fs.put(str(corpus_dir) + "/", f"{name}/c/", recursive=True)
        fs.put(str(bold) + "/", f"{name}/bold/", recursive=True)
        yield type("Bucket", (), {"name": name, "options": options, "fs": fs})
        fs.rm(name, recursive=True)


@pytest.fixture(scope="module")
def bold(tmp_path_factory):
    """4D images of realistic content (anatomy tiled, with noise): 24 volumes of 528 KiB.

    ``bold.nii`` (uncompressed), ``bold.nii.gz`` (one gzip member, as gzip and
    nibabel write it: no index inside) and ``bold-vx.nii.gz`` (written by voxray,
    with its seek index in the file's trailer).
    """
    d = tmp_path_factory.mktemp("bold")
    anat = np.asarray(nib.load(os.path.join(NIBABEL_DATA, "anatomical.nii")).dataobj, np.int16)
    vol = np.tile(anat, (2, 2, 2))  # (66, 82, 50)
    rng = np.random.default_rng(0)
    data = np.stack(
        [vol + rng.integers(-3, 4, vol.shape, dtype=np.int16) for _ in range(24)], axis=-1
    )
    img = nib.Nifti1Image(data, np.diag([2.0, 2.0, 2.2, 1.0]))
    img.header.set_xyzt_units("mm", "sec")
    nib.save(img, d / "bold.nii")
    with open(d / "bold.nii", "rb") as f, gzip.open(d / "bold.nii.gz", "wb", 6) as g:
        shutil.copyfileobj(f, g)
    vx.save(vx.load(d / "bold.nii"), d / "bold-vx.nii.gz")
    return d


@pytest.fixture(scope="module")
def http(corpus, corpus_dir):
    with RangeServer(corpus_dir) as server:
        yield server


@pytest.fixture
def served(bold, tmp_path):
    """A private copy of the 4D images, for servers that misbehave or files that change."""
    d = tmp_path / "served"
    shutil.copytree(bold, d)
    return d


def s3url(bucket, key: str) -> str:
    return f"s3://{bucket.name}/{key}"


def raw_source(img):
    """The remote source under an image's proxy (under the gzip layer, if any)."""
    src = open_source(img.dataobj.reader.source)
    return getattr(src, "raw", src)


def volume_bytes(path: str, t: int):
    ref = nib.load(path)
    hdr = ref.header
    n = int(np.prod(ref.shape[:3])) * hdr.get_data_dtype().itemsize
    start = int(hdr.get_data_offset()) + t * n
    return start, start + n


def assert_same_as_nibabel(img, path: str) -> None:
    ref = nib.load(path)
    a, b = np.asanyarray(img.dataobj), np.asanyarray(ref.dataobj)
    assert a.dtype == b.dtype and a.shape == b.shape
    assert a.tobytes() == b.tobytes()
    np.testing.assert_array_equal(img.affine, ref.affine)
    assert img.header.binaryblock == ref.header.binaryblock


# -- every corpus file, remotely ---------------------------------------------------


@pytest.mark.parametrize("name", _NAMES)
def test_corpus_from_s3_reads_like_nibabel_locally(name, corpus, corpus_dir, bucket):
    entry = corpus[name]
    key = "c/" + os.path.relpath(entry.path, corpus_dir)
    img = vx.load(s3url(bucket, key), storage_options=bucket.options)
    assert_same_as_nibabel(img, entry.path)
    # The same file names as nibabel's, as URLs.
    ref = nib.load(entry.path)
    for kind, holder in ref.file_map.items():
        rel = os.path.relpath(holder.filename, corpus_dir)
        assert img.file_map[kind].filename == s3url(bucket, "c/" + rel)


@pytest.mark.parametrize("name", _NAMES)
def test_corpus_over_http_reads_like_nibabel_locally(name, corpus, corpus_dir, http):
    entry = corpus[name]
    img = vx.load(http.url(os.path.relpath(entry.path, corpus_dir)))
    assert_same_as_nibabel(img, entry.path)


def test_pair_image_url_is_derived_from_the_header_url(corpus, corpus_dir, bucket):
    rel = os.path.relpath(corpus["nifti2-pair.hdr"].path, corpus_dir)
    img = vx.load(s3url(bucket, "c/" + rel), storage_options=bucket.options)
    assert img.file_map["header"].filename == s3url(bucket, "c/" + rel)
    assert img.file_map["image"].filename == s3url(bucket, "c/" + rel[:-4] + ".img")
    assert img.dataobj.reader.source.url.endswith("nifti2-pair.img")


# -- I/O: what opening and reading transfer -------------------------------------------


@pytest.mark.parametrize("name", ["bold.nii", "bold.nii.gz"])
def test_opening_reads_the_header_with_one_small_request(name, served, fresh_cache):
    with RangeServer(served) as server:
        img = vx.load(server.url(name))
        assert img.shape == (66, 82, 50, 24)
        src = raw_source(img)
        # One HEAD (size, ETag) and one range request of one cache block.
        assert server.requests == 2
        assert src.stats.requests == 1
        assert src.stats.bytes_read <= remote_mod.BLOCK < os.path.getsize(served / name) // 50
        assert server.bytes_sent == src.stats.bytes_read


def test_extensions_are_read_with_the_header(corpus, corpus_dir, http):
    entry = corpus["nibabel:example4d.nii.gz"]  # two extensions before the data
    http.reset_counts()
    clear_cache()
    img = vx.load(http.url(os.path.relpath(entry.path, corpus_dir)))
    assert [e.get_code() for e in img.header.extensions] == [6, 6]
    assert http.requests == 2


def test_an_uncompressed_volume_transfers_its_bytes_and_nothing_else(bucket, bold):
    clear_cache()
    img = vx.load(s3url(bucket, "bold/bold.nii"), storage_options=bucket.options)
    src = raw_source(img)
    src.stats.reset()
    vol = np.asarray(img.dataobj[..., 17])
    start, stop = volume_bytes(str(bold / "bold.nii"), 17)
    assert src.stats.bytes_read == stop - start  # one contiguous range: no slack at all
    np.testing.assert_array_equal(vol, np.asanyarray(nib.load(bold / "bold.nii").dataobj)[..., 17])
    # Two volumes a volume apart: two ranges, not the bytes between them.
    src.stats.reset()
    np.asarray(img.to_dask(chunks=(-1, -1, -1, 1))[..., [3, 5]])
    assert src.stats.bytes_read == 2 * (stop - start)


def test_neighbouring_ranges_are_coalesced_and_small_reads_cached(bucket, bold):
    clear_cache()
    img = vx.load(s3url(bucket, "bold/bold.nii"), storage_options=bucket.options)
    src = raw_source(img)
    src.stats.reset()
    bufs = [bytearray(100_000) for _ in range(4)]
    src.read_many([(1_000_000 + i * 110_000, b) for i, b in enumerate(bufs)])
    assert src.stats.requests == 1  # 10 KB gaps are read through
    assert src.stats.bytes_read == 3 * 110_000 + 100_000
    whole = (bold / "bold.nii").read_bytes()
    for i, b in enumerate(bufs):
        assert bytes(b) == whole[1_000_000 + i * 110_000 :][:100_000]
    src.stats.reset()
    first = src.read(2_000_000, 1000)
    assert src.stats.cache_misses == 1 and src.stats.requests == 1
    again = src.read(2_000_500, 1000)
    assert src.stats.cache_hits == 1 and src.stats.requests == 1
    assert first[500:] == again[:500]


def _compressed_at(index, offset: int) -> float:
    """Where decompressed ``offset`` lies in the compressed stream (interpolated between
    the seek points around it)."""
    out = [*index.out, index.uncompressed_size]
    inp = [*index.inp, index.compressed_size]
    j = int(np.searchsorted(out, offset, side="right"))
    o0, o1, i0, i1 = out[j - 1], out[j], inp[j - 1], inp[j]
    return i0 + (offset - o0) * (i1 - i0) / (o1 - o0)


def test_indexed_remote_gzip_volume_transfers_its_span_plus_one_spacing(bucket, bold, fresh_cache):
    from voxray.cli import main

    url = s3url(bucket, "bold/bold.nii.gz")
    opts = bucket.options
    args = ["index", url, "-q", *(f"-o{k}={v}" for k, v in opts.items())]
    assert main(args) == 0
    size = os.path.getsize(bold / "bold.nii.gz")
    clear_cache()  # the next process: finds the index in the cache (URL, size, ETag)
    img = vx.load(url, storage_options=opts)
    src = open_source(img.dataobj.reader.source)
    src.raw.stats.reset()
    vol = np.asarray(img.dataobj[..., -1])
    np.testing.assert_array_equal(vol, np.asanyarray(nib.load(bold / "bold.nii").dataobj)[..., -1])
    idx = src.index
    start, stop = volume_bytes(str(bold / "bold.nii"), 23)
    span = _compressed_at(idx, stop) - _compressed_at(idx, start)
    # One spacing, counted in compressed bytes (smaller than in decompressed ones).
    spacing = idx.spacing * size / idx.uncompressed_size
    got = src.raw.stats.bytes_read
    assert span <= got <= span + spacing
    assert got < size / 10


def test_remote_gzip_without_index_streams_once_and_stores_the_index(bucket, bold, fresh_cache):
    url = s3url(bucket, "bold/bold.nii.gz")
    img = vx.load(url, storage_options=bucket.options)
    spec = img.dataobj.reader.source
    assert find_index(spec) is None
    src = open_source(spec)
    data = np.asarray(img.dataobj)
    np.testing.assert_array_equal(data, np.asanyarray(nib.load(bold / "bold.nii").dataobj))
    size = os.path.getsize(bold / "bold.nii.gz")
    # Each compressed byte once (plus the header block read when opening, and the
    # look for a sidecar object).
    assert size <= src.raw.stats.bytes_read <= size + 2 * remote_mod.BLOCK
    from voxray.sources import flush_index_writes

    flush_index_writes()
    assert find_index(spec) == cache_path(spec)
    clear_cache()
    img = vx.load(url, storage_options=bucket.options)
    src = open_source(img.dataobj.reader.source)
    np.asarray(img.dataobj[..., 5])
    assert src.raw.stats.bytes_read < size / 10


def test_sidecar_object_is_written_and_used(bucket, bold, tmp_path, monkeypatch):
    from voxray.cli.index import build

    key = "bold/sidecar.nii.gz"
    bucket.fs.put(str(bold / "bold.nii.gz"), f"{bucket.name}/{key}")
    url = s3url(bucket, key)
    index, where = build(url, sidecar=True, progress=False, storage_options=bucket.options)
    assert where == url + ".gzi" and bucket.fs.exists(f"{bucket.name}/{key}.gzi")
    # Another machine: an empty cache; the sidecar object is found and used.
    monkeypatch.setenv("VOXRAY_CACHE_DIR", str(tmp_path / "elsewhere"))
    clear_cache()
    img = vx.load(url, storage_options=bucket.options)
    spec = img.dataobj.reader.source
    assert find_index(spec) == sidecar_path(spec) == url + ".gzi"
    src = open_source(spec)
    np.asarray(img.dataobj[..., 20])
    assert src.index.complete and len(src.index) == len(index)
    assert src.raw.stats.bytes_read < os.path.getsize(bold / "bold.nii.gz") / 10
    assert not cache_path(spec).exists()  # nothing was built


def test_voxray_written_gzip_is_random_access_remotely_without_an_index(bucket, bold):
    clear_cache()
    url = s3url(bucket, "bold/bold-vx.nii.gz")
    img = vx.load(url, storage_options=bucket.options)
    src = open_source(img.dataobj.reader.source)
    vol = np.asarray(img.dataobj[..., 12])
    np.testing.assert_array_equal(vol, np.asanyarray(nib.load(bold / "bold.nii").dataobj)[..., 12])
    assert src.index.complete  # from the file's own trailer
    assert src.raw.stats.bytes_read < os.path.getsize(bold / "bold-vx.nii.gz") / 5


# -- a cluster ------------------------------------------------------------------------


@pytest.mark.slow
def test_mean_over_time_on_a_process_cluster_from_s3(bucket, bold):
    from dask.distributed import Client, LocalCluster

    img = vx.load(s3url(bucket, "bold/bold.nii.gz"), storage_options=bucket.options)
    graph = img.to_dask(chunks=(-1, -1, 10, -1)).mean(axis=-1)
    task = pickle.dumps(graph.__dask_graph__())
    assert len(task) < 10_000 * graph.npartitions  # plain values, no filesystem or index
    assert b"S3FileSystem" not in task
    with (
        LocalCluster(
            n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None
        ) as cluster,
        Client(cluster),
    ):
        got = graph.compute()
    want = np.asanyarray(nib.load(bold / "bold.nii").dataobj).mean(axis=-1)
    np.testing.assert_allclose(got, want)


# -- objects that change --------------------------------------------------------------


def test_an_object_replaced_under_a_reader_is_detected(bucket, bold):
    key = "bold/changing.nii"
    bucket.fs.put(str(bold / "bold.nii"), f"{bucket.name}/{key}")
    url = s3url(bucket, key)
    clear_cache()
    img = vx.load(url, storage_options=bucket.options)
    # Same size, other content: only the ETag tells.
    data = bytearray((bold / "bold.nii").read_bytes())
    data[-1000:] = b"\x01" * 1000
    bucket.fs.pipe(f"{bucket.name}/{key}", bytes(data))
    clear_cache()  # a worker process opening it now
    with pytest.raises(FileChangedError, match="changed since it was opened"):
        np.asarray(img.dataobj[..., -1])
    # Loaded again, it is the new version, read whole (not half old, half new).
    local = bold.parent / "changing.nii"
    local.write_bytes(bytes(data))
    fresh = vx.load(url, storage_options=bucket.options)
    np.testing.assert_array_equal(
        np.asarray(fresh.dataobj), np.asanyarray(nib.load(local).dataobj)
    )


def test_http_range_requests_carry_if_match(served):
    with RangeServer(served) as server:
        img = vx.load(server.url("bold.nii"))
        np.asarray(img.dataobj[..., 0])
        p = served / "bold.nii"
        st = p.stat()
        os.utime(p, ns=(st.st_atime_ns, st.st_mtime_ns + 10**9))  # a new version (new ETag)
        with pytest.raises(FileChangedError, match="412"):
            np.asarray(img.dataobj[..., 1])  # no reopening: the server refuses the range


def test_a_stale_cached_index_is_not_used_for_a_new_version(served, fresh_cache):
    with RangeServer(served) as server:
        url = server.url("bold.nii.gz")
        np.asarray(vx.load(url).dataobj)  # builds and stores the index of this version
        from voxray.sources import flush_index_writes

        flush_index_writes()
        other = np.asanyarray(nib.load(served / "bold.nii").dataobj)[..., ::-1].copy()
        nib.save(nib.Nifti1Image(other, np.eye(4)), served / "bold.nii.gz")
        clear_cache()
        img = vx.load(url)
        assert find_index(img.dataobj.reader.source) is None  # keyed by ETag: not found
        np.testing.assert_array_equal(np.asarray(img.dataobj[..., 2]), other[..., 2])


# -- faults -----------------------------------------------------------------------------


@pytest.mark.parametrize("fault", ["fail_rate", "drop_rate"])
@pytest.mark.parametrize("name", ["bold.nii", "bold.nii.gz", "bold-vx.nii.gz"])
def test_flaky_server_still_yields_identical_data(fault, name, served, fresh_cache):
    want = np.asanyarray(nib.load(served / "bold.nii").dataobj)
    with RangeServer(served, **{fault: 0.3}, seed=len(name)) as server:
        img = vx.load(server.url(name))
        got = np.asarray(img.dataobj)  # the gzip one builds its index on the way
        assert got.tobytes() == want.tobytes()
        clear_cache()
        img = vx.load(server.url(name))
        assert np.asarray(img.dataobj[..., 19]).tobytes() == want[..., 19].tobytes()
        assert server.faults > 0


def test_permanently_failing_server_gives_a_clear_error_after_bounded_attempts(served):
    with RangeServer(served, fail_always=True) as server:
        with pytest.raises(RemoteError, match=r"failed after \d+ attempts.*503"):
            vx.load(server.url("bold.nii"))
        # fsspec looks an HTTP object up with HEAD, then GET: two requests per attempt.
        assert server.requests == 2 * (remote_mod.RETRIES + 1)


def test_a_server_failing_mid_read_gives_a_clear_error(served):
    with RangeServer(served) as server:
        img = vx.load(server.url("bold.nii"))
        server.fail_always = True
        with pytest.raises(RemoteError, match=r"bold\.nii.*failed after"):
            np.asarray(img.dataobj[..., 4])
        assert server.requests <= 2 + remote_mod.RETRIES + 1


def test_missing_and_forbidden_objects(served, bucket):
    with RangeServer(served, deny=("bold.nii",)) as server:
        with pytest.raises(AccessDeniedError, match=r"bold\.nii.*403"):
            vx.load(server.url("bold.nii"))
        with pytest.raises(ImageNotFoundError, match=r"nope\.nii.*404"):
            vx.load(server.url("nope.nii"))
        assert server.requests == 4  # HEAD and GET each (fsspec's lookup), no retries
    with pytest.raises(ImageNotFoundError, match="404"):
        vx.load(s3url(bucket, "c/nope.nii"), storage_options=bucket.options)
    with pytest.raises(ImageNotFoundError):
        vx.load(f"s3://no-such-bucket-{os.getpid()}/x.nii", storage_options=bucket.options)


def test_pair_with_a_missing_image_object_names_it(bucket, corpus, corpus_dir):
    rel = os.path.relpath(corpus["nifti2-pair.hdr"].path, corpus_dir)
    bucket.fs.put(corpus["nifti2-pair.hdr"].path, f"{bucket.name}/lonely/{rel}")
    with pytest.raises(ImageNotFoundError, match=r"image file .*nifti2-pair\.img.* is missing"):
        vx.load(s3url(bucket, f"lonely/{rel}"), storage_options=bucket.options)


def test_server_ignoring_range_small_object_is_fetched_once(corpus, corpus_dir):
    entry = corpus["le-int16-4d.nii"]
    with RangeServer(corpus_dir, honour_range=False) as server:
        clear_cache()
        img = vx.load(server.url(os.path.relpath(entry.path, corpus_dir)))
        assert_same_as_nibabel(img, entry.path)
        # HEAD, then the first GET brought the whole (small) object: no more requests.
        assert server.requests == 2


def test_server_ignoring_range_large_object_is_refused_clearly(served, monkeypatch):
    monkeypatch.setattr(remote_mod, "WHOLE_MAX", 1 << 20)
    with RangeServer(served, honour_range=False) as server:
        clear_cache()
        with pytest.raises(RangeNotSupportedError, match="ignores Range requests"):
            vx.load(server.url("bold.nii"))


def test_remote_errors_are_voxray_errors():
    assert issubclass(RemoteError, VoxrayError) and issubclass(RemoteError, OSError)
    assert issubclass(AccessDeniedError, PermissionError)
    assert not issubclass(RemoteError, ValueError)


def test_except_valueerror_does_not_swallow_an_outage(served):
    """Code that guards a computation against bad values must not hide a server going
    down: the outage is an OSError, not a ValueError (issue 12's hierarchy)."""
    with RangeServer(served) as server:
        img = vx.load(server.url("bold.nii"))
        lazy = img.to_dask()[..., 3].sum()
        server.fail_always = True  # 503 for every request from now on
        caught = None
        try:
            try:
                lazy.compute(scheduler="threads")
            except ValueError:  # a caller's handler for bad values
                caught = "ValueError"
        except OSError as e:
            caught = e
    assert isinstance(caught, RemoteError), caught
    assert "bold.nii" in str(caught)


# -- the command line ----------------------------------------------------------------


def test_info_on_a_url(bucket, capsys):
    from voxray.cli import main

    url = s3url(bucket, "bold/bold.nii.gz")
    opts = [f"-o{k}={v}" for k, v in bucket.options.items()]
    assert main(["info", url, "--json", *opts]) == 0
    import json

    d = json.loads(capsys.readouterr().out)
    assert d["path"] == url
    assert d["shape"] == [66, 82, 50, 24]
    assert d["files"]["image"] == {
        "path": url,
        "bytes": bucket.fs.size(f"{bucket.name}/bold/bold.nii.gz"),
    }
    assert "gzip_index" in d


@pytest.mark.parametrize("fault", ["fail_rate", "drop_rate"])
def test_flaky_s3_endpoint_still_yields_identical_data(fault, bucket, bold, fresh_cache):
    """The S3 API server behind a proxy that fails or drops 30% of requests; with
    botocore's own retries off, voxray's do the work."""
    want = np.asanyarray(nib.load(bold / "bold.nii").dataobj)
    with RangeServer(upstream=bucket.options["endpoint_url"], **{fault: 0.3}, seed=7) as proxy:
        options = {
            **bucket.options,
            "endpoint_url": proxy.url().rstrip("/"),
            "config_kwargs": {"retries": {"max_attempts": 1, "mode": "standard"}},
        }
        clear_cache()
        for key in ("bold/bold.nii", "bold/bold.nii.gz"):
            img = vx.load(s3url(bucket, key), storage_options=options)
            assert np.asarray(img.dataobj).tobytes() == want.tobytes()
        assert proxy.faults > 0
        if fault == "fail_rate":  # (s3fs itself retries dropped connections)
            assert raw_source(img).stats.retries > 0


def test_any_fsspec_url_memory_filesystem(corpus):
    """Neither S3 nor HTTP: the generic path (cat_file / cat_ranges) of any fsspec URL."""
    import fsspec

    fs = fsspec.filesystem("memory")
    names = ["le-int16-4d.nii", "nibabel:example4d.nii.gz", "pair.img"]
    for name in names:
        path = corpus[name].path
        for holder in nib.load(path).file_map.values():
            with open(holder.filename, "rb") as f:
                fs.pipe(f"/vx-test/{os.path.basename(holder.filename)}", f.read())
    try:
        for name in names:
            img = vx.load(f"memory://vx-test/{os.path.basename(corpus[name].path)}")
            assert_same_as_nibabel(img, corpus[name].path)
            assert isinstance(raw_source(img), remote_mod.RemoteSource)
    finally:
        fs.rm("/vx-test", recursive=True)


def test_file_urls_are_local_paths(corpus):
    path = corpus["le-int16-4d.nii"].path
    img = vx.load("file://" + path)
    assert_same_as_nibabel(img, path)
    assert not isinstance(raw_source(img), remote_mod.RemoteSource)


def test_storage_option_flags_parse_json_values():
    from voxray.cli import build_parser

    args = build_parser().parse_args(
        [
            "info",
            "s3://b/k.nii",
            "-o",
            "anon=true",
            "-o",
            "endpoint_url=http://h:9000",
            "-o",
            'client_kwargs={"region_name": "eu-west-1"}',
        ]
    )
    from voxray.cli.options import storage_options

    assert storage_options(args) == {
        "anon": True,
        "endpoint_url": "http://h:9000",
        "client_kwargs": {"region_name": "eu-west-1"},
    }
    with pytest.raises(SystemExit):
        build_parser().parse_args(["info", "x.nii", "-o", "novalue"])


def test_open_dataarray_from_s3_matches_the_local_file(bucket, bold):
    url = s3url(bucket, "bold/bold.nii.gz")
    da = vx.open_dataarray(url, storage_options=bucket.options)
    local = vx.open_dataarray(bold / "bold.nii.gz")
    assert da.dims == ("i", "j", "k", "t")
    np.testing.assert_array_equal(da.x.values, local.x.values)
    part = da.isel(k=slice(20, 30)).mean("t").compute()
    np.testing.assert_array_equal(part.values, local.isel(k=slice(20, 30)).mean("t").values)


def test_s3_ranges_carry_if_match(bucket, bold):
    """An object replaced while a reader that already opened it is reading: refused (412)."""
    key = "bold/replaced-mid-read.nii"
    bucket.fs.put(str(bold / "bold.nii"), f"{bucket.name}/{key}")
    clear_cache()
    img = vx.load(s3url(bucket, key), storage_options=bucket.options)
    np.asarray(img.dataobj[..., 0])  # the worker's source is open
    data = bytearray((bold / "bold.nii").read_bytes())
    data[-100:] = b"\x02" * 100
    bucket.fs.pipe(f"{bucket.name}/{key}", bytes(data))
    with pytest.raises(FileChangedError, match="412"):
        np.asarray(img.dataobj[..., 1])
