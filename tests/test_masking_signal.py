"""voxray.masking.clean against nilearn.signal.clean 0.14.1: every detrend / standardize
/ confounds / filter combination within 1e-6 relative (max abs error / max abs
reference), hypothesis over shapes, chunkings and parameters, laziness, errors, a
process cluster."""

from __future__ import annotations

import itertools
import pickle
import warnings

import dask
import dask.array as da
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from voxray.errors import InputError
from voxray.masking import clean

ns = pytest.importorskip("nilearn.signal")

TOL = 1e-6
WORST = {"err": 0.0}


def _signals(t, n, seed=0, dtype=np.float64):
    rng = np.random.default_rng(seed)
    tt = np.arange(t)[:, None]
    x = 100 + rng.normal(0, 5, (t, n)) + 0.3 * tt + 4 * np.sin(tt / 3.0 + rng.random(n))
    return x.astype(dtype)


def _rel(got, ref):
    scale = np.abs(ref).max()
    err = float(np.abs(np.asarray(got) - ref).max() / (scale if scale else 1.0))
    if ref.dtype == np.float64:
        WORST["err"] = max(WORST["err"], err)
    return err


def _ref(x, **kw):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return ns.clean(x, **kw)


def _ours(x, **kw):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return clean(x, **kw)


COMBOS = list(
    itertools.product(
        [True, False],  # detrend
        ["zscore_sample", "psc", None, True, False],  # standardize
        [False, True],  # confounds
        ["butterworth", "cosine", False],  # filter
    )
)


@pytest.mark.parametrize(("detrend", "standardize", "with_conf", "filt"), COMBOS)
def test_every_combination_equals_nilearn(detrend, standardize, with_conf, filt):
    t, n = 60, 23
    x = _signals(t, n)
    conf = np.random.default_rng(1).normal(size=(t, 3)) if with_conf else None
    kw = dict(
        detrend=detrend,
        standardize=standardize,
        confounds=conf,
        filter=filt,
        t_r=2.0,
        high_pass=0.01 if filt else None,
        low_pass=0.15 if filt == "butterworth" else None,
    )
    ref = _ref(x, **kw)
    for how in ("dask", "zarr") if with_conf and detrend else ("dask",):
        y = _ours(
            da.from_array(x, chunks=(17, 10)), voxray__block_columns=6, voxray__rechunk=how, **kw
        )
        assert isinstance(y, da.Array)
        got = y.compute()
        assert got.shape == ref.shape and got.dtype == ref.dtype
        assert _rel(got, ref) <= TOL
    np.testing.assert_array_equal(_ours(x, **kw), ref)  # numpy in -> nilearn's numpy out


