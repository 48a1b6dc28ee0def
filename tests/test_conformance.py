"""Every read checked against nibabel (the oracle) over the conformance corpus.

Same dtype, same values, same affine, same header bytes; for whole arrays,
``get_fdata``, hypothesis-drawn basic slices of ``dataobj``, ``slicer`` (checked
by world positions, not against nibabel's slicer, which is wrong for reversed
slices: nibabel #1533), ``as_closest_canonical`` and the dask graph.
"""

from __future__ import annotations

# Names are known before the corpus is built (the fixture builds the same list).
import tempfile as _tempfile

import nibabel as nib
import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from nibabel.affines import apply_affine

import voxray as vx
from voxray.planning import normalize_index
from voxray.testing.corpus import build_corpus
from voxray.testing.strategies import basic_index, spatial_slices

_NAMES = [e.name for e in build_corpus(_tempfile.mkdtemp(prefix="voxray-corpus-names-"))]
_HYPO = settings(
    max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)


def assert_same(a, b):
    """Same type of result, dtype, shape and values (NaN equal to NaN)."""
    assert type(a) is type(b) or (isinstance(a, np.ndarray) and isinstance(b, np.ndarray)), (
        type(a),
        type(b),
    )
    a_arr, b_arr = np.asarray(a), np.asarray(b)
    assert a_arr.dtype == b_arr.dtype
    assert a_arr.shape == b_arr.shape
    if a_arr.dtype.fields is None:
        np.testing.assert_array_equal(a_arr, b_arr, strict=True)
    else:
        assert a_arr.tobytes() == b_arr.tobytes()


@pytest.fixture(params=_NAMES)
def entry(request, corpus):
    return corpus[request.param]


def test_whole_array_dtype_values_affine_header(entry):
    img, ref = vx.load(entry.path), nib.load(entry.path)
    assert img.nibabel_class is type(ref)
    assert img.shape == ref.shape
    assert img.get_data_dtype() == ref.get_data_dtype()
    np.testing.assert_array_equal(img.affine, ref.affine)
    assert img.header.binaryblock == ref.header.binaryblock
    assert img.header.get_zooms() == ref.header.get_zooms()
    assert [(e.get_code(), e.get_content()) for e in getattr(img.header, "extensions", [])] == [
        (e.get_code(), e.get_content()) for e in getattr(ref.header, "extensions", [])
    ]
    assert nib.is_proxy(img.dataobj)
    assert img.dataobj.dtype == ref.dataobj.dtype
    assert img.dataobj.slope == ref.dataobj.slope and img.dataobj.inter == ref.dataobj.inter
    assert img.dataobj.offset == ref.dataobj.offset
    assert_same(np.asarray(img.dataobj), np.asanyarray(ref.dataobj))
    assert_same(img.dataobj.get_unscaled(), ref.dataobj.get_unscaled())


def test_get_fdata(entry):
    img, ref = vx.load(entry.path), nib.load(entry.path)
    if img.get_data_dtype().fields is not None:
        with pytest.raises((TypeError, ValueError)):
            ref.get_fdata()
        with pytest.raises((TypeError, ValueError)):
            img.get_fdata()
        return
    for dtype in (np.float64, np.float32):
        if np.iscomplexobj(np.asarray(img.dataobj[(0,) * img.ndim])):
            dtype = np.complex128 if dtype is np.float64 else np.complex64
        assert_same(
            img.get_fdata(dtype=dtype, caching="unchanged"),
            ref.get_fdata(dtype=dtype, caching="unchanged"),
        )


@given(data=st.data())
@_HYPO
def test_dataobj_basic_slices(entry, data):
    img, ref = vx.load(entry.path), nib.load(entry.path)
    key = data.draw(basic_index(img.shape))
    whole = np.asanyarray(ref.dataobj)  # nibabel's whole-array read is the values oracle
    got = img.dataobj[key]
    expected = whole[key]
    if np.ndim(expected) == 0:
        # nibabel's proxy gives a numpy scalar for a 0-d result, which scaling makes a
        # 0-d array again (apply_read_scaling works on np.atleast_1d).
        expected = np.asarray(expected)[()]
        if img.dataobj.slope != 1 or img.dataobj.inter != 0:
            expected = np.asarray(expected)
    assert_same(got, expected)


_EVERYDAY_KEYS = [
    (Ellipsis, 0),
    (slice(None), slice(None), 1),
    (0,),
    (Ellipsis, -1),
    (slice(1, 4), slice(None), slice(0, 2)),
]


