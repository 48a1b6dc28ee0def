"""nibabel's own walkthroughs, run once with nibabel and once with voxray in its place.

The calls follow nibabel's documentation (nipy/nibabel, doc/source, commit 4704d90) literally:

* ``nibabel_images.rst`` ("Nibabel images"): The image object; The image header; The image
  data array (Array proxies and proxy images, Array images, Getting the image data the easy
  way, Proxies and caching, Image slicing); Loading and saving; Details of files and images.
* ``images_and_memory.rst`` ("Images and memory"): the introduction; Using ``in_memory``;
  Using ``uncache``; Saving memory (Uncache the array, Use the array proxy instead of
  ``get_fdata()``, Use the ``caching`` keyword); Saving time and memory.
* The SpatialImage / FileBasedImage API reference: ``get_fdata(caching=, dtype=)``,
  ``as_closest_canonical``, ``file_map`` of a ``.nii.gz``, the pair and Analyze families,
  ``get/set_qform``, ``get/set_sform``, ``update_header``, ``get/set_data_dtype``,
  ``from_image``, ``instance_to_filename``, ``from_filename``, ``to/from_bytes``, pickling.

Each walk is a function of ``lib`` (the ``nibabel`` or the ``voxray`` module) returning what it
saw; a test runs it with nibabel first, then with voxray, and asserts the same answers: type,
dtype, values, affine, header fields, exception types. voxray differs on purpose in two places:
``img.slicer`` with reversed steps or negative starts keeps every voxel's world position, where
nibabel 5.4 keeps the old origin (nibabel #1533; the walkthrough's printed ``ras.affine`` is that
wrong origin), so world positions are compared; and saving a loaded scaled image keeps its
stored integers and scaling, where nibabel rescales, so written values are compared to the source.
Where the walkthrough talks about memory, voxray's images are also checked to stay lazy.
"""

from __future__ import annotations

import itertools
import os
import pickle

import nibabel as nib
import numpy as np
import pytest
from nibabel.affines import apply_affine
from nibabel.testing import data_path

import voxray as vx
from voxray.testing import NIBABEL_DATA, write_analyze, write_nifti

EXAMPLE = os.path.join(data_path, "example4d.nii.gz")
ARRAY_DATA = np.arange(24, dtype=np.int16).reshape((2, 3, 4))
AFFINE = np.diag([1, 2, 3, 1])
NIFTI = ("Nifti1Image", "Nifti2Image", "Nifti1Pair", "Nifti2Pair")
FAMILIES = {  # class name -> the file name it is written to
    "Nifti1Image": "family.nii.gz",
    "Nifti2Image": "family.nii",
    "Nifti1Pair": "family.img",
    "Nifti2Pair": "family.hdr",
    "AnalyzeImage": "family.img",
    "Spm99AnalyzeImage": "family.img",
    "Spm2AnalyzeImage": "family.img",
}


def _raises(fn, *args, **kwargs):
    """fn's answer, or the exception it raised (compared by type)."""
    try:
        return fn(*args, **kwargs)
    except Exception as exc:
        return exc


def _fields(header) -> dict:
    """Every header field, copied (nibabel hands out views that later calls change)."""
    return {key: np.copy(value) for key, value in header.items()}


def _describe(img) -> dict:
    """Everything the API reference lets one ask an image without changing it."""
    out = {name: getattr(img, name) for name in ("shape", "ndim", "in_memory")}
    out["affine"] = img.affine.copy()  # set_qform / set_sform change nibabel's affine in place
    for name in ("get_data_dtype", "get_data_shape", "get_zooms"):
        out[f"header.{name}"] = getattr(img.header, name)()
    out.update(cls=type(img).__name__, header_cls=type(img.header), fields=_fields(img.header))
    out.update(dtype=img.get_data_dtype(), is_proxy=nib.is_proxy(img.dataobj))
    out.update(data=np.asarray(img.dataobj), fdata=img.get_fdata(caching="unchanged"))
    return out


def _files(img) -> dict:
    return {key: holder.filename for key, holder in img.file_map.items()}


