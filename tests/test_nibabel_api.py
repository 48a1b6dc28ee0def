"""nibabel's own proxy and image API validators, run against voxray's classes.

The validator classes are imported from the installed nibabel (``nibabel.tests``)
and subclassed, so voxray is held to exactly the checks nibabel holds itself to.
Modules are imported as modules so pytest does not also collect nibabel's own
test classes here.
"""

from __future__ import annotations

import nibabel as nib
import nibabel.tests.test_analyze as nib_analyze
import nibabel.tests.test_api_validators as nib_validators
import nibabel.tests.test_image_api as nib_image_api
import nibabel.tests.test_nifti1 as nib_nifti1
import nibabel.tests.test_nifti2 as nib_nifti2
import nibabel.tests.test_proxy_api as nib_proxy_api
import nibabel.tests.test_spm2analyze as nib_spm2
import nibabel.tests.test_spm99analyze as nib_spm99
import numpy as np

import voxray as vx


class TestVoxrayProxyAnalyze(nib_proxy_api.TestAnalyzeProxyAPI):
    proxy_class = vx.ArrayProxy


class TestVoxrayProxySpm99(nib_proxy_api.TestSpm99AnalyzeProxyAPI):
    proxy_class = vx.ArrayProxy


class TestVoxrayProxySpm2(nib_proxy_api.TestSpm2AnalyzeProxyAPI):
    proxy_class = vx.ArrayProxy


class TestVoxrayProxyNifti1(nib_proxy_api.TestNifti1ProxyAPI):
    proxy_class = vx.ArrayProxy


def _images(directory):
    """(maker, params) pairs for proxy images, array images and dask images."""
    from voxray.testing import write_nifti

    rng = np.random.default_rng(0)
    arr = rng.integers(-1000, 1000, (5, 6, 7, 3)).astype(np.int16)
    aff = np.diag([2.0, 3.0, 4.0, 1.0])
    aff[:3, 3] = [-10, 20, 5]
    hdr = nib.Nifti1Header()
    hdr.set_data_dtype(np.int16)
    hdr.set_sform(aff, code=2)
    hdr.set_qform(aff, code=1)
    plain = write_nifti(directory / "plain.nii", arr, hdr)
    hdr.set_slope_inter(0.5, 3.0)
    scaled = write_nifti(directory / "scaled.nii.gz", arr, hdr)

    for path in (plain, scaled):
        ref = nib.load(path)
        yield (
            (lambda path=path: vx.load(path)),
            dict(
                shape=arr.shape,
                affine=ref.affine,
                dtype=np.int16,
                is_proxy=True,
                data=ref.get_fdata(),
            ),
        )
    for dtype in (np.float64, np.float32, np.int16):
        data = arr.astype(dtype)
        yield (
            (lambda data=data: vx.Image(data.copy(), aff)),
            dict(
                shape=arr.shape,
                affine=aff,
                dtype=dtype,
                is_proxy=False,
                data=data.astype(float),
            ),
        )
    import dask.array as da

    yield (
        (lambda: vx.Image(da.from_array(arr.astype(np.float32), chunks=2), aff)),
        dict(
            shape=arr.shape,
            affine=aff,
            dtype=np.float32,
            is_proxy=True,
            data=arr.astype(float),
        ),
    )


class TestVoxrayImageAPI(
    nib_validators.ValidateAPI,
    nib_image_api.DataInterfaceMixin,
    nib_image_api.AffineMixin,
    nib_image_api.HeaderShapeMixin,
):
    """nibabel's data-interface checks: get_fdata caching, in_memory, uncache, dtype,
    shape, ndim, read-only attributes, mmap parameter, header shape, affine."""

    has_scaling = True
    can_save = False

    def obj_params(self):
        import tempfile
        from pathlib import Path

        yield from _images(Path(tempfile.mkdtemp(prefix="voxray-api-")))

    def validate_header(self, imaker, params):
        img = imaker()
        hdr = img.header
        import pytest

        with pytest.raises(AttributeError):
            img.header = hdr

    def validate_no_slicing(self, imaker, params):
        import pytest

        img = imaker()
        with pytest.raises(TypeError):
            img["string"]
        with pytest.raises(TypeError):
            img[:]


# -- nibabel's per-format image API validators (test_image_api) ------------------------


class TestVoxrayAnalyzeAPI(nib_image_api.TestAnalyzeAPI):
    klass = image_maker = vx.AnalyzeImage


class TestVoxraySpm99AnalyzeAPI(nib_image_api.TestSpm99AnalyzeAPI):
    klass = image_maker = vx.Spm99AnalyzeImage


class TestVoxraySpm2AnalyzeAPI(nib_image_api.TestSpm2AnalyzeAPI):
    klass = image_maker = vx.Spm2AnalyzeImage


class TestVoxrayNifti1PairAPI(nib_image_api.TestNifti1PairAPI):
    klass = image_maker = vx.Nifti1Pair


class TestVoxrayNifti1API(nib_image_api.TestNifti1API):
    klass = image_maker = vx.Nifti1Image


class TestVoxrayNifti2PairAPI(nib_image_api.TestNifti2PairAPI):
    klass = image_maker = vx.Nifti2Pair


class TestVoxrayNifti2API(nib_image_api.TestNifti2API):
    klass = image_maker = vx.Nifti2Image


# -- nibabel's per-format image test classes (test_analyze, test_spm*, test_nifti*) ----


class TestVoxrayAnalyzeImage(nib_analyze.TestAnalyzeImage):
    image_class = vx.AnalyzeImage


class TestVoxraySpm99AnalyzeImage(nib_spm99.TestSpm99AnalyzeImage):
    image_class = vx.Spm99AnalyzeImage


class TestVoxraySpm2AnalyzeImage(nib_spm2.TestSpm2AnalyzeImage):
    image_class = vx.Spm2AnalyzeImage


class TestVoxrayNifti1Pair(nib_nifti1.TestNifti1Pair):
    image_class = vx.Nifti1Pair


class TestVoxrayNifti1Image(nib_nifti1.TestNifti1Image):
    image_class = vx.Nifti1Image


class TestVoxrayNifti2Pair(nib_nifti2.TestNifti2Pair):
    image_class = vx.Nifti2Pair


class TestVoxrayNifti2Image(nib_nifti2.TestNifti2Image):
    image_class = vx.Nifti2Image
