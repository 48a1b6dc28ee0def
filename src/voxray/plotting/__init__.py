"""Looking at images of any size: pictures that read only what they show.

``plot_ortho`` (three orthogonal planes through a world point), ``plot_mosaic`` (a
lightbox of evenly spaced planes), ``plot_timecourse`` (a voxel's or a sphere's series)
and ``plot_carpet`` (voxels x time, streamed once over the data) return matplotlib
Figures in nilearn's conventions, oriented by the affine. They take voxray and nibabel
images and voxray DataArrays; a voxray image reads just the planes (or the sphere's
box, or the data once, in bounded memory), wherever the file is.

matplotlib is optional (``pip install 'voxray[plot]'``); without it these calls raise
:class:`~voxray.MissingDependencyError`. Importing this package imports neither
matplotlib nor dask.
"""

from .ortho import plot_mosaic, plot_ortho
from .planes import Plane, ortho_planes
from .series import plot_carpet, plot_timecourse, timecourse
from .volume import Volume, as_volume

__all__ = [
    "Plane",
    "Volume",
    "as_volume",
    "ortho_planes",
    "plot_carpet",
    "plot_mosaic",
    "plot_ortho",
    "plot_timecourse",
    "timecourse",
]