def _on_disk(filename) -> dict:
    """What nibabel reads back from a written file: class, header fields and stored values."""
    img = nib.load(filename)
    return dict(cls=type(img).__name__, fields=_fields(img.header), data=np.asarray(img.dataobj))


def assert_same(got, want, where="answer"):
    """voxray's answer equals nibabel's: same types, dtypes, values (NaN == NaN), exceptions."""
    if isinstance(want, BaseException):
        assert isinstance(got, type(want)), f"{where}: {got!r} is not a {type(want).__name__}"
    elif isinstance(want, dict):
        assert isinstance(got, dict) and got.keys() == want.keys(), f"{where}: {got!r}"
        for key in want:
            assert_same(got[key], want[key], f"{where}[{key!r}]")
    elif isinstance(want, tuple | list):
        assert type(got) is type(want) and len(got) == len(want), f"{where}: {got!r} != {want!r}"
        for i, (g, w) in enumerate(zip(got, want, strict=True)):
            assert_same(g, w, f"{where}[{i}]")
    elif isinstance(want, np.ndarray | np.generic):
        kind = np.ndarray if isinstance(want, np.ndarray) else type(want)
        assert isinstance(got, kind), f"{where}: {type(got)} is not {kind}"
        assert got.dtype == want.dtype, f"{where}: dtype {got.dtype} != {want.dtype}"
        np.testing.assert_array_equal(got, want, err_msg=where)
    else:
        assert type(got) is type(want) and got == want, f"{where}: {got!r} != {want!r}"


def assert_lazy(img):
    """A voxray image from a file or a lazy operation: a voxray subclass, no data read."""
    assert isinstance(img, vx.Image) and type(img).__name__ in FAMILIES, type(img).__mro__
    assert type(img) is getattr(vx, type(img).__name__)
    assert isinstance(img, getattr(nib, type(img).__name__))
    assert nib.is_proxy(img.dataobj), type(img.dataobj)
    assert type(img.dataobj).__module__.startswith("voxray"), type(img.dataobj)
    assert not img.in_memory


def _compare(walk, *args, tmp_path=None, monkeypatch=None):
    """Run ``walk(nibabel, *args)``, then ``walk(voxray, *args)``, and compare the answers.
    With tmp_path each runs in its own directory, as the walkthrough runs in a temporary one."""
    answers = []
    for lib in (nib, vx):
        if tmp_path is not None:
            (tmp_path / lib.__name__).mkdir()
            monkeypatch.chdir(tmp_path / lib.__name__)
        answers.append(walk(lib, *args))
    assert_same(answers[1], answers[0])


# -- nibabel_images.rst: The image object, The image header, The image data array -----------


def _walk_image_object(lib):
    img = lib.load(EXAMPLE)
    if lib is vx:
        assert_lazy(img)
    out = dict(image=_describe(img), print_header=str(img.header), filename=img.get_filename())
    image_data = img.get_fdata()
    out.update(image_data=image_data, still_proxy=nib.is_proxy(img.dataobj))
    data_again = img.get_fdata()
    out.update(cached=(data_again is image_data, img.in_memory))
    return out


def test_image_object_header_and_proxy_data():
    _compare(_walk_image_object)


def _walk_array_images(lib, make):
    array_data = ARRAY_DATA.copy()
    array_img = make(array_data, AFFINE)
    image_data = array_img.get_fdata()
    farray_img = make(image_data.astype(np.float64), AFFINE)
    farray_data = farray_img.get_fdata()
    out = dict(image=_describe(array_img), image_data=image_data, dataobj=array_img.dataobj)
    out.update(is_array=array_img.dataobj is array_data, type=type(np.asarray(array_img.dataobj)))
    out.update(is_cast=(image_data is array_img.dataobj, farray_data is farray_img.dataobj))
    out.update(int64=_raises(make, np.zeros((2, 2, 2), dtype=np.int64), AFFINE))
    array_img.uncache()  # "no effect if the image is an array image"
    out.update(after_uncache=(array_img.dataobj is array_data, array_img.in_memory))
    return out


