"""The printed card: ID-1 (85.60 × 53.98 mm) PDF, front and back, and a PNG preview.

Front: issuing authority, photo (a neutral silhouette while the registry has no photo store),
names in Latin and in Arabic script, date of birth, sex, nationality, card number, dates.
Back: the signed QR (drawn as vector modules, so it is sharp at any printer resolution), the
issuer and the TD1 MRZ in OCR-B at the ICAO pitch (2.54 mm per character, 30 characters).

Arabic is shaped by HarfBuzz (fpdf2's `set_text_shaping`, through uharfbuzz) with a font from
a Debian package (Amiri), so letters join and the line runs right to left. Fonts are files
named in settings; a missing one is a `CardRenderError` that says which package installs it.

Pure: takes a `CardFace` (what to print), returns bytes. `CardRenderer` is the small strategy
interface; `FpdfCardRenderer` is the implementation.
"""

from __future__ import annotations

import io
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

import segno
from fpdf import FPDF

from sanad.credentials.card import CardClaims
from sanad.credentials.qr import QR_ERROR_LEVEL
from sanad.errors import CardRenderError

__all__ = [
    "CARD_HEIGHT_MM",
    "CARD_WIDTH_MM",
    "CardFace",
    "CardFonts",
    "CardRenderer",
    "FpdfCardRenderer",
    "pdf_to_png",
]

CARD_WIDTH_MM = 85.60
CARD_HEIGHT_MM = 53.98
MRZ_PITCH_MM = 2.54  # ICAO 9303 Part 3: 10 characters per inch
MRZ_LINE_MM = 4.23  # 6 lines per inch
MRZ_CHARS = 30
_BAND = (0, 84, 122)  # header band colour (dark teal): prints well in CMYK and greyscale
_INK = (20, 20, 20)
_MUTED = (90, 90, 90)


@dataclass(frozen=True)
class CardFonts:
    """TrueType/OpenType files for the three scripts on the card."""

    latin: Path
    arabic: Path
    mrz: Path

    def check(self) -> None:
        """`CardRenderError` naming the missing font file and the Debian package."""
        packages = {"latin": "fonts-dejavu-core", "arabic": "fonts-hosny-amiri",
                    "mrz": "fonts-ocr-b"}
        for role, package in packages.items():
            path: Path = getattr(self, role)
            if not Path(path).is_file():
                raise CardRenderError(
                    f"{role} font {path} is missing: install the Debian package {package} "
                    "(`make system-deps`) or set SANAD_CARD_FONT_" + role.upper()
                )


@dataclass(frozen=True)
class CardFace:
    """Everything printed on one card."""

    claims: CardClaims
    mrz: tuple[str, str, str]
    qr: str
    authority: str
    authority_ar: str = "بطاقة هوية لاجئ"
    photo: bytes | None = None


class CardRenderer(Protocol):
    """Renders cards to a print-ready PDF (two pages per card: front, back)."""

    identifier: str

    def render(
        self, cards: Iterable[CardFace], *, progress: Callable[[int], None] | None = None
    ) -> bytes:  # pragma: no cover - protocol
        ...


def _display_date(claims: CardClaims) -> str:
    dob = claims.date_of_birth
    if claims.dob_precision == "year":
        return dob
    yyyy, mm, dd = dob.split("-")
    return f"{dd}.{mm}.{yyyy}" + (" (est.)" if claims.dob_precision == "estimated" else "")


