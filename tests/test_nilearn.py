"""nilearn takes voxray's images as they are and gives what it gives for nibabel's image.

nilearn refuses anything that is not a ``nibabel.spatialimages.SpatialImage``; voxray's
classes subclass nibabel's (DESIGN.md), so ``vx.load(p)`` goes straight in. Each test runs
nilearn on ``nibabel.load(p)`` first (the reference) and then on ``vx.load(p)``.

Exact comparisons: nilearn reads data as ``np.asanyarray(img._dataobj)``, where voxray's
proxy gives the same dtype and values as nibabel's (the contract); everything after that is
the same numpy/scipy code on the same array, so results are bitwise equal (checked: they
do not even depend on the array's memory order, C or F).

Laziness, observed with nilearn 0.14 on nibabel's images: ``mean_img``, ``compute_epi_mask``,
``NiftiMasker`` (for its input) and ``plot_anat`` read a deep copy of an uncached input
(``safe_get_data``) and leave it unread, and ``resample_to_img`` does not read its target;
voxray's image must stay unread there too. ``resample_to_img`` and ``smooth_img`` (for their
source) and ``NiftiMasker`` (for a ``mask_img``) fill the image's own ``_data_cache``
(``_get_data``), so laziness is not checked there.
"""

from __future__ import annotations

import nibabel as nib
import numpy as np
import pytest
from nilearn import image, maskers, masking
from nilearn.datasets import load_mni152_template

import voxray as vx
from voxray.testing import NIBABEL_DATA, write_nifti

N_VOLS = 12
BOLD = ["bold.nii", "bold.nii.gz", "bold_scaled.nii", "bold.hdr"]
ANAT = ["anat.nii.gz", "anat_scaled.nii"]


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    """Small realistic inputs: a 4-D EPI series on example4d's oblique grid, MNI T1 at 2 mm."""
    d = tmp_path_factory.mktemp("nilearn")
    src = nib.load(NIBABEL_DATA / "example4d.nii.gz")
    vol = np.asanyarray(src.dataobj[..., :1]).astype(np.float64)
    t = np.arange(N_VOLS)
    rng = np.random.default_rng(0)
    # first volume + slow oscillation + linear drift + noise inside the brain
    bold = vol * (1 + 0.02 * np.sin(t / 2)) + 0.5 * t
    bold += rng.normal(0, 5, bold.shape) * (vol > 100)
    bold = np.clip(np.rint(bold), 0, 32767).astype(np.int16)
    hdr = src.header.copy()  # int16; oblique sform and qform, zooms, TR 2 s
    scaled = hdr.copy()
    scaled.set_slope_inter(0.25, -3.0)
    out = {
        "bold.nii": write_nifti(d / "bold.nii", bold, hdr),
        "bold.nii.gz": write_nifti(d / "bold.nii.gz", bold, hdr),
        "bold_scaled.nii": write_nifti(d / "bold_scaled.nii", bold, scaled),
        "bold.hdr": write_nifti(d / "bold.img", bold, hdr),  # a Nifti1Pair
    }
    tmpl = load_mni152_template(resolution=2)  # ships in nilearn's wheel; float32 in 0..1
    anat = np.asanyarray(tmpl.dataobj)
    ahdr = tmpl.header.copy()
    ahdr.set_data_dtype(np.float32)
    out["anat.nii.gz"] = write_nifti(d / "anat.nii.gz", anat, ahdr)
    ahdr.set_data_dtype(np.int16)
    ahdr.set_slope_inter(1 / 1024, 0.0)
    out["anat_scaled.nii"] = write_nifti(
        d / "anat_scaled.nii", np.rint(anat * 1024).astype(np.int16), ahdr
    )
    mask = masking.compute_epi_mask(nib.load(out["bold.nii"]))
    assert 0.1 < mask.get_fdata().mean() < 0.9  # a real brain mask, not all or nothing
    nib.save(mask, d / "mask.nii.gz")
    out["mask.nii.gz"] = d / "mask.nii.gz"
    return out


def _both(files, name):
    """nibabel's image and voxray's image of the same file."""
    return nib.load(files[name]), vx.load(files[name])


def _assert_same_img(ref, got):
    """nilearn's output for the voxray input equals its output for the nibabel input."""
    assert isinstance(got, nib.spatialimages.SpatialImage)
    np.testing.assert_array_equal(got.affine, ref.affine)
    a, b = np.asanyarray(ref.dataobj), np.asanyarray(got.dataobj)
    assert b.dtype == a.dtype
    np.testing.assert_array_equal(b, a)


def _assert_lazy_like_nibabel(nimg, vimg):
    """Where nilearn left nibabel's input unread, voxray's input is unread too."""
    if not nimg.in_memory:  # true for every call this is used after (nilearn 0.14)
        assert not vimg.in_memory


