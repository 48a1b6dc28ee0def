"""File-like objects (``BytesIO``, open files) as sources.

Only for compatibility with nibabel's ``ArrayProxy(file_like, header)``
signature: reads seek, then read, under a lock, so the object's position
never affects the result. Graphs built on such a source pickle the object
itself (a ``BytesIO`` copies; an open file does not pickle).
"""

from __future__ import annotations

import threading

from ..errors import TruncatedFileError
from .base import Source

__all__ = ["FileObjSource"]


class FileObjSource(Source):
    request_cost = 4 * 1024

    def __init__(self, fileobj, name: str | None = None):
        super().__init__()
        self.fileobj = fileobj
        self.name = name or getattr(fileobj, "name", None) or repr(fileobj)
        self._lock = threading.Lock()

    @property
    def size(self) -> int | None:
        with self._lock:
            pos = self.fileobj.tell()
            try:
                return self.fileobj.seek(0, 2)
            finally:
                self.fileobj.seek(pos)

    def readinto(self, offset: int, buffer) -> None:
        mv = memoryview(buffer).cast("B")
        with self._lock:
            self.fileobj.seek(offset)
            got = 0
            while got < mv.nbytes:
                if hasattr(self.fileobj, "readinto"):
                    k = self.fileobj.readinto(mv[got:])
                else:
                    data = self.fileobj.read(mv.nbytes - got)
                    k = len(data)
                    mv[got : got + k] = data
                if not k:
                    raise TruncatedFileError(
                        f"{self.name!r} ends at byte {offset + got}; {mv.nbytes - got} more bytes "
                        f"were expected (reading {mv.nbytes} bytes at offset {offset})"
                    )
                got += k
        self.stats.add(requests=1, bytes_read=mv.nbytes, bytes_returned=mv.nbytes)
