"""Tests for the single rendering path (app.domain.rendering, app.domain.decoding); inputs built here."""

from __future__ import annotations

import hashlib
import io
import struct
import warnings
import zipfile
import zlib
from collections.abc import Callable

import numpy as np
import pydicom
import pytest
from PIL import Image, ImageFile
from PIL.PngImagePlugin import PngInfo
from pydicom.dataset import FileDataset, FileMetaDataset
from pydicom.encaps import encapsulate
from pydicom.pixels import get_decoder
from pydicom.uid import ExplicitVRLittleEndian, JPEGLSLossless, SecondaryCaptureImageStorage, generate_uid

from app.domain.rendering import (
    MAX_PIXELS,
    ImageRejected,
    RenderedImage,
    decode_grey,
    encode_png,
    png_chunks,
    render,
    render_array,
)

SIZE = 64
RNG_SEED = 20240611


# --- builders ------------------------------------------------------------------------------------------


def _noise(height: int, width: int, channels: int | None = None) -> np.ndarray:
    shape = (height, width) if channels is None else (height, width, channels)
    return np.random.default_rng(RNG_SEED).integers(0, 256, size=shape, dtype=np.uint8)


def _save(im: Image.Image, fmt: str = "PNG", **params: object) -> bytes:
    buffer = io.BytesIO()
    im.save(buffer, format=fmt, **params)
    return buffer.getvalue()


def _png_l8() -> bytes:
    return _save(Image.fromarray(_noise(90, 90), mode="L"))


def _png_16bit() -> bytes:
    values = (np.random.default_rng(1).random((80, 80)) * 3000 + 1000).astype(np.uint16)
    return _save(Image.fromarray(values))  # mode I;16


def _jpeg_rgb() -> bytes:
    return _save(Image.fromarray(_noise(100, 100, 3), mode="RGB"), "JPEG", quality=90)


def _png_wide() -> bytes:
    return _save(Image.fromarray(_noise(50, 170), mode="L"))


def _palette() -> Image.Image:
    return Image.fromarray(_noise(70, 70, 3), mode="RGB").quantize(colors=16)


def _png_with_metadata() -> bytes:
    info = PngInfo()
    info.add_text("Software", "scanner 1.0")
    info.add_text("Comment", "compressed comment " * 20, zip=True)
    info.add_itxt("Description", "synthetic? real?", lang="en", tkey="Beschreibung")
    info.add(b"gAMA", struct.pack(">I", 45455))
    exif = Image.Exif()
    exif[0x0131] = "generator v2"  # Software
    return _save(
        Image.fromarray(_noise(90, 90), mode="L"),
        pnginfo=info,
        dpi=(300, 300),
        icc_profile=b"not a real ICC profile, but carried all the same",
        exif=exif,
    )


SOURCES: dict[str, Callable[[], bytes]] = {
    "png_l8": _png_l8,
    "png_16bit": _png_16bit,
    "png_rgb": lambda: _save(Image.fromarray(_noise(70, 70, 3), mode="RGB")),
    "png_rgba": lambda: _save(Image.fromarray(_noise(70, 70, 4), mode="RGBA")),
    "png_la": lambda: _save(Image.fromarray(_noise(70, 70, 2), mode="LA")),
    "png_palette": lambda: _save(_palette()),
    "png_palette_transparent": lambda: _save(_palette(), transparency=3),
    "png_bilevel": lambda: _save(Image.fromarray(_noise(70, 70) > 127).convert("1")),
    "jpeg_grey": lambda: _save(Image.fromarray(_noise(100, 100), mode="L"), "JPEG", quality=90),
    "jpeg_rgb": _jpeg_rgb,
    "png_wide": _png_wide,
    "png_tall": lambda: _save(Image.fromarray(_noise(170, 50), mode="L")),
    "png_metadata": _png_with_metadata,
}


