"""Bad input gets a clear VoxrayError naming the file and the problem; never a hang,
a crash, wrong data, or an allocation sized by a lying header."""

from __future__ import annotations

import gzip
import io
import struct
import subprocess
import sys

import nibabel as nib
import numpy as np
import pytest
from nibabel.filebasedimages import ImageFileError as NibImageFileError

import voxray as vx
from voxray.testing import write_nifti


def _header(shape=(4, 5, 6), dtype=np.int16, cls=nib.Nifti1Header):
    h = cls()
    h.set_data_dtype(dtype)
    h.set_data_shape(shape)
    h.set_sform(np.eye(4), code=1)
    return h


def _image(path, shape=(4, 5, 6)):
    arr = np.arange(np.prod(shape), dtype=np.int16).reshape(shape)
    return write_nifti(path, arr, _header(shape))


def _patch(path, offset: int, fmt: str, *values):
    data = bytearray(path.read_bytes())
    struct.pack_into(fmt, data, offset, *values)
    path.write_bytes(bytes(data))


#: Errors that are neither bad input nor failed I/O: a missing optional dependency, an
#: operation a format cannot do, an attribute an image does not have.
NEITHER = {"MissingDependencyError", "MincDependencyError", "MincWriteError", "NoAffineError"}


def test_error_hierarchy():
    import voxray.errors as errors

    assert not issubclass(vx.VoxrayError, ValueError | OSError)
    assert issubclass(vx.InputError, ValueError) and issubclass(vx.StorageError, OSError)
    classes = {
        name: cls
        for name, cls in vars(errors).items()
        if isinstance(cls, type) and issubclass(cls, vx.VoxrayError)
    }
    assert len(classes) >= 30
    for name, cls in classes.items():
        assert getattr(vx, name) is cls, name  # exported
        if name in NEITHER or cls in (vx.VoxrayError, vx.InputError, vx.StorageError):
            continue
        input_, storage = issubclass(cls, vx.InputError), issubclass(cls, vx.StorageError)
        assert input_ != storage, f"{name} must be an InputError or a StorageError"
        if storage and cls is not vx.DestinationExistsError:
            assert not issubclass(cls, ValueError), f"{name}: an I/O error is not a ValueError"
    assert issubclass(vx.ImageNotFoundError, FileNotFoundError)
    assert issubclass(vx.NotAnImageError, NibImageFileError)
    assert issubclass(vx.TruncatedFileError, vx.InputError)
    for io_error in (
        vx.RemoteError,
        vx.FileChangedError,
        vx.WriteFailedError,
        vx.ImageNotFoundError,
    ):
        assert issubclass(io_error, vx.StorageError) and not issubclass(io_error, ValueError)


def test_missing_file(tmp_path):
    p = tmp_path / "nope.nii"
    with pytest.raises(vx.ImageNotFoundError, match=r"nope\.nii"):
        vx.load(p)
    with pytest.raises(FileNotFoundError):  # as nibabel users expect
        vx.load(p)


def test_missing_half_of_a_pair(tmp_path):
    write_nifti(tmp_path / "p.hdr", np.zeros((2, 3, 4), np.int16), _header((2, 3, 4)))
    (tmp_path / "p.img").unlink()
    with pytest.raises(vx.ImageNotFoundError, match=r"p\.img.*missing"):
        vx.load(tmp_path / "p.hdr")
    write_nifti(tmp_path / "q.hdr", np.zeros((2, 3, 4), np.int16), _header((2, 3, 4)))
    (tmp_path / "q.hdr").unlink()
    with pytest.raises(vx.ImageNotFoundError, match=r"q\.hdr.*missing"):
        vx.load(tmp_path / "q.img")


def test_unknown_suffix(tmp_path):
    p = tmp_path / "image.txt"
    p.write_bytes(b"hello")
    with pytest.raises(vx.NotAnImageError, match=r"image\.txt.*suffix '\.txt'"):
        vx.load(p)


