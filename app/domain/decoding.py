"""Decode an uploaded PNG, JPEG or DICOM file to one greyscale float array, refusing what is unsafe.

Everything a reader will see starts here, whatever its origin, so that the only differences left
between real and synthetic images are in the anatomy. `app.domain.rendering` turns the array into the
served PNG.
"""

from __future__ import annotations

import io
import struct

import numpy as np
import pydicom
from PIL import Image, ImageFile, ImageOps
from pydicom.pixels import apply_color_lut, apply_modality_lut, apply_voi_lut, get_decoder, pixel_array

# Refuse anything larger before its pixels are decoded: a few KB of compressed data can declare
# billions of pixels (a decompression bomb). 40 M covers the largest detector formats (~43 × 43 cm at
# 0.07 mm is about 6100 × 6100 = 37 M).
MAX_PIXELS: int = 40_000_000

NOT_AN_IMAGE = "not an image file (or a format we do not read: PNG, JPEG, DICOM)"
TRUNCATED = "the image file is truncated or corrupt"
# Pillow's own bomb guard (Image.MAX_IMAGE_PIXELS) fires before we learn the size.
TOO_LARGE_FOR_PILLOW = "the image is too large to be read safely"

# ITU-R BT.601 luma weights, the ones Pillow's own RGB -> L conversion uses.
_LUMA = (0.299, 0.587, 0.114)
_PIXEL_DATA_TAGS = ("PixelData", "FloatPixelData", "DoubleFloatPixelData")
# Exceptions Pillow raises on malformed input (UnidentifiedImageError is an OSError; the PNG reader
# raises SyntaxError for broken chunks and ValueError for oversized text chunks).
_PILLOW_ERRORS = (OSError, SyntaxError, ValueError, EOFError, struct.error)


class ImageRejected(ValueError):
    """An uploaded file that cannot become a study image; the message is a user-facing sentence."""


def decode_grey(data: bytes, *, filename: str | None = None) -> np.ndarray:
    """Decode PNG, JPEG or DICOM bytes to an (H, W) float32 array in [0, 1]."""
    if _looks_like_dicom(data, filename):
        return _decode_dicom(data)
    return _decode_pillow(data)


def _looks_like_dicom(data: bytes, filename: str | None) -> bool:
    # Part 10 files carry 'DICM' after a 128-byte preamble; the name catches files that should be DICOM
    # but are damaged, so the user gets a DICOM-specific message.
    named = filename is not None and filename.lower().endswith((".dcm", ".dicom"))
    return data[128:132] == b"DICM" or named


def _too_large(width: int, height: int) -> ImageRejected:
    return ImageRejected(
        f"the image is too large ({width} × {height} pixels; the limit is {MAX_PIXELS:,} pixels)"
    )


# --- PNG and JPEG -------------------------------------------------------------------------------------


def _decode_pillow(data: bytes) -> np.ndarray:
    if ImageFile.LOAD_TRUNCATED_IMAGES:
        # With this flag Pillow silently returns a partly grey image; a reader would see the damage and
        # only on some images. Something in this process turned it on; refuse rather than mutate it.
        raise RuntimeError("PIL.ImageFile.LOAD_TRUNCATED_IMAGES must be False for rendering study images")
    try:
        # Lazy open reads only the header; the formats list keeps every other Pillow decoder out of reach.
        im = Image.open(io.BytesIO(data), formats=["PNG", "JPEG"])
    except Image.DecompressionBombError as exc:
        raise ImageRejected(TOO_LARGE_FOR_PILLOW) from exc
    except _PILLOW_ERRORS as exc:
        raise ImageRejected(NOT_AN_IMAGE) from exc
    width, height = im.size
    if width * height > MAX_PIXELS:
        raise _too_large(width, height)
    try:
        im.load()
        # Cameras and some scanners store the sensor orientation and a rotation tag; viewers apply the
        # tag, so we do too (a no-op without one).
        im = ImageOps.exif_transpose(im)
    except Image.DecompressionBombError as exc:
        raise ImageRejected(TOO_LARGE_FOR_PILLOW) from exc
    except _PILLOW_ERRORS as exc:
        raise ImageRejected(TRUNCATED) from exc
    return _pillow_to_grey(im)


def _pillow_to_grey(im: Image.Image) -> np.ndarray:
    mode = im.mode
    if mode == "P":
        # A palette may hold colour and a transparent index; expand it and handle it like true colour.
        im = im.convert("RGBA" if "transparency" in im.info else "RGB")
        mode = im.mode
    elif mode == "CMYK":  # print-oriented JPEGs
        im = im.convert("RGB")
        mode = im.mode
    if mode == "1":
        return np.asarray(im.convert("L"), dtype=np.float32) / 255.0
    if mode == "L":
        # 8-bit files are already display-ready: divide, never stretch, or we would change their contrast.
        return np.asarray(im, dtype=np.float32) / 255.0
    if mode in ("RGB", "RGBA", "LA"):
        return _colour_to_grey(np.asarray(im))
    if mode.startswith("I") or mode == "F":
        # 16/32-bit and float files rarely fill their range (a 12-bit detector in a 16-bit PNG uses 1/16 of
        # it), so dividing by the type's maximum would give a near-black image: stretch min..max instead.
        return _stretch(np.asarray(im))
    raise ImageRejected(f"the image uses a pixel format we do not read ({mode})")