@pytest.mark.parametrize("maker", ["Nifti1Image", "Image"])
def test_array_images(maker):
    want = _walk_array_images(nib, nib.Nifti1Image)
    assert_same(_walk_array_images(vx, getattr(vx, maker)), want)


@pytest.mark.parametrize("name", FAMILIES)
def test_image_factory_picks_the_class_from_the_header(name):
    header = getattr(nib, name).header_class()
    got = vx.Image(ARRAY_DATA, AFFINE, header)
    assert type(got) is getattr(vx, name) and isinstance(got, vx.Image)
    assert_same(_describe(got), _describe(getattr(nib, name)(ARRAY_DATA, AFFINE, header)))
    assert type(vx.Image(ARRAY_DATA, AFFINE)) is vx.Nifti1Image


# -- nibabel_images.rst: Image slicing -------------------------------------------------------


def _walk_slicing(lib):
    img = lib.load(EXAMPLE)
    cropped_img = img.slicer[32:-32, ...]
    vol0 = img.slicer[..., 0]
    downsampled = vol0.slicer[::2, ::2, ::2]
    ras = img.slicer[::-1]  # its affine: see test_slicer_keeps_world_positions
    same = np.array_equal(cropped_img.get_fdata(), img.get_fdata()[32:-32, ...])
    out = dict(cropped=(cropped_img.shape, same), ras_data=np.asarray(ras.dataobj))
    # the affine as printed with the walkthrough's precision=2; exact: world positions below
    out.update(shift=np.round([cropped_img.affine, img.affine - cropped_img.affine], 2))
    out.update(volumes=(vol0.shape, img.slicer[..., :1].shape, img.slicer[..., :2].shape))
    out.update(downsampled=(downsampled.header.get_zooms(), np.asarray(downsampled.dataobj)))
    out.update(axcodes=(lib.aff2axcodes(img.affine), lib.aff2axcodes(ras.affine)))
    errors = [_raises(lambda i=i: img.slicer[i]) for i in (None, 0, np.s_[:, 0], (0,) * 5)]
    out.update(errors=[*errors, _raises(lambda: img[0])], new_axis=img.slicer[..., None].shape)
    return out


def test_slicing_walkthrough():
    _compare(_walk_slicing)


SLICES = [
    np.s_[::-1],
    np.s_[32:-32, ...],
    np.s_[-10:],
    np.s_[::-2, 5:1:-1],
    np.s_[10:-10, ::2, :, 1],
    np.s_[-1:0:-3, :, ::-1, :1],
    np.s_[3:4, -5:, 2:20:7],
]


@pytest.mark.parametrize("index", SLICES, ids=str)
def test_slicer_keeps_world_positions(index):
    nib_img, img = nib.load(EXAMPLE), vx.load(EXAMPLE)
    want, got = nib_img.slicer[index], img.slicer[index]
    assert_lazy(got)
    assert not img.in_memory
    assert got.shape == want.shape
    assert_same(np.asarray(got.dataobj), np.asarray(want.dataobj))
    assert_same(got.header.get_zooms(), want.header.get_zooms())
    # Voxel c of the slice is voxel spatial[c] of the image: it must sit where that one sat.
    index = index if isinstance(index, tuple) else (index,)
    if Ellipsis in index:
        at = index.index(Ellipsis)
        index = index[:at] + (slice(None),) * (5 - len(index)) + index[at + 1 :]
    pad = itertools.zip_longest(img.shape[:3], index[:3], fillvalue=slice(None))
    spatial = [range(n)[sl] for n, sl in pad]
    corners = np.array(list(itertools.product(*[(0, len(r) - 1) for r in spatial])))
    original = np.array([[r[c] for r, c in zip(spatial, corner)] for corner in corners])
    truth = apply_affine(img.affine, original)
    np.testing.assert_allclose(apply_affine(got.affine, corners), truth, atol=1e-6)
    if np.allclose(apply_affine(want.affine, corners), truth, atol=1e-6):  # nibabel right here
        np.testing.assert_allclose(got.affine, want.affine, rtol=0, atol=1e-9)


