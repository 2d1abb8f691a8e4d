"""Turn untrusted upload bytes into an RGB PIL image, or a clear error; never decode a bomb."""

import contextlib
import io
import math
import warnings

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

# Formats a browser or phone produces. Pillow can open more (EPS would even call Ghostscript);
# an upload service has no reason to let strangers reach those decoders.
ALLOWED_FORMATS = ("JPEG", "PNG", "GIF", "WEBP", "BMP", "TIFF")

# Modes that Image.reduce averages as they are. Palette, alpha and 16-bit images are converted to
# RGB first (_to_rgb), so that reducing cannot mix palette indices or colour hidden under transparency.
REDUCIBLE_MODES = ("L", "RGB", "CMYK", "YCbCr")

# We enforce our own, lower pixel limit before decoding (see decode_image), so Pillow's warning
# for images between its limit and twice its limit would only be log noise.
warnings.filterwarnings("ignore", category=Image.DecompressionBombWarning)


class BadImage(ValueError):
    """An upload we refuse, with the HTTP status and a message for a person."""

    def __init__(self, status: int, message: str):
        super().__init__(message)
        self.status = status
        self.message = message


def decode_image(data: bytes, max_pixels: int, min_side: int = 0, reserve=None) -> Image.Image:
    """Decode an uploaded file to an upright RGB image (first frame of an animation).

    With ``min_side`` (the shorter side the model's preprocessing resizes to), a large image is
    decoded at a reduced size whose shorter side is still at least ``min_side``: a JPEG straight
    from its compressed data at 1/2, 1/4 or 1/8 scale, other formats halved, quartered, ... right
    after decoding. ``reserve(nbytes)``, if given, is a context manager held while the pixels are
    decoded (the service uses it to bound the memory of decodes in flight).
    """
    if not data:
        raise BadImage(400, "The uploaded file is empty.")
    try:
        # Image.open reads only the header: the size is known before any pixel is decoded.
        image = Image.open(io.BytesIO(data), formats=ALLOWED_FORMATS)
    except UnidentifiedImageError:
        raise BadImage(
            415, f"The file is not an image this service reads ({', '.join(ALLOWED_FORMATS)})."
        ) from None
    except Image.DecompressionBombError:
        raise BadImage(413, "The image declares more pixels than this service decodes.") from None
    except Exception:  # a header so broken that even identifying it fails
        raise BadImage(400, "The image header is corrupt.") from None
    width, height = image.size
    if width * height > max_pixels:
        raise BadImage(
            413,
            f"The image is {width}x{height} = {width * height:,} pixels; "
            f"this service decodes at most {max_pixels:,}.",
        )
    if min_side and image.format == "JPEG":
        # Still header only: asks the JPEG decoder for the smallest of 1/1, 1/2, 1/4, 1/8 scale
        # that is at least this size.
        scale = min_side / min(width, height)
        image.draft(image.mode, (math.ceil(width * scale), math.ceil(height * scale)))
    with reserve(decoded_bytes(image)) if reserve else contextlib.nullcontext():
        try:
            image.load()  # decodes the first frame only
            if image.mode in REDUCIBLE_MODES:
                image = _reduce(image, min_side)  # let go of the full-size pixels as early as possible
            image = ImageOps.exif_transpose(image)  # phone photos store "rotate me" in EXIF
            return _reduce(_to_rgb(image), min_side)
        except Exception:  # Pillow raises OSError, SyntaxError, ValueError, EOFError, ... on bad data
            raise BadImage(400, "The image is truncated or corrupt and cannot be decoded.") from None


def decoded_bytes(image: Image.Image) -> int:
    """Roughly the memory that decoding ``image`` (at its current, possibly draft, size) takes."""
    per_pixel = 4 if image.mode in REDUCIBLE_MODES else 12  # 16-bit grey goes through float64 in _to_rgb
    return image.width * image.height * per_pixel


def _reduce(image: Image.Image, min_side: int) -> Image.Image:
    """Shrink by a whole factor (box average) while the shorter side stays >= min_side."""
    factor = min(image.size) // min_side if min_side else 1
    return image.reduce(factor) if factor >= 2 else image


def _to_rgb(image: Image.Image) -> Image.Image:
    if image.mode in ("I;16", "I;16L", "I;16B", "I"):
        # 16/32-bit grey: Pillow's convert("RGB") clips at 255 (almost everything turns white),
        # so scale the full range down to 8 bits ourselves.
        pixels = np.asarray(image, dtype=np.float64)
        top = 65535.0 if image.mode.startswith("I;16") else max(float(pixels.max()), 1.0)
        image = Image.fromarray((pixels.clip(0, top) * (255.0 / top)).round().astype(np.uint8))
    if image.mode == "P":
        image = image.convert("RGBA")  # a palette may carry transparency
    if image.mode in ("RGBA", "LA", "PA"):
        # Transparent pixels often hold garbage colour: composite over white, as a viewer shows it.
        background = Image.new("RGB", image.size, (255, 255, 255))
        background.paste(image, mask=image.getchannel("A"))
        return background
    return image.convert("RGB")
