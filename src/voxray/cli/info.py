"""``voxray info PATH``: what an image is, without reading its data."""

from __future__ import annotations

import json
import math
import os

import numpy as np

from .options import add_storage_options, storage_options

__all__ = ["add_parser", "describe", "run"]

_FORMATS = {
    "Nifti1Image": "NIfTI-1",
    "Nifti1Pair": "NIfTI-1 pair",
    "Nifti2Image": "NIfTI-2",
    "Nifti2Pair": "NIfTI-2 pair",
    "AnalyzeImage": "Analyze 7.5",
    "Spm99AnalyzeImage": "SPM99 Analyze",
    "Spm2AnalyzeImage": "SPM2 Analyze",
}


def add_parser(sub) -> None:
    p = sub.add_parser("info", help="describe an image (header only; no data is read)")
    p.add_argument("path", help="image file (.nii, .nii.gz, .hdr/.img) or URL (s3://, https://)")
    p.add_argument("--json", action="store_true", help="print JSON instead of text")
    add_storage_options(p)
    p.set_defaults(run=run)


def _code(header, field: str) -> dict | None:
    if field not in header:
        return None
    from nibabel.nifti1 import xform_codes

    code = int(header[field])
    return {"code": code, "label": xform_codes.label[code] if code in xform_codes.code else "?"}


def _files(img, data_spec, options) -> dict:
    """``{kind: {"path", "bytes"}}`` of the image's files (local or remote)."""
    from ..sources.remote import RemoteSpec, is_url

    files = {}
    for kind, holder in img.file_map.items():
        name = holder.filename
        if not name:
            continue
        if getattr(data_spec, "name", None) == name:
            files[kind] = {"path": data_spec.name, "bytes": data_spec.size}
        elif is_url(name):
            files[kind] = {"path": name, "bytes": RemoteSpec.for_url(name, options).size}
        elif os.path.exists(name):
            files[kind] = {"path": os.path.abspath(name), "bytes": os.path.getsize(name)}
    return files


def describe(path: str, storage_options: dict | None = None) -> dict:
    """Everything ``voxray info`` reports about an image, as plain values."""
    from ..open import load
    from ..planning import default_chunks, expand_chunks
    from ..sources.remote import is_url

    img = load(path, storage_options=storage_options)
    hdr = img.header
    proxy = img.dataobj
    lay = proxy.reader.layout
    data_spec = proxy.reader.source
    scaled = lay.scaled_dtype()
    files = _files(img, data_spec, storage_options)
    zooms = [float(z) for z in hdr.get_zooms()]
    units = None
    if hasattr(hdr, "get_xyzt_units"):
        space, time = hdr.get_xyzt_units()
        units = {"space": space, "time": time}
    chunk = default_chunks(lay.shape, scaled.itemsize)
    nchunks = math.prod(len(c) for c in expand_chunks(lay.shape, chunk))
    out = {
        "path": path if is_url(path) else os.path.abspath(path),
        "format": _FORMATS.get(img.nibabel_class.__name__, img.nibabel_class.__name__),
        "nibabel_class": img.nibabel_class.__name__,
        "compression": data_spec.compression or "none",
        "files": files,
        "shape": list(img.shape),
        "dtype_on_disk": lay.dtype.str if lay.dtype.fields is None else str(lay.dtype),
        "dtype_in_memory": scaled.str if scaled.fields is None else str(scaled),
        "datatype": _datatype(hdr, lay.dtype),
        "byte_order": {"<": "little", ">": "big", "|": "n/a", "=": "native"}[lay.dtype.byteorder]
        if lay.dtype.fields is None
        else "n/a",
        "zooms": zooms,
        "units": units,
        "axcodes": list(_axcodes(img.affine)),
        "affine": np.round(img.affine, 6).tolist(),
        "qform": _code(hdr, "qform_code"),
        "sform": _code(hdr, "sform_code"),
        "scaling": {
            "slope": float(lay.slope),
            "inter": float(lay.inter),
            "applied": lay.is_scaled,
        },
        "vox_offset": lay.offset,
        "data_bytes": lay.nbytes,
        "chunks": {
            "shape": list(chunk),
            "count": nchunks,
            "bytes": math.prod(chunk) * scaled.itemsize,
        },
        "intent": _intent(hdr),
        "description": _text(hdr, "descrip"),
        "extensions": [int(e.get_code()) for e in getattr(hdr, "extensions", [])],
    }
    if data_spec.compression == "gzip":
        from ..sources.gzcache import find_index

        found = find_index(data_spec)
        out["gzip_index"] = str(found) if found else None
    return out