CANONICAL = ["example4d.nii.gz", "anatomical.nii", "functional.nii", "example_nifti2.nii.gz"]


@pytest.mark.parametrize("fname", [*CANONICAL, "standard.nii.gz"])  # the last is RAS already
def test_as_closest_canonical(fname):
    def walk(lib):
        img = lib.load(str(NIBABEL_DATA / fname))
        canon = lib.as_closest_canonical(img)
        if lib is vx:
            assert_lazy(canon)
            assert not img.in_memory
        described = _describe(canon)  # nibabel reads the data (in memory, no proxy); voxray not
        del described["in_memory"], described["is_proxy"]
        return dict(same=canon is img, canon=described, codes=lib.aff2axcodes(canon.affine))

    _compare(walk)


# -- nibabel_images.rst: Loading and saving, Details of files and images -------------------


def _walk_saving(lib, saver):
    save = nib.save if saver == "nibabel.save" else lib.save
    array_img = lib.Nifti1Image(ARRAY_DATA, AFFINE)
    save(array_img, "my_image.nii")
    img_again = lib.load("my_image.nii")
    out = dict(saved=(_describe(img_again), array_img.get_filename(), _files(array_img)))
    array_img.to_filename("my_image_again.nii")
    img_again = lib.load("my_image_again.nii")
    out.update(again=(img_again.shape, array_img.get_filename(), img_again.get_filename()))
    img_again.set_filename("another_image.nii")
    out.update(renamed=(img_again.get_filename(), list(img_again.file_map), _files(img_again)))
    pair_img = lib.Nifti1Pair(ARRAY_DATA, np.eye(4))
    save(pair_img, "my_pair_image.img")
    out.update(pair=(sorted(pair_img.file_map), _files(pair_img)))
    ana_img = lib.AnalyzeImage(ARRAY_DATA, np.eye(4))
    out.update(ana_keys=sorted(ana_img.file_map))
    ana_img.set_filename("analyze_image.img")
    out.update(ana=(ana_img.file_map["image"].filename, ana_img.file_map["header"].filename))
    save(array_img, "converted.img")  # nibabel.save turns a Nifti1Image into a pair for .img
    save(pair_img, "converted.nii")
    written = sorted(os.listdir())
    out.update(
        files=written, on_disk=[_on_disk(f) for f in written if f.endswith((".nii", ".img"))]
    )
    return out


@pytest.mark.parametrize("saver", ["save", "nibabel.save"])
def test_loading_and_saving(saver, tmp_path, monkeypatch):
    _compare(_walk_saving, saver, tmp_path=tmp_path, monkeypatch=monkeypatch)


def _family_file(tmp_path, name):
    """An image of class ``name`` written byte for byte (scaled where the format can be)."""
    header = getattr(nib, name).header_class()
    header.set_data_dtype(np.int16)
    aff = np.array([[-2.0, 0, 0.1, 30], [0, 2.5, 0, -40], [0.2, 0, 3, -20], [0, 0, 0, 1]])
    arr = np.arange(5 * 6 * 7 * 2, dtype=np.int16).reshape((5, 6, 7, 2), order="F") - 100
    if name in NIFTI:
        header.set_qform(aff, code=1)
        header.set_sform(aff, code=2)
        header.set_slope_inter(0.5, 3.0)
        return write_nifti(tmp_path / FAMILIES[name], arr, header)
    header.set_data_shape(arr.shape)
    header.set_zooms((2.0, 2.5, 3.0, 1.0))
    if name != "AnalyzeImage":
        header.set_slope_inter(0.5)
    return write_analyze(tmp_path / FAMILIES[name], arr, header)