def _png_chunk(kind: bytes, body: bytes) -> bytes:
    return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))


def _bilevel_png(width: int, height: int) -> bytes:
    """A valid, all-black 1-bit PNG built by hand; a constant image compresses to a few KB."""
    header = struct.pack(">IIBBBBB", width, height, 1, 0, 0, 0, 0)
    row = b"\x00" * (1 + (width + 7) // 8)  # filter byte + packed bits
    compressor = zlib.compressobj(9)
    idat = b"".join(compressor.compress(row) for _ in range(height)) + compressor.flush()
    return (
        b"\x89PNG\r\n\x1a\n"
        + _png_chunk(b"IHDR", header)
        + _png_chunk(b"IDAT", idat)
        + _png_chunk(b"IEND", b"")
    )


def _dicom(
    pixels: np.ndarray,
    *,
    photometric: str = "MONOCHROME2",
    syntax: str = ExplicitVRLittleEndian,
    **attrs: object,
) -> bytes:
    """A Part 10 DICOM file holding `pixels` ((H, W) uint16, (F, H, W) uint16 or (H, W, 3) uint8)."""
    meta = FileMetaDataset()
    meta.MediaStorageSOPClassUID = SecondaryCaptureImageStorage
    meta.MediaStorageSOPInstanceUID = generate_uid()
    meta.TransferSyntaxUID = syntax
    ds = FileDataset(None, {}, file_meta=meta, preamble=b"\x00" * 128)
    ds.SOPClassUID = meta.MediaStorageSOPClassUID
    ds.SOPInstanceUID = meta.MediaStorageSOPInstanceUID
    ds.Modality = "DX"
    ds.PhotometricInterpretation = photometric
    colour = pixels.ndim == 3 and pixels.dtype == np.uint8
    ds.SamplesPerPixel = 3 if colour else 1
    if colour:
        ds.PlanarConfiguration = 0
    elif pixels.ndim == 3:
        ds.NumberOfFrames = pixels.shape[0]
    ds.Rows, ds.Columns = (pixels.shape[0], pixels.shape[1]) if colour else pixels.shape[-2:]
    bits = pixels.dtype.itemsize * 8
    ds.BitsAllocated, ds.BitsStored, ds.HighBit, ds.PixelRepresentation = bits, bits, bits - 1, 0
    for key, value in attrs.items():
        setattr(ds, key, value)
    if syntax == ExplicitVRLittleEndian:
        ds.PixelData = pixels.tobytes()
    else:
        ds.PixelData = encapsulate([b"\xff\xd8 not really compressed \xff\xd9"])
    buffer = io.BytesIO()
    ds.save_as(buffer, enforce_file_format=True)
    return buffer.getvalue()


def _ramp(height: int = 40, width: int = 64) -> np.ndarray:
    """(H, W) uint16 with every column j holding 64 * j, so values 0..4032 across the width."""
    return np.tile((np.arange(width, dtype=np.uint16) * 64), (height, 1))


def _assert_study_png(result: RenderedImage, size: int = SIZE) -> np.ndarray:
    """Check everything a reader or a script could see besides pixels; return the (size, size) pixels."""
    assert result.size == size
    assert result.sha256 == hashlib.sha256(result.png).hexdigest()
    assert png_chunks(result.png) == ["IHDR", "IDAT", "IEND"]
    width, height, bit_depth, colour_type, _, _, interlace = struct.unpack(">IIBBBBB", result.png[16:29])
    assert (width, height, bit_depth, colour_type, interlace) == (size, size, 8, 0, 0)
    with Image.open(io.BytesIO(result.png)) as im:
        assert im.format == "PNG"
        assert im.mode == "L"
        assert im.size == (size, size)
        assert not {k for k in im.info if k not in ("dpi",)}  # Pillow reports nothing it did not read
        return np.asarray(im)


# --- every origin comes out the same way -----------------------------------------------------------------


@pytest.mark.parametrize("name", sorted(SOURCES))
def test_every_source_renders_to_a_bare_8bit_grey_square_png(name: str) -> None:
    pixels = _assert_study_png(render(SOURCES[name](), size=SIZE))
    assert pixels.std() > 0  # the content survived: noise stays noise


def test_sources_cover_every_mode_we_promise_to_read() -> None:
    modes = set()
    for make in SOURCES.values():
        with Image.open(io.BytesIO(make())) as im:
            modes.add(im.mode)
    assert {"1", "L", "LA", "P", "RGB", "RGBA", "I;16"} <= modes


def test_metadata_source_really_carries_the_chunks_that_must_be_stripped() -> None:
    source = _png_with_metadata()
    chunks = set(png_chunks(source))
    assert {"tEXt", "zTXt", "iTXt", "gAMA", "pHYs", "iCCP", "eXIf"} <= chunks
    stripped = render(source, size=SIZE).png
    for marker in (b"scanner", b"generator", b"Beschreibung", b"ICC"):
        assert marker not in stripped


@pytest.mark.parametrize("size", [32, 64, 100, 257])
def test_requested_size_is_honoured(size: int) -> None:
    _assert_study_png(render(_png_wide(), size=size), size=size)


@pytest.mark.parametrize("name", sorted(SOURCES))
def test_rendering_a_rendered_image_again_is_the_identity(name: str) -> None:
    first = render(SOURCES[name](), size=SIZE)
    second = render(first.png, size=SIZE)
    assert second.png == first.png
    assert second.sha256 == first.sha256


def test_rendering_is_deterministic() -> None:
    data = _jpeg_rgb()
    assert render(data, size=SIZE) == render(data, size=SIZE)
    grey = np.random.default_rng(3).random((300, 200))
    assert render_array(grey, size=SIZE) == render_array(grey.copy(), size=SIZE)
    pixels = _noise(SIZE, SIZE)
    assert encode_png(pixels) == encode_png(pixels.copy())


def test_encode_png_round_trips_pixels_with_only_the_critical_chunks() -> None:
    pixels = _noise(48, 48)
    png = encode_png(pixels)
    assert png_chunks(png) == ["IHDR", "IDAT", "IEND"]
    with Image.open(io.BytesIO(png)) as im:
        assert im.mode == "L"
        np.testing.assert_array_equal(np.asarray(im), pixels)


def test_encode_png_refuses_other_arrays() -> None:
    with pytest.raises(ValueError):
        encode_png(np.zeros((8, 8), dtype=np.uint16))
    with pytest.raises(ValueError):
        encode_png(np.zeros((8, 8, 3), dtype=np.uint8))


# --- grey levels ---------------------------------------------------------------------------------------


def test_8bit_images_are_divided_not_stretched() -> None:
    values = np.random.default_rng(4).integers(100, 151, size=(SIZE, SIZE), dtype=np.uint8)
    data = _save(Image.fromarray(values, mode="L"))
    np.testing.assert_allclose(decode_grey(data), values / 255.0, atol=1e-7)
    # At the study size nothing is resampled, so the served pixels are the file's own.
    np.testing.assert_array_equal(_assert_study_png(render(data, size=SIZE)), values)


def test_16bit_images_are_stretched_to_their_own_range() -> None:
    grey = decode_grey(_png_16bit())
    assert grey.dtype == np.float32
    assert grey.min() == 0.0
    assert grey.max() == 1.0


def test_constant_16bit_image_maps_to_zero_without_dividing_by_zero() -> None:
    data = _save(Image.fromarray(np.full((40, 40), 1234, dtype=np.uint16)))
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        grey = decode_grey(data)
    np.testing.assert_array_equal(grey, np.zeros((40, 40), dtype=np.float32))


def test_colour_becomes_luminance_and_alpha_composites_on_black() -> None:
    green = _save(Image.new("RGB", (40, 40), (0, 255, 0)))
    assert decode_grey(green) == pytest.approx(np.full((40, 40), 0.587), abs=1e-6)
    white_rgba = np.full((40, 40, 4), 255, dtype=np.uint8)
    white_rgba[:, :20, 3] = 0  # left half fully transparent
    grey = decode_grey(_save(Image.fromarray(white_rgba, mode="RGBA")))
    assert (grey[:, :20] == 0).all()
    np.testing.assert_allclose(grey[:, 20:], 1.0, atol=1e-6)
    red_palette = _save(Image.new("RGB", (40, 40), (255, 0, 0)).quantize(colors=2))
    assert decode_grey(red_palette) == pytest.approx(np.full((40, 40), 0.299), abs=1e-6)


def test_jpeg_exif_orientation_is_applied() -> None:
    # Stored 80 wide x 40 tall, left half black; orientation 6 means "rotate 90° clockwise to display",
    # which puts the black half on top of a 40 x 80 portrait image.
    stored = np.zeros((40, 80), dtype=np.uint8)
    stored[:, 40:] = 255
    exif = Image.Exif()
    exif[0x0112] = 6
    data = _save(Image.fromarray(stored, mode="L"), "JPEG", quality=95, exif=exif)
    grey = decode_grey(data)
    assert grey.shape == (80, 40)
    assert grey[:30].mean() < 0.1
    assert grey[50:].mean() > 0.9
    pixels = _assert_study_png(render(data, size=SIZE))
    assert pixels[: SIZE // 2 - 4].mean() < 30
    assert pixels[SIZE // 2 + 4 :].mean() > 225


@pytest.mark.parametrize("shape", [(50, 150), (150, 50)])
def test_non_square_images_are_centre_cropped_not_padded(shape: tuple[int, int]) -> None:
    # White everywhere except a black centre square: a crop keeps only black, padding would not.
    height, width = shape
    side = min(shape)
    values = np.full(shape, 255, dtype=np.uint8)
    top, left = (height - side) // 2, (width - side) // 2
    values[top : top + side, left : left + side] = 0
    pixels = _assert_study_png(render(_save(Image.fromarray(values, mode="L")), size=SIZE))
    assert pixels.max() == 0


def test_render_array_accepts_uint8_and_float_and_clips_overshoot() -> None:
    base = np.random.default_rng(5).random((SIZE, SIZE))
    as_uint8 = np.rint(base * 255).astype(np.uint8)
    assert render_array(as_uint8, size=SIZE) == render_array(as_uint8 / 255.0, size=SIZE)
    overshoot = base * 1.4 - 0.2
    np.testing.assert_array_equal(
        _assert_study_png(render_array(overshoot, size=SIZE)),
        np.rint(np.clip(overshoot, 0, 1) * 255).astype(np.uint8),
    )


@pytest.mark.parametrize(
    "bad",
    [np.zeros((8, 8, 3)), np.zeros((0, 8)), np.full((8, 8), np.nan), np.zeros((8, 8), dtype=np.int32)],
)
def test_render_array_refuses_bad_arrays(bad: np.ndarray) -> None:
    with pytest.raises(ValueError):
        render_array(bad, size=SIZE)


@pytest.mark.parametrize("size", [0, 31, 4097, 64.0, True])
def test_size_out_of_range_is_a_value_error(size: object) -> None:
    with pytest.raises(ValueError, match="between 32 and 4096"):
        render(_png_l8(), size=size)  # type: ignore[arg-type]


# --- refusals ------------------------------------------------------------------------------------------


def _zip_bytes() -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("image.png", _png_l8())
    return buffer.getvalue()


@pytest.mark.parametrize(
    ("data", "filename"),
    [
        (b"", None),
        (b"patient,label\n1,Effusion\n" * 20, "labels.csv"),
        (np.random.default_rng(6).bytes(5000), None),
        (_zip_bytes(), "images.zip"),
        (b"just text pretending to be DICOM", "scan.dcm"),
        (_save(Image.new("L", (20, 20)), "GIF"), "old.gif"),
    ],
)
def test_non_images_are_rejected_with_the_format_message(data: bytes, filename: str | None) -> None:
    with pytest.raises(ImageRejected, match="not an image file"):
        render(data, size=SIZE, filename=filename)


@pytest.mark.parametrize("maker", [_png_l8, _jpeg_rgb])
def test_truncated_files_are_rejected_not_half_rendered(maker: Callable[[], bytes]) -> None:
    data = maker()
    with pytest.raises(ImageRejected, match="truncated or corrupt"):
        render(data[: len(data) // 2], size=SIZE)


def test_loading_truncated_images_switched_on_elsewhere_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(ImageFile, "LOAD_TRUNCATED_IMAGES", True)
    data = _png_l8()
    with pytest.raises(RuntimeError, match="LOAD_TRUNCATED_IMAGES"):
        render(data[: len(data) // 2], size=SIZE)


@pytest.mark.parametrize(("width", "height"), [(20_000, 20_000), (8_000, 6_000)])
def test_decompression_bombs_are_rejected_before_decoding(
    width: int, height: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    data = _bilevel_png(width, height)
    assert len(data) < 200_000 and width * height > MAX_PIXELS
    loads: list[object] = []
    monkeypatch.setattr(ImageFile.ImageFile, "load", lambda self: loads.append(self))
    with pytest.raises(ImageRejected, match="too large"):
        render(data, size=SIZE)
    assert loads == []  # refused from the header alone; no pixel buffer was ever allocated


def test_pillows_own_bomb_limit_also_becomes_a_rejection(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 1000)
    with pytest.raises(ImageRejected, match="too large"):
        render(_png_l8(), size=SIZE)  # 8100 pixels > 2 × 1000


def test_png_chunks_refuses_non_png() -> None:
    with pytest.raises(ValueError):
        png_chunks(b"GIF89a....")
    with pytest.raises(ValueError):
        png_chunks(_png_l8()[:40])


# --- DICOM ---------------------------------------------------------------------------------------------


def test_dicom_applies_rescale_and_window() -> None:
    # Stored 0..4032 with intercept -1024 gives -1024..3008; a window of 0 ± 200 (stored 824..1224)
    # clips everything outside to black or white. Without the rescale almost all would be white.
    stored = _ramp()
    data = _dicom(stored, RescaleSlope=1, RescaleIntercept=-1024, WindowCenter=0, WindowWidth=400)
    grey = decode_grey(data)
    assert grey.shape == stored.shape
    assert (grey[stored < 800] == 0).all()
    assert (grey[stored > 1250] == 1).all()
    middle = grey[(stored > 850) & (stored < 1200)]
    assert middle.size and ((middle > 0) & (middle < 1)).all()
    _assert_study_png(render(data, size=SIZE))


def test_dicom_is_found_by_magic_or_by_name() -> None:
    data = _dicom(_ramp())
    np.testing.assert_array_equal(decode_grey(data), decode_grey(data, filename="IMG0001.DCM"))
    np.testing.assert_allclose(decode_grey(data)[0], np.linspace(0, 1, 64), atol=1e-6)


def test_monochrome1_is_inverted_relative_to_monochrome2() -> None:
    stored = _ramp()
    mono2 = decode_grey(_dicom(stored, photometric="MONOCHROME2"))
    mono1 = decode_grey(_dicom(stored, photometric="MONOCHROME1"))
    assert not np.allclose(mono1, mono2)
    np.testing.assert_allclose(mono1, 1.0 - mono2, atol=1e-6)


def test_dicom_multiframe_uses_the_first_frame() -> None:
    first = _ramp()
    frames = np.stack([first, first[:, ::-1]])
    np.testing.assert_array_equal(decode_grey(_dicom(frames)), decode_grey(_dicom(first)))


def test_colour_dicom_becomes_luminance() -> None:
    rgb = np.zeros((30, 30, 3), dtype=np.uint8)
    rgb[:, 10:20, 1] = 255  # green band
    rgb[:, 20:] = 255  # white band
    grey = decode_grey(_dicom(rgb, photometric="RGB"))
    assert grey[:, :10] == pytest.approx(0.0)
    assert grey[:, 10:20] == pytest.approx(0.587, abs=1e-6)
    assert grey[:, 20:] == pytest.approx(1.0)


def test_dicom_without_pixel_data_is_rejected() -> None:
    ds = pydicom.dcmread(io.BytesIO(_dicom(_ramp())))
    del ds.PixelData
    buffer = io.BytesIO()
    ds.save_as(buffer, enforce_file_format=True)
    with pytest.raises(ImageRejected, match="the DICOM file has no pixel data"):
        render(buffer.getvalue(), size=SIZE)


def test_dicom_declaring_too_many_pixels_is_rejected_before_decoding() -> None:
    ds = pydicom.dcmread(io.BytesIO(_dicom(_ramp())))
    ds.Rows, ds.Columns = 8_000, 6_000  # the pixel data stays tiny; only the header lies
    buffer = io.BytesIO()
    ds.save_as(buffer, enforce_file_format=True)
    with pytest.raises(ImageRejected, match="too large"):
        render(buffer.getvalue(), size=SIZE)


def test_dicom_with_a_compression_we_cannot_decode_names_it() -> None:
    if get_decoder(JPEGLSLossless).is_available:
        pytest.skip("a JPEG-LS decoder is installed here")
    data = _dicom(_ramp(), syntax=JPEGLSLossless)
    with pytest.raises(ImageRejected, match="cannot decode DICOM pixel data compressed as JPEG-LS"):
        render(data, size=SIZE)


def test_corrupt_dicom_pixel_data_is_rejected() -> None:
    ds = pydicom.dcmread(io.BytesIO(_dicom(_ramp())))
    ds.PixelData = ds.PixelData[:100]
    buffer = io.BytesIO()
    ds.save_as(buffer, enforce_file_format=True)
    with pytest.raises(ImageRejected, match="truncated or corrupt"):
        render(buffer.getvalue(), size=SIZE)


def test_a_failed_import_keeps_blobs_another_import_used_meanwhile(tmp_path):
    """Two imports of identical images share blobs; the one that fails must not delete the other's."""
    import hashlib
    import os
    import time

    from app.persistence.blobs import BlobStore

    store = BlobStore(tmp_path)
    shared, own = b"same png", b"only mine"
    sha = {d: hashlib.sha256(d).hexdigest() for d in (shared, own)}
    stamps = [(sha[d], store.put(sha[d], d)) for d in (shared, own)]  # import A writes both
    time.sleep(0.01)
    assert store.put(sha[shared], shared) is None  # import B finds the shared one and touches it
    store.remove_created(stamps)  # A fails
    assert store.exists(sha[shared]) and not store.exists(sha[own])
    assert not [p for p in tmp_path.rglob(".dead-*")]
    os.unlink(store.path(sha[shared]))


def test_every_image_of_one_size_has_the_same_byte_length() -> None:
    # Compressed, a flat film and a noisy one differ by a factor of 50 in bytes: a cue without looking.
    flat, noisy = np.full((64, 64), 128, dtype=np.uint8), _noise(64, 64)
    assert len(encode_png(flat)) == len(encode_png(noisy)) == 8 + 25 + 12 + (2 + 64 * 65 + 5 + 4) + 12
    assert len(encode_png(_noise(300, 300))) == len(encode_png(np.zeros((300, 300), dtype=np.uint8)))
    assert len(encode_png(_noise(64, 64))) != len(encode_png(_noise(64, 65)))
