"""A PDF written page by page: vector text in the embedded CJK font, vector codes, photos as JPEG.

Why home-made, on top of fontTools (each library tried, with the versions on PyPI now): none
of the ones that can embed Noto Sans CJK streams, and a county batch (2,435 pages) must be
streamed to the browser and written to a file page by page in constant memory. fpdf2 2.8.9
embeds it (CID Type 0C, subset) but keeps every page, image and font in memory until
``output()`` and then builds the whole file as one ``bytearray``; reportlab 5.1 cannot embed
CFF outlines at all ("postscript outlines are not supported"); pypdf 7.1 and pikepdf 10.17
read and edit PDFs but lay out no text; img2pdf only places images. The structure needed is
small and fixed: a header, then per page its images, its content stream and its page object,
each written as soon as the page is ready; the fonts (whose object numbers are reserved the
first time a page uses them), the page tree, the catalogue, the cross-reference table and the
trailer go last. The hard part, subsetting a 65,535-glyph CFF font, is fontTools'
(``backend.qr.fonts.FontProgram.subset``), done once per document over the glyphs its pages
used: memory holds one page, a list of offsets and the set of glyphs.

- Text: ``Type0`` fonts with ``Identity-H`` encoding over a ``CIDFontType0`` whose program is
  the subset CFF (``FontFile3`` / ``CIDFontType0C``); two bytes per character, the CID; widths
  in ``W`` (only those that differ from the 1,000-unit ideographs); a ``ToUnicode`` map, so the
  text can be searched and copied.
- Shapes and codes: filled paths; a code's dark modules are one path of rectangles, so no
  seams show between modules at any resolution.
- Images go in as they are encoded, never re-encoded: a JPEG as a DCTDecode stream, a PNG's
  IDAT stream as a FlateDecode stream with the PNG predictor (lossless, as img2pdf does it).

``Content`` draws in the poster's own coordinates (pixels at 300 dpi, y downwards); the page's
first operator maps them onto points.
"""

from __future__ import annotations

import hashlib
import struct
import zlib
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field

from backend.qr.fonts import FontProgram

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
PNG_COLOURS = {0: 1, 2: 3}  # colour type → components: grey, RGB (no palette, no alpha)
PNG_DEPTHS = {0: (1, 8), 2: (8,)}  # bits per component each colour type may have here
JPEG_COLOURS = {"L": "DeviceGray", "RGB": "DeviceRGB"}
DEFAULT_WIDTH = 1000  # DW: the advance of every ideograph in a 1,000-unit em
BEZIER_CIRCLE = 0.5523  # control-point distance of a quarter circle, as a fraction of its radius
FLATE_LEVEL = 6

Colour = tuple[int, int, int]


@dataclass(frozen=True)
class EmbeddedImage:
    """An encoded image ready to be embedded: its stream, filter, decode parameters, size and colour space."""

    data: bytes = field(repr=False)
    width: int
    height: int
    filter: str
    colour_space: str
    bits: int = 8
    decode_parms: str = ""


def png_image(png: bytes) -> EmbeddedImage:
    """A PNG (1- or 8-bit grey, 8-bit RGB; not interlaced) as a lossless FlateDecode image, without decoding it."""
    if not png.startswith(PNG_SIGNATURE):
        raise ValueError("not a PNG")
    pos = len(PNG_SIGNATURE)
    idat: list[bytes] = []
    header: tuple[int, ...] | None = None
    while pos < len(png):
        (length,) = struct.unpack(">I", png[pos : pos + 4])
        kind = png[pos + 4 : pos + 8]
        body = png[pos + 8 : pos + 8 + length]
        if kind == b"IHDR":
            header = struct.unpack(">IIBBBBB", body)
        elif kind == b"IDAT":
            idat.append(body)
        elif kind == b"IEND":
            break
        pos += 12 + length
    if header is None:
        raise ValueError("PNG without IHDR")
    width, height, depth, colour_type, _compression, _filter, interlace = header
    if colour_type not in PNG_COLOURS or depth not in PNG_DEPTHS[colour_type] or interlace:
        raise ValueError("only 1- or 8-bit grey and 8-bit RGB PNGs without interlacing can be embedded as they are")
    colours = PNG_COLOURS[colour_type]
    return EmbeddedImage(
        data=b"".join(idat),
        width=width,
        height=height,
        filter="FlateDecode",
        colour_space="DeviceRGB" if colours == 3 else "DeviceGray",
        bits=depth,
        decode_parms=f"<< /Predictor 15 /Colors {colours} /BitsPerComponent {depth} /Columns {width} >>",
    )


