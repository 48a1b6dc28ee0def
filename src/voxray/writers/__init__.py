"""The parts every format's writer shares: the value plan (:mod:`.values`), the write
pipeline (:mod:`.pipeline`), random-access gzip output (:mod:`.gzip`) and atomic files
(:mod:`.atomic`). No format lives here; each format's ``write`` module uses these."""

from .atomic import AtomicFile, StreamTarget
from .gzip import DEFAULT_COMPRESSLEVEL
from .values import ValuePlan, WriteError, as_image, plan_values

__all__ = [
    "DEFAULT_COMPRESSLEVEL",
    "AtomicFile",
    "StreamTarget",
    "ValuePlan",
    "WriteError",
    "as_image",
    "plan_values",
]
