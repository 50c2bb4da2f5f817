"""The printed card: ID-1 size, print-and-scan of the QR at 300 dpi, shaped right-to-left Arabic,
OCR-B MRZ at the ICAO pitch, batch PDFs, and clear errors."""

from __future__ import annotations

import io
import shutil
import subprocess
from dataclasses import replace
from pathlib import Path

import pypdfium2 as pdfium
import pytest
import uharfbuzz as hb
import zxingcpp
from PIL import Image

from sanad.config import Settings
from sanad.credentials.card import issue_qr, td1_data
from sanad.credentials.card_pdf import (
    CARD_HEIGHT_MM,
    CARD_WIDTH_MM,
    CardFace,
    CardFonts,
    FpdfCardRenderer,
    pdf_to_png,
)
from sanad.credentials.mrz import td1_lines
from sanad.errors import CardRenderError
from tests.credentials.cards import random_claims, vector_claims, vector_key

SETTINGS = Settings()
FONTS = CardFonts(SETTINGS.card_font_latin, SETTINGS.card_font_arabic, SETTINGS.card_font_mrz)
PT_PER_MM = 72 / 25.4


def _face(claims=None, **kw) -> CardFace:
    claims = claims or vector_claims()
    mrz = td1_lines(td1_data(claims, issuing_state="UTO"))
    return CardFace(claims=claims, mrz=(mrz[0], mrz[1], mrz[2]), qr=issue_qr(claims, vector_key()),
                    authority="Refugee Registration Authority", **kw)


@pytest.fixture(scope="module")
def card_pdf() -> bytes:
    return FpdfCardRenderer(FONTS).render([_face()])


def test_pages_are_id1_size(card_pdf: bytes) -> None:
    doc = pdfium.PdfDocument(card_pdf)
    assert len(doc) == 2
    for page in doc:
        width, height = page.get_size()
        assert width == pytest.approx(CARD_WIDTH_MM * PT_PER_MM, abs=0.05)
        assert height == pytest.approx(CARD_HEIGHT_MM * PT_PER_MM, abs=0.05)


def test_print_and_scan_gives_back_exactly_the_issued_text(card_pdf: bytes, tmp_path: Path) -> None:
    """Render the PDF at 300 dpi with poppler (as a print shop's RIP would rasterise it) and
    decode the QR from the picture."""
    assert shutil.which("pdftoppm"), "poppler-utils missing: run `make system-deps`"
    pdf = tmp_path / "card.pdf"
    pdf.write_bytes(card_pdf)
    subprocess.run(["pdftoppm", "-r", "300", "-png", "-f", "2", "-l", "2", str(pdf),
                    str(tmp_path / "scan")], check=True, capture_output=True)
    (scan,) = tmp_path.glob("scan*.png")
    image = Image.open(scan)
    assert image.width == pytest.approx(CARD_WIDTH_MM / 25.4 * 300, abs=2)
    decoded = zxingcpp.read_barcodes(image)
    assert [r.text for r in decoded] == [_face().qr]
    assert decoded[0].format == zxingcpp.BarcodeFormat.QRCode
    # The same through the in-process renderer used for previews.
    again = zxingcpp.read_barcodes(Image.open(io.BytesIO(pdf_to_png(card_pdf, page=1, dpi=300))))
    assert [r.text for r in again] == [_face().qr]


def _shaped_advance_pt(text: str, size_pt: float, *, shaping: bool) -> float:
    face = hb.Face(hb.Blob.from_file_path(str(FONTS.arabic)))
    buf = hb.Buffer()
    buf.add_str(text)
    buf.guess_segment_properties()
    off = {f: False for f in ("init", "medi", "fina", "rlig", "liga", "calt")}
    hb.shape(hb.Font(face), buf, {} if shaping else off)
    advance: float = sum(p.x_advance for p in buf.glyph_positions) / face.upem * size_pt
    return advance


