"""voxray's image classes are nibabel's: factory, laziness, file maps, streams, pickling,
and writes that stay out of core whichever entry point (voxray's or nibabel's) starts them."""

from __future__ import annotations

import io
import pickle

import dask.array as da
import nibabel as nib
import numpy as np
import pytest
from nibabel.fileholders import FileHolder

import voxray as vx
from voxray.testing import NIBABEL_DATA, write_nifti

CLASSES = {
    nib.Nifti1Header: vx.Nifti1Image,
    nib.nifti1.Nifti1PairHeader: vx.Nifti1Pair,
    nib.Nifti2Header: vx.Nifti2Image,
    nib.nifti2.Nifti2PairHeader: vx.Nifti2Pair,
    nib.AnalyzeHeader: vx.AnalyzeImage,
    nib.Spm99AnalyzeHeader: vx.Spm99AnalyzeImage,
    nib.Spm2AnalyzeHeader: vx.Spm2AnalyzeImage,
}


@pytest.fixture
def scaled(tmp_path):
    arr = (np.arange(16 * 18 * 20 * 10) % 30000).astype(np.int16).reshape(16, 18, 20, 10)
    hdr = nib.Nifti1Header()
    hdr.set_data_dtype(np.int16)
    hdr.set_slope_inter(0.5, -2.0)
    aff = np.diag([2.0, 3.0, 4.0, 1.0])
    aff[:3, 3] = [-4, 5, 6]
    hdr.set_sform(aff, 2)
    hdr.set_qform(aff, 1)
    return write_nifti(tmp_path / "scaled.nii", arr, hdr)


@pytest.mark.parametrize(("hclass", "klass"), list(CLASSES.items()))
def test_factory_picks_the_class_and_both_isinstance_hold(hclass, klass):
    img = vx.Image(np.zeros((2, 3, 4), np.float32), np.eye(4), hclass())
    assert type(img) is klass
    assert type(img).__name__ == vx.Image.from_image(img).nibabel_class.__name__
    assert isinstance(img, vx.Image)
    assert isinstance(img, img.nibabel_class)
    assert img.nibabel_class.__module__.startswith("nibabel.")
    assert img.in_memory


def test_constructors_keep_dask_and_proxies_lazy(scaled):
    x = da.ones((4, 5, 6), chunks=2, dtype=np.float32)
    img = vx.Nifti1Image(x, np.eye(4))
    assert type(img) is vx.Nifti1Image and not img.in_memory
    assert nib.is_proxy(img.dataobj)
    src = vx.load(scaled)
    again = vx.Nifti1Pair(src.dataobj, src.affine, src.header)
    assert again.dataobj is src.dataobj and not again.in_memory
    np.testing.assert_array_equal(again.get_fdata(), nib.load(scaled).get_fdata())


def test_from_image_of_a_nibabel_image_stays_lazy(scaled):
    nimg = nib.load(scaled)
    img = vx.Nifti1Image.from_image(nimg)
    assert isinstance(img.dataobj, vx.ArrayProxy) and not img.in_memory
    np.testing.assert_array_equal(np.asarray(img.dataobj), np.asanyarray(nimg.dataobj))
    pair = vx.Nifti1Pair.from_image(vx.load(scaled))
    assert type(pair) is vx.Nifti1Pair and isinstance(pair.dataobj, vx.ArrayProxy)


def test_provenance_records_the_source(scaled):
    img = vx.load(scaled)
    prov = img.provenance
    assert prov.format == "nifti"
    assert str(scaled) in prov.files
    assert prov.header["scl_slope"] == 0.5  # as stored; nibabel resets the image's copy
    assert np.isnan(img.header["scl_slope"])
    sliced = img.slicer[1:3]
    assert sliced.provenance.files == prov.files and sliced.provenance.header is None
    with pytest.raises(TypeError):
        img.provenance = {"files": ()}


