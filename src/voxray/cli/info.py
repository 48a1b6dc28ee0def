"""``voxray info PATH...``: what images are, without reading their data.

NIfTI files (and pairs, Analyze images) and Zarr stores (NIfTI-Zarr and plain OME-Zarr:
their pyramid levels, chunks, shards and codec); several paths like ``nib-ls``, as text
or JSON.
"""

from __future__ import annotations

import json
import math
import os
import sys

import numpy as np

from ..errors import VoxrayError
from ..headers import xyzt_units
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
    "Cifti2Image": "CIFTI-2",
    "MGHImage": "MGH",
    "Minc1Image": "MINC1",
    "Minc2Image": "MINC2",
    "PARRECImage": "PAR/REC",
    "AFNIImage": "AFNI BRIK/HEAD",
    "EcatImage": "ECAT 7",
}


def add_parser(sub) -> None:
    p = sub.add_parser(
        "info",
        help="describe images and Zarr stores (header and metadata only; no data is read)",
        description="Describe each PATH: format, shape, dtype, affine, scaling, and for a Zarr "
        "store its pyramid levels, chunks, shards and codec. A PATH that cannot be read is "
        "reported on stderr, the others are still described, and the exit status is 2.",
    )
    p.add_argument(
        "path",
        nargs="+",
        metavar="PATH",
        help="image file (.nii, .nii.gz, .hdr/.img), Zarr store (.nii.zarr, .ome.zarr) or URL "
        "(s3://, https://)",
    )
    p.add_argument(
        "--json",
        action="store_true",
        help="print JSON instead of text (an object for one PATH, a list for several)",
    )
    add_storage_options(p)
    p.set_defaults(run=run)


def _has(header, field: str) -> bool:
    """Whether a header has a field (headers of some formats are not mappings)."""
    try:
        return field in header
    except (TypeError, KeyError, ValueError):
        return False


def _code(header, field: str) -> dict | None:
    if not _has(header, field):
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


def _store_files(url: str) -> dict:
    """``{"store": {"path", "bytes"}}`` of a Zarr store (bytes summed for a local store)."""
    from ..sources.remote import is_url

    if is_url(url):
        return {"store": {"path": url, "bytes": None}}
    root = os.path.abspath(url.removeprefix("file://"))
    total = 0
    for parent, _, names in os.walk(root):
        total += sum(os.path.getsize(os.path.join(parent, n)) for n in names)
    return {"store": {"path": root, "bytes": total}}


def _codec_text(codec) -> str:
    """``blosc (cname=zstd, clevel=1, shuffle=shuffle)``: a Zarr v3 codec or a numcodecs one."""
    if hasattr(codec, "to_dict"):
        d = codec.to_dict()
        name, config = d.get("name", type(codec).__name__), dict(d.get("configuration") or {})
    else:  # numcodecs (Zarr v2)
        config = dict(codec.get_config())
        name = config.pop("id", type(codec).__name__)
    config = {k: v for k, v in config.items() if k not in ("typesize", "blocksize")}
    args = ", ".join(f"{k}={getattr(v, 'value', v)}" for k, v in config.items())
    return f"{name} ({args})" if args else str(name)


def _grid(shape, block) -> dict:
    """``{"shape", "count"}`` of a chunk or shard grid."""
    count = math.prod(math.ceil(n / c) if c else 1 for n, c in zip(shape, block))
    return {"shape": list(block), "count": count}


def _zarr(img, storage_options) -> dict:
    """What a Zarr store holds: OME metadata, levels (Zarr order), chunks, shards, codec."""
    from ..formats.zarr.reader import open_group

    url, array = img.provenance.store
    group = open_group(url, storage_options)
    attrs = dict(group.attrs)
    ome = attrs.get("ome", attrs)
    ms = ome["multiscales"][0]
    axes = [a["name"] for a in ms["axes"]]
    levels = []
    for dataset in ms["datasets"]:
        arr = group[dataset["path"]]
        transforms = {
            t["type"]: t[t["type"]] for t in dataset.get("coordinateTransformations", [])
        }
        levels.append(
            {
                "path": dataset["path"],
                "shape": list(arr.shape),
                "chunks": _grid(arr.shape, arr.chunks),
                "shards": _grid(arr.shape, arr.shards) if arr.shards else None,
                "scale": transforms.get("scale"),
                "translation": transforms.get("translation"),
            }
        )
    arr = group[array]
    codecs = [_codec_text(c) for c in arr.compressors]
    return {
        "nifti_header": "nifti" in group,
        "ome_version": ome.get("version"),
        "axes": axes,
        "level": next(i for i, d in enumerate(ms["datasets"]) if d["path"] == array),
        "levels": levels,
        "codecs": codecs,
        "zarr_format": int(arr.metadata.zarr_format),
    }