def test_arabic_names_are_shaped_and_right_to_left(card_pdf: bytes) -> None:
    claims = vector_claims()
    name = f"{claims.given_name_ar} {claims.family_name_ar}"
    page = pdfium.PdfDocument(card_pdf)[0].get_textpage()
    text = page.get_text_range()
    assert name in text  # logical order survives (copy-paste and screen readers work)
    start = text.index(name)
    boxes = [page.get_charbox(start + i) for i in range(len(name))]
    lefts = [b[0] for b in boxes if b[2] > b[0]]
    # Right to left: each letter in reading order sits left of the one before.
    assert lefts == sorted(lefts, reverse=True)
    extent = max(b[2] for b in boxes) - min(b[0] for b in boxes)
    shaped = _shaped_advance_pt(name, 9.5, shaping=True)
    isolated = _shaped_advance_pt(name, 9.5, shaping=False)
    # Joined (contextual) forms are much narrower than isolated letters; the printed run
    # has HarfBuzz's shaped width.
    assert extent == pytest.approx(shaped, rel=0.05)
    assert abs(extent - isolated) > 0.2 * isolated


def test_mrz_is_printed_at_the_icao_pitch(card_pdf: bytes) -> None:
    page = pdfium.PdfDocument(card_pdf)[1].get_textpage()
    text = page.get_text_range()
    for line in _face().mrz:
        assert line in text
        start = text.index(line)
        first, last = page.get_charbox(start), page.get_charbox(start + 29)
        pitch_mm = (last[0] - first[0]) / 29 / PT_PER_MM
        assert pitch_mm == pytest.approx(2.54, abs=0.03)


def test_silhouette_without_photo_and_photo_when_given(card_pdf: bytes) -> None:
    assert "no photo on file" in pdfium.PdfDocument(card_pdf)[0].get_textpage().get_text_range()
    photo = io.BytesIO()
    Image.new("RGB", (60, 80), (120, 90, 60)).save(photo, format="PNG")
    with_photo = FpdfCardRenderer(FONTS).render([_face(photo=photo.getvalue())])
    front = pdfium.PdfDocument(with_photo)[0]
    assert "no photo on file" not in front.get_textpage().get_text_range()
    pixel = front.render(scale=2).to_pil().getpixel((int(12 * PT_PER_MM * 2),
                                                      int(25 * PT_PER_MM * 2)))
    assert pixel[:3] == pytest.approx((120, 90, 60), abs=12)


def test_batch_is_one_pdf_two_pages_per_card() -> None:
    seen: list[int] = []
    faces = [_face(random_claims(given_name=f"Person{i}")) for i in range(3)]
    pdf = FpdfCardRenderer(FONTS).render(faces, progress=seen.append)
    doc = pdfium.PdfDocument(pdf)
    assert len(doc) == 6 and seen == [1, 1, 1]
    assert "Person2" in doc[4].get_textpage().get_text_range()


def test_long_names_are_cut_with_an_ellipsis_not_overprinted() -> None:
    claims = replace(vector_claims(), given_name="Abdulrahman Mohammed Khaled Ibrahim Yusuf Ali")
    pdf = FpdfCardRenderer(FONTS).render([_face(claims)])
    assert "…" in pdfium.PdfDocument(pdf)[0].get_textpage().get_text_range()


def test_errors_are_clear(tmp_path: Path) -> None:
    with pytest.raises(CardRenderError, match="fonts-ocr-b"):
        FpdfCardRenderer(replace(FONTS, mrz=tmp_path / "missing.otf"))
    with pytest.raises(CardRenderError, match="no cards"):
        FpdfCardRenderer(FONTS).render([])
    with pytest.raises(CardRenderError, match="photo"):
        FpdfCardRenderer(FONTS).render([_face(photo=b"not an image")])
    with pytest.raises(CardRenderError, match="no page 5"):
        pdf_to_png(FpdfCardRenderer(FONTS).render([_face()]), page=5)
