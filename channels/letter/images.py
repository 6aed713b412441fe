"""Page images before OCR: upright, straight, evenly lit, at a resolution Tesseract reads well.

A front-desk scan or a phone photo of a letter is rarely what Tesseract expects (dark text on a
white page, text lines horizontal, 300 dpi). Measured on this project's letters (see
``bench/letters.py``): a page turned 2 degrees or more loses whole paragraphs, faded 150 dpi
text is dropped, and a phone photo's uneven light and the table around the page come back as
noise. Each page therefore goes through, in this order:

1. **Orientation** (:func:`upright`): the EXIF Orientation tag (Exif 2.32, tag 0x0112) a phone
   writes when it stores the picture sideways is applied, then the page becomes 8-bit grey.
2. **Scale** (:func:`target_scale`): pages under ``MIN_DPI`` are enlarged and huge phone photos
   reduced, because Tesseract's line finder works best with an x-height of roughly 20-40
   pixels.
3. **Skew** (:func:`estimate_skew`, :func:`rotate`): the angle whose horizontal projection
   profile is sharpest (text lines fall into few rows, gaps between lines into empty rows) is
   found coarse to fine on a reduced copy; the page is turned back by it.
4. **Light and contrast** (:func:`normalize`): the paper's brightness is estimated at low
   resolution (a maximum filter removes the text, a blur smooths it); where it varies (a
   photo, a shadow) it is divided out, which flattens the light, and a table around a
   photographed sheet is cut off; the darkest ink is then stretched to black.
5. **Specks** (:func:`is_noisy`): a speckled page gets a 3x3 median filter.

All functions are pure computations on Pillow images (and NumPy arrays), run in the OCR
workers, never on the event loop.
"""

from __future__ import annotations

import io
import math
from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray
from PIL import Image, ImageFilter, ImageOps

__all__ = [
    "DISPLAY_MAX_SIDE",
    "MAX_DPI",
    "MIN_DPI",
    "Prepared",
    "display_png",
    "estimate_skew",
    "is_noisy",
    "normalize",
    "prepare",
    "rotate",
    "straighten",
    "target_scale",
    "upright",
]

# Below this a 10-12 pt letter has an x-height under ~20 px and Tesseract starts to drop faint
# words; above MAX_DPI it only gets slower.
MIN_DPI = 150
MAX_DPI = 250
TARGET_DPI = 200
RESAMPLE = Image.Resampling.BILINEAR
# Resolution assumed when a file does not say (phone photos, PNGs without pHYs): the page's
# pixel size is then turned into a resolution by assuming an A4-like sheet.
_A4_LONG_INCHES = 11.69
# The clerk's view of a page: big enough to read, small enough to send to a browser quickly.
DISPLAY_MAX_SIDE = 1600
# Skew search: real scans are within a few degrees; the coarse pass covers a little more.
_SKEW_RANGE = 6.0
_SKEW_STEP = 0.5
_SKEW_FINE = 0.05
# Angles below this are left alone: rotating costs time and softens the glyphs a little.
_MIN_CORRECTION = 0.15
# Paper brightness varying more than this (grey levels, 5th to 95th percentile) is uneven light.
_UNEVEN_LIGHT = 24
# The stretch never maps fewer grey levels than this onto black..white: a faded page (ink 135 on
# paper 208) is stretched fully, an empty page's noise is not blown up into specks.
_MIN_CONTRAST = 48.0
# Specks (see is_noisy) per pixel above which a page is denoised.
_SPECKS = 0.0005


@dataclass(frozen=True, slots=True)
class Prepared:
    """A page ready for OCR, and what was done to it."""

    image: Image.Image
    """8-bit grey, upright, deskewed, normalised."""
    dpi: int
    """Resolution of ``image``, given to Tesseract."""
    skew: float
    """Angle (degrees, counter-clockwise positive) the page was turned by before correction."""
    scale: float
    denoised: bool = False
    """True when a median filter removed specks (see :func:`is_noisy`)."""