def _colour_to_grey(arr: np.ndarray) -> np.ndarray:
    """(H, W, 2|3|4) uint8 -> (H, W) float32 luminance, alpha composited on black."""
    colour = arr[..., :1] if arr.shape[2] == 2 else arr[..., :3]
    if colour.shape[2] == 3:
        grey = np.zeros(arr.shape[:2], dtype=np.float32)
        # One channel at a time: a full float copy of a 40 M-pixel RGB image would cost 480 MB.
        for channel, weight in enumerate(_LUMA):
            grey += np.float32(weight) * colour[..., channel]
    else:
        grey = colour[..., 0].astype(np.float32)
    grey /= 255.0
    if arr.shape[2] in (2, 4):
        # Alpha is dropped by compositing on black: outside the exposed field a radiograph is dark, so
        # transparent regions look like collimated background rather than a white frame some images have.
        grey *= arr[..., -1].astype(np.float32) / 255.0
    return grey


def _stretch(arr: np.ndarray) -> np.ndarray:
    """Any-dtype (H, W) array -> float32 in [0, 1] by its own min and max; a constant image maps to 0."""
    values = arr.astype(np.float64)
    if not np.isfinite(values).all():
        raise ImageRejected("the image has pixel values that are not finite numbers")
    low, high = float(values.min()), float(values.max())
    if high <= low:
        return np.zeros(values.shape, dtype=np.float32)
    return ((values - low) / (high - low)).astype(np.float32)


# --- DICOM --------------------------------------------------------------------------------------------


def _decode_dicom(data: bytes) -> np.ndarray:
    try:
        ds = pydicom.dcmread(io.BytesIO(data), force=False)
    except Exception as exc:
        # pydicom's parser raises a wide, undocumented range of exceptions on malformed files.
        has_magic = data[128:132] == b"DICM"
        raise ImageRejected("the DICOM file is truncated or corrupt" if has_magic else NOT_AN_IMAGE) from exc
    return decode_dataset(ds)


def decode_dataset(ds: pydicom.Dataset) -> np.ndarray:
    """A parsed DICOM instance (from a file or a DICOMweb retrieve) -> (H, W) float32 grey in [0, 1]."""
    if not any(tag in ds for tag in _PIXEL_DATA_TAGS):
        raise ImageRejected("the DICOM file has no pixel data")
    rows, columns = int(ds.get("Rows", 0) or 0), int(ds.get("Columns", 0) or 0)
    if rows <= 0 or columns <= 0:
        raise ImageRejected("the DICOM file does not state its image size (Rows and Columns)")
    if rows * columns > MAX_PIXELS:
        raise _too_large(columns, rows)
    arr = _dicom_first_frame(ds)
    photometric = str(ds.get("PhotometricInterpretation", "MONOCHROME2")).upper()
    if photometric == "PALETTE COLOR":
        arr = apply_color_lut(arr, ds)
    if arr.ndim == 3:
        # Colour: the modality and VOI LUTs are defined for monochrome images only.
        return _stretch(_luma(arr))
    try:
        arr = apply_modality_lut(arr, ds)  # stored values -> modality units (e.g. HU)
        arr = apply_voi_lut(arr, ds)  # the window the acquisition chose for display, where present
    except (ValueError, KeyError, IndexError, TypeError) as exc:
        raise ImageRejected("the DICOM file's rescale, LUT or window values are invalid") from exc
    grey = _stretch(arr)
    if photometric == "MONOCHROME1":
        # MONOCHROME1 stores air as the highest value; invert so that air is dark as in MONOCHROME2.
        grey = 1.0 - grey
    return grey


def _dicom_first_frame(ds: pydicom.Dataset) -> np.ndarray:
    """Decode frame 0 only -> (rows, columns) or (rows, columns, 3), converted to RGB if YBR."""
    file_meta = getattr(ds, "file_meta", None)
    syntax = file_meta.get("TransferSyntaxUID") if file_meta is not None else None
    name = getattr(syntax, "name", None) or str(syntax)
    if syntax is not None:
        try:
            available = get_decoder(syntax).is_available
        except NotImplementedError:
            available = False
        if not available:
            raise ImageRejected(f"we cannot decode DICOM pixel data compressed as {name}")
    try:
        return pixel_array(ds, index=0)
    except Exception as exc:
        raise ImageRejected(f"the DICOM pixel data ({name}) is truncated or corrupt") from exc


def _luma(rgb: np.ndarray) -> np.ndarray:
    """(H, W, 3) any dtype -> (H, W) float64 luminance."""
    return rgb[..., :3].astype(np.float64) @ np.asarray(_LUMA)