def _datatype(hdr, dtype) -> str:
    """The header's datatype label ('int16', 'RGB', ...), as nibabel names it."""
    from nibabel.nifti1 import data_type_codes

    try:
        return str(data_type_codes.label[int(hdr["datatype"])])
    except (KeyError, ValueError):
        return dtype.name


def _axcodes(affine):
    from nibabel.orientations import aff2axcodes

    return tuple(c or "?" for c in aff2axcodes(affine))


def _intent(hdr) -> str | None:
    if "intent_code" not in hdr:
        return None
    try:
        name = hdr.get_intent()[0]
    except Exception:  # an unknown intent code is not worth failing `info` over
        name = str(int(hdr["intent_code"]))
    return None if name == "none" else name


def _text(hdr, field: str) -> str | None:
    if field not in hdr:
        return None
    return bytes(hdr[field]).split(b"\x00")[0].decode("latin-1") or None


def _name(dtype_str: str) -> str:
    try:
        return np.dtype(dtype_str).name
    except TypeError:
        return dtype_str


def _bytes(n: int) -> str:
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if n < 1024 or unit == "TiB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024
    raise AssertionError


def format_text(d: dict) -> str:
    sp = (d["units"] or {}).get("space", "unknown")
    tu = (d["units"] or {}).get("time", "unknown")
    zooms = " x ".join(f"{z:g}" for z in d["zooms"][:3]) + f" {sp}"
    if len(d["zooms"]) > 3:
        zooms += ", " + " x ".join(f"{z:g}" for z in d["zooms"][3:]) + f" {tu}"
    sc = d["scaling"]
    scaling = (
        f"slope {sc['slope']:g}, inter {sc['inter']:g}"
        if sc["applied"]
        else "none (slope 1, inter 0)"
    )
    files = ", ".join(f"{v['path']} ({_bytes(v['bytes'])})" for v in d["files"].values())
    ch = d["chunks"]
    lines = [
        ("path", d["path"]),
        ("format", d["format"] + (f", {d['compression']}" if d["compression"] != "none" else "")),
        ("files", files),
        ("shape", " x ".join(map(str, d["shape"]))),
        (
            "dtype",
            f"{d['datatype']} on disk ({d['byte_order']} endian), "
            f"{_name(d['dtype_in_memory'])} in memory",
        ),
        ("zooms", zooms),
        ("axes", " ".join(d["axcodes"])),
        ("qform", f"{d['qform']['label']} ({d['qform']['code']})" if d["qform"] else "n/a"),
        ("sform", f"{d['sform']['label']} ({d['sform']['code']})" if d["sform"] else "n/a"),
        ("scaling", scaling),
        ("data", f"{_bytes(d['data_bytes'])} at offset {d['vox_offset']}"),
        ("chunks", f"{tuple(ch['shape'])}: {ch['count']} chunk(s) of up to {_bytes(ch['bytes'])}"),
    ]
    if d["intent"]:
        lines.append(("intent", d["intent"]))
    if d["description"]:
        lines.append(("description", d["description"]))
    if d["extensions"]:
        lines.append(("extensions", ", ".join(map(str, d["extensions"]))))
    if "gzip_index" in d:
        lines.append(("gzip index", d["gzip_index"] or "none yet (built by the first full read)"))
    width = max(len(k) for k, _ in lines)
    text = "\n".join(f"{k:<{width}}  {v}" for k, v in lines)
    rows = [" ".join(f"{v:10.4f}" for v in row) for row in d["affine"]]
    return text + "\naffine\n" + "\n".join("  " + r for r in rows)


def run(args) -> int:
    d = describe(args.path, storage_options(args))
    print(json.dumps(d, indent=2) if args.json else format_text(d))
    return 0
