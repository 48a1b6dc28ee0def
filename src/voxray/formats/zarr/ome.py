"""OME-Zarr 0.5 and NIfTI-Zarr metadata: axes, units, per-level transforms, the header.

A NIfTI-Zarr store is an OME-Zarr 0.5 image whose group also holds a ``nifti``
array (``uint8``, one chunk) with the binary NIfTI header and its extensions,
and the same header as JSON (JNIfTI field names) in that array's attributes.
OME-Zarr knows only scale and translation; the full affine (rotation, shear,
qform and sform with codes) lives in the binary header.

Axes, in Zarr (C) order, by NIfTI dimensionality::

    2-D: y, x        3-D: z, y, x        4-D: t, z, y, x        5-D: t, c, z, y, x

NIfTI's 4th axis is time, its 5th a channel. One NIfTI volume is one
``(1, nz, ny, nx)`` slab of the Zarr array: the same bytes, transposed.
"""

from __future__ import annotations

import math

import numpy as np

from ...headers import xyzt_units

__all__ = [
    "AXES",
    "header_json",
    "level_affine",
    "multiscales",
    "nifti_to_zarr_perm",
    "space_unit",
    "time_unit",
]

#: Zarr axis names for each NIfTI dimensionality.
AXES = {2: ("y", "x"), 3: ("z", "y", "x"), 4: ("t", "z", "y", "x"), 5: ("t", "c", "z", "y", "x")}
_AXIS_TYPE = {"x": "space", "y": "space", "z": "space", "t": "time", "c": "channel"}
_SPACE_UNITS = {"mm": "millimeter", "micron": "micrometer", "meter": "meter"}
_TIME_UNITS = {"sec": "second", "msec": "millisecond", "usec": "microsecond"}


def nifti_to_zarr_perm(ndim: int) -> tuple[int, ...]:
    """``zarr_array = nifti_array.transpose(perm)``.

    >>> nifti_to_zarr_perm(4), nifti_to_zarr_perm(5)
    ((3, 2, 1, 0), (3, 4, 2, 1, 0))
    """
    if ndim not in AXES:
        raise ValueError(
            f"OME-Zarr holds 2 to 5 axes; a {ndim}-D NIfTI image cannot be written as NIfTI-Zarr"
        )
    nifti_axes = ("x", "y", "z", "t", "c")[:ndim]
    return tuple(nifti_axes.index(a) for a in AXES[ndim])


def space_unit(header) -> str:
    unit = xyzt_units(header)[0]
    return _SPACE_UNITS.get(unit, "millimeter")


def time_unit(header) -> str | None:
    unit = xyzt_units(header)[1]
    if unit == "unknown":
        return "second"
    return _TIME_UNITS.get(unit)  # Hz, ppm and rad/s are not OME time units


def level_geometry(zooms, ndim: int, level: int, tr: float = 1.0, toffset: float = 0.0):
    """(scale, translation) of pyramid ``level`` in Zarr axis order.

    Each level halves the spatial axes by averaging (or taking the mode of) 2x2x2
    blocks of the previous one, so voxel ``p`` of level ``n`` covers voxels
    ``2**n * p .. 2**n * (p + 1) - 1`` of level 0: its centre is at
    ``(2**n - 1) / 2`` of a level-0 voxel from theirs.
    """
    factor = 2**level
    scale, translation = [], []
    sizes = {
        "x": zooms[0],
        "y": zooms[1] if len(zooms) > 1 else 1.0,
        "z": zooms[2] if len(zooms) > 2 else 1.0,
    }
    for a in AXES[ndim]:
        if _AXIS_TYPE[a] == "space":
            scale.append(float(sizes[a]) * factor)
            translation.append(float(sizes[a]) * (factor - 1) / 2)
        elif a == "t":
            scale.append(float(tr) if tr > 0 else 1.0)
            translation.append(float(toffset))
        else:
            scale.append(1.0)
            translation.append(0.0)
    return scale, translation


def multiscales(header, ndim: int, n_levels: int, name: str, method: str) -> dict:
    """The ``attributes.ome`` dict of a NIfTI-Zarr group."""
    zooms = [float(z) for z in header.get_zooms()]
    tr = zooms[3] if len(zooms) > 3 else 1.0  # in the header's time unit, which the axis names
    tunit = time_unit(header)
    toffset = float(header["toffset"]) if "toffset" in header else 0.0
    axes = []
    for a in AXES[ndim]:
        axis = {"name": a, "type": _AXIS_TYPE[a]}
        if axis["type"] == "space":
            axis["unit"] = space_unit(header)
        elif axis["type"] == "time" and tunit:
            axis["unit"] = tunit
        axes.append(axis)
    datasets = []
    for level in range(n_levels):
        scale, translation = level_geometry(zooms, ndim, level, tr, toffset)
        datasets.append(
            {
                "path": str(level),
                "coordinateTransformations": [
                    {"type": "scale", "scale": scale},
                    {"type": "translation", "translation": translation},
                ],
            }
        )
    return {
        "version": "0.5",
        "multiscales": [
            {
                "name": name,
                "axes": axes,
                "datasets": datasets,
                "type": f"{method} 2x2x2",
                "metadata": {"method": f"voxray.zarr.pyramid.{method}", "nifti_zarr": True},
            }
        ],
    }