def upright(img: Image.Image) -> Image.Image:
    """The image turned as its EXIF Orientation says, in 8-bit grey."""
    img = ImageOps.exif_transpose(img)
    if img.mode == "L":
        return img
    if img.mode in ("RGBA", "LA", "PA") or (img.mode == "P" and "transparency" in img.info):
        # Transparent areas are paper, not black.
        base = Image.new("RGBA", img.size, (255, 255, 255, 255))
        base.alpha_composite(img.convert("RGBA"))
        img = base
    if img.mode in ("I;16", "I;16B", "I;16L", "I", "F"):
        arr = np.asarray(img, dtype=np.float32)
        hi = float(arr.max()) or 1.0
        return Image.fromarray((arr * (255.0 / hi)).astype(np.uint8), "L")
    return img.convert("L")


def image_dpi(img: Image.Image) -> float | None:
    """The resolution the file states, when it is plausible for a scanned sheet of paper."""
    if img.info.get("jfif_unit") == 0:
        return None  # JFIF density without a unit is only an aspect ratio (JFIF 1.02, p. 5)
    dpi = img.info.get("dpi")
    if not (isinstance(dpi, tuple) and dpi):
        return None
    try:
        value = float(dpi[0])
    except (TypeError, ValueError):
        return None
    # Cameras and many programs write 72 or 96 dpi whatever the picture: a stated resolution
    # is believed only when it makes the sheet between A6 and A3 size.
    long_inches = max(img.size) / value if value > 0 else 0.0
    if 50 <= value <= 1200 and 5.5 <= long_inches <= 17.5:
        return value
    return None


def target_scale(size: tuple[int, int], dpi: float | None) -> tuple[float, float]:
    """(scale factor, resulting dpi) that brings a page into MIN_DPI..MAX_DPI."""
    if dpi is None:
        # No stated resolution (a photo): assume the long side is an A4 page's.
        dpi = max(size) / _A4_LONG_INCHES
    if dpi < MIN_DPI:
        scale = MIN_DPI / dpi
    elif dpi > MAX_DPI:
        scale = TARGET_DPI / dpi
    else:
        scale = 1.0
    return scale, dpi * scale


def _ink_mask(gray: NDArray[np.uint8]) -> NDArray[np.bool_]:
    """Dark pixels (ink) of a reduced page, by Otsu's threshold on the histogram."""
    hist = np.bincount(gray.ravel(), minlength=256).astype(np.float64)
    total = hist.sum()
    levels = np.arange(256, dtype=np.float64)
    weight0 = np.cumsum(hist)
    mean0 = np.cumsum(hist * levels)
    weight1 = total - weight0
    with np.errstate(divide="ignore", invalid="ignore"):
        between = (mean0[-1] * weight0 / total - mean0) ** 2 / (weight0 * weight1)
    between = np.nan_to_num(between[:-1], nan=-1.0)
    if between.max() <= 0:
        return np.zeros(gray.shape, dtype=bool)  # one grey level: nothing is ink
    threshold = int(np.argmax(between))
    return gray <= threshold


def estimate_skew(img: Image.Image, *, limit: float = _SKEW_RANGE) -> float:
    """Angle in degrees (counter-clockwise positive) by which the page's text lines are turned.

    Projection profiles: for a candidate angle every ink pixel (x, y) is projected to the row
    ``y + x·tan(angle)``; at the true angle the text lines pile up into narrow, tall peaks, so
    the sum of squared row counts is largest. Shearing the ink coordinates instead of rotating
    the image makes each candidate a single ``bincount``.
    """
    # About 1000 px on the long side: an integer box reduction is ten times cheaper than a
    # resampling thumbnail and keeps text lines a few pixels tall.
    small = img.reduce(max(1, round(max(img.size) / 1000)))
    # A light blur joins the strokes of a letter so specks of noise weigh little.
    arr = np.asarray(small.filter(ImageFilter.BoxBlur(1)), dtype=np.uint8)
    mask = _ink_mask(arr)
    # Ignore a frame of the page: scanner edges and a photo's table are not text.
    h, w = mask.shape
    mh, mw = h // 20, w // 20
    mask[:mh], mask[h - mh :], mask[:, :mw], mask[:, w - mw :] = False, False, False, False
    ys, xs = np.nonzero(mask)
    if len(xs) < 200 or len(xs) > 0.4 * mask.size:
        return 0.0  # blank page, or a photo that is mostly dark: nothing to measure
    xs_f = (xs - w / 2).astype(np.float64)
    ys_f = ys.astype(np.float64)
    offset = h + w

    def sharpness(angle: float) -> float:
        rows = np.rint(ys_f + xs_f * math.tan(math.radians(angle))).astype(np.int64)
        counts = np.bincount(rows + offset)
        return float(np.dot(counts, counts))

    coarse = np.arange(-limit, limit + 1e-9, _SKEW_STEP)
    best = max(coarse, key=sharpness)
    fine = np.arange(best - _SKEW_STEP, best + _SKEW_STEP + 1e-9, _SKEW_FINE)
    return round(float(max(fine, key=sharpness)), 2)