def describe(path: str, storage_options: dict | None = None) -> dict:
    """Everything ``voxray info`` reports about an image or Zarr store, as plain values."""
    from ..graph import resolve_chunks
    from ..open import load
    from ..sources.remote import is_url

    img = load(path, storage_options=storage_options)
    hdr = img.header
    proxy = img.dataobj
    lay = proxy.reader.layout
    data_spec = proxy.reader.source
    scaled = lay.scaled_dtype()
    # A byte layout (offset, slope, intercept) or a format's own reader (MINC, PAR/REC,
    # AFNI, ECAT: per-slice, per-volume or per-frame scaling; values as nibabel gives them).
    bytes_layout = proxy.reader.scales_by_layout
    # The stored dtype: the layout's, where the reader reads stored values (a format that
    # scales per volume or frame lays out the values' dtype); else the header's.
    disk = lay.dtype if bytes_layout else _header_dtype(img, lay.dtype)
    store = img.provenance.store if img.provenance is not None else None
    zinfo = _zarr(img, storage_options) if store is not None else None
    if zinfo is not None:
        files = _store_files(store[0])
        fmt = "NIfTI-Zarr" if zinfo["nifti_header"] else "OME-Zarr"
        compression = ", ".join(zinfo["codecs"]) or "none"
    else:
        files = _files(img, data_spec, storage_options)
        fmt = _FORMATS.get(img.nibabel_class.__name__, img.nibabel_class.__name__)
        compression = getattr(data_spec, "compression", None) or "none"
    zooms = [float(z) for z in hdr.get_zooms()] if hasattr(hdr, "get_zooms") else None
    units = None
    if hasattr(hdr, "get_xyzt_units"):
        space, time = xyzt_units(hdr)
        units = {"space": space, "time": time}
    elif _has(hdr, "tr"):  # FreeSurfer MGH: mm, and the footer's TR in ms
        units = {"space": "mm", "time": "ms"}
    if zinfo is not None:  # the stored chunks of the level, in NIfTI axis order like "shape"
        level = zinfo["levels"][zinfo["level"]]
        to_nifti = [
            zinfo["axes"].index(a) for a in ("x", "y", "z", "t", "c") if a in zinfo["axes"]
        ]
        chunk = tuple(level["chunks"]["shape"][a] for a in to_nifti)
        nchunks = level["chunks"]["count"]
    else:  # the chunks voxray reads in (contiguous slabs, or the format's own grid)
        grid = resolve_chunks(proxy.requested_chunks, lay.shape, scaled)
        chunk = tuple(max(c) if c else 0 for c in grid)
        nchunks = math.prod(len(c) for c in grid)
    affine = getattr(img, "affine", None)  # CIFTI-2 images have axes, not an affine
    out = {
        "path": path if is_url(path) else os.path.abspath(path.removeprefix("file://")),
        "format": fmt,
        "nibabel_class": img.nibabel_class.__name__,
        "compression": compression,
        "files": files,
        "shape": list(img.shape),
        "dtype_on_disk": disk.str if disk.fields is None else str(disk),
        "dtype_in_memory": scaled.str if scaled.fields is None else str(scaled),
        "datatype": _datatype(hdr, disk),
        "byte_order": {"<": "little", ">": "big", "|": "n/a", "=": "native"}[disk.byteorder]
        if disk.fields is None
        else "n/a",
        "zooms": zooms,
        "units": units,
        "axcodes": None if affine is None else list(_axcodes(affine)),
        "affine": None if affine is None else np.round(affine, 6).tolist(),
        "qform": _code(hdr, "qform_code"),
        "sform": _code(hdr, "sform_code"),
        "scaling": {
            "slope": float(lay.slope),
            "inter": float(lay.inter),
            "applied": lay.is_scaled,
        }
        if bytes_layout
        else {"per_slice": True, "applied": None},
        "vox_offset": None if zinfo is not None or not bytes_layout else lay.offset,
        "data_bytes": lay.nbytes,
        "chunks": {
            "shape": list(chunk),
            "count": nchunks,
            "bytes": math.prod(chunk) * (scaled if zinfo is None else lay.dtype).itemsize,
        },
        "intent": _intent(hdr),
        "description": _text(hdr, "descrip"),
        "extensions": [int(e.get_code()) for e in getattr(hdr, "extensions", [])],
    }
    cifti = _cifti_axes(img)
    if cifti is not None:
        out["cifti_axes"] = cifti
    if zinfo is not None:
        level = zinfo["levels"][zinfo["level"]]
        shards = level["shards"]
        out["shards"] = (
            None
            if shards is None
            else {
                "shape": [shards["shape"][a] for a in to_nifti],
                "count": shards["count"],
                "bytes": math.prod(shards["shape"]) * lay.dtype.itemsize,
            }
        )
        out["zarr"] = zinfo
    if zinfo is None and getattr(data_spec, "compression", None) == "gzip":
        from ..sources.gzcache import find_index

        found = find_index(data_spec)
        out["gzip_index"] = str(found) if found else None
    return out