def test_pickling_is_lazy_even_after_caching(scaled):
    img = vx.load(scaled)
    data = img.get_fdata()  # fills nibabel's cache
    assert img.in_memory
    blob = pickle.dumps(img)
    assert len(blob) < 20_000 < data.nbytes  # the proxy, not the data
    back = pickle.loads(blob)
    assert type(back) is vx.Nifti1Image and not back.in_memory
    np.testing.assert_array_equal(back.get_fdata(), data)
    np.testing.assert_array_equal(back.affine, img.affine)


def test_from_file_map_with_file_objects(scaled):
    raw = scaled.read_bytes()
    bio = io.BytesIO(raw)
    img = vx.Nifti1Image.from_file_map({"image": FileHolder(fileobj=bio)})
    assert not img.in_memory and isinstance(img.dataobj, vx.ArrayProxy)
    ref = nib.Nifti1Image.from_bytes(raw)
    np.testing.assert_array_equal(np.asarray(img.dataobj), np.asanyarray(ref.dataobj))
    np.testing.assert_array_equal(img.dataobj[1:3, 2, :, -1], ref.dataobj[1:3, 2, :, -1])
    assert img.header == ref.header
    assert vx.Nifti1Image.from_bytes(raw).header == ref.header


def test_to_bytes_matches_nibabel_for_array_images():
    rng = np.random.default_rng(1)
    arr = rng.normal(size=(5, 6, 7)).astype(np.float32)
    aff = np.diag([1.5, 2, 2.5, 1])
    for vklass, nklass in ((vx.Nifti1Image, nib.Nifti1Image), (vx.Nifti2Image, nib.Nifti2Image)):
        assert vklass(arr, aff).to_bytes() == nklass(arr, aff).to_bytes()
    # a float array written as int16: nibabel's scaling, nibabel's bytes
    v = vx.Nifti1Image(arr, aff)
    n = nib.Nifti1Image(arr, aff)
    v.set_data_dtype(np.int16)
    n.set_data_dtype(np.int16)
    assert v.to_bytes() == n.to_bytes()


def test_to_filename_moves_file_map_and_stays_out_of_core(scaled, tmp_path, monkeypatch):
    img = vx.load(scaled)

    def whole_read(*args, **kwargs):
        raise AssertionError("the writer read the whole array at once")

    monkeypatch.setattr(vx.ArrayProxy, "__array__", whole_read)
    out = tmp_path / "out.nii.gz"
    img.to_filename(out)
    assert img.get_filename() == str(out)
    assert img.file_map["image"].filename == str(out)
    nib.save(img, tmp_path / "nib.nii")  # nibabel's save takes voxray's path
    nib.save(img, tmp_path / "conv.img")  # ...and its conversions too
    monkeypatch.undo()
    ref = np.asanyarray(nib.load(scaled).dataobj)
    for name in ("out.nii.gz", "nib.nii", "conv.img"):
        back = nib.load(tmp_path / name)
        np.testing.assert_array_equal(np.asanyarray(back.dataobj), ref)
        assert back.dataobj.slope == 0.5 and back.dataobj.inter == -2.0  # stored ints kept
    assert type(nib.load(tmp_path / "conv.img")) is nib.Nifti1Pair


@pytest.mark.parametrize("klass", [vx.AnalyzeImage, vx.Spm99AnalyzeImage, vx.Spm2AnalyzeImage])
def test_in_memory_analyze_images_save_like_nibabel(klass, tmp_path):
    rng = np.random.default_rng(2)
    arr = rng.integers(0, 1000, (6, 7, 8)).astype(np.int16)
    aff = np.diag([-2.0, 2, 2, 1])
    aff[:3, 3] = [10, -20, 30]
    header = klass.header_class()
    vx.save(vx.Image(arr, aff, header), tmp_path / "v.img")
    nklass = klass.__mro__[2]
    nib.save(nklass(arr, aff, header), tmp_path / "n.img")
    for ext in (".hdr", ".img", ".mat"):
        v, n = tmp_path / f"v{ext}", tmp_path / f"n{ext}"
        assert v.exists() == n.exists(), ext
        if ext != ".mat" and n.exists():
            assert v.read_bytes() == n.read_bytes(), ext
    back = nklass.from_filename(tmp_path / "v.img")
    np.testing.assert_array_equal(np.asanyarray(back.dataobj), arr)
    np.testing.assert_allclose(back.affine, nklass.from_filename(tmp_path / "n.img").affine)


