"""Writers: NIfTI (.nii, .nii.gz, pairs), out of core, in parallel, atomically."""

from .atomic import AtomicFile
from .nifti import DEFAULT_COMPRESSLEVEL, output_class, save

__all__ = ["DEFAULT_COMPRESSLEVEL", "AtomicFile", "output_class", "save"]
