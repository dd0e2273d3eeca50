"""core/frames/imaging.py: image sizes are read from the header and checked before decoding."""

from __future__ import annotations

import struct
import zlib

import cv2
import pytest

from ml_model_service.core.frames import imaging
from ml_model_service.core.frames.imaging import ImageError
from ml_model_service_dev.harness.photos import photo


def _png_header(width: int, height: int) -> bytes:
    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    chunk = struct.pack(">I", len(ihdr)) + b"IHDR" + ihdr + struct.pack(">I", zlib.crc32(b"IHDR" + ihdr))
    return b"\x89PNG\r\n\x1a\n" + chunk


def test_image_sizes_are_checked_before_decoding():
    rgb = photo("astronaut")
    for ext in (".png", ".jpg"):
        ok, buf = cv2.imencode(ext, cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR))
        assert imaging.compressed_size(buf.tobytes())[1:] == (512, 512)
        assert imaging.decode_compressed(buf.tobytes(), max_pixels=512 * 512).shape == (512, 512, 3)
        with pytest.raises(ImageError, match="262144 pixels is above the limit of 100000 pixels"):
            imaging.decode_compressed(buf.tobytes(), max_pixels=100_000)
    # a 0.25 MB PNG declaring 60000 x 60000: refused from its header
    bomb = _png_header(60000, 60000) + zlib.compress(bytes(250_000))
    with pytest.raises(ImageError, match="3600000000 pixels is above the limit of 50000000"):
        imaging.decode_compressed(bomb)
    sof = (
        b"\xff\xd8\xff\xe0\x00\x10JFIF\x00\x01\x01\x00\x00\x01\x00\x01\x00\x00"
        b"\xff\xc0\x00\x11\x08\xfd\xe8\xfd\xe8\x03\x01\x22\x00\x02\x11\x01\x03\x11\x01"
    )
    assert imaging.compressed_size(sof) == ("jpeg", 65000, 65000)
    with pytest.raises(ImageError, match="above the limit"):
        imaging.decode_compressed(sof + bytes(1000))
    for junk in (b"GIF89a" + bytes(100), b"\xff\xd8" + b"\xff\xe1\x00\x02" * 10000, b"\x89PNG\r\n\x1a\n"):
        with pytest.raises(ImageError):
            imaging.decode_compressed(junk)
    with pytest.raises(ImageError, match="above the limit of 1000 pixels"):
        imaging.image_array(bytes(100 * 100 * 3), "rgb8", 100, 100, 300, max_pixels=1000)
