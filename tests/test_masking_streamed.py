"""clean's streamed path (detrend, confounds, zscore_sample: two passes over t-chunks)
against nilearn.signal.clean, and its reads counted: every input chunk twice, no rechunk."""

from __future__ import annotations

import threading
import warnings

import dask
import dask.array as da
import numpy as np
import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from voxray.masking import clean

ns = pytest.importorskip("nilearn.signal")


def _nilearn(x, **kw):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return ns.clean(x, **kw)


@settings(max_examples=40, deadline=None)
@given(
    t=st.integers(3, 80),
    n=st.integers(1, 40),
    tchunk=st.integers(1, 30),
    vchunk=st.integers(1, 40),
    detrend=st.booleans(),
    standardize=st.sampled_from(["zscore_sample", None, True, False]),
    k=st.integers(0, 3),
    standardize_confounds=st.booleans(),
    level=st.sampled_from([0.0, 1.0, 1000.0]),
    seed=st.integers(0, 2**16),
)
def test_streamed_clean_equals_nilearn(
    t, n, tchunk, vchunk, detrend, standardize, k, standardize_confounds, level, seed
):
    assume(k <= t - 3)  # more confounds than that leave only rounding noise to compare
    rng = np.random.default_rng(seed)
    x = level + rng.normal(0, 3, size=(t, n)) + 0.05 * np.arange(t)[:, None]
    confounds = rng.normal(size=(t, k)) if k else None
    kw = dict(
        detrend=detrend,
        standardize=standardize,
        confounds=confounds,
        standardize_confounds=standardize_confounds,
        filter=False,
    )
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        lazy = clean(da.from_array(x, chunks=(tchunk, vchunk)), **kw)
    assert lazy.chunks[0] == da.from_array(x, chunks=(tchunk, vchunk)).chunks[0]  # no rechunk
    got = lazy.compute()
    want = _nilearn(x, **kw)
    assert got.dtype == want.dtype and got.shape == want.shape
    assert np.abs(got - want).max() <= 1e-6 * max(np.abs(want).max(), 1e-12 * np.abs(x).max())


def test_streamed_clean_of_float32_matches_nilearn_in_float32():
    x = np.random.default_rng(3).normal(800, 5, size=(120, 500)).astype(np.float32)
    got = clean(da.from_array(x, chunks=(25, 500)), t_r=2.0).compute()
    want = _nilearn(x, t_r=2.0)
    assert got.dtype == want.dtype == np.float32
    assert np.abs(got - want).max() <= 1e-5 * np.abs(want).max()


def test_streamed_clean_reads_each_chunk_twice_and_never_rechunks():
    x = np.random.default_rng(4).normal(100, 2, size=(60, 30))
    calls = []
    lock = threading.Lock()

    def count(block, block_info=None):
        with lock:
            calls.append(block_info[0]["chunk-location"])
        return block

    src = da.from_array(x, chunks=(10, 30)).map_blocks(count, dtype=x.dtype)
    with dask.config.set(scheduler="threads"):
        out = clean(src, detrend=True, standardize="zscore_sample")
        assert len(calls) == 6  # the statistics' pass, at call time
        got = out.compute()
    assert sorted(calls) == sorted([(i, 0) for i in range(6)] * 2)
    np.testing.assert_allclose(got, _nilearn(x), atol=1e-9)
    assert not any("rechunk" in str(key) for key in out.__dask_graph__())