def test_dataobj_slices_agree_with_nibabel_proxy(entry):
    """On everyday keys nibabel's own proxy slicing agrees too. (Its fileslice fails on
    empty selections, mmap of 0 bytes, and returns one element for [0:1:-6].)"""
    img, ref = vx.load(entry.path), nib.load(entry.path)
    for key in _EVERYDAY_KEYS:
        try:
            expected = ref.dataobj[key]
        except (IndexError, ValueError):  # out of bounds: nibabel raises ValueError
            with pytest.raises(IndexError):
                img.dataobj[key]
            continue
        assert_same(img.dataobj[key], expected)


@given(data=st.data())
@_HYPO
def test_slicer_keeps_world_positions(entry, data):
    img, ref = vx.load(entry.path), nib.load(entry.path)
    if img.ndim < 3:
        return
    key = data.draw(spatial_slices(img.shape))
    sel = [slice(*s.indices(n)) for s, n in zip(key[:3], img.shape[:3])]
    if np.asanyarray(ref.dataobj)[key].size == 0:  # nibabel: "Empty slice requested"
        with pytest.raises(IndexError):
            img.slicer[key]
        return
    sub = img.slicer[key]
    assert not sub.in_memory
    whole = np.asanyarray(ref.dataobj)
    assert_same(np.asarray(sub.dataobj), whole[key])
    # Every voxel keeps its world position: voxel p of the slice is voxel start + step * p.
    ijk = np.stack(np.meshgrid(*[np.arange(n) for n in sub.shape[:3]], indexing="ij"), -1)
    ijk = ijk.reshape(-1, 3)[:: max(1, ijk.size // 3 // 200)]
    orig = np.stack([s.start + s.step * ijk[:, a] for a, s in enumerate(sel)], axis=-1)
    np.testing.assert_allclose(
        apply_affine(sub.affine, ijk), apply_affine(ref.affine, orig), atol=1e-9
    )
    assert sub.header.get_data_shape() == sub.shape
    if hasattr(sub.header, "set_sform"):  # Analyze headers cannot store every affine
        np.testing.assert_allclose(sub.header.get_best_affine(), sub.affine, atol=1e-5)


def test_slicer_reversed_origin_is_last_voxel(corpus):
    img = vx.load(corpus["le-int16-4d.nii"].path)
    sub = img.slicer[::-1]
    n = img.shape[0]
    np.testing.assert_allclose(
        apply_affine(sub.affine, [0, 0, 0]), apply_affine(img.affine, [n - 1, 0, 0])
    )


def test_as_closest_canonical(entry):
    img, ref = vx.load(entry.path), nib.load(entry.path)
    if img.ndim < 3:
        return
    can, rcan = vx.as_closest_canonical(img), nib.as_closest_canonical(ref)
    np.testing.assert_array_equal(can.affine, rcan.affine)
    assert_same(np.asarray(can.dataobj), np.asanyarray(rcan.dataobj))
    assert vx.aff2axcodes(can.affine) == nib.aff2axcodes(rcan.affine)
    assert (
        can.header.get_dim_info() == rcan.header.get_dim_info()
        if hasattr(can.header, "get_dim_info")
        else True
    )


def test_to_dask_matches(entry):
    img, ref = vx.load(entry.path), nib.load(entry.path)
    expected = np.asanyarray(ref.dataobj)
    for chunks in ("auto", 32, {0: 8}):
        x = img.to_dask(chunks=chunks) if chunks != "auto" else img.to_dask()
        assert x.dtype == expected.dtype
        got = x.compute(scheduler="threads")
        assert_same(got, expected)


@given(data=st.data())
@_HYPO
def test_slices_of_reoriented_views(entry, data):
    """Lazy views compose: a slice of a canonical image of a sliced image."""
    img, ref = vx.load(entry.path), nib.load(entry.path)
    if img.ndim < 3 or min(img.shape[:3]) < 2:
        return
    sub = img.slicer[1:, ::-1]
    can = vx.as_closest_canonical(sub)
    arr = np.asanyarray(ref.dataobj)[1:, ::-1]
    expected_img = nib.as_closest_canonical(nib.Nifti1Image(arr, sub.affine, dtype=arr.dtype))
    key = data.draw(basic_index(can.shape))
    expected = np.asanyarray(expected_img.dataobj)
    np.testing.assert_array_equal(np.asarray(can.dataobj[key]), expected[key])
    # dask's own slicing is wrong for some negative-step slices (da.arange(41)[-42::-41]
    # gives [40]): hand it the canonical form of the key, as voxray's views do.
    canonical = tuple(None if s is None else s.as_index() for s in normalize_index(key, can.shape))
    np.testing.assert_array_equal(can.to_dask()[canonical].compute(), expected[key])