def _header_dtype(img, default) -> np.dtype:
    """The on-disk dtype the header gives (ECAT's is per frame: the first one's)."""
    try:
        return np.dtype(img.get_data_dtype())
    except TypeError:
        return np.dtype(img.get_data_dtype(0))
    except (ValueError, NotImplementedError):
        return np.dtype(default)


def _cifti_axes(img) -> list[dict] | None:
    """``[{"type", "size", ...}]`` of a CIFTI-2 image's axes (None for other images)."""
    header = img.header
    if not hasattr(header, "get_axis") or not hasattr(img, "nifti_header"):
        return None
    axes = []
    for i, n in enumerate(img.shape):
        ax = header.get_axis(i)
        d = {"type": type(ax).__name__, "size": int(n)}
        if hasattr(ax, "step"):  # SeriesAxis
            d.update(start=float(ax.start), step=float(ax.step), unit=str(ax.unit))
        if hasattr(ax, "iter_structures"):  # BrainModelAxis
            d["structures"] = [str(name) for name, _, _ in ax.iter_structures()]
        elif hasattr(ax, "name"):  # parcels, scalars, labels
            d["names"] = [str(n) for n in ax.name[:20]]
        axes.append(d)
    return axes


def _datatype(hdr, dtype) -> str:
    """The header's datatype label ('int16', 'RGB', ...), as nibabel names it."""
    from nibabel.nifti1 import data_type_codes

    try:
        return str(data_type_codes.label[int(hdr["datatype"])])
    except (KeyError, ValueError, TypeError, IndexError):
        return dtype.name


def _axcodes(affine):
    from nibabel.orientations import ornt2axcodes

    from ..errors import InvalidAffineError
    from ..image import orientation

    try:
        return tuple(c or "?" for c in ornt2axcodes(orientation(affine)))
    except InvalidAffineError:  # a damaged affine is reported as it is, not refused
        return ("?", "?", "?")


def _intent(hdr) -> str | None:
    if not _has(hdr, "intent_code"):
        return None
    try:
        name = hdr.get_intent()[0]
    except Exception:  # an unknown intent code is not worth failing `info` over
        name = str(int(hdr["intent_code"]))
    return None if name == "none" else name


def _text(hdr, field: str) -> str | None:
    if not _has(hdr, field):
        return None
    return bytes(hdr[field]).split(b"\x00")[0].decode("latin-1") or None


def _name(dtype_str: str) -> str:
    try:
        return np.dtype(dtype_str).name
    except TypeError:
        return dtype_str


def _bytes(n: int | None) -> str:
    if n is None:
        return "size not listed"
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if n < 1024 or unit == "TiB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024
    raise AssertionError