def straighten(img: Image.Image, angle: float, scale: float = 1.0, fill: int = 255) -> Image.Image:
    """Turn the page by ``angle`` degrees counter-clockwise and scale it, in one resampling.

    One affine pass instead of a resize and a rotation: half the time, and the glyphs are
    interpolated once.
    """
    if abs(angle) < 1e-6 and scale == 1.0:
        return img
    if scale < 0.7:
        # Bilinear sampling skips pixels when shrinking much; box-reduce first.
        factor = int(1 / scale)
        img = img.reduce(factor)
        scale *= factor
    w, h = img.size
    out_w, out_h = max(1, round(w * scale)), max(1, round(h * scale))
    a = -math.radians(angle)
    # Output pixel -> input pixel, about the centres (the matrix Image.rotate builds, over scale).
    m_a, m_b = math.cos(a) / scale, math.sin(a) / scale
    m_d, m_e = -math.sin(a) / scale, math.cos(a) / scale
    m_c = w / 2 - (m_a * out_w / 2 + m_b * out_h / 2)
    m_f = h / 2 - (m_d * out_w / 2 + m_e * out_h / 2)
    return img.transform(
        (out_w, out_h),
        Image.Transform.AFFINE,
        (m_a, m_b, m_c, m_d, m_e, m_f),
        resample=RESAMPLE,
        fillcolor=fill,
    )


def rotate(img: Image.Image, angle: float, fill: int = 255) -> Image.Image:
    """Turn the page by ``angle`` degrees counter-clockwise, keeping its size."""
    return straighten(img, angle, 1.0, fill)


def _percentile_of_histogram(hist: list[int], fraction: float) -> int:
    """The grey level below which ``fraction`` of the pixels lie."""
    cum = np.cumsum(np.asarray(hist, dtype=np.int64))
    return int(np.searchsorted(cum, fraction * cum[-1]))


def _sheet_box(bg: NDArray[np.uint8]) -> tuple[int, int, int, int] | None:
    """The sheet's box in a reduced paper-brightness map, when it lies on a darker surface.

    Only a surface much darker than the paper (under 60 % of its brightness) counts: a page lit
    from one side is darker on that side too, but not that much, and must not be cut.
    """
    paper = float(np.percentile(bg, 75))
    sheet = bg > paper * 0.6
    if sheet.all():
        return None
    rows = np.nonzero(sheet.mean(axis=1) > 0.5)[0]
    cols = np.nonzero(sheet.mean(axis=0) > 0.5)[0]
    if len(rows) < bg.shape[0] // 3 or len(cols) < bg.shape[1] // 3:
        return None
    # A little inside the edge: the rim is shaded, and the maximum filter spreads paper over it.
    y0, y1 = int(rows[0]) + 3, int(rows[-1]) - 2
    x0, x1 = int(cols[0]) + 3, int(cols[-1]) - 2
    if (y1 - y0) * (x1 - x0) > 0.97 * bg.size:
        return None
    return x0, y0, x1, y1


