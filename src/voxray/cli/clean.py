"""``voxray clean [PATH ...]``: remove what killed writers left behind.

Looks in the given directories (default: the current one; subdirectories with
``--recursive``; the gzip index cache with ``--cache``) for voxray's own leftovers only:
temporary files ``.NAME.voxray-*.tmp``, partial Zarr stores ``.NAME.voxray-partial``,
aside stores ``.NAME.voxray-partial.old``, lock files nobody holds and index
temporaries ``.tmp-*.gzi``. Each is removed when it is older than ``--older-than``
(default 1h) and no live writer holds its destination
(:func:`voxray.writers.clean.clean_stale`).
"""

from __future__ import annotations

import json

__all__ = ["add_parser", "run"]


def add_parser(sub) -> None:
    p = sub.add_parser(
        "clean",
        help="remove stale temporary files, partial stores and lock files left by killed writers",
        description="Remove voxray's own leftovers (.NAME.voxray-*.tmp, .NAME.voxray-partial, "
        ".NAME.voxray-partial.old, unheld .NAME.voxray-lock, .tmp-*.gzi) older than "
        "--older-than from the given directories. Nothing else is touched, nor anything a "
        "live writer holds.",
    )
    p.add_argument(
        "path", nargs="*", default=["."], help="directories to clean (default: the current one)"
    )
    p.add_argument(
        "--older-than",
        default="1h",
        metavar="AGE",
        help="only leftovers at least this old: seconds, or 30s, 10m, 1h, 2d (default 1h)",
    )
    p.add_argument("--dry-run", "-n", action="store_true", help="list, remove nothing")
    p.add_argument("--recursive", "-r", action="store_true", help="look in subdirectories too")
    p.add_argument("--cache", action="store_true", help="clean the gzip index cache too")
    p.add_argument("--json", action="store_true", help="print the result as JSON")
    p.set_defaults(run=run)


def _size(n: float) -> str:
    """Bytes as people read them.

    >>> _size(512), _size(3 * 2**20)
    ('512 B', '3.0 MiB')
    """
    if n < 1024:
        return f"{int(n)} B"
    for unit in ("KiB", "MiB", "GiB", "TiB"):
        n /= 1024
        if n < 1024 or unit == "TiB":
            break
    return f"{n:.1f} {unit}"


def run(args) -> int:
    from ..writers.clean import clean_stale, parse_age

    older = parse_age(args.older_than)
    done = clean_stale(args.path, older, args.dry_run, args.recursive, args.cache)
    total = sum(x.size for x in done)
    if args.json:
        print(
            json.dumps(
                {
                    "dry_run": args.dry_run,
                    "older_than_seconds": older,
                    "removed": [x.as_dict() for x in done],
                    "bytes": total,
                },
                indent=2,
            )
        )
        return 0
    verb = "would remove" if args.dry_run else "removed"
    for x in done:
        print(f"{verb} {x.path} ({x.kind}, {_size(x.size)})")
    print(
        f"{verb} {len(done)} leftover(s), {_size(total)}"
        + (" to free" if args.dry_run else " freed")
    )
    return 0