def test_from_url_reads_by_ranges(tmp_path):
    from voxray.testing.httpserver import RangeServer

    src = NIBABEL_DATA / "example4d.nii.gz"
    (tmp_path / "x.nii.gz").write_bytes(src.read_bytes())
    with RangeServer(tmp_path) as server:
        img = vx.Nifti1Image.from_url(server.url("x.nii.gz"))
        assert type(img) is vx.Nifti1Image and not img.in_memory
        assert server.bytes_sent < src.stat().st_size  # the header, not the object
        np.testing.assert_array_equal(
            np.asarray(img.dataobj), np.asanyarray(nib.load(src).dataobj)
        )


def test_wrong_class_for_the_file_is_a_voxray_error(scaled):
    with pytest.raises(vx.ImageFileError):
        vx.Nifti2Image.from_filename(scaled)
    with pytest.raises(vx.ImageFileError):
        vx.Nifti1Image.from_filename(str(scaled).replace(".nii", ".img"))


def test_sniffed_single_file_without_its_suffix(tmp_path):
    p = tmp_path / "scan.dat"
    p.write_bytes((NIBABEL_DATA / "example4d.nii.gz").read_bytes())
    img = vx.load(p)
    assert type(img) is vx.Nifti1Image and img.get_filename() == str(p)
    ref = nib.load(NIBABEL_DATA / "example4d.nii.gz")
    np.testing.assert_array_equal(np.asarray(img.dataobj), np.asanyarray(ref.dataobj))
    (tmp_path / "text.dat").write_bytes(b"not an image at all" * 40)
    with pytest.raises(vx.NotAnImageError, match=r"text\.dat"):
        vx.load(tmp_path / "text.dat")


def test_dir_lists_lazy_names():
    assert "open_dataarray" in dir(vx)
    assert "Nifti1Image" in dir(vx)


def test_nibabel_processing_takes_4d_voxray_images():
    """nibabel's spatial_axes_first knows classes by exact type; voxray registers its own."""
    import nibabel.processing as nproc

    path = NIBABEL_DATA / "example4d.nii.gz"
    ours, theirs = nproc.smooth_image(vx.load(path), 4), nproc.smooth_image(nib.load(path), 4)
    np.testing.assert_array_equal(ours.get_fdata(), theirs.get_fdata())
    np.testing.assert_array_equal(ours.affine, theirs.affine)


def test_compressions_voxray_cannot_write_are_refused(tmp_path):
    img = vx.Nifti1Image(np.zeros((2, 3, 4), np.float32), np.eye(4))
    for suffix in (".nii.bz2", ".nii.zst"):
        with pytest.raises(vx.ImageFileError, match=r"writes uncompressed or \.gz"):
            img.to_filename(tmp_path / f"x{suffix}")
        assert not (tmp_path / f"x{suffix}").exists()


def test_a_file_replaced_in_place_is_never_read_from_a_stale_source(tmp_path):
    """Same size, same timestamp tick: the inode tells the new file from the old one
    (nibabel's test_dtype_to_filename_arg found the stale read once in a while)."""
    arr = np.arange(24, dtype=np.int16).reshape((2, 3, 4))
    img = vx.Nifti1Image(arr, np.eye(4))
    path = tmp_path / "t.nii"
    for _ in range(100):
        for dtype in (np.uint8, np.int8):
            img.to_filename(path, dtype=dtype)
            assert vx.Nifti1Image.from_filename(path).get_data_dtype() == dtype