class FpdfCardRenderer:
    """fpdf2 + HarfBuzz renderer; vector QR; OCR-B MRZ."""

    identifier = "fpdf2"

    def __init__(self, fonts: CardFonts) -> None:
        fonts.check()
        self._fonts = fonts

    def _pdf(self) -> FPDF:
        pdf = FPDF(unit="mm", format=(CARD_WIDTH_MM, CARD_HEIGHT_MM))
        pdf.set_auto_page_break(False)
        pdf.set_margin(0)
        pdf.set_creator("sanad")
        try:
            pdf.add_font("latin", fname=str(self._fonts.latin))
            pdf.add_font("arabic", fname=str(self._fonts.arabic))
            pdf.add_font("mrz", fname=str(self._fonts.mrz))
        except (OSError, RuntimeError, ValueError) as exc:
            raise CardRenderError(f"cannot load a card font: {exc}") from exc
        return pdf

    def render(
        self, cards: Iterable[CardFace], *, progress: Callable[[int], None] | None = None
    ) -> bytes:
        """One PDF, front then back page for each card, in order."""
        pdf = self._pdf()
        count = 0
        for face in cards:
            self._front(pdf, face)
            self._back(pdf, face)
            count += 1
            if progress is not None:
                progress(1)
        if count == 0:
            raise CardRenderError("no cards to render")
        return bytes(pdf.output())

    # -- front ----------------------------------------------------------------------------

    def _latin(self, pdf: FPDF, size: float, color: tuple[int, int, int] = _INK) -> None:
        pdf.set_text_shaping(False)
        pdf.set_font("latin", size=size)
        pdf.set_text_color(*color)

    def _arabic(self, pdf: FPDF, size: float, color: tuple[int, int, int] = _INK) -> None:
        pdf.set_font("arabic", size=size)
        pdf.set_text_color(*color)
        pdf.set_text_shaping(use_shaping_engine=True, direction="rtl", script="arab",
                             language="ar")

    def _front(self, pdf: FPDF, face: CardFace) -> None:
        c = face.claims
        pdf.add_page()
        pdf.set_fill_color(*_BAND)
        pdf.rect(0, 0, CARD_WIDTH_MM, 9.0, style="F")
        self._latin(pdf, 6.5, (255, 255, 255))
        pdf.set_xy(3.0, 1.2)
        pdf.cell(45, 3.2, face.authority.upper()[:40])
        self._latin(pdf, 5.0, (220, 235, 240))
        pdf.set_xy(3.0, 4.6)
        pdf.cell(45, 2.8, "REFUGEE IDENTITY CARD")
        self._arabic(pdf, 9.0, (255, 255, 255))
        pdf.set_xy(44.0, 1.0)
        pdf.cell(38.6, 7.0, face.authority_ar, align="R")

        self._photo(pdf, face.photo, x=3.0, y=11.5, w=21.0, h=27.0)

        x = 27.0
        rows = (
            ("Surname", c.family_name.upper(), 8.0),
            ("Given names", c.given_name, 8.0),
        )
        y = 11.0
        for label, value, size in rows:
            self._label(pdf, x, y, label)
            self._latin(pdf, size)
            pdf.set_xy(x, y + 2.1)
            pdf.cell(56, 3.6, _fit(pdf, value, 56))
            y += 6.4
        arabic = " ".join(p for p in (c.given_name_ar, c.family_name_ar) if p)
        if arabic:
            self._label(pdf, x, y, "Name (Arabic)")
            self._arabic(pdf, 9.5)
            pdf.set_xy(x, y + 1.2)
            pdf.cell(56, 5.4, arabic, align="R")
        y += 7.2
        cols = (
            ("Date of birth", _display_date(c), 20.0),
            ("Sex", c.sex, 8.0),
            ("Nationality", c.nationality, 16.0),
        )
        cx = x
        for label, value, width in cols:
            self._label(pdf, cx, y, label)
            self._latin(pdf, 7.0)
            pdf.set_xy(cx, y + 2.0)
            pdf.cell(width, 3.2, value)
            cx += width + 2.0
        y += 6.2
        cx = x
        for label, value, width in (
            ("Card No.", c.card_number, 20.0),
            ("Issued", c.issued_at.strftime("%d.%m.%Y"), 16.0),
            ("Expires", c.expires_at.strftime("%d.%m.%Y"), 16.0),
        ):
            self._label(pdf, cx, y, label)
            self._latin(pdf, 7.0)
            pdf.set_xy(cx, y + 2.0)
            pdf.cell(width, 3.2, value)
            cx += width + 2.0

        self._latin(pdf, 4.6, _MUTED)
        pdf.set_xy(3.0, 49.0)
        pdf.cell(80, 2.8, f"Issuer {c.issuer}  ·  verify offline by scanning the code overleaf")

    def _label(self, pdf: FPDF, x: float, y: float, text: str) -> None:
        self._latin(pdf, 4.6, _MUTED)
        pdf.set_xy(x, y)
        pdf.cell(40, 2.0, text)

    def _photo(self, pdf: FPDF, photo: bytes | None, *, x: float, y: float, w: float,
               h: float) -> None:
        pdf.set_draw_color(*_MUTED)
        pdf.set_line_width(0.2)
        if photo:
            try:
                pdf.image(io.BytesIO(photo), x=x, y=y, w=w, h=h, keep_aspect_ratio=True)
            except (OSError, ValueError, RuntimeError) as exc:
                raise CardRenderError(f"the photo cannot be read: {exc}") from exc
            pdf.rect(x, y, w, h)
            return
        # No photo store exists yet: a neutral silhouette marks where the photo goes.
        pdf.set_fill_color(232, 236, 238)
        pdf.rect(x, y, w, h, style="DF")
        pdf.set_fill_color(160, 170, 176)
        head = w * 0.38
        pdf.ellipse(x + (w - head) / 2, y + h * 0.16, head, head * 1.15, style="F")
        body_w = w * 0.78
        pdf.ellipse(x + (w - body_w) / 2, y + h * 0.66, body_w, h * 0.62, style="F")
        pdf.set_fill_color(255, 255, 255)
        pdf.rect(x - 0.2, y + h, w + 0.4, h * 0.4, style="F")  # clip the body at the frame
        pdf.rect(x, y, w, h)
        self._latin(pdf, 3.8, _MUTED)
        pdf.set_xy(x, y + h + 0.3)
        pdf.cell(w, 2.0, "no photo on file", align="C")

    # -- back -----------------------------------------------------------------------------

    def _back(self, pdf: FPDF, face: CardFace) -> None:
        pdf.add_page()
        size = 33.0
        _draw_qr(pdf, face.qr, x=2.5, y=1.5, size=size)
        x = 2.5 + size + 2.0
        self._latin(pdf, 5.0, _MUTED)
        pdf.set_xy(x, 3.0)
        pdf.multi_cell(
            CARD_WIDTH_MM - x - 2.5, 2.6,
            "This card is the property of the issuing authority. It is signed digitally: "
            "scan the code to verify it offline. If found, return it to the nearest "
            "registration office.",
        )
        self._arabic(pdf, 7.0, _MUTED)
        pdf.set_xy(x, 18.5)
        pdf.cell(CARD_WIDTH_MM - x - 2.5, 4.0, "هذه البطاقة ملك للجهة المصدرة", align="R")
        self._latin(pdf, 5.0, _MUTED)
        pdf.set_xy(x, 24.0)
        pdf.cell(40, 2.6, f"Issuer: {face.claims.issuer}")
        pdf.set_xy(x, 27.0)
        pdf.cell(40, 2.6, f"Card id: {face.claims.card_id.hex()[:16]}")
        self._mrz(pdf, face.mrz)

    def _mrz(self, pdf: FPDF, lines: tuple[str, str, str]) -> None:
        pdf.set_text_shaping(False)
        pdf.set_text_color(0, 0, 0)
        pdf.set_font("mrz", size=10)
        # Scale the font so 30 characters span exactly 30 × 2.54 mm, whatever the font's
        # advance width is.
        width_at_10 = pdf.get_string_width("<" * MRZ_CHARS)
        pdf.set_font("mrz", size=10 * MRZ_CHARS * MRZ_PITCH_MM / width_at_10)
        x = (CARD_WIDTH_MM - MRZ_CHARS * MRZ_PITCH_MM) / 2
        bottom = CARD_HEIGHT_MM - 2.0
        for i, line in enumerate(lines):
            y = bottom - (3 - i) * MRZ_LINE_MM
            pdf.set_xy(x, y)
            pdf.cell(MRZ_CHARS * MRZ_PITCH_MM, MRZ_LINE_MM, line)


