"""The one rendering path for every image a reader sees: 8-bit grey, square, study size, bare PNG.

In a Turing test of real versus synthetic radiographs anything besides anatomy that differs between the
two groups (file size pattern, dimensions, bit depth, PNG chunks, metadata, encoder settings) would let a
reader or a script tell them apart. So every image, whatever its origin, is decoded by
`app.domain.decoding`, cropped and resized here, and encoded with no metadata and *no compression*: its
image data goes into stored deflate blocks, so a file's byte length is a function of its size alone and
every image of a study has the same length by construction (a compressed file's length tells how much
noise and texture it holds, which is what the readers are there to judge by eye). The price is bytes: a
1024 px film is 1 MiB. Its name is the hash of the encoded bytes.
"""

from __future__ import annotations

import hashlib
import struct
import zlib
from dataclasses import dataclass

import numpy as np
from PIL import Image

from app.domain.decoding import MAX_PIXELS, ImageRejected, decode_grey

__all__ = [
    "MAX_PIXELS",
    "MAX_SIZE",
    "MIN_SIZE",
    "ImageRejected",
    "RenderedImage",
    "decode_grey",
    "encode_png",
    "png_chunks",
    "render",
    "render_array",
]

MIN_SIZE = 32
MAX_SIZE = 4096
# Before the final Lanczos pass, Pillow shrinks by an integer factor with a box filter while the image is
# still more than this many times the target; much faster on big inputs and visually the same.
REDUCING_GAP = 3.0

_PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


@dataclass(frozen=True)
class RenderedImage:
    """An encoded study image: PNG bytes, their sha256 hex digest, and the side length in pixels."""

    png: bytes
    sha256: str
    size: int


def render(data: bytes, *, size: int, filename: str | None = None) -> RenderedImage:
    """Decode an uploaded PNG, JPEG or DICOM file and render it as a study image of size × size."""
    _check_size(size)
    return render_array(decode_grey(data, filename=filename), size=size)


def render_array(grey: np.ndarray, *, size: int) -> RenderedImage:
    """Render an (H, W) float array in [0, 1] or a uint8 array as a study image of size × size."""
    _check_size(size)
    unit = _to_unit_float(grey)  # (H, W) float32 in [0, 1]
    square = _resize(_centre_crop(unit), size)  # (size, size) float32
    # Clip the Lanczos overshoot at edges, then round once to 8 bits.
    pixels = np.rint(np.clip(square, 0.0, 1.0) * 255.0).astype(np.uint8)
    png = encode_png(pixels)
    return RenderedImage(png=png, sha256=hashlib.sha256(png).hexdigest(), size=size)


def encode_png(pixels: np.ndarray) -> bytes:
    """Encode (H, W) uint8 pixels as an 8-bit grey PNG of IHDR, one uncompressed IDAT and IEND.

    The length is 8 + 25 + 12 + len(zlib stream of H × (W + 1) bytes) + 12, whatever the pixels."""
    if pixels.dtype != np.uint8 or pixels.ndim != 2:
        raise ValueError(f"encode_png needs a 2-D uint8 array, got {pixels.dtype} with shape {pixels.shape}")
    height, width = pixels.shape
    rows = np.zeros((height, width + 1), dtype=np.uint8)  # a leading filter byte 0 (None) on every row
    rows[:, 1:] = pixels
    header = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)  # 8-bit grey, deflate, no interlace
    # Level 0 writes stored blocks of at most 65,535 bytes: the stream's length depends on its input's only.
    data = zlib.compress(rows.tobytes(), level=0)
    return _PNG_SIGNATURE + _chunk(b"IHDR", header) + _chunk(b"IDAT", data) + _chunk(b"IEND", b"")


def _chunk(kind: bytes, data: bytes) -> bytes:
    """One PNG chunk: length, type, data and the CRC of type and data."""
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))


def png_chunks(png: bytes) -> list[str]:
    """Return the chunk type names of a PNG in file order, e.g. ["IHDR", "IDAT", "IEND"]."""
    if not png.startswith(_PNG_SIGNATURE):
        raise ValueError("not a PNG file (bad signature)")
    names: list[str] = []
    offset = len(_PNG_SIGNATURE)
    while offset < len(png):
        if offset + 12 > len(png):
            raise ValueError(f"truncated PNG chunk at byte {offset}")
        (length,) = struct.unpack(">I", png[offset : offset + 4])
        names.append(png[offset + 4 : offset + 8].decode("latin-1"))
        offset += 12 + length  # length, type, data, CRC
        if offset > len(png):
            raise ValueError(f"truncated PNG chunk {names[-1]!r}")
    return names


def _check_size(size: int) -> None:
    if isinstance(size, bool) or not isinstance(size, int) or not MIN_SIZE <= size <= MAX_SIZE:
        raise ValueError(f"the image size must be an integer between {MIN_SIZE} and {MAX_SIZE}, got {size!r}")


def _to_unit_float(grey: np.ndarray) -> np.ndarray:
    """(H, W) uint8 or float -> (H, W) float32 in [0, 1]."""
    grey = np.asarray(grey)
    if grey.ndim != 2 or grey.size == 0:
        raise ValueError(f"expected a non-empty (H, W) array, got shape {grey.shape}")
    if grey.dtype == np.uint8:
        return grey.astype(np.float32) / 255.0
    if not np.issubdtype(grey.dtype, np.floating):
        raise ValueError(f"expected uint8 or float pixels, got {grey.dtype}")
    if not np.isfinite(grey).all():
        raise ValueError("the pixel array contains NaN or infinite values")
    # Generators overshoot [0, 1] slightly; a display clips, and so do we.
    return np.clip(grey, 0.0, 1.0).astype(np.float32)


def _centre_crop(arr: np.ndarray) -> np.ndarray:
    """(H, W) -> (S, S) with S = min(H, W), centred on the longer axis."""
    # Cropping, not padding: padding adds a border that only sources of some aspect ratios would have,
    # which is exactly the kind of non-anatomical cue a reader could learn.
    height, width = arr.shape
    side = min(height, width)
    top, left = (height - side) // 2, (width - side) // 2
    return arr[top : top + side, left : left + side]


def _resize(square: np.ndarray, size: int) -> np.ndarray:
    """(S, S) float32 -> (size, size) float32 with Lanczos; untouched when already the right size."""
    if square.shape == (size, size):
        # Keeps re-rendering idempotent: a study image rendered again at its size gives the same bytes.
        return square
    # Resampling in float ("F" mode) rounds to 8 bits only once, after the resize.
    im = Image.fromarray(np.ascontiguousarray(square, dtype=np.float32), mode="F")
    resized = im.resize((size, size), Image.Resampling.LANCZOS, reducing_gap=REDUCING_GAP)
    return np.asarray(resized, dtype=np.float32)