def _walk_family(lib, name, path):
    klass, ext = getattr(lib, name), FAMILIES[name].removeprefix("family")
    loaded, img = lib.load(path), klass.from_filename(path)  # load gives Spm2 for all Analyze
    if lib is vx:
        assert_lazy(loaded)
        assert_lazy(img)
    out = dict(loaded=_describe(loaded), image=_describe(img))
    out["files"] = (img.get_filename(), _files(img))
    img.to_filename("out" + ext)
    if lib is vx:
        assert_lazy(img)  # written out of core, no cache filled
    written = _on_disk("out" + ext)
    # nibabel forgets the scaling on load and rescales on save, so its values move (by less than
    # half its new slope); voxray keeps the stored integers and the scaling: exact.
    source, values = nib.load(path).dataobj, written.pop("data")
    if lib is vx:
        stored = nib.load("out" + ext).dataobj
        assert_same(np.asarray(stored.get_unscaled()), np.asarray(source.get_unscaled()))
        assert_same(values, np.asarray(source))
    close = np.allclose(values, np.asarray(source), rtol=0, atol=0.01)
    reloaded = lib.load("out" + ext)
    out["written"] = (img.get_filename(), _files(img), written, close, _files(reloaded))
    # get/set_qform, get/set_sform (AttributeError for the Analyze family), update_header,
    # get/set_data_dtype, on the loaded image, then written again
    aff = np.array([[0, -2.0, 0, 10], [1.5, 0, 0, -5], [0, 0, 3, 7], [0, 0, 0, 1]])
    forms = [_raises(lambda: img.get_qform(coded=True)), _raises(lambda: img.get_sform(True))]
    forms += [
        _raises(lambda: img.set_qform(aff, code="scanner")),
        _raises(lambda: img.set_sform(np.diag([4.0, 5, 6, 1]), code="aligned")),
        _raises(lambda: img.set_qform(aff, code="bogus")),
        _raises(lambda: img.set_sform(np.eye(3))),
    ]
    forms += [img.affine.copy(), _raises(lambda: img.get_qform()), _fields(img.header)]
    out["forms"] = forms
    img.update_header()
    img.set_data_dtype(np.float32)
    out["updated"] = (_describe(img), _raises(img.set_data_dtype, "bogus"))
    img.to_filename("dtype" + ext)
    out["dtype_written"] = (_on_disk("dtype" + ext), _files(img))
    # from_image, instance_to_filename
    src = lib.load(EXAMPLE)
    conv = klass.from_image(src)
    klass.instance_to_filename(src, "inst" + ext)
    bad = _raises(klass.instance_to_filename, src, "inst.mgz")
    out["from_image"] = (_describe(conv), _on_disk("inst" + ext), src.in_memory, bad)
    if lib is vx:
        assert_lazy(conv)
        assert_lazy(klass.from_image(nib.load(EXAMPLE)))  # from a nibabel image too
    return out


@pytest.mark.parametrize("name", FAMILIES)
def test_class_families_api(name, tmp_path, monkeypatch):
    path = str(_family_file(tmp_path, name))
    _compare(_walk_family, name, path, tmp_path=tmp_path, monkeypatch=monkeypatch)


# -- API reference: from_filename, to_bytes / from_bytes, pickling ---------------------------


@pytest.mark.parametrize(
    ("name", "fname"),
    [("Nifti1Image", "example4d.nii.gz"), ("Nifti2Image", "example_nifti2.nii.gz")],
)
def test_from_filename_bytes_and_pickle(name, fname):
    def walk(lib):
        klass = getattr(lib, name)
        img = klass.from_filename(str(NIBABEL_DATA / fname))
        blob = img.to_bytes()
        back = klass.from_bytes(blob)
        pickled = pickle.loads(pickle.dumps(img))
        if lib is vx:
            for i in (img, back, pickled):
                assert_lazy(i)
        decoded = getattr(nib, name).from_bytes(blob)  # what nibabel makes of the bytes
        return dict(
            images=[_describe(i) for i in (img, back, pickled)],
            decoded=(_fields(decoded.header), np.asarray(decoded.dataobj)),
            pair=_raises(lambda: lib.Nifti1Pair.from_bytes(blob)),
        )

    _compare(walk)


# -- images_and_memory.rst --------------------------------------------------------------------