def level_affine(affine: np.ndarray, level: int) -> np.ndarray:
    """The affine of pyramid ``level`` from the level-0 affine (2x2x2 blocks per level)."""
    factor = 2**level
    t = np.eye(4)
    t[:3, :3] *= factor
    t[:3, 3] = (factor - 1) / 2
    return np.asarray(affine, dtype=np.float64) @ t


# -- the header as JSON (JNIfTI names, as the NIfTI-Zarr specification uses) ---------------


def header_json(header) -> dict:
    """A JSON-serialisable copy of a NIfTI header, with JNIfTI field names."""
    from nibabel.nifti1 import (
        data_type_codes,
        intent_codes,
        slice_order_codes,
        unit_codes,
        xform_codes,
    )

    h = header
    ndim = int(h["dim"][0])

    def label(codes, value):
        value = int(value)
        return str(codes.label[value]) if value in codes.code else value

    def text(field):
        return bytes(h[field]).split(b"\x00")[0].decode("latin-1") if field in h else ""

    def num(value):
        v = float(value)
        return v if math.isfinite(v) else 0.0

    dim_info = int(h["dim_info"]) if "dim_info" in h else 0
    units = int(h["xyzt_units"]) if "xyzt_units" in h else 0
    out = {
        "NIIHeaderSize": int(h["sizeof_hdr"]),
        "DimInfo": {
            "Freq": dim_info & 3,
            "Phase": (dim_info >> 2) & 3,
            "Slice": (dim_info >> 4) & 3,
        },
        "Dim": [int(d) for d in h["dim"][1 : 1 + ndim]],
        "Param1": num(h["intent_p1"]) if "intent_p1" in h else 0.0,
        "Param2": num(h["intent_p2"]) if "intent_p2" in h else 0.0,
        "Param3": num(h["intent_p3"]) if "intent_p3" in h else 0.0,
        "Intent": label(intent_codes, h["intent_code"]) if "intent_code" in h else "none",
        "DataType": label(data_type_codes, h["datatype"]),
        "BitDepth": int(h["bitpix"]),
        "FirstSliceID": int(h["slice_start"]) if "slice_start" in h else 0,
        "VoxelSize": [num(p) for p in h["pixdim"][1 : 1 + ndim]],
        "Orientation": {"x": "r" if float(h["pixdim"][0]) == 0 else "l", "y": "a", "z": "s"},
        "NIIByteOffset": num(h["vox_offset"]),
        "ScaleSlope": num(h["scl_slope"]) if "scl_slope" in h else 0.0,
        "ScaleOffset": num(h["scl_inter"]) if "scl_inter" in h else 0.0,
        "LastSliceID": int(h["slice_end"]) if "slice_end" in h else 0,
        "SliceType": label(slice_order_codes, h["slice_code"]) if "slice_code" in h else "unknown",
        "Unit": {"L": label(unit_codes, units & 0x07), "T": label(unit_codes, units & 0x38)},
        "MaxIntensity": num(h["cal_max"]) if "cal_max" in h else 0.0,
        "MinIntensity": num(h["cal_min"]) if "cal_min" in h else 0.0,
        "SliceTime": num(h["slice_duration"]) if "slice_duration" in h else 0.0,
        "TimeOffset": num(h["toffset"]) if "toffset" in h else 0.0,
        "Description": text("descrip"),
        "AuxFile": text("aux_file"),
        "QForm": label(xform_codes, h["qform_code"]) if "qform_code" in h else "unknown",
        "SForm": label(xform_codes, h["sform_code"]) if "sform_code" in h else "unknown",
        "Quatern": {k: num(h[f"quatern_{k}"]) for k in "bcd"} if "quatern_b" in h else {},
        "QuaternOffset": {k: num(h[f"qoffset_{k}"]) for k in "xyz"} if "qoffset_x" in h else {},
        "Affine": [[num(v) for v in h[f"srow_{r}"]] for r in "xyz"] if "srow_x" in h else [],
        "Name": text("intent_name"),
        "NIIFormat": bytes(h["magic"]).split(b"\x00")[0].decode("latin-1") if "magic" in h else "",
        "NIFTIExtension": [1 if len(getattr(h, "extensions", [])) else 0, 0, 0, 0],
    }
    return out