@settings(max_examples=20, deadline=None)
@given(
    t=st.integers(40, 90),
    n=st.integers(1, 30),
    ct=st.integers(1, 40),
    cn=st.integers(1, 30),
    bc=st.integers(1, 12),
    detrend=st.booleans(),
    standardize=st.sampled_from(["zscore_sample", "psc", None]),
    n_conf=st.integers(0, 4),
    filt=st.sampled_from(["butterworth", "cosine", False]),
    runs=st.booleans(),
    scrub=st.booleans(),
    dtype=st.sampled_from([np.float64, np.float32]),
    standardize_confounds=st.booleans(),
    seed=st.integers(0, 2**16),
)
def test_hypothesis_shapes_chunks_parameters(
    t,
    n,
    ct,
    cn,
    bc,
    detrend,
    standardize,
    n_conf,
    filt,
    runs,
    scrub,
    dtype,
    standardize_confounds,
    seed,
):
    x = _signals(t, n, seed, dtype)
    rng = np.random.default_rng(seed + 1)
    conf = rng.normal(size=(t, n_conf)) if n_conf else None
    run_labels = np.repeat([0, 1], [t // 2, t - t // 2]) if runs else None
    sample_mask = None
    if scrub:
        keep = np.ones(t, bool)
        keep[rng.choice(np.arange(3, t - 3), 3, replace=False)] = False
        if runs:
            sample_mask = [np.flatnonzero(keep[: t // 2]), np.flatnonzero(keep[t // 2 :])]
        else:
            sample_mask = keep
    kw = dict(
        detrend=detrend,
        standardize=standardize,
        confounds=conf,
        filter=filt,
        t_r=2.0,
        high_pass=0.02 if filt else None,
        low_pass=0.2 if filt == "butterworth" and not runs else None,
        runs=run_labels,
        sample_mask=sample_mask,
        standardize_confounds=standardize_confounds,
    )
    try:
        ref = _ref(x, **kw)
    except ValueError:
        with pytest.raises(InputError):
            _ours(da.from_array(x, chunks=(ct, cn)), **kw)
        return
    got = _ours(da.from_array(x, chunks=(ct, cn)), voxray__block_columns=bc, **kw).compute()
    assert got.shape == ref.shape and got.dtype == ref.dtype
    # float32: nilearn computes in float32 too; sums over other column layouts round
    # differently (measured worst 1.7e-6 with psc), so float32 gets float32's tolerance
    assert _rel(got, ref) <= (TOL if dtype == np.float64 else 1e-5)


def test_ensure_finite_extrapolate_and_butterworth_kwargs():
    x = _signals(50, 9)
    x[4, 2] = np.nan
    x[7, 3] = np.inf
    keep = np.ones(50, bool)
    keep[[0, 1, 20, 49]] = False
    for kw in (
        dict(ensure_finite=True, t_r=2.0, high_pass=0.01),
        dict(ensure_finite=True, sample_mask=keep, extrapolate=True, t_r=2.0, low_pass=0.2),
        dict(ensure_finite=True, sample_mask=keep, extrapolate=False, t_r=2.0, low_pass=0.2),
        dict(ensure_finite=True, t_r=2.0, low_pass=0.2, butterworth__padtype="constant"),
    ):
        ref = _ref(x, **kw)
        got = _ours(da.from_array(x, chunks=(11, 4)), **kw).compute()
        assert got.shape == ref.shape
        assert _rel(got, ref) <= TOL


def test_lazy_and_column_blocks_bound_the_tasks():
    x = _signals(40, 50)
    calls = {"n": 0}

    def count(block):
        calls["n"] += 1
        return block

    src = da.from_array(x, chunks=(10, 50)).map_blocks(count, meta=np.empty((0, 0)))
    calls["n"] = 0
    y = clean(src, t_r=2.0, high_pass=0.01, voxray__block_columns=8)
    assert calls["n"] == 0  # nothing computed at call time (no psc)
    assert y.chunks == ((40,), (8,) * 6 + (2,))
    with dask.config.set(scheduler="sync"):
        y.compute()
    assert calls["n"] == 4  # each input chunk computed once


def test_errors_are_input_errors():
    x = da.from_array(_signals(30, 4), chunks=(10, 4))
    with pytest.raises(InputError, match="standardize"):
        clean(x, standardize="zscore")  # not an allowed strategy in nilearn 0.14.1
    with pytest.raises(InputError):
        clean(x, filter="nope")
    with pytest.raises(InputError):
        clean(x, confounds=np.zeros((29, 2)))
    with pytest.raises(InputError, match="2-D"):
        clean(da.zeros((3, 4, 5)))
    with pytest.raises(InputError, match="voxray__rechunk"):
        clean(x, voxray__rechunk="nope")
    with pytest.raises(InputError):
        clean(x, runs=np.zeros(5))


@pytest.fixture(scope="module")
def cluster():
    distributed = pytest.importorskip("distributed")
    with (
        distributed.LocalCluster(
            n_workers=2, processes=True, threads_per_worker=1, dashboard_address=None
        ) as c,
        distributed.Client(c) as client,
    ):
        yield client


def test_process_cluster_dask_and_zarr(cluster):
    x = _signals(60, 40)
    conf = np.random.default_rng(3).normal(size=(60, 2))
    kw = dict(
        detrend=True, standardize="psc", confounds=conf, t_r=2.0, high_pass=0.01, low_pass=0.2
    )
    ref = _ref(x, **kw)
    for how in ("dask", "zarr"):
        y = _ours(
            da.from_array(x, chunks=(15, 40)), voxray__block_columns=9, voxray__rechunk=how, **kw
        )
        y = pickle.loads(pickle.dumps(y))
        assert _rel(cluster.compute(y).result(), ref) <= TOL


def test_report_worst_error():
    print(f"worst relative error vs nilearn so far in this worker: {WORST['err']:.3g}")
    assert WORST["err"] <= TOL