def jpeg_image(jpeg: bytes, width: int, height: int, mode: str) -> EmbeddedImage:
    """A baseline JPEG of ``mode`` "RGB" or "L" as a DCTDecode image, embedded byte for byte."""
    return EmbeddedImage(data=jpeg, width=width, height=height, filter="DCTDecode", colour_space=JPEG_COLOURS[mode])


@dataclass(frozen=True)
class PageFont:
    """A font used on a page: its resource name, the face, and each CID drawn with the character it stands for."""

    name: str
    program: FontProgram = field(repr=False)
    used: dict[int, str] = field(repr=False)


@dataclass(frozen=True)
class PdfPage:
    """One page: its size in points, its content stream, and the images and fonts the stream names."""

    width: float
    height: float
    content: bytes = field(repr=False)
    images: tuple[tuple[str, EmbeddedImage], ...] = ()
    fonts: tuple[PageFont, ...] = ()


def _num(value: float) -> bytes:
    """A number as short as it can be written: 12, 12.5, 0.24."""
    text = f"{value:.3f}".rstrip("0").rstrip(".")
    return (text if text not in ("-0", "") else "0").encode()


def _colour(rgb: Colour) -> bytes:
    return b" ".join(_num(channel / 255) for channel in rgb)


class Content:
    """A page's content stream, drawn in units of ``unit`` points with y growing downwards from the top."""

    def __init__(self, width_pt: float, height_pt: float, unit: float) -> None:
        self.width = width_pt
        self.height = height_pt
        self._ops: list[bytes] = [b"%s 0 0 %s 0 %s cm" % (_num(unit), _num(-unit), _num(height_pt))]
        self._images: dict[int, tuple[str, EmbeddedImage]] = {}
        self._fonts: dict[str, PageFont] = {}

    def save(self) -> None:
        """Push the graphics state (``q``)."""
        self._ops.append(b"q")

    def restore(self) -> None:
        """Pop the graphics state (``Q``)."""
        self._ops.append(b"Q")

    def turn_half(self, cx: float, cy: float) -> None:
        """Turn what follows by 180° about (cx, cy), until the state is restored."""
        self._ops.append(b"-1 0 0 -1 %s %s cm" % (_num(2 * cx), _num(2 * cy)))

    def rect(self, x: float, y: float, width: float, height: float, fill: Colour) -> None:
        """A filled rectangle with its top-left corner at (x, y)."""
        self._ops.append(b"%s rg %s %s %s %s re f" % (_colour(fill), _num(x), _num(y), _num(width), _num(height)))

    def rounded_rect(self, x: float, y: float, width: float, height: float, radius: float, fill: Colour) -> None:
        """A filled rectangle with rounded corners."""
        r = min(radius, width / 2, height / 2)
        k = r * (1 - BEZIER_CIRCLE)
        right, bottom = x + width, y + height
        n = _num
        self._ops.append(
            b"%s rg %s %s m %s %s l %s %s %s %s %s %s c %s %s l %s %s %s %s %s %s c %s %s l "
            b"%s %s %s %s %s %s c %s %s l %s %s %s %s %s %s c h f"
            % (
                _colour(fill),
                n(x + r), n(y),
                n(right - r), n(y),
                n(right - k), n(y), n(right), n(y + k), n(right), n(y + r),
                n(right), n(bottom - r),
                n(right), n(bottom - k), n(right - k), n(bottom), n(right - r), n(bottom),
                n(x + r), n(bottom),
                n(x + k), n(bottom), n(x), n(bottom - k), n(x), n(bottom - r),
                n(x), n(y + r),
                n(x), n(y + k), n(x + k), n(y), n(x + r), n(y),
            )
        )  # fmt: skip

    def line(self, x1: float, y1: float, x2: float, y2: float, width: float, stroke: Colour, dash: float = 0) -> None:
        """A straight line, dashed in ``dash``-long dashes when ``dash`` is given."""
        pattern = b"[%s] 0 d " % _num(dash) if dash else b""
        self._ops.append(
            b"q %s RG %s w %s%s %s m %s %s l S Q"
            % (_colour(stroke), _num(width), pattern, _num(x1), _num(y1), _num(x2), _num(y2))
        )

    def modules(self, matrix: Sequence[Sequence[bool]], x: float, y: float, module: float, fill: Colour) -> None:
        """A code's dark modules as one path of rectangles (a run of dark modules in a row is one rectangle)."""
        runs: list[bytes] = []
        for row, cells in enumerate(matrix):
            start = None
            for column, dark in enumerate([*cells, False]):
                if dark and start is None:
                    start = column
                elif not dark and start is not None:
                    runs.append(b"%d %d %d 1 re" % (start, row, column - start))
                    start = None
        # Modules in whole units of a scaled space: short numbers, and every edge on the module grid.
        self._ops.append(
            b"q %s 0 0 %s %s %s cm %s rg\n%s\nf Q"
            % (_num(module), _num(module), _num(x), _num(y), _colour(fill), b"\n".join(runs))
        )

    def text(self, program: FontProgram, size: float, x: float, baseline: float, text: str, fill: Colour) -> None:
        """``text`` in ``program``'s face at ``size``, starting at ``x`` on ``baseline``."""
        font = self._font(program)
        cids = program.encode(text)
        for cid, ch in zip(cids, text, strict=True):
            font.used.setdefault(cid, ch)
        codes = b"".join(struct.pack(">H", cid) for cid in cids)
        # The text matrix flips y back: glyphs stand upright in this y-downwards space.
        self._ops.append(
            b"BT %s rg /%s 1 Tf %s 0 0 %s %s %s Tm <%s> Tj ET"
            % (
                _colour(fill),
                font.name.encode(),
                _num(size),
                _num(-size),
                _num(x),
                _num(baseline),
                codes.hex().encode(),
            )
        )

    def image(self, image: EmbeddedImage, x: float, y: float, width: float, height: float) -> None:
        """``image`` stretched over the box whose top-left corner is (x, y)."""
        name, _ = self._images.setdefault(id(image), (f"Im{len(self._images)}", image))
        self._ops.append(
            b"q %s 0 0 %s %s %s cm /%s Do Q" % (_num(width), _num(-height), _num(x), _num(y + height), name.encode())
        )

    def _font(self, program: FontProgram) -> PageFont:
        key = program.postscript_name
        font = self._fonts.get(key)
        if font is None:
            font = self._fonts[key] = PageFont(f"F{len(self._fonts)}", program, {})
        return font

    def page(self) -> PdfPage:
        """The page drawn so far."""
        return PdfPage(
            width=self.width,
            height=self.height,
            content=b"\n".join(self._ops),
            images=tuple(self._images.values()),
            fonts=tuple(self._fonts.values()),
        )


