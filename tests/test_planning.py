"""The pure planning layer against numpy, and the planner against the reference reader."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from voxray.planning import (
    AxisSel,
    View,
    assemble,
    coalesce_ranges,
    default_chunks,
    expand_chunks,
    normalize_index,
    plan_read,
    read_reference,
    selection_shape,
)
from voxray.testing.strategies import basic_index, shapes

DTYPES = [np.dtype(d) for d in ("u1", "<i2", ">i2", ">i4", "<f8", "<c8")] + [
    np.dtype([("R", "u1"), ("G", "u1"), ("B", "u1")])
]


def _stored(shape, dtype, seed=0):
    """An array and its Fortran-ordered bytes, as a NIfTI file stores them."""
    rng = np.random.default_rng(seed)
    n = math.prod(shape)
    raw = rng.integers(0, 256, n * dtype.itemsize, dtype=np.uint8).tobytes()
    arr = np.ndarray(shape, dtype=dtype, buffer=raw, order="F")
    return arr, raw


def _read_planned(shape, dtype, raw, key, request_cost):
    sel = normalize_index(key, shape)
    plan = plan_read(shape, dtype.itemsize, [s for s in sel if s is not None], request_cost)
    buf = np.zeros(plan.nbytes, np.uint8)
    for f, n, b in plan.ranges.tolist():
        assert f >= 0 and f + n <= len(raw)
        buf[b : b + n] = np.frombuffer(raw, np.uint8, n, f)
    out = assemble(plan, buf, dtype)
    if any(s is None for s in sel):
        out = out[
            tuple(None if s is None else slice(None) for s in sel if s is None or not s.drop)
        ]
    return out, plan


@settings(max_examples=300, deadline=None)
@given(data=st.data(), shape=shapes())
def test_normalize_index_matches_numpy_shape(data, shape):
    key = data.draw(basic_index(shape))
    expected = np.empty(shape)[key].shape
    assert selection_shape(normalize_index(key, shape)) == expected


@settings(max_examples=400, deadline=None)
@given(
    data=st.data(),
    shape=shapes(max_dims=5, max_side=6),
    dtype=st.sampled_from(DTYPES),
    cost=st.sampled_from([0, 1, 7, 64, 4096, 1 << 30]),
)
def test_planned_read_equals_numpy_indexing(data, shape, dtype, cost):
    arr, raw = _stored(shape, dtype)
    key = data.draw(basic_index(shape))
    out, plan = _read_planned(shape, dtype, raw, key, cost)
    expected = np.asarray(arr[key], dtype=dtype)  # numpy gives a native scalar for 0-d
    assert isinstance(out, np.ndarray)
    assert out.shape == expected.shape
    assert out.dtype == dtype
    assert out.tobytes() == np.ascontiguousarray(expected).tobytes()
    # Ranges are sorted, disjoint and never read a byte twice.
    r = plan.ranges
    if len(r) > 1:
        assert np.all(r[1:, 0] >= r[:-1, 0] + r[:-1, 1])
    # The planner never reads more than the bounding span of the selection.
    assert plan.ranges[:, 1].sum() <= max(len(raw), 1)


@settings(max_examples=100, deadline=None)
@given(data=st.data(), shape=shapes(max_dims=4), dtype=st.sampled_from(DTYPES))
def test_planner_agrees_with_reference_reader(data, shape, dtype):
    _, raw = _stored(shape, dtype, seed=3)
    key = data.draw(basic_index(shape))
    ref = np.asarray(read_reference(lambda off, n: raw[off : off + n], shape, dtype, key), dtype)
    out, _ = _read_planned(shape, dtype, raw, key, 32 * 1024)
    assert out.tobytes() == ref.tobytes() and out.shape == ref.shape


def test_one_volume_is_one_range():
    shape = (10, 11, 12, 30)
    sel = normalize_index((Ellipsis, 17), shape)
    plan = plan_read(shape, 2, sel)
    vol = 10 * 11 * 12 * 2
    assert plan.ranges.tolist() == [[17 * vol, vol, 0]]


def test_voxel_time_series_reads_only_its_voxels():
    shape = (64, 64, 40, 200)
    sel = normalize_index((3, 4, 5, slice(None)), shape)
    plan = plan_read(shape, 2, sel, request_cost=32 * 1024)
    assert len(plan.ranges) == 200
    assert plan.ranges[:, 1].sum() == 200 * 2


def test_planner_reads_through_small_gaps():
    # Every other 200-byte row: reading through is cheaper than 50 requests.
    shape = (100, 100)
    sel = normalize_index((slice(None), slice(None, None, 2)), shape)
    plan = plan_read(shape, 2, sel, request_cost=32 * 1024)
    assert len(plan.ranges) == 1


def test_empty_selection_reads_nothing():
    sel = normalize_index((slice(3, 3), 1), (5, 5))
    plan = plan_read((5, 5), 4, sel)
    assert plan.nbytes == 0 and len(plan.ranges) == 0
    assert assemble(plan, b"", np.dtype("i4")).shape == (0,)


@pytest.mark.parametrize(
    ("key", "error"),
    [
        ((0, 0, 0), IndexError),
        ((Ellipsis, Ellipsis), IndexError),
        (5, IndexError),
        (-6, IndexError),
        (slice(None, None, 0), ValueError),
        ([0, 1], TypeError),
        (np.array([True, False]), TypeError),
        (True, TypeError),
        ("a", TypeError),
    ],
)
def test_normalize_index_rejects_like_numpy(key, error):
    with pytest.raises(error):
        normalize_index(key, (5, 4))


_OPS = st.sampled_from(["compose", "flip", "transpose"])


@settings(max_examples=300, deadline=None)
@given(data=st.data(), shape=shapes(max_dims=4), ops=st.lists(_OPS, max_size=4))
def test_view_composition_equals_numpy(data, shape, ops):
    arr = np.arange(math.prod(shape)).reshape(shape, order="F")
    view = View.identity(shape)
    expected = arr
    for op in ops:
        if op == "compose":
            key = data.draw(basic_index(expected.shape))
            view, expected = view.compose(key), expected[key]
        elif op == "flip" and expected.ndim:
            ax = data.draw(st.integers(0, expected.ndim - 1))
            view, expected = view.flip(ax), np.flip(expected, ax)
        elif op == "transpose" and expected.ndim:
            perm = data.draw(st.permutations(range(expected.ndim)))
            view, expected = view.transpose(perm), expected.transpose(perm)
    assert view.shape == expected.shape
    got = view.finish(arr[view.base_index()])
    np.testing.assert_array_equal(got, expected)
    # and the same through the planner on the base selection
    raw = arr.tobytes(order="F")
    plan = plan_read(shape, arr.itemsize, view.base)
    buf = np.zeros(plan.nbytes, np.uint8)
    for f, n, b in plan.ranges.tolist():
        buf[b : b + n] = np.frombuffer(raw, np.uint8, n, f)
    np.testing.assert_array_equal(view.finish(assemble(plan, buf, arr.dtype)), expected)


def test_axis_sel_compose_and_flip():
    s = AxisSel(10, -2, 5)  # 10, 8, 6, 4, 2
    assert s.compose(AxisSel(1, 2, 2)) == AxisSel(8, -4, 2)  # 8, 4
    assert s.flipped() == AxisSel(2, 2, 5)
    assert s.as_index() == slice(10, 0, -2)
    assert AxisSel(2, -1, 3).as_index() == slice(2, None, -1)


@settings(max_examples=200, deadline=None)
@given(
    shape=shapes(max_dims=5, max_side=300),
    itemsize=st.sampled_from([1, 2, 4, 8]),
    max_bytes=st.sampled_from([1, 100, 4096, 1 << 20]),
)
def test_default_chunks_are_contiguous_slabs(shape, itemsize, max_bytes):
    chunk = default_chunks(shape, itemsize, max_bytes)
    assert len(chunk) == len(shape)
    split = next((a for a, (c, n) in enumerate(zip(chunk, shape)) if c < n), len(shape))
    # Full along the fast axes, 1 along the axes slower than the split one: contiguous bytes.
    assert all(c == n for c, n in zip(chunk[:split], shape[:split]))
    assert all(c == 1 for c in chunk[split + 1 :])
    row = itemsize * math.prod(shape[:split])
    assert math.prod(chunk) * itemsize <= max(max_bytes, row)
    sizes = expand_chunks(shape, chunk)
    assert tuple(sum(s) for s in sizes) == tuple(shape)


def test_default_chunks_for_a_4d_series():
    assert default_chunks((98, 116, 94, 300), 2) == (98, 116, 94, 30)
    assert default_chunks((64, 64, 32), 4) == (64, 64, 32)


def test_coalesce_ranges_groups_neighbours():
    groups = coalesce_ranges([(0, 10), (12, 5), (100, 1), (101, 3)], max_gap=2)
    assert groups == [(0, 17, [0, 1]), (100, 4, [2, 3])]
    assert coalesce_ranges([], 5) == []
