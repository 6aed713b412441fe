"""Page preparation before OCR: EXIF orientation, deskew, contrast, photos, the clerk's image."""

from __future__ import annotations

import io
import random

import numpy as np
import pytest
from PIL import Image

from channels.letter import images
from tests.channels.letter.letterset import Scan, compose, degrade, phone_photo, render


@pytest.fixture(scope="module")
def clean_page() -> Image.Image:
    """A typeset letter page, clean, 200 dpi."""
    composed = compose(random.Random(3), 0, pages_wanted=1, layout="signature")
    page = render(composed.pages[0], 300)
    return page.resize((page.width * 2 // 3, page.height * 2 // 3), Image.Resampling.LANCZOS)


def test_exif_orientation_is_applied(clean_page: Image.Image) -> None:
    # Stored sideways with Orientation 6, as a phone held in landscape writes it.
    exif = Image.Exif()
    exif[0x0112] = 6
    out = io.BytesIO()
    clean_page.transpose(Image.Transpose.ROTATE_90).save(out, "JPEG", quality=90, exif=exif)
    stored = Image.open(io.BytesIO(out.getvalue()))
    assert stored.width > stored.height
    upright = images.upright(stored)
    assert upright.size == clean_page.size
    diff = np.abs(np.asarray(upright, np.int16) - np.asarray(clean_page, np.int16))
    assert float(diff.mean()) < 3.0


@pytest.mark.parametrize("angle", [-3.8, -2.0, -1.1, 0.0, 1.4, 2.5, 4.0])
def test_deskew_recovers_the_angle(clean_page: Image.Image, angle: float) -> None:
    scan = degrade(
        clean_page.resize((clean_page.width * 3 // 2, clean_page.height * 3 // 2)),
        Scan(dpi=200, skew=angle, noise=8, ink=30, paper=240),
        random.Random(1),
    )
    assert images.estimate_skew(scan) == pytest.approx(angle, abs=0.15)
    prepared = images.prepare(scan, dpi=200)
    # After correction the page is straight: measuring again finds (almost) nothing.
    assert abs(images.estimate_skew(prepared.image)) <= 0.15


def test_blank_page_has_no_skew() -> None:
    assert images.estimate_skew(Image.new("L", (1200, 1700), 250)) == 0.0


def test_faded_scan_is_stretched_to_black_on_white(clean_page: Image.Image) -> None:
    faded = degrade(
        clean_page.resize((clean_page.width * 3 // 2, clean_page.height * 3 // 2)),
        Scan(dpi=200, ink=135, paper=208, noise=3),
        random.Random(2),
    )
    before = np.asarray(faded)
    assert np.percentile(before, 0.5) > 100  # no black at all
    after = np.asarray(images.normalize(faded))
    assert np.percentile(after, 0.2) < 30  # the strokes are dark
    assert np.median(after) == 255  # the paper is white


def test_phone_photo_is_cropped_to_the_sheet_and_evenly_lit(clean_page: Image.Image) -> None:
    photo = phone_photo(clean_page.resize((clean_page.width * 3 // 2, clean_page.height * 3 // 2)),
                        random.Random(4))
    gray = images.upright(photo)
    out = images.normalize(gray)
    assert out.width < gray.width and out.height < gray.height  # the table is cut off
    arr = np.asarray(out)
    # Paper brightness is even: the four quarters' paper is equally white.
    top, left = arr.shape[0] // 2, arr.shape[1] // 2
    quarters = {
        "top left": arr[:top, :left],
        "top right": arr[:top, left:],
        "bottom left": arr[top:, :left],
        "bottom right": arr[top:, left:],
    }
    for name, quarter in quarters.items():
        assert np.median(quarter) >= 250, name


def test_a_light_gradient_is_evened_out(clean_page: Image.Image) -> None:
    # A sheet lit from the right: the paper goes from 55 % grey on the left to white.
    page = np.asarray(clean_page.convert("L"), np.float32)
    ramp = np.linspace(0.55, 1.0, page.shape[1], dtype=np.float32)[None, :]
    shaded = Image.fromarray((page * ramp).astype(np.uint8))
    before = np.asarray(shaded)
    left, right = before[:, : before.shape[1] // 4], before[:, -before.shape[1] // 4 :]
    assert np.median(left) < 160 and np.median(right) > 230  # the fixture is unevenly lit
    after = np.asarray(images.normalize(shaded))
    for name, part in (("left", after[:, : after.shape[1] // 4]),
                       ("right", after[:, -after.shape[1] // 4 :])):
        assert np.median(part) >= 250, name  # white paper on both sides
    assert np.percentile(after, 0.2) < 30  # and the writing still dark


def test_resolution_and_scale() -> None:
    assert images.target_scale((2480, 3508), 300) == (pytest.approx(200 / 300), pytest.approx(200))
    assert images.target_scale((1654, 2339), 200) == (1.0, 200)
    assert images.target_scale((1240, 1754), 150) == (1.0, 150)
    # No stated resolution: an A4 sheet is assumed.
    scale, dpi = images.target_scale((1916, 2618), None)
    assert scale == 1.0 and 220 < dpi < 230
    # A JPEG saying "72 dpi" for a 2480 px wide page is not a 34-inch sheet.
    out = io.BytesIO()
    Image.new("L", (2480, 3508), 255).save(out, "JPEG", dpi=(72, 72))
    assert images.image_dpi(Image.open(io.BytesIO(out.getvalue()))) is None


def test_noisy_page_is_denoised(clean_page: Image.Image) -> None:
    big = clean_page.resize((clean_page.width * 3 // 2, clean_page.height * 3 // 2))
    noisy = degrade(big, Scan(dpi=150, noise=18, ink=115, paper=205, specks=0.002), random.Random(5))
    clean = degrade(big, Scan(dpi=200, noise=3), random.Random(5))
    assert images.prepare(noisy, dpi=150).denoised
    assert not images.prepare(clean, dpi=200).denoised


def test_display_png(clean_page: Image.Image) -> None:
    data = images.display_png(images.prepare(clean_page, dpi=200).image)
    assert data.startswith(b"\x89PNG\r\n\x1a\n")
    shown = Image.open(io.BytesIO(data))
    assert max(shown.size) == images.DISPLAY_MAX_SIDE
    assert shown.mode == "P" and len(data) < 250_000
