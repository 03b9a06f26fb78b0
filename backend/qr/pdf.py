"""A PDF written page by page, for batches of raster posters streamed to the browser.

Why not a library (each tried, with the versions on PyPI now): none of the ones that fit
streams. Pillow's ``save(save_all=True, append_images=…)`` takes every page image before it
writes the first (a county is 2,000+ pages of 26 MB each) and embeds RGB only as JPEG; its
``append=True`` rewrites the whole page tree on every page. img2pdf 0.6.3 (lossless PNG/JPEG
embedding) adds every page to one document object and writes it at the end (``convert`` →
``convert_to_docobject`` → ``tostream``). reportlab 5.1 cannot embed Noto CJK at all
("postscript outlines are not supported": Noto CJK has CFF outlines). fpdf2 2.8.9 can (CID
Type 0C, subset) and would give vector text, but it keeps the document in memory until
``output()`` (the subset is computed over all pages), and the PNG preview would then be a
second drawing of every layout.

The structure needed for image pages is small and fixed: a header, then per page its
image XObjects, its content stream and its page object, each written as soon as the page
is ready; the page tree (whose object number is reserved up front), the catalogue, the
cross-reference table and the trailer go last. Memory holds one page and a list of offsets.

Images go in as they are encoded, never re-encoded: a PNG's IDAT stream becomes a
FlateDecode stream with the PNG predictor (lossless, as img2pdf does it), a JPEG becomes
a DCTDecode stream.
"""

from __future__ import annotations

import struct
from collections.abc import Iterable, Iterator
from dataclasses import dataclass

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
PNG_COLOURS = {0: 1, 2: 3}  # colour type → components: grey, RGB (no palette, no alpha)
PNG_DEPTHS = {0: (1, 8), 2: (8,)}  # bits per component each colour type may have here
JPEG_COLOURS = {"L": "DeviceGray", "RGB": "DeviceRGB"}


@dataclass(frozen=True)
class EmbeddedImage:
    """An encoded image ready to be embedded: its stream, filter, decode parameters, size and colour space."""

    data: bytes
    width: int
    height: int
    filter: str
    colour_space: str
    bits: int = 8
    decode_parms: str = ""


@dataclass(frozen=True)
class Placement:
    """An image drawn on a page, at ``x, y`` (lower-left corner) and ``width × height``, in points."""

    image: EmbeddedImage
    x: float
    y: float
    width: float
    height: float


@dataclass(frozen=True)
class PdfPage:
    """One page: its size in points and the images on it, drawn in order."""

    width: float
    height: float
    placements: tuple[Placement, ...]


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


def _pdf_text(text: str) -> bytes:
    """A PDF text string in UTF-16BE with a byte order mark: any language, no escaping."""
    return b"<" + ("\ufeff" + text).encode("utf-16-be").hex().upper().encode() + b">"


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

    def _object(self, number: int, body: bytes, stream: bytes | None = None) -> bytes:
        self._offsets[number] = self._offset
        if stream is None:
            chunk = b"%d 0 obj\n%s\nendobj\n" % (number, body)
        else:
            chunk = b"%d 0 obj\n%s\nstream\n%s\nendstream\nendobj\n" % (number, body, stream)
        self._offset += len(chunk)
        return chunk

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
        names: list[bytes] = []
        drawing: list[bytes] = []
        for number, placement in enumerate(page.placements):
            image = placement.image
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
            names.append(b"/Im%d %d 0 R" % (number, image_id))
            drawing.append(
                b"q %.4f 0 0 %.4f %.4f %.4f cm /Im%d Do Q"
                % (placement.width, placement.height, placement.x, placement.y, number)
            )
        content = b"\n".join(drawing)
        content_id = self._new_id()
        chunks.append(self._object(content_id, b"<< /Length %d >>" % len(content), content))
        page_id = self._new_id()
        chunks.append(
            self._object(
                page_id,
                b"<< /Type /Page /Parent %d 0 R /MediaBox [0 0 %.2f %.2f] /Resources << /XObject << %s >> >>"
                b" /Contents %d 0 R >>" % (self.PAGES, page.width, page.height, b" ".join(names), content_id),
            )
        )
        self._page_ids.append(page_id)
        return b"".join(chunks)

    def trailer(self) -> bytes:
        """The page tree, the cross-reference table and the trailer."""
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
        return pages + xref + trailer


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