def _pdf_text(text: str) -> bytes:
    """A PDF text string in UTF-16BE with a byte order mark: any language, no escaping."""
    return b"<" + ("\ufeff" + text).encode("utf-16-be").hex().upper().encode() + b">"


@dataclass
class _DocumentFont:
    """A font of the document: the object number pages refer to, and every CID they drew."""

    object_id: int
    program: FontProgram
    used: dict[int, str] = field(default_factory=dict)


class PdfWriter:
    """Produces a PDF as byte chunks: ``header()``, then ``page()`` per page, then ``trailer()``."""

    CATALOG = 1
    PAGES = 2
    INFO = 3

    def __init__(self, title: str = "") -> None:
        self.title = title
        self._offset = 0
        self._offsets: dict[int, int] = {}
        self._next_id = 4
        self._page_ids: list[int] = []
        self._fonts: dict[str, _DocumentFont] = {}

    def _object(self, number: int, body: bytes, stream: bytes | None = None) -> bytes:
        self._offsets[number] = self._offset
        if stream is None:
            chunk = b"%d 0 obj\n%s\nendobj\n" % (number, body)
        else:
            chunk = b"%d 0 obj\n%s\nstream\n%s\nendstream\nendobj\n" % (number, body, stream)
        self._offset += len(chunk)
        return chunk

    def _flate(self, number: int, data: bytes, entries: bytes = b"") -> bytes:
        packed = zlib.compress(data, FLATE_LEVEL)
        return self._object(number, b"<< %s/Filter /FlateDecode /Length %d >>" % (entries, len(packed)), packed)

    def _new_id(self) -> int:
        number = self._next_id
        self._next_id += 1
        return number

    def header(self) -> bytes:
        """The file header, the catalogue and the document information."""
        # The comment of high bytes tells transfer tools that the file is binary.
        head = b"%PDF-1.4\n%\xe2\xe3\xcf\xd3\n"
        self._offset = len(head)
        catalog = self._object(self.CATALOG, b"<< /Type /Catalog /Pages %d 0 R >>" % self.PAGES)
        info = self._object(self.INFO, b"<< /Title %s /Producer (mashanglian) >>" % _pdf_text(self.title))
        return head + catalog + info

    def page(self, page: PdfPage) -> bytes:
        """Every object of one page: its images, its content stream and the page itself."""
        chunks: list[bytes] = []
        images: list[bytes] = []
        for name, image in page.images:
            image_id = self._new_id()
            parms = b" /DecodeParms %s" % image.decode_parms.encode() if image.decode_parms else b""
            chunks.append(
                self._object(
                    image_id,
                    b"<< /Type /XObject /Subtype /Image /Width %d /Height %d /ColorSpace /%s /BitsPerComponent %d"
                    b" /Filter /%s%s /Length %d >>"
                    % (
                        image.width,
                        image.height,
                        image.colour_space.encode(),
                        image.bits,
                        image.filter.encode(),
                        parms,
                        len(image.data),
                    ),
                    image.data,
                )
            )
            images.append(b"/%s %d 0 R" % (name.encode(), image_id))
        fonts: list[bytes] = []
        for font in page.fonts:
            document_font = self._fonts.get(font.program.postscript_name)
            if document_font is None:
                document_font = _DocumentFont(self._new_id(), font.program)
                self._fonts[font.program.postscript_name] = document_font
            for cid, ch in font.used.items():
                document_font.used.setdefault(cid, ch)
            fonts.append(b"/%s %d 0 R" % (font.name.encode(), document_font.object_id))
        content_id = self._new_id()
        chunks.append(self._flate(content_id, page.content))
        page_id = self._new_id()
        chunks.append(
            self._object(
                page_id,
                b"<< /Type /Page /Parent %d 0 R /MediaBox [0 0 %s %s] /Resources << /Font << %s >> /XObject << %s >> >>"
                b" /Contents %d 0 R >>"
                % (self.PAGES, _num(page.width), _num(page.height), b" ".join(fonts), b" ".join(images), content_id),
            )
        )
        self._page_ids.append(page_id)
        return b"".join(chunks)

    def _font_objects(self, font: _DocumentFont) -> bytes:
        """The Type0 font a document's pages name, its CIDFont, descriptor, subset program and ToUnicode map."""
        program = font.program
        cids = sorted(set(font.used) | {0})
        cid_font_id, descriptor_id, file_id, unicode_id = (self._new_id() for _ in range(4))
        # A subset's name carries a tag of six capitals made from what it holds (PDF 32000-1, 9.6.4).
        digest = hashlib.sha256(repr(cids).encode()).digest()
        tag = "".join(chr(ord("A") + byte % 26) for byte in digest[:6])
        base_font = f"{tag}+{program.postscript_name}".encode()
        scale = 1000 / program.units_per_em
        chunks = [
            self._object(
                font.object_id,
                b"<< /Type /Font /Subtype /Type0 /BaseFont /%s /Encoding /Identity-H /DescendantFonts [%d 0 R]"
                b" /ToUnicode %d 0 R >>" % (base_font, cid_font_id, unicode_id),
            )
        ]
        widths = b" ".join(
            b"%d [%s]" % (cid, _num(program.advances.get(cid, program.advances[0]) * scale))
            for cid in cids
            if program.advances.get(cid, program.advances[0]) * scale != DEFAULT_WIDTH
        )
        chunks.append(
            self._object(
                cid_font_id,
                b"<< /Type /Font /Subtype /CIDFontType0 /BaseFont /%s"
                b" /CIDSystemInfo << /Registry %s /Ordering %s /Supplement %d >>"
                b" /FontDescriptor %d 0 R /DW %d /W [%s] >>"
                % (
                    base_font,
                    _pdf_text(program.registry),
                    _pdf_text(program.ordering),
                    program.supplement,
                    descriptor_id,
                    DEFAULT_WIDTH,
                    widths,
                ),
            )
        )
        left, bottom, right, top = (round(value * scale) for value in program.bbox)
        chunks.append(
            self._object(
                descriptor_id,
                b"<< /Type /FontDescriptor /FontName /%s /Flags 4 /FontBBox [%d %d %d %d] /ItalicAngle 0"
                b" /Ascent %d /Descent %d /CapHeight %d /StemV 80 /FontFile3 %d 0 R >>"
                % (
                    base_font,
                    left,
                    bottom,
                    right,
                    top,
                    round(program.ascent * scale),
                    round(program.descent * scale),
                    round(program.cap_height * scale),
                    file_id,
                ),
            )
        )
        chunks.append(self._flate(file_id, program.subset(set(cids)), b"/Subtype /CIDFontType0C "))
        chunks.append(self._flate(unicode_id, _to_unicode(font.used)))
        return b"".join(chunks)

    def trailer(self) -> bytes:
        """The fonts, the page tree, the cross-reference table and the trailer."""
        fonts = b"".join(self._font_objects(font) for font in self._fonts.values())
        kids = b" ".join(b"%d 0 R" % number for number in self._page_ids)
        pages = self._object(self.PAGES, b"<< /Type /Pages /Kids [%s] /Count %d >>" % (kids, len(self._page_ids)))
        xref_at = self._offset
        # Every entry is exactly 20 bytes, as the cross-reference table requires.
        entries = [b"0000000000 65535 f\r\n"]
        entries += [b"%010d 00000 n\r\n" % self._offsets[number] for number in range(1, self._next_id)]
        xref = b"xref\n0 %d\n%s" % (self._next_id, b"".join(entries))
        trailer = b"trailer\n<< /Size %d /Root %d 0 R /Info %d 0 R >>\nstartxref\n%d\n%%%%EOF\n" % (
            self._next_id,
            self.CATALOG,
            self.INFO,
            xref_at,
        )
        return fonts + pages + xref + trailer


