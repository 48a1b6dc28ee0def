"""Test helpers shipped with voxray: the conformance corpus and I/O counting."""

from .corpus import (
    NIBABEL_DATA,
    CorpusEntry,
    build_corpus,
    nilearn_data_dir,
    write_analyze,
    write_nifti,
)

__all__ = [
    "NIBABEL_DATA",
    "CorpusEntry",
    "build_corpus",
    "nilearn_data_dir",
    "write_analyze",
    "write_nifti",
]
