"""voxray's NIfTI and Analyze image classes: nibabel's classes, lazy.

Each is the nibabel class of the same name with :class:`voxray.image.Image` mixed
in first, so ``isinstance(img, nibabel.Nifti1Image)`` holds, nilearn takes the
image as it is, and every nibabel method not listed in the mixin is nibabel's own.
"""

from __future__ import annotations

from nibabel import analyze, imageclasses, nifti1, nifti2, spm2analyze, spm99analyze

from ...image import Image, register_image_class
from . import NIFTI

__all__ = [
    "CLASSES",
    "AnalyzeImage",
    "Nifti1Image",
    "Nifti1Pair",
    "Nifti2Image",
    "Nifti2Pair",
    "Spm2AnalyzeImage",
    "Spm99AnalyzeImage",
]


class Nifti1Image(Image, nifti1.Nifti1Image):
    """``nibabel.Nifti1Image`` (single ``.nii`` file), lazy: see :class:`voxray.Image`."""

    format = NIFTI


class Nifti1Pair(Image, nifti1.Nifti1Pair):
    """``nibabel.Nifti1Pair`` (``.hdr`` + ``.img``), lazy: see :class:`voxray.Image`."""

    format = NIFTI


class Nifti2Image(Image, nifti2.Nifti2Image):
    """``nibabel.Nifti2Image`` (single ``.nii`` file), lazy: see :class:`voxray.Image`."""

    format = NIFTI


class Nifti2Pair(Image, nifti2.Nifti2Pair):
    """``nibabel.Nifti2Pair`` (``.hdr`` + ``.img``), lazy: see :class:`voxray.Image`."""

    format = NIFTI


class AnalyzeImage(Image, analyze.AnalyzeImage):
    """``nibabel.AnalyzeImage`` (Analyze 7.5 pair), lazy: see :class:`voxray.Image`."""

    format = NIFTI


class Spm99AnalyzeImage(Image, spm99analyze.Spm99AnalyzeImage):
    """``nibabel.Spm99AnalyzeImage`` (with an optional ``.mat`` affine), lazy."""

    format = NIFTI


class Spm2AnalyzeImage(Image, spm2analyze.Spm2AnalyzeImage):
    """``nibabel.Spm2AnalyzeImage`` (with an optional ``.mat`` affine), lazy."""

    format = NIFTI


#: Every class of this format; Nifti1Image is the default of ``vx.Image(...)``.
CLASSES = (
    Nifti1Image,
    Nifti1Pair,
    Nifti2Image,
    Nifti2Pair,
    AnalyzeImage,
    Spm99AnalyzeImage,
    Spm2AnalyzeImage,
)
for _klass in CLASSES:
    register_image_class(_klass, default=_klass is Nifti1Image)

# nibabel's ``spatial_axes_first`` (nibabel.processing, imagestats, the slicer of 4-D images)
# knows spatial-first classes by exact type; voxray's classes are as spatial-first as the
# nibabel classes they subclass.
imageclasses.KNOWN_SPATIAL_FIRST = (*imageclasses.KNOWN_SPATIAL_FIRST, *CLASSES)