def _walk_images_and_memory(lib):
    img = lib.load(EXAMPLE)
    out = dict(is_proxy=nib.is_proxy(img.dataobj))
    data = img.get_fdata()
    out.update(shape=data.shape, again=img.get_fdata() is data)
    out.update(array_in_memory=lib.Nifti1Image(ARRAY_DATA, AFFINE).in_memory)
    img = lib.load(EXAMPLE)  # Using in_memory
    states = [img.in_memory]
    data = img.get_fdata()
    states += [img.in_memory, img.get_fdata() is data]
    img.uncache()  # Using uncache
    states += [img.in_memory, img.get_fdata() is data]
    proxy_img = lib.load(EXAMPLE)
    data = proxy_img.get_fdata()
    values = [data[0, 0, 0, 0]]
    data[0, 0, 0, 0] = 99
    values.append(proxy_img.get_fdata()[0, 0, 0, 0])
    proxy_img.uncache()
    values.append(proxy_img.get_fdata()[0, 0, 0, 0])
    img.uncache()  # Saving memory
    states.append(img.in_memory)
    proxy_img = lib.load(EXAMPLE)
    data_array = np.asarray(proxy_img.dataobj)
    out.update(states=states, values=values, asarray=data_array, in_memory=proxy_img.in_memory)
    array_img = lib.Nifti1Image(ARRAY_DATA, AFFINE)
    out.update(types=(type(data_array), type(np.asarray(array_img.dataobj))))
    caching = []  # Use the caching keyword to get_fdata()
    for kwargs in ({}, {"caching": "fill"}):
        proxy_img = lib.load(EXAMPLE)
        data = proxy_img.get_fdata(**kwargs)
        caching += [proxy_img.in_memory, proxy_img.get_fdata(caching="unchanged") is data]
    proxy_img = lib.load(EXAMPLE)
    data = proxy_img.get_fdata(caching="unchanged")
    caching += [proxy_img.in_memory, proxy_img.get_fdata(caching="unchanged") is data]
    data = proxy_img.get_fdata(caching="fill")
    caching += [proxy_img.in_memory, proxy_img.get_fdata(caching="unchanged") is data]
    caching.append(proxy_img.in_memory)
    proxy_img = lib.load(EXAMPLE)  # Saving time and memory
    vol1 = proxy_img.dataobj[..., 1]
    out.update(caching=caching, vol1=(vol1, proxy_img.in_memory, data[..., 1]))
    return out


def test_images_and_memory_walkthrough():
    _compare(_walk_images_and_memory)


@pytest.mark.parametrize("fname", ["example4d.nii.gz", "functional.nii"])
def test_get_fdata_dtype_and_caching(fname):
    def walk(lib):
        img = lib.load(str(NIBABEL_DATA / fname))
        f32 = img.get_fdata(dtype=np.float32)
        out = dict(f32=(f32, img.get_fdata(dtype=np.float32) is f32, img.in_memory))
        f64 = img.get_fdata()
        out.update(f64=(f64, f64 is f32, img.get_fdata(dtype="f8") is f64))
        out.update(f32_unchanged=img.get_fdata(caching="unchanged", dtype=np.float32))
        out.update(still_f64=img.get_fdata() is f64, int16=_raises(img.get_fdata, dtype="i2"))
        out.update(bad_caching=_raises(img.get_fdata, caching="never"))
        img.uncache()
        out.update(uncached=(img.in_memory, img.get_fdata(caching="unchanged") is f64))
        return out | dict(in_memory=img.in_memory)

    _compare(walk)


def test_load_errors(tmp_path, monkeypatch):
    def walk(lib):
        (tmp_path / lib.__name__ / "notes.txt").write_text("not an image")
        (tmp_path / lib.__name__ / "garbage.nii").write_bytes(b"x" * 400)
        return [_raises(lib.load, name) for name in ("missing.nii", "notes.txt", "garbage.nii")]

    _compare(walk, tmp_path=tmp_path, monkeypatch=monkeypatch)