def _fit(pdf: FPDF, text: str, width: float) -> str:
    """Cut `text` with an ellipsis so it fits `width` in the current font."""
    if pdf.get_string_width(text) <= width:
        return text
    while text and pdf.get_string_width(text + "…") > width:
        text = text[:-1]
    return text + "…"


def _draw_qr(pdf: FPDF, text: str, *, x: float, y: float, size: float) -> None:
    qr = segno.make(text, error=QR_ERROR_LEVEL, boost_error=False, micro=False)
    matrix = [list(row) for row in qr.matrix_iter(scale=1, border=4)]
    module = size / len(matrix)
    pdf.set_fill_color(255, 255, 255)
    pdf.rect(x, y, size, size, style="F")
    pdf.set_fill_color(0, 0, 0)
    for row, bits in enumerate(matrix):
        col = 0
        while col < len(bits):
            if not bits[col]:
                col += 1
                continue
            start = col
            while col < len(bits) and bits[col]:
                col += 1
            # A run of dark modules as one rectangle: fewer PDF operators, no hairline gaps.
            pdf.rect(x + start * module, y + row * module, (col - start) * module, module,
                     style="F")


def pdf_to_png(pdf: bytes, *, page: int = 0, dpi: int = 150) -> bytes:
    """Render one page of a PDF to PNG bytes (pypdfium2), for previews and scan tests."""
    import pypdfium2 as pdfium

    document = pdfium.PdfDocument(pdf)
    try:
        if not 0 <= page < len(document):
            raise CardRenderError(f"the PDF has no page {page}")
        image = document[page].render(scale=dpi / 72).to_pil()
        out = io.BytesIO()
        image.save(out, format="PNG", dpi=(dpi, dpi))
        return out.getvalue()
    finally:
        document.close()