def test_wrong_magic(tmp_path):
    p = _image(tmp_path / "x.nii")
    _patch(p, 344, "4s", b"abc\x00")
    with pytest.raises(vx.NotAnImageError, match=r"x\.nii.*magic"):
        vx.load(p)


def test_not_an_image_at_all(tmp_path):
    p = tmp_path / "x.nii"
    p.write_bytes(b"\x00" * 10_000)
    with pytest.raises(vx.NotAnImageError, match=r"x\.nii"):
        vx.load(p)


def test_too_short_for_a_header(tmp_path):
    p = tmp_path / "x.nii"
    p.write_bytes(b"\x5c\x01\x00\x00" + b"\x00" * 100)
    with pytest.raises(vx.NotAnImageError, match="too short"):
        vx.load(p)


def test_truncated_data(tmp_path):
    p = _image(tmp_path / "x.nii")
    p.write_bytes(p.read_bytes()[:-10])
    with pytest.raises(vx.TruncatedFileError, match=r"x\.nii.*holds \d+ bytes"):
        vx.load(p)


def test_unsupported_datatype(tmp_path):
    p = _image(tmp_path / "x.nii")
    _patch(p, 70, "<h", 9999)  # datatype code
    with pytest.raises(vx.UnsupportedDataTypeError, match=r"x\.nii.*9999"):
        vx.load(p)


def test_negative_dimension(tmp_path):
    p = _image(tmp_path / "x.nii")
    _patch(p, 42, "<h", -5)  # dim[1]
    with pytest.raises(vx.InvalidHeaderError, match=r"x\.nii"):
        vx.load(p)


def test_absurd_dimensions_are_refused_before_any_allocation(tmp_path):
    p = _image(tmp_path / "x.nii")
    _patch(p, 40, "<8h", 4, 32767, 32767, 32767, 32767, 1, 1, 1)  # 2 EB of data
    with pytest.raises(vx.TruncatedFileError, match=r"x\.nii"):
        vx.load(p)
    gz = tmp_path / "y.nii.gz"
    gz.write_bytes(gzip.compress(p.read_bytes()))
    with pytest.raises(vx.TruncatedFileError, match=r"y\.nii\.gz.*gzip stream of \d+ bytes"):
        vx.load(gz)


def test_vox_offset_beyond_the_file(tmp_path):
    p = _image(tmp_path / "x.nii")
    data = bytearray(p.read_bytes())
    data[348:352] = b"\x01\x00\x00\x00"  # extensions flag
    p.write_bytes(bytes(data))
    _patch(p, 108, "<f", 1e9)  # vox_offset
    with pytest.raises(vx.VoxrayError, match=r"x\.nii"):
        vx.load(p)


def test_bzip2_is_refused_clearly(tmp_path):
    import bz2

    p = _image(tmp_path / "x.nii")
    q = tmp_path / "x.nii.gz"
    q.write_bytes(bz2.compress(p.read_bytes()))
    with pytest.raises(vx.NotAnImageError, match="bzip2"):
        vx.load(q)


# -- gzip damage ---------------------------------------------------------------


def _gz(tmp_path, shape=(40, 40, 30, 4)):
    arr = (np.arange(np.prod(shape)) % 3000).astype(np.int16).reshape(shape)
    return write_nifti(tmp_path / "x.nii.gz", arr, _header(shape)), arr