@pytest.mark.parametrize("name", [*BOLD, *ANAT, "mask.nii.gz"])
def test_load_gives_a_nibabel_subclass(files, name):
    nimg, vimg = _both(files, name)
    assert isinstance(vimg, type(nimg))  # Nifti1Image, or Nifti1Pair for .hdr/.img
    assert isinstance(vimg, nib.Nifti1Image) == (not name.endswith(".hdr"))
    assert type(vimg).__module__.partition(".")[0] == "voxray"  # voxray's class, lazy
    assert issubclass(vx.Nifti1Image, nib.Nifti1Image)
    assert nib.is_proxy(vimg.dataobj) and not vimg.in_memory
    assert vimg.shape == nimg.shape and vimg.get_data_dtype() == nimg.get_data_dtype()
    np.testing.assert_array_equal(vimg.affine, nimg.affine)


@pytest.mark.parametrize("name", BOLD)
def test_mean_img(files, name):
    nimg, vimg = _both(files, name)
    ref = image.mean_img(nimg)
    got = image.mean_img(vimg)
    _assert_same_img(ref, got)
    _assert_lazy_like_nibabel(nimg, vimg)


@pytest.mark.parametrize("name", BOLD)
def test_compute_epi_mask(files, name):
    nimg, vimg = _both(files, name)
    ref = masking.compute_epi_mask(nimg)
    got = masking.compute_epi_mask(vimg)
    _assert_same_img(ref, got)
    _assert_lazy_like_nibabel(nimg, vimg)


MASKER_CASES = {
    "default": {},
    "voxray_mask": {"mask_img": "mask.nii.gz"},
    "standardize_detrend": {
        "mask_img": "mask.nii.gz",
        "standardize": "zscore_sample",
        "detrend": True,
    },
}


# NiftiMasker refuses a Nifti1Pair (nibabel's too: it wants Nifti1Image, str or Path).
# NiftiMasker() passes its default standardize=False to signal.clean, which warns about it.
@pytest.mark.filterwarnings("ignore:boolean values for 'standardize':FutureWarning")
@pytest.mark.parametrize("case", MASKER_CASES)
@pytest.mark.parametrize("name", [b for b in BOLD if not b.endswith(".hdr")])
def test_nifti_masker(files, name, case):
    kwargs = dict(MASKER_CASES[case])
    nimg, vimg = _both(files, name)
    nmask = vmask = None
    if "mask_img" in kwargs:
        nmask, vmask = _both(files, kwargs.pop("mask_img"))
    ref_masker = maskers.NiftiMasker(mask_img=nmask, **kwargs)
    ref = ref_masker.fit_transform(nimg)
    got_masker = maskers.NiftiMasker(mask_img=vmask, **kwargs)
    got = got_masker.fit_transform(vimg)
    assert ref.shape[0] == N_VOLS and ref.shape[1] > 1000
    assert got.dtype == ref.dtype
    np.testing.assert_array_equal(got, ref)
    _assert_same_img(ref_masker.mask_img_, got_masker.mask_img_)
    _assert_same_img(ref_masker.inverse_transform(ref), got_masker.inverse_transform(got))
    _assert_lazy_like_nibabel(nimg, vimg)  # (a mask_img given is read into its cache)


# (source, target): every anatomical onto one EPI grid, one anatomical onto every EPI file
RESAMPLE_PAIRS = list(
    dict.fromkeys([*((a, BOLD[0]) for a in ANAT), *((ANAT[0], b) for b in BOLD)])
)


# nilearn warns that it casts int16 data to float32 before interpolating.
@pytest.mark.filterwarnings("ignore:Casting data from int16 to float32:UserWarning")
@pytest.mark.parametrize(("source", "target"), RESAMPLE_PAIRS)
def test_resample_to_img(files, source, target):
    nsrc, vsrc = _both(files, source)
    ntgt, vtgt = _both(files, target)
    ref = image.resample_to_img(nsrc, ntgt, interpolation="continuous")
    assert ref.shape == ntgt.shape[:3]
    _assert_same_img(ref, image.resample_to_img(vsrc, ntgt, interpolation="continuous"))
    _assert_same_img(ref, image.resample_to_img(nsrc, vtgt, interpolation="continuous"))
    # the target is only asked for its grid (shape and affine): its data stays unread
    _assert_lazy_like_nibabel(ntgt, vtgt)


@pytest.mark.parametrize("name", [*BOLD, *ANAT])
def test_smooth_img(files, name):
    nimg, vimg = _both(files, name)
    ref = image.smooth_img(nimg, fwhm=6)
    got = image.smooth_img(vimg, fwhm=6)
    _assert_same_img(ref, got)
    # smooth_img caches the data in its input (nibabel's too): see the module docstring


@pytest.mark.parametrize("name", ANAT)
def test_plot_anat(files, name):
    pytest.importorskip("matplotlib")  # voxray's "plot" extra, not in "test"
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from nilearn import plotting

    def render(img):
        fig = plt.figure(figsize=(6, 2.5), dpi=60)
        try:
            plotting.plot_anat(img, figure=fig)
            fig.canvas.draw()
            return np.asarray(fig.canvas.buffer_rgba()).copy()
        finally:
            plt.close(fig)

    nimg, vimg = _both(files, name)
    ref = render(nimg)
    assert len(np.unique(ref.reshape(-1, 4), axis=0)) > 50  # an image was drawn
    got = render(vimg)
    np.testing.assert_array_equal(got, ref)
    _assert_lazy_like_nibabel(nimg, vimg)
