"""``voxray index PATH``: build the gzip seek-point index of a .nii.gz once, for good."""

from __future__ import annotations

import sys

from .options import add_storage_options, storage_options

__all__ = ["add_parser", "build", "run"]


def add_parser(sub) -> None:
    p = sub.add_parser(
        "index",
        help="build the gzip seek index of a .nii.gz (random access in later reads)",
        description="Decompress a gzip-compressed image once, recording seek points, and "
        "store the index in the cache (or next to the file with --sidecar). A URL is "
        "streamed once; its sidecar is an object next to it (KEY.gzi).",
    )
    p.add_argument(
        "path", nargs="+", help=".nii.gz (or any gzip-compressed image) file(s) or URL(s)"
    )
    p.add_argument(
        "--sidecar",
        action="store_true",
        help="write PATH.gzi next to the file instead of into the cache",
    )
    p.add_argument("--force", action="store_true", help="rebuild even if an index exists")
    p.add_argument("--quiet", "-q", action="store_true", help="no progress bar")
    add_storage_options(p)
    p.set_defaults(run=run)


def build(
    path: str,
    sidecar: bool = False,
    force: bool = False,
    progress: bool = True,
    storage_options: dict | None = None,
):
    """Index one file; return ``(index, where it was stored)``."""
    from ..errors import NotAnImageError
    from ..sources import GzipSource, LocalFileSource, local_spec, remote_locator
    from ..sources.gzcache import find_index, load_index, sidecar_path, store_index
    from ..sources.remote import RemoteSource, is_url

    spec = remote_locator(storage_options)(path) if is_url(path) else local_spec(path)
    if spec.compression != "gzip":
        raise NotAnImageError(f"{path!r} is not gzip-compressed: there is nothing to index")
    if not force:
        existing = load_index(spec)
        if existing is not None:
            where = find_index(spec)
            if not sidecar or where == sidecar_path(spec):
                return existing, where
    if is_url(path):  # streamed once, in large sequential range requests
        raw = RemoteSource(spec)
    else:
        raw = LocalFileSource(spec.path, (spec.size, spec.mtime_ns))
    src = GzipSource(raw)
    bar = None
    if progress:
        from tqdm import tqdm

        from ..writers import pipeline

        bar = tqdm(
            total=spec.size,
            unit="B",
            unit_scale=True,
            unit_divisor=1024,
            desc=f"indexing {spec.name.rsplit('/', 1)[-1]}",
            leave=False,
            ncols=pipeline.terminal_width(),
        )
    done = 0

    def update(pos: int) -> None:
        nonlocal done
        if bar is not None:
            bar.update(pos - done)
        done = pos

    try:
        index = src.build_index(update)
    finally:
        if bar is not None:
            bar.close()
        src.close()
    return index, store_index(spec, index, sidecar=sidecar, strict=True)


def run(args) -> int:
    show = not args.quiet and sys.stderr.isatty()
    for path in args.path:
        index, where = build(
            path, args.sidecar, args.force, progress=show, storage_options=storage_options(args)
        )
        print(
            f"{path}: {len(index)} seek points, {index.uncompressed_size} bytes "
            f"decompressed, spacing {index.spacing}; index {where} ({index.nbytes} bytes)"
        )
    return 0
