"""What the phone's camera does: find the QR code in an image and read it.

Decoding is done from pixels with ZXing (zxing-cpp), as a phone would from a
camera frame, not by reading a string smuggled alongside the picture.
"""

from __future__ import annotations

import io
from pathlib import Path

import zxingcpp
from PIL import Image, UnidentifiedImageError

from authnet.errors import MalformedInput


def read_qr(image: Path | bytes | Image.Image) -> str:
    """The text of the one QR code in the image. MalformedInput if there is
    none, more than one, or the file is not an image."""
    img: Image.Image
    try:
        if isinstance(image, Path):
            img = Image.open(image)
        elif isinstance(image, bytes):
            img = Image.open(io.BytesIO(image))
        else:
            img = image
        img.load()
    except (OSError, UnidentifiedImageError) as e:
        raise MalformedInput(f"cannot read the image: {e}") from None
    codes = [
        r
        for r in zxingcpp.read_barcodes(img.convert("L"))
        if r.format == zxingcpp.BarcodeFormat.QRCode and r.valid
    ]
    if not codes:
        raise MalformedInput("no QR code found in the image")
    texts = {c.text for c in codes}
    if len(texts) > 1:
        raise MalformedInput(f"the image holds {len(texts)} different QR codes; show only one")
    return texts.pop()


def render_qr(text: str, *, scale: int = 8) -> Image.Image:
    """Draw a QR code (for the demo and for terminals without a browser)."""
    import qrcode
    from qrcode.constants import ERROR_CORRECT_M

    qr = qrcode.QRCode(error_correction=ERROR_CORRECT_M, box_size=scale, border=4)
    qr.add_data(text.encode("ascii"))
    qr.make(fit=True)
    img = qr.make_image(fill_color="black", back_color="white").get_image()
    assert isinstance(img, Image.Image)
    return img