def format_text(d: dict) -> str:
    sp = (d["units"] or {}).get("space", "unknown")
    tu = (d["units"] or {}).get("time", "unknown")
    if d["zooms"] is None:
        zooms = "n/a"
    else:
        zooms = " x ".join(f"{z:g}" for z in d["zooms"][:3]) + f" {sp}"
        if len(d["zooms"]) > 3:
            zooms += ", " + " x ".join(f"{z:g}" for z in d["zooms"][3:]) + f" {tu}"
    sc = d["scaling"]
    if sc.get("per_slice"):
        scaling = "per slice, volume or frame, as stored (applied as nibabel does)"
    elif sc["applied"]:
        scaling = f"slope {sc['slope']:g}, inter {sc['inter']:g}"
    else:
        scaling = "none (slope 1, inter 0)"
    files = ", ".join(f"{v['path']} ({_bytes(v['bytes'])})" for v in d["files"].values())
    ch = d["chunks"]
    z = d.get("zarr")
    fmt = d["format"]
    if z is not None and z["ome_version"]:
        fmt += f" (OME-Zarr {z['ome_version']})" if z["nifti_header"] else f" {z['ome_version']}"
    lines = [
        ("path", d["path"]),
        ("format", fmt + (f", {d['compression']}" if d["compression"] != "none" else "")),
        ("store" if z is not None else "files", files),
        ("shape", " x ".join(map(str, d["shape"]))),
        (
            "dtype",
            f"{d['datatype']} on disk ({d['byte_order']} endian), "
            f"{_name(d['dtype_in_memory'])} in memory",
        ),
        ("zooms", zooms),
        ("axes", " ".join(d["axcodes"]) if d["axcodes"] else "n/a"),
        ("qform", f"{d['qform']['label']} ({d['qform']['code']})" if d["qform"] else "n/a"),
        ("sform", f"{d['sform']['label']} ({d['sform']['code']})" if d["sform"] else "n/a"),
        ("scaling", scaling),
    ]
    if z is None:
        lines += [
            (
                "data",
                _bytes(d["data_bytes"])
                + ("" if d["vox_offset"] is None else f" at offset {d['vox_offset']}"),
            ),
            (
                "chunks",
                f"{tuple(ch['shape'])}: {ch['count']} chunk(s) of up to {_bytes(ch['bytes'])}",
            ),
        ]
    else:
        lines.append(("data", f"{_bytes(d['data_bytes'])} uncompressed (level {z['level']})"))
        lines.append(("levels", f"{len(z['levels'])}, Zarr axes {', '.join(z['axes'])}"))
        for lv in z["levels"]:
            shards = lv["shards"]
            lines.append(
                (
                    f"  level {lv['path']}",
                    f"{' x '.join(map(str, lv['shape']))}; chunks "
                    f"{' x '.join(map(str, lv['chunks']['shape']))} ({lv['chunks']['count']}); "
                    + (
                        f"shards {' x '.join(map(str, shards['shape']))} ({shards['count']})"
                        if shards
                        else "no shards"
                    ),
                )
            )
    if d["intent"]:
        lines.append(("intent", d["intent"]))
    if d["description"]:
        lines.append(("description", d["description"]))
    if d["extensions"]:
        lines.append(("extensions", ", ".join(map(str, d["extensions"]))))
    if "gzip_index" in d:
        lines.append(("gzip index", d["gzip_index"] or "none yet (built by the first full read)"))
    for i, ax in enumerate(d.get("cifti_axes") or ()):
        what = ax["type"]
        if "step" in ax:
            what += f" from {ax['start']:g} step {ax['step']:g} {ax['unit']}"
        if "structures" in ax:
            what += f", {len(ax['structures'])} structures"
        lines.append((f"cifti axis {i}", f"{what} ({ax['size']})"))
    width = max(len(k) for k, _ in lines)
    text = "\n".join(f"{k:<{width}}  {v}" for k, v in lines)
    if d["affine"] is None:
        return text
    rows = [" ".join(f"{v:10.4f}" for v in row) for row in d["affine"]]
    return text + "\naffine\n" + "\n".join("  " + r for r in rows)


def run(args) -> int:
    options = storage_options(args)
    if len(args.path) == 1:  # one object (JSON) or block (text); an error goes to main
        d = describe(args.path[0], options)
        print(json.dumps(d, indent=2) if args.json else format_text(d))
        return 0
    results, failed, shown = [], False, 0
    for path in args.path:
        try:
            d = describe(path, options)
        except (VoxrayError, OSError) as e:
            message = str(e) if path in str(e) else f"{path}: {e}"
            print(f"voxray info: error: {message}", file=sys.stderr, flush=True)
            failed = True
            results.append({"path": path, "error": message})
            continue
        results.append(d)
        if not args.json:  # each as it comes: a long list shows progress
            print(("\n" if shown else "") + format_text(d), flush=True)
            shown += 1
    if args.json:
        print(json.dumps(results, indent=2))
    return 2 if failed else 0
