"""``-o KEY=VALUE``: fsspec storage options for URLs given on the command line."""

from __future__ import annotations

import argparse
import json

__all__ = ["add_storage_options", "storage_options"]


def _pair(text: str) -> tuple[str, object]:
    key, sep, value = text.partition("=")
    if not sep or not key:
        raise argparse.ArgumentTypeError(f"expected KEY=VALUE, got {text!r}")
    try:
        return key, json.loads(value)  # true, 3, {"a": 1} ...
    except json.JSONDecodeError:
        return key, value  # a plain string


def add_storage_options(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "-o",
        "--storage-option",
        dest="storage_options",
        action="append",
        type=_pair,
        default=[],
        metavar="KEY=VALUE",
        help="fsspec storage option for s3://, gs://, https:// URLs (repeatable; VALUE is "
        "JSON or a string), e.g. -o anon=true -o endpoint_url=http://127.0.0.1:9000",
    )


def storage_options(args) -> dict | None:
    return dict(args.storage_options) or None