def _to_unicode(used: dict[int, str]) -> bytes:
    """A ToUnicode CMap from each CID drawn to its character (bfchar blocks of at most 100, as the format allows)."""
    pairs = sorted((cid, ch) for cid, ch in used.items() if cid)
    blocks = []
    for start in range(0, len(pairs), 100):
        block = pairs[start : start + 100]
        lines = b"\n".join(b"<%04X> <%s>" % (cid, ch.encode("utf-16-be").hex().upper().encode()) for cid, ch in block)
        blocks.append(b"%d beginbfchar\n%s\nendbfchar" % (len(block), lines))
    return (
        b"/CIDInit /ProcSet findresource begin\n12 dict begin\nbegincmap\n"
        b"/CIDSystemInfo << /Registry (Adobe) /Ordering (UCS) /Supplement 0 >> def\n"
        b"/CMapName /Adobe-Identity-UCS def\n/CMapType 2 def\n"
        b"1 begincodespacerange\n<0000> <FFFF>\nendcodespacerange\n%s\n"
        b"endcmap\nCMapName currentdict /CMap defineresource pop\nend\nend" % b"\n".join(blocks)
    )


def stream_pdf(pages: Iterable[PdfPage], title: str = "") -> Iterator[bytes]:
    """The PDF of ``pages`` as chunks: the header with the first page, then one chunk per page, then the end.

    ``pages`` is consumed lazily, so a generator that renders each page when asked keeps one
    page in memory at a time.
    """
    writer = PdfWriter(title)
    head = writer.header()
    for page in pages:
        yield head + writer.page(page)
        head = b""
    if head:
        yield head
    yield writer.trailer()
