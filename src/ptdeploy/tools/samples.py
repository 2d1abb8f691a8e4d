"""Uploads that exercise the service: unusual-but-valid images, bad input and large photos, all made
from data/cat.jpg (nothing large is stored: the large photos are made when asked for)."""

import io
import struct
import zlib
from functools import cache

import numpy as np
from PIL import Image

from ptdeploy.paths import CAT_JPG


def _save(image: Image.Image, fmt: str, **kwargs) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, fmt, **kwargs)
    return buffer.getvalue()


@cache
def cat() -> Image.Image:
    return Image.open(CAT_JPG).convert("RGB")


def unusual_images() -> dict[str, bytes]:
    """Valid images in modes and formats the tutorial's server mishandles; each shows the cat."""
    rgb = cat()
    rgba = rgb.convert("RGBA")
    rgba.putalpha(255)
    grey16 = Image.fromarray(np.asarray(rgb.convert("L"), dtype=np.uint16) * 257)
    frames = [rgb.convert("P"), Image.new("P", rgb.size, 0)]
    # EXIF orientation 6 = "rotate 90° clockwise to view": store the cat turned the other way.
    exif = Image.Exif()
    exif[0x0112] = 6
    return {
        "RGBA PNG": _save(rgba, "PNG"),
        "greyscale (L) PNG": _save(rgb.convert("L"), "PNG"),
        "palette (P) PNG": _save(rgb.convert("P", palette=Image.Palette.ADAPTIVE), "PNG"),
        "CMYK JPEG": _save(rgb.convert("CMYK"), "JPEG", quality=95),
        "16-bit greyscale PNG": _save(grey16, "PNG"),
        "animated GIF (cat first)": _save(
            frames[0], "GIF", save_all=True, append_images=frames[1:], duration=100
        ),
        "EXIF-rotated JPEG": _save(rgb.transpose(Image.Transpose.ROTATE_90), "JPEG", quality=95, exif=exif),
        "WebP": _save(rgb, "WEBP", quality=90),
    }


@cache
def large_photo(fmt: str = "JPEG", width: int = 6000) -> bytes:
    """The cat enlarged to ``width`` pixels wide (6000 x 3991 = 24 MP: a phone camera's photo), as
    JPEG (quality 90) or PNG. The PNG is enlarged by repeating pixels, which keeps the file under the
    upload limit (a smoothly enlarged 24 MP PNG is ~14 MB); decoding it still costs all 24 MP.
    """
    small = cat()
    size = (width, round(small.height * width / small.width))
    if fmt == "PNG":
        return _save(small.resize(size, Image.Resampling.NEAREST), "PNG", compress_level=1)
    return _save(small.resize(size, Image.Resampling.BILINEAR), "JPEG", quality=90)


def png_bomb(width: int = 50_000, height: int = 50_000) -> bytes:
    """A few-hundred-byte PNG whose header declares width x height pixels (greyscale)."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    header = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    # Only the start of the image data: enough to look plausible, never decoded by the service.
    compressed = zlib.compress(b"\x00" * (width + 1) * 16, 9)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", compressed) + chunk(b"IEND", b"")


def bad_uploads() -> dict[str, tuple[dict, int]]:
    """name -> (requests' ``files=`` argument, expected HTTP status)."""
    jpeg = CAT_JPG.read_bytes()
    png = _save(cat(), "PNG")
    rng = np.random.default_rng(0)
    minimal_pdf = b"%PDF-1.4\n1 0 obj<<>>endobj\ntrailer<<>>\n%%EOF\n"
    corrupt = bytearray(jpeg)
    corrupt[len(jpeg) // 3 : len(jpeg) // 3 + 2000] = rng.integers(0, 256, 2000, dtype=np.uint8).tobytes()
    return {
        "empty file": ({"file": ("cat.jpg", b"")}, 400),
        "wrong field name": ({"image": ("cat.jpg", jpeg)}, 400),
        "plain text": ({"file": ("notes.txt", b"this is not a picture\n")}, 415),
        "PDF": ({"file": ("doc.pdf", minimal_pdf)}, 415),
        "random bytes": ({"file": ("noise.bin", rng.integers(0, 256, 4096, dtype=np.uint8).tobytes())}, 415),
        "HTML": ({"file": ("page.html", b"<html><body>hi</body></html>")}, 415),
        "JPEG magic only": ({"file": ("x.jpg", b"\xff\xd8\xff")}, 415),
        "truncated JPEG (half)": ({"file": ("cat.jpg", jpeg[: len(jpeg) // 2])}, 400),
        "truncated JPEG (header only)": ({"file": ("cat.jpg", jpeg[:700])}, 400),
        "truncated PNG": ({"file": ("cat.png", png[: len(png) // 2])}, 400),
        "corrupt JPEG data": ({"file": ("cat.jpg", bytes(corrupt))}, 400),
        "PNG header only": ({"file": ("cat.png", png[:33])}, 415),
        "decompression bomb PNG (50000x50000)": ({"file": ("bomb.png", png_bomb())}, 413),
        "bomb just over the limit": ({"file": ("bomb.png", png_bomb(8000, 6000))}, 413),
        "EPS (decoder not allowed)": (
            {"file": ("x.eps", b"%!PS-Adobe-3.0 EPSF-3.0\n%%BoundingBox: 0 0 10 10\n")},
            415,
        ),
        "SVG": (
            {"file": ("x.svg", b'<svg xmlns="http://www.w3.org/2000/svg" width="10" height="10"/>')},
            415,
        ),
        "upload over 10 MB": ({"file": ("big.jpg", b"\xff\xd8" + b"\x00" * (11 * 1024 * 1024))}, 413),
    }