def test_truncated_gzip_stream(tmp_path, fresh_cache):
    p, _ = _gz(tmp_path)
    data = p.read_bytes()
    p.write_bytes(data[: len(data) * 2 // 3])
    img = vx.load(p)  # the header is still readable
    with pytest.raises(vx.CorruptGzipError, match=r"x\.nii\.gz.*truncated.*byte \d+"):
        np.asarray(img.dataobj)


def test_bad_deflate_data(tmp_path, fresh_cache):
    p, _ = _gz(tmp_path)
    data = bytearray(p.read_bytes())
    for i in range(len(data) // 2, len(data) // 2 + 64):
        data[i] ^= 0x5A
    p.write_bytes(bytes(data))
    img = vx.load(p)
    with pytest.raises(vx.CorruptGzipError, match=r"x\.nii\.gz.*compressed byte \d+"):
        np.asarray(img.dataobj)


def test_bad_crc(tmp_path, fresh_cache):
    p, _ = _gz(tmp_path)
    data = bytearray(p.read_bytes())
    data[-8] ^= 0xFF  # CRC-32 in the trailer
    p.write_bytes(bytes(data))
    with pytest.raises(vx.CorruptGzipError, match="incorrect data check"):
        np.asarray(vx.load(p).dataobj)


def test_bad_length_in_trailer(tmp_path, fresh_cache):
    p, _ = _gz(tmp_path)
    data = bytearray(p.read_bytes())
    data[-1] ^= 0x01  # ISIZE
    p.write_bytes(bytes(data))
    with pytest.raises(vx.CorruptGzipError, match="incorrect length check"):
        np.asarray(vx.load(p).dataobj)


def test_trailing_garbage_is_read_as_nibabel_reads_it(tmp_path, fresh_cache):
    p, arr = _gz(tmp_path)
    size = p.stat().st_size
    p.write_bytes(p.read_bytes() + b"garbage!")
    expected = np.asanyarray(nib.load(p).dataobj)  # nibabel stops at the end of the data
    np.testing.assert_array_equal(expected, arr)
    with pytest.warns(vx.TrailingDataWarning, match=rf"x\.nii\.gz.*compressed byte {size}"):
        got = np.asanyarray(vx.load(p).dataobj)
    np.testing.assert_array_equal(got, arr)
    # a damaged member is still an error: only bytes after the last member are forgiven
    data = bytearray(p.read_bytes())
    data[size // 2] ^= 0xFF
    p.write_bytes(bytes(data))
    with pytest.raises(vx.CorruptGzipError):
        np.asarray(vx.load(p).dataobj)


def test_trailing_zero_padding_is_accepted(tmp_path, fresh_cache):
    p, arr = _gz(tmp_path)
    p.write_bytes(p.read_bytes() + b"\x00" * 1000)
    np.testing.assert_array_equal(np.asarray(vx.load(p).dataobj), arr)


def test_header_claims_more_than_the_stream_holds(tmp_path, fresh_cache):
    p, _ = _gz(tmp_path)
    raw = bytearray(gzip.decompress(p.read_bytes()))
    struct.pack_into("<h", raw, 48, 8)  # dim[4]: 8 volumes, the stream holds 4
    p.write_bytes(gzip.compress(bytes(raw)))
    img = vx.load(p)
    with pytest.raises(vx.TruncatedFileError, match=r"x\.nii\.gz.*holds \d+ decompressed bytes"):
        np.asarray(img.dataobj)
    # and a later read of a volume that does exist still works
    np.testing.assert_array_equal(img.dataobj[..., 1], gzip_array(p)[..., 1])


def gzip_array(p):
    raw = gzip.decompress(p.read_bytes())
    hdr = nib.Nifti1Header.from_fileobj(io.BytesIO(raw))
    shape = (*hdr.get_data_shape()[:3], 4)
    return np.ndarray(shape, np.int16, raw, int(hdr["vox_offset"]), order="F")


def test_corrupt_gzip_never_gives_wrong_data(tmp_path, fresh_cache):
    """Flip bytes anywhere in the deflate stream: either the right data or an error."""
    p, arr = _gz(tmp_path, shape=(20, 20, 10, 2))
    good = p.read_bytes()
    rng = np.random.default_rng(7)
    for trial in range(25):
        data = bytearray(good)
        i = int(rng.integers(20, len(data) - 8))
        data[i] ^= 1 << int(rng.integers(0, 8))
        q = tmp_path / f"c{trial}.nii.gz"
        q.write_bytes(bytes(data))
        try:
            got = np.asarray(vx.load(q).dataobj)
        except vx.VoxrayError:
            continue
        np.testing.assert_array_equal(got, arr)


def test_no_giant_allocation_from_a_lying_gzip_header(tmp_path):
    """Under a 2 GiB address-space limit, a header claiming 1 TB must fail cleanly."""
    p, _ = _gz(tmp_path, shape=(10, 10, 10, 2))
    raw = bytearray(gzip.decompress(p.read_bytes()))
    struct.pack_into("<8h", raw, 40, 4, 10000, 10000, 10000, 1, 1, 1, 1)
    q = tmp_path / "lying.nii.gz"
    q.write_bytes(gzip.compress(bytes(raw)))
    code = (
        "import resource, numpy as np, voxray as vx, sys\n"
        "resource.setrlimit(resource.RLIMIT_AS, (2 << 30, 2 << 30))\n"
        f"try:\n    np.asarray(vx.load({str(q)!r}).dataobj)\n"
        "except vx.VoxrayError as e:\n    print('VoxrayError', e); sys.exit(0)\n"
        "sys.exit(1)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    assert "lying.nii.gz" in out.stdout


@pytest.mark.parametrize("value", [float("inf"), float("-inf"), float("nan")])
def test_non_finite_vox_offset(tmp_path, value):
    path = _image(tmp_path / "x.nii")
    _patch(path, 108, "<f", value)  # vox_offset
    with pytest.raises(vx.InvalidHeaderError, match=r"x\.nii"):
        vx.load(path)


@pytest.mark.parametrize(
    ("srow_x", "match"),
    [
        ((float("nan"), 0.0, 0.0, 0.0), "non-finite"),  # nibabel: LinAlgError (SVD)
        ((0.0, 0.0, 0.0, 0.0), "singular"),  # nibabel: OrientationError, NaN orientation
    ],
)
def test_an_affine_without_orientation_fails_at_the_call(tmp_path, srow_x, match):
    """as_closest_canonical, a DataArray's reorient and axcodes raise InvalidAffineError
    (also nibabel's OrientationError) naming the file; loading and reading still work, and
    `voxray info` reports the axes as unknown."""
    from nibabel.orientations import OrientationError

    from voxray.cli import main

    path = _image(tmp_path / "x.nii")
    _patch(path, 280, "<4f", *srow_x)  # srow_x, with sform_code 1
    img = vx.load(path)
    assert np.asanyarray(img.dataobj).shape == (4, 5, 6)
    with pytest.raises(vx.InvalidAffineError, match=match) as e:
        vx.as_closest_canonical(img)
    assert isinstance(e.value, OrientationError) and "x.nii" in str(e.value)
    da = vx.open_dataarray(path)
    for call in (lambda: da.vx.reorient("RAS"), lambda: da.vx.axcodes):
        with pytest.raises(vx.InvalidAffineError, match=r"x\.nii"):
            call()
    assert main(["info", str(path)]) == 0


def test_a_scale_factor_on_rgb_data_fails_at_the_read(tmp_path):
    """nibabel loads such a file and fails in numpy at the read; voxray loads it too and
    fails at the read with an UnsupportedDataTypeError naming the file."""
    rgb = np.zeros((2, 3, 4), dtype=[("R", "u1"), ("G", "u1"), ("B", "u1")])
    path = tmp_path / "rgb.nii"
    nib.save(nib.Nifti1Image(rgb, np.eye(4)), path)
    _patch(path, 112, "<f", 2.0)  # scl_slope
    img = vx.load(path)
    for read in (
        lambda: np.asanyarray(img.dataobj),
        lambda: img.dataobj[0],
        lambda: img.to_dask().compute(),
        lambda: img.get_fdata(),
    ):
        with pytest.raises(vx.UnsupportedDataTypeError, match=r"rgb\.nii.*scale factor"):
            read()


def test_a_directory_is_not_an_image(tmp_path):
    for name in ("d.nii", "d.nii.gz", "d.mgz"):
        (tmp_path / name).mkdir()
        with pytest.raises(vx.NotAnImageError, match="is a directory"):
            vx.load(tmp_path / name)


def test_a_negative_vox_offset_in_a_gzipped_pair_is_refused_at_load(tmp_path):
    nib.save(nib.Nifti1Pair(np.ones((2, 3, 4), np.int16), np.eye(4)), tmp_path / "p.img.gz")
    hdr = bytearray(gzip.decompress((tmp_path / "p.hdr.gz").read_bytes()))
    struct.pack_into("<f", hdr, 108, -100.0)
    with gzip.open(tmp_path / "p.hdr.gz", "wb") as f:
        f.write(bytes(hdr))
    with pytest.raises(vx.InvalidHeaderError, match=r"p\.hdr\.gz.*negative"):
        vx.load(tmp_path / "p.img.gz")


def _damaged_store(tmp_path, damage):
    import json
    import shutil

    src = tmp_path / "src.nii.zarr"
    if not src.exists():
        arr = np.arange(32 * 32 * 16, dtype=np.int16).reshape(32, 32, 16)
        vx.to_zarr(vx.Image(arr, np.eye(4)), str(src))
    dst = tmp_path / "bad.nii.zarr"
    shutil.rmtree(dst, ignore_errors=True)
    shutil.copytree(src, dst)
    chunk = next(p for p in sorted((dst / "0" / "c").rglob("*")) if p.is_file())
    level = dst / "0" / "zarr.json"
    if damage == "root json":
        (dst / "zarr.json").write_bytes(b"{{{")
    elif damage == "level json":
        level.write_bytes(b'{"zarr_format": 3, "node_')
    elif damage == "chunk bytes":
        data = bytearray(chunk.read_bytes())
        data[10] ^= 0x55
        data[len(data) // 2] ^= 0xFF
        chunk.write_bytes(bytes(data))
    elif damage == "chunk truncated":
        chunk.write_bytes(chunk.read_bytes()[:20])
    elif damage in ("shape x10", "dtype"):
        meta = json.loads(level.read_text())
        if damage == "shape x10":
            meta["shape"] = [n * 10 for n in meta["shape"]]
        else:
            meta["data_type"] = "float64"
        level.write_text(json.dumps(meta))
    return dst


@pytest.mark.parametrize(
    ("damage", "error"),
    [
        ("root json", vx.CorruptStoreError),
        ("level json", vx.CorruptStoreError),
        ("chunk bytes", vx.CorruptStoreError),
        ("chunk truncated", vx.CorruptStoreError),
        ("shape x10", vx.InvalidHeaderError),  # was trusted: reads past the data gave zeros
        ("dtype", vx.InvalidHeaderError),
    ],
)
def test_a_damaged_zarr_store_names_the_store(tmp_path, damage, error):
    store = _damaged_store(tmp_path, damage)

    def load_and_read():
        return np.asanyarray(vx.load(store).dataobj)

    with pytest.raises(error, match=r"bad\.nii\.zarr"):
        load_and_read()


# -- the validation step (formats/nifti/validate.py): each refusal names the field ------


def _qform_only(path):
    """x.nii whose affine is its qform (sform_code 0)."""
    img = nib.Nifti1Image(np.arange(120, dtype=np.int16).reshape(4, 5, 6), np.diag([2, 2, 2, 1]))
    img.set_sform(None, code=0)
    img.set_qform(np.diag([2, 2, 2, 1]), code=1)
    nib.save(img, path)
    return path


def test_a_quaternion_that_is_no_rotation_names_its_fields(tmp_path):
    """nibabel: ValueError('w2 should be positive') at load; voxray: InvalidAffineError
    naming quatern_b/c/d and why the qform was used."""
    path = _qform_only(tmp_path / "x.nii")
    _patch(path, 256, "<3f", 0.9, 0.9, 0.0)  # quatern_b, quatern_c, quatern_d
    with pytest.raises(ValueError, match="w2"):
        nib.load(path).affine
    with pytest.raises(vx.InvalidAffineError, match=r"x\.nii.*sform_code is 0.*quatern_b.*1\.62"):
        vx.load(path)


def test_a_bad_quaternion_under_a_usable_sform_reads_as_nibabel_reads_it(tmp_path):
    path = _image(tmp_path / "x.nii")  # sform_code 1
    _patch(path, 256, "<3f", 0.9, 0.9, float("nan"))
    want = nib.load(path)
    img = vx.load(path)
    np.testing.assert_array_equal(img.affine, want.affine)
    np.testing.assert_array_equal(np.asanyarray(img.dataobj), np.asanyarray(want.dataobj))


def test_a_nan_translation_still_orients_as_nibabel_does(tmp_path):
    path = _qform_only(tmp_path / "x.nii")
    _patch(path, 268, "<f", float("nan"))  # qoffset_x
    want, img = nib.as_closest_canonical(nib.load(path)), vx.as_closest_canonical(vx.load(path))
    np.testing.assert_array_equal(img.affine, want.affine)  # NaN where nibabel has NaN
    np.testing.assert_array_equal(np.asanyarray(img.dataobj), np.asanyarray(want.dataobj))


def test_dim0_out_of_range_in_both_byte_orders_names_dim0(tmp_path):
    """nibabel reads the header byte-swapped and complains about vox_offset 0."""
    path = _image(tmp_path / "x.nii")
    _patch(path, 40, "<h", 9)
    with pytest.raises(vx.InvalidHeaderError, match=r"x\.nii.*dim\[0\].* is 9"):
        vx.load(path)


def test_a_nan_vox_offset_with_extensions_flagged(tmp_path):
    """The extension flag made voxray size its header read from vox_offset: int(nan)."""
    path = _image(tmp_path / "x.nii")
    _patch(path, 108, "<f", float("nan"))
    _patch(path, 348, "<B", 1)
    with pytest.raises(vx.InvalidHeaderError, match=r"x\.nii.*vox_offset .* is nan"):
        vx.load(path)


@pytest.mark.parametrize(
    ("esize", "match"),
    [(-16, "esize -16"), (0, "esize 0"), (7, "esize 7"), (1 << 20, "running past vox_offset")],
)
def test_a_bad_extension_size_names_the_extension(tmp_path, esize, match):
    img = nib.Nifti1Image(np.zeros((2, 3, 4), np.int16), np.eye(4))
    img.header.extensions.append(nib.nifti1.Nifti1Extension(6, b"a comment, long enough"))
    path = tmp_path / "x.nii"
    nib.save(img, path)
    _patch(path, 352, "<i", esize)
    with pytest.raises(Exception):  # noqa: B017  nibabel fails too (its own error types)
        nib.load(path)
    with pytest.raises(vx.InvalidHeaderError, match=rf"x\.nii.*extension 1 at byte 352.*{match}"):
        vx.load(path)


def test_an_extension_parser_error_is_an_invalid_header(tmp_path):
    """An extension's content is parsed by nibabel's handler for its code: a damaged
    CIFTI-2 XML (ecode 32) is an ExpatError there; here an InvalidHeaderError."""
    img = nib.Nifti2Image(np.zeros((1, 1, 1, 1, 1, 3), np.float32), np.eye(4))
    img.header.set_intent("ConnDenseScalar")
    img.header.extensions.append(nib.nifti1.Nifti1Extension(32, b"<CIFTI Version='2'><unclosed"))
    path = tmp_path / "x.dscalar.nii"
    nib.save(img, path)
    from xml.parsers.expat import ExpatError

    with pytest.raises(ExpatError):
        nib.load(path)
    with pytest.raises(vx.InvalidHeaderError, match=r"x\.dscalar\.nii.*XML.*cannot be parsed"):
        vx.load(path)


def test_a_zarr_level_with_a_zero_scale_is_refused(tmp_path):
    import json

    store = _damaged_store(tmp_path, None)
    root = json.loads((store / "zarr.json").read_text())
    ms = root["attributes"]["ome"]["multiscales"][0]
    ms["datasets"][0]["coordinateTransformations"][0]["scale"][-1] = 0.0
    (store / "zarr.json").write_text(json.dumps(root))
    with pytest.raises(vx.InvalidHeaderError, match=r"bad\.nii\.zarr.*level 0's scale"):
        vx.load(store)


def test_a_missing_pyramid_level_is_an_index_error_and_a_voxray_error(tmp_path):
    store = _damaged_store(tmp_path, None)
    with pytest.raises(vx.NoSuchLevelError, match=r"bad\.nii\.zarr.*level 99") as e:
        vx.load(store, level=99)
    assert isinstance(e.value, IndexError)


def test_every_error_class_lives_in_errors_and_is_exported():
    """One place for the hierarchy: each VoxrayError subclass anywhere in voxray is defined
    in voxray.errors and exported from voxray; the format errors are nibabel's too."""
    import importlib
    import pkgutil

    import voxray.errors as errors

    for mod in pkgutil.walk_packages(vx.__path__, "voxray."):
        if mod.name.startswith("voxray.testing") or mod.name.endswith("__main__"):
            continue
        module = importlib.import_module(mod.name)
        for value in vars(module).values():
            if isinstance(value, type) and issubclass(value, vx.VoxrayError):
                assert value.__module__ == "voxray.errors", (mod.name, value)
                assert getattr(vx, value.__name__) is value
    from nibabel.brikhead import AFNIHeaderError
    from nibabel.freesurfer.mghformat import MGHError
    from nibabel.parrec import PARRECError

    assert issubclass(errors.AFNIHeaderError, AFNIHeaderError)
    assert issubclass(errors.MGHDataTypeError, MGHError)
    assert issubclass(errors.ParrecHeaderError, PARRECError)


def test_to_zarr_writes_every_chunk_so_a_lost_one_is_an_error(tmp_path):
    """Zarr reads a missing chunk as the fill value; voxray's stores hold every chunk
    (all-zero ones too) and say so, so a deleted chunk is a CorruptStoreError at the read,
    not zeros. An edit of the codecs (byte order) after writing is caught by the
    signature."""
    import json

    arr = np.zeros((32, 32, 16), np.int16)
    arr[:16] = 7  # half the chunks all zero
    src = tmp_path / "z.nii.zarr"
    vx.to_zarr(vx.Image(arr, np.eye(4)), str(src), chunks=(16, 16, 16))
    chunks = sorted(p for p in (src / "0" / "c").rglob("*") if p.is_file())
    assert len(chunks) == 4  # (z, y, x) grid 1 x 2 x 2: the all-zero ones are stored too
    meta = json.loads((src / "0" / "zarr.json").read_text())
    assert meta["attributes"]["voxray"]["all_chunks"] is True
    np.testing.assert_array_equal(np.asanyarray(vx.load(src).dataobj), arr)
    chunks[-1].unlink()
    img = vx.load(src)
    with pytest.raises(vx.CorruptStoreError, match=r"z\.nii\.zarr.*chunk '0/c/.*' is missing"):
        np.asanyarray(img.dataobj)


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"chunks": (0, 8, 8)}, "chunks must be positive"),
        ({"chunks": (8, 8)}, "do not match the Zarr axes"),
        ({"chunks": "big"}, "chunks must be positive"),
        ({"chunks": 8, "shards": (12, 16, 16)}, "multiples of the chunks"),
    ],
)
def test_to_zarr_refuses_bad_chunks_with_an_input_error(tmp_path, kwargs, match):
    img = vx.Image(np.zeros((16, 16, 16), np.int16), np.eye(4))
    with pytest.raises(vx.InputError, match=match):
        vx.to_zarr(img, str(tmp_path / "z.nii.zarr"), **kwargs)
    assert not list(tmp_path.iterdir())  # nothing left behind


def test_an_emptied_shard_is_lost_not_empty(tmp_path):
    arr = np.arange(32 * 32 * 32, dtype=np.int16).reshape(32, 32, 32)
    store = tmp_path / "s.nii.zarr"
    vx.to_zarr(vx.Image(arr, np.eye(4)), str(store), chunks=8, shards=(16, 16, 16))
    shard = next(p for p in sorted((store / "0" / "c").rglob("*")) if p.is_file())
    shard.write_bytes(b"")
    with pytest.raises(vx.CorruptStoreError, match=r"s\.nii\.zarr.*is missing"):
        np.asanyarray(vx.load(store).dataobj)
