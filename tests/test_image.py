"""The Image: construction, laziness (asserted on I/O), nibabel interop, orientation."""

from __future__ import annotations

import dask.array as da
import nibabel as nib
import numpy as np
import pytest
from nibabel.orientations import axcodes2ornt, ornt_transform

import voxray as vx
from voxray.sources import open_source


def _stats(img):
    return open_source(img.dataobj.reader.source).stats


def test_array_image_like_nibabel():
    arr = np.arange(60, dtype=np.float32).reshape(3, 4, 5)
    img = vx.Image(arr, np.eye(4))
    ref = nib.Nifti1Image(arr, np.eye(4))
    assert img.dataobj is arr and img.in_memory
    assert img.header.binaryblock == ref.header.binaryblock
    assert img.get_data_dtype() == np.float32
    assert img.to_dask().compute().tolist() == arr.tolist()


def test_dask_image_stays_lazy():
    x = da.ones((4, 5, 6, 3), chunks=(4, 5, 6, 1), dtype=np.int16)
    img = vx.Image(x, np.diag([2, 2, 2, 1]))
    assert nib.is_proxy(img.dataobj) and not img.in_memory
    assert img.to_dask() is x
    assert img.get_data_dtype() == np.int16
    assert img.dataobj[0, 0, 0, 0] == 1
    sub = img.slicer[::2, :, :, 1]
    assert sub.shape == (2, 5, 6) and not sub.in_memory
    assert float(sub.get_fdata().sum()) == 2 * 5 * 6


def test_header_class_follows_the_header():
    arr = np.zeros((2, 3, 4), np.int16)
    assert vx.Image(arr, np.eye(4), nib.Nifti2Header()).nibabel_class is nib.Nifti2Image
    assert vx.Image(arr, np.eye(4), nib.AnalyzeHeader()).nibabel_class is nib.AnalyzeImage
    assert vx.Image(arr, np.eye(4)).nibabel_class is nib.Nifti1Image


def test_load_is_header_only_and_slicer_reorientation_read_nothing(corpus):
    img = vx.load(corpus["le-int16-4d.nii"].path)
    s = _stats(img)
    s.reset()
    sub = img.slicer[2:-2, ::-1, ::3, 1:4]
    can = vx.as_closest_canonical(sub)
    flipped = img.as_reoriented([[1, -1], [0, 1], [2, -1]])
    assert not can.in_memory and not flipped.in_memory
    assert s.requests == 0
    vol = can.dataobj[..., 0]
    one_volume = np.prod(img.shape[:3]) * 2
    # one request, inside the one volume it needs (strided planes are read through)
    assert s.requests == 1 and vol.nbytes <= s.bytes_returned <= one_volume


def test_get_fdata_caching_and_uncache(corpus):
    img = vx.load(corpus["scaled-int16.nii"].path)
    a = img.get_fdata(caching="unchanged")
    assert not img.in_memory
    b = img.get_fdata()
    assert img.in_memory and img.get_fdata() is b
    img.uncache()
    assert not img.in_memory
    np.testing.assert_array_equal(a, b)
    f32 = img.get_fdata(dtype=np.float32, caching="unchanged")
    assert f32.dtype == np.float32
    with pytest.raises(ValueError, match="caching"):
        img.get_fdata(caching="sometimes")


def test_to_nibabel_is_a_real_lazy_nibabel_image(corpus):
    p = corpus["oblique.nii"].path
    img = vx.load(p)
    nimg = img.to_nibabel()
    assert type(nimg) is nib.Nifti1Image
    assert nib.is_proxy(nimg.dataobj) and not nimg.in_memory
    np.testing.assert_array_equal(nimg.affine, nib.load(p).affine)
    np.testing.assert_array_equal(nimg.get_fdata(), nib.load(p).get_fdata())
    # nibabel's own tools accept it
    can = nib.as_closest_canonical(nimg)
    np.testing.assert_array_equal(
        can.get_fdata(), nib.as_closest_canonical(nib.load(p)).get_fdata()
    )


def test_from_image_wraps_nibabel_lazily(corpus):
    p = corpus["scaled-int16.nii.gz"].path
    nimg = nib.load(p)
    img = vx.Image.from_image(nimg)
    assert not img.in_memory and isinstance(img.dataobj, vx.ArrayProxy)
    np.testing.assert_array_equal(np.asarray(img.dataobj), np.asanyarray(nimg.dataobj))
    np.testing.assert_array_equal(img.affine, nimg.affine)
    arr_img = vx.Image.from_image(nib.Nifti1Image(np.ones((2, 2, 2), np.float32), np.eye(4)))
    assert arr_img.in_memory


def test_as_reoriented_updates_dim_info_like_nibabel(corpus):
    p = corpus["le-int16-4d.nii"].path
    img, ref = vx.load(p), nib.load(p)
    img.header.set_dim_info(freq=0, phase=1, slice=2)
    ref.header.set_dim_info(freq=0, phase=1, slice=2)
    ornt = ornt_transform(axcodes2ornt(("L", "A", "S")), axcodes2ornt(("S", "P", "R")))
    a, b = img.as_reoriented(ornt), ref.as_reoriented(ornt)
    assert a.header.get_dim_info() == b.header.get_dim_info()
    np.testing.assert_array_equal(a.affine, b.affine)
    np.testing.assert_array_equal(np.asarray(a.dataobj), np.asanyarray(b.dataobj))
    assert vx.as_closest_canonical(img) is not None
    assert img.as_reoriented([[0, 1], [1, 1], [2, 1]]) is img


def test_slicer_rules_match_nibabel(corpus):
    img = vx.load(corpus["le-int16-4d.nii"].path)
    for bad in [(1,), (slice(None), None), (slice(0, 0),), (Ellipsis, slice(3, 3))]:
        with pytest.raises(IndexError):
            img.slicer[bad]
    assert img.slicer[..., 2].shape == img.shape[:3]


def test_repr_and_str(corpus):
    img = vx.load(corpus["le-int16-4d.nii"].path)
    assert "Nifti1Image" in repr(img) and "lazy" in repr(img)
    assert "sform_code" in str(img)
    assert "ArrayProxy" in repr(img.dataobj)


def test_proxy_reshape_and_order(tmp_path):
    data = np.arange(24, dtype="<i2")
    path = tmp_path / "raw.bin"
    data.tofile(path)
    prox = vx.ArrayProxy(str(path), ((2, 3, 4), "<i2"))
    np.testing.assert_array_equal(
        np.asarray(prox.reshape((6, 4))), data.reshape((6, 4), order="F")
    )
    np.testing.assert_array_equal(np.asarray(prox.reshape((-1,))), data)
    cprox = vx.ArrayProxy(str(path), ((2, 3, 4), "<i2"), order="C")
    np.testing.assert_array_equal(np.asarray(cprox), data.reshape(2, 3, 4))
    np.testing.assert_array_equal(cprox[1, ::-1], data.reshape(2, 3, 4)[1, ::-1])
    with pytest.raises(ValueError, match="reshape"):
        prox.reshape((5, 5))


def test_fileobj_proxy_ignores_the_file_position(tmp_path):
    import io

    buf = io.BytesIO(np.arange(24, dtype="<i2").tobytes())
    prox = vx.ArrayProxy(buf, ((2, 3, 4), "<i2"))
    buf.seek(13)
    np.testing.assert_array_equal(np.asarray(prox), np.arange(24).reshape((2, 3, 4), order="F"))