def normalize(img: Image.Image) -> Image.Image:
    """Even the light and stretch the contrast: paper white, the darkest ink black."""
    w, h = img.size
    # Paper brightness, estimated on a page reduced to ~200 px: the maximum filter spans more
    # than a text line's height, so it lands on paper between the strokes.
    factor = max(1, round(max(w, h) / 200))
    background = img.reduce(factor).filter(ImageFilter.MaxFilter(5))
    background = background.filter(ImageFilter.GaussianBlur(2))
    bg = np.asarray(background)
    box = _sheet_box(bg)
    if box is not None:
        # A photo with the table around the sheet: keep the sheet only.
        x0, y0, x1, y1 = box
        img = img.crop((x0 * factor, y0 * factor, min(w, x1 * factor), min(h, y1 * factor)))
        background = background.crop(box)
        bg = np.asarray(background)
        w, h = img.size
    dark_bg, light_bg = np.percentile(bg, [5, 95])
    if light_bg - dark_bg > _UNEVEN_LIGHT:
        # Shadows, a light gradient or a table around a photographed page: divide the
        # estimated paper brightness out, pixel by pixel.
        arr = np.asarray(img, dtype=np.float32)
        full = np.asarray(background.resize((w, h), Image.Resampling.BILINEAR), np.float32)
        np.maximum(full, 16.0, out=full)
        np.divide(arr, full, out=arr)
        arr *= 255.0
        np.clip(arr, 0, 255, out=arr)
        img = Image.fromarray(arr.astype(np.uint8), "L")
        paper = 255.0
    else:
        # An even scan: one grey-level mapping (a lookup table) is enough.
        paper = float(np.median(bg))
    # Stretch: the darkest 0.3 % of the pixels (the strokes) to black, 94 % of the paper's
    # brightness to white. The gain is capped so an empty page's noise is not blown up.
    ink = float(_percentile_of_histogram(img.histogram(), 0.003))
    white = paper * 0.94
    ink = min(ink, white - _MIN_CONTRAST)
    gain = 255.0 / (white - ink)
    lut = [min(255, max(0, round((v - ink) * gain))) for v in range(256)]
    return img.point(lut)


def prepare(img: Image.Image, dpi: float | None = None) -> Prepared:
    """The full preparation of one page for OCR (see the module docstring)."""
    gray = upright(img)
    if dpi is None:
        dpi = image_dpi(img)
    scale, out_dpi = target_scale(gray.size, dpi)
    # Skew is measured before scaling (fewer pixels, same angle).
    skew = estimate_skew(gray)
    angle = -skew if abs(skew) >= _MIN_CORRECTION else 0.0
    if angle or scale != 1.0:
        # The corners uncovered by turning are filled with the paper's colour.
        paper = _percentile_of_histogram(gray.histogram(), 0.9)
        gray = straighten(gray, angle, scale, fill=paper)
    page = normalize(gray)
    denoised = is_noisy(page)
    if denoised:
        page = page.filter(ImageFilter.MedianFilter(3))
    return Prepared(page, round(out_dpi), skew, scale, denoised)


def is_noisy(img: Image.Image) -> bool:
    """True when a normalised page is speckled: dark dots alone on white paper.

    A speck is a dark pixel whose left and right neighbours are paper (a stroke of a letter is
    wider than one pixel at 150 dpi and more). A 3x3 median filter removes specks and keeps
    strokes: on the speckled generated scans the character error rate fell from 4-28 % to
    0.4-9 %, while on pages without specks the filter changed nothing or made it slightly
    worse, and costs ~50 ms; so it only runs where specks are counted.
    """
    rows = np.asarray(img)[::3].astype(np.int16)
    dark = rows[:, 1:-1] < 160
    specks = dark & (rows[:, :-2] > 200) & (rows[:, 2:] > 200)
    return float(specks.mean()) > _SPECKS


def display_png(img: Image.Image, max_side: int = DISPLAY_MAX_SIDE) -> bytes:
    """The page as shown to the clerk: at most ``max_side`` pixels, 16 grey levels, PNG.

    Sixteen levels keep antialiased letters smooth to the eye and make the file ~6 times
    smaller and ~5 times faster to encode than 8-bit grey (a 4-bit palette PNG, ISO/IEC 15948
    11.2.2, of ~80 KB for an A4 page).
    """
    shown = img.convert("L") if img.mode != "L" else img.copy()
    shown.thumbnail((max_side, max_side), Image.Resampling.BOX)
    levels = shown.point(_TO_16_LEVELS).convert("P")
    levels.putpalette(_GREY_16)
    out = io.BytesIO()
    levels.save(out, "PNG", bits=4, compress_level=1)
    return out.getvalue()


_TO_16_LEVELS = [v >> 4 for v in range(256)]
_GREY_16 = [level * 17 for level in range(16) for _ in range(3)]
