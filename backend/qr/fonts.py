"""The CJK font posters are set in: Noto Sans CJK SC, from Debian's ``fonts-noto-cjk``.

Debian ships it as OpenType collections (``NotoSansCJK-Bold.ttc``) holding the JP, KR, SC,
TC and HK faces; the SC face is chosen inside the collection by its name, never by a fixed
index. ``POSTER_FONT_PATH`` (a .ttc or .otf with CID-keyed CFF outlines, as Noto Sans CJK and
Source Han Sans have) overrides the search for both weights. ``scripts/system-deps.sh`` installs
the package.

Two readers of one face: Pillow's FreeType draws the PNG previews (``poster_font``), and
fontTools (``font_program``) gives what the PDF needs: each character's CID and advance width,
which the layout measures text with too, so both drawings break and centre lines alike; and, once
a document's pages are written, the subset of the face's CFF outlines holding only the glyphs
they used (``FontProgram.subset``), embedded as a CIDFontType0C font.
"""

from __future__ import annotations

import shutil
import subprocess
from dataclasses import dataclass
from functools import lru_cache

from flask import current_app, has_app_context
from fontTools import subset as ft_subset
from fontTools.ttLib import TTFont, TTLibError
from PIL import Image, ImageDraw, ImageFont

FAMILY = "Noto Sans CJK SC"
PACKAGE = "fonts-noto-cjk"
WEIGHTS = {"bold": "Bold", "regular": "Regular"}
# Where distributions put the collections, for machines without fontconfig.
KNOWN_FILES = {
    "bold": (
        "/usr/share/fonts/opentype/noto/NotoSansCJK-Bold.ttc",  # Debian, Ubuntu
        "/usr/share/fonts/noto-cjk/NotoSansCJK-Bold.ttc",  # Arch
        "/usr/share/fonts/google-noto-cjk/NotoSansCJK-Bold.ttc",  # Fedora
    ),
    "regular": (
        "/usr/share/fonts/opentype/noto/NotoSansCJK-Regular.ttc",
        "/usr/share/fonts/noto-cjk/NotoSansCJK-Regular.ttc",
        "/usr/share/fonts/google-noto-cjk/NotoSansCJK-Regular.ttc",
    ),
}
MAX_FACES = 32  # a collection holds 10 faces; stop looking well after that
# A code point no font maps (a noncharacter): what it renders as is the font's missing glyph.
MISSING_CODE_POINT = "\uffff"


class FontMissingError(RuntimeError):
    """The CJK font is not installed (or POSTER_FONT_PATH does not point at a usable one)."""


# What staff are told when the font is missing (the log says what to install).
FONT_MISSING_MESSAGE = "服务器缺少中文字体（fonts-noto-cjk），暂时无法生成海报，请联系系统管理员。"


@dataclass(frozen=True)
class FontFace:
    """One face of a font file: its path, its index inside a collection, and its (family, style) name."""

    path: str
    index: int
    name: tuple[str, str]


def poster_face(weight: str) -> FontFace:
    """The face for ``weight`` ("bold" or "regular"); FontMissingError saying what to install when absent."""
    override = current_app.config.get("POSTER_FONT_PATH") if has_app_context() else None
    return find_face(weight, override or None)


def poster_font(weight: str, size: int) -> ImageFont.FreeTypeFont:
    """The poster font at ``size`` pixels (cached: a batch asks for the same sizes again and again)."""
    face = poster_face(weight)
    return _load(face.path, face.index, max(1, int(size)))


@lru_cache(maxsize=12)  # each size of a face holds about 2.5 MB in FreeType: keep the few in use
def _load(path: str, index: int, size: int) -> ImageFont.FreeTypeFont:
    # Basic layout (no HarfBuzz shaping): glyphs advance by their widths alone, as in the PDF.
    return ImageFont.truetype(path, size, index=index, layout_engine=ImageFont.Layout.BASIC)


@lru_cache(maxsize=8)
def find_face(weight: str, override: str | None = None) -> FontFace:
    """Locate the SC face of ``weight``: ``override`` if given, else fontconfig, else the known paths."""
    style = WEIGHTS[weight]
    if override:
        face = _face_in(override, style, require_family=False)
        if face is None or missing_glyphs(_load(face.path, face.index, 40), "人大代表"):
            raise FontMissingError(f"POSTER_FONT_PATH={override} is not a readable font with Chinese glyphs")
        if not _has_cid_keyed_cff(face):
            raise FontMissingError(
                f"POSTER_FONT_PATH={override} has no CID-keyed CFF outlines, which the PDF embeds: "
                "use an OpenType CJK font such as Noto Sans CJK or Source Han Sans (.otf or .ttc)"
            )
        return face
    candidates = [path for path in (_fc_match(style),) if path] + list(KNOWN_FILES[weight])
    for path in candidates:
        face = _face_in(path, style, require_family=True)
        if face is not None:
            return face
    raise FontMissingError(
        f"The poster font {FAMILY} {style} is not installed: install Debian's {PACKAGE} package "
        f"(apt-get install {PACKAGE}, or run scripts/system-deps.sh as root), or set POSTER_FONT_PATH."
    )


def _fc_match(style: str) -> str | None:
    """The file fontconfig picks for the SC face (it answers with a fallback font when the family is absent)."""
    fc_match = shutil.which("fc-match")
    if fc_match is None:
        return None
    try:
        result = subprocess.run(  # noqa: S603 — fixed arguments, no shell
            [fc_match, "-f", "%{file}", f"{FAMILY}:style={style}"], capture_output=True, text=True, timeout=10
        )
    except (OSError, subprocess.SubprocessError):
        return None
    return result.stdout.strip() or None


def _face_in(path: str, style: str, require_family: bool) -> FontFace | None:
    """The face of ``path`` named FAMILY (preferring ``style``); without ``require_family``, else its first face."""
    faces: list[FontFace] = []
    for index in range(MAX_FACES):
        try:
            font = ImageFont.truetype(path, 20, index=index)
        except OSError:  # no such file, not a font, or past the last face of the collection
            break
        # font.path: Pillow looks a missing path's file name up in the font directories too.
        faces.append(FontFace(path=font.path, index=index, name=font.getname()))
    for face in faces:
        if face.name == (FAMILY, style):
            return face
    for face in faces:
        if face.name[0] == FAMILY:
            return face
    if faces and not require_family:
        return faces[0]
    return None


def missing_glyphs(font: ImageFont.FreeTypeFont, text: str) -> list[str]:
    """The characters of ``text`` that ``font`` draws as its missing glyph (.notdef, the tofu box)."""
    missing = _glyph_pixels(font, MISSING_CODE_POINT)
    return [ch for ch in dict.fromkeys(text) if not ch.isspace() and _glyph_pixels(font, ch) == missing]


def _glyph_pixels(font: ImageFont.FreeTypeFont, ch: str) -> tuple[tuple[int, int], bytes]:
    size = int(font.size * 2)
    image = Image.new("L", (size, size), 0)
    ImageDraw.Draw(image).text((0, 0), ch, font=font, fill=255)
    return image.size, image.tobytes()


# --- the face as the PDF needs it -----------------------------------------------------------------

# Tables the subset never needs: shaping and vertical metrics (text is set horizontally, unshaped).
SUBSET_DROPPED_TABLES = ["GSUB", "GPOS", "GDEF", "BASE", "VORG", "vhea", "vmtx", "DSIG", "JSTF", "MATH"]


def _has_cid_keyed_cff(face: FontFace) -> bool:
    """True when the face's outlines are CFF keyed by CID (what ``FontProgram.subset`` keeps CIDs of)."""
    try:
        with TTFont(face.path, fontNumber=face.index, lazy=True) as font:
            return "CFF " in font and hasattr(font["CFF "].cff.topDictIndex[0], "ROS")
    except (OSError, TTLibError, KeyError, AttributeError):
        return False


@dataclass(frozen=True)
class FontProgram:
    """One face as the PDF uses it: CIDs and advances by character, metrics, and its CFF outlines to subset.

    CIDs survive subsetting: fontTools keeps a CID-keyed CFF keyed by the same CIDs (its charset
    maps the new glyph indices to them), so content streams written before the subset was made
    stay right.
    """

    face: FontFace
    postscript_name: str
    units_per_em: int
    registry: str
    ordering: str
    supplement: int
    bbox: tuple[int, int, int, int]
    ascent: int
    descent: int
    cap_height: int
    cids: dict[int, int]  # code point → CID
    advances: dict[int, int]  # CID → advance width in font units (the characters mapped, and .notdef)

    def encode(self, text: str) -> list[int]:
        """The CIDs of ``text``'s characters (0, .notdef, for one the face lacks)."""
        return [self.cids.get(ord(ch), 0) for ch in text]

    def width(self, text: str, size: float) -> float:
        """How wide ``text`` is at ``size`` (in the caller's unit, the em being ``size``)."""
        advances, cids = self.advances, self.cids
        notdef = advances[0]
        units = sum(advances.get(cids.get(ord(ch), 0), notdef) for ch in text)
        return units * size / self.units_per_em

    def subset(self, cids: set[int]) -> bytes:
        """The face's CFF table holding only ``cids`` (and .notdef), compiled: a CIDFontType0C font program."""
        options = ft_subset.Options()
        options.notdef_outline = True
        options.layout_features = []
        options.name_IDs = []
        options.drop_tables += SUBSET_DROPPED_TABLES
        with TTFont(self.face.path, fontNumber=self.face.index, lazy=True) as font:
            names = font.getGlyphOrder()
            subsetter = ft_subset.Subsetter(options)
            subsetter.populate(glyphs=[names[cid] for cid in sorted(cids) if 0 < cid < len(names)])
            subsetter.subset(font)
            return font["CFF "].compile(font)


def font_program(weight: str) -> FontProgram:
    """The PDF's view of the poster face of ``weight`` (FontMissingError as ``poster_face``)."""
    face = poster_face(weight)
    return _program(face)


@lru_cache(maxsize=4)
def _program(face: FontFace) -> FontProgram:
    with TTFont(face.path, fontNumber=face.index, lazy=True) as font:
        top = font["CFF "].cff.topDictIndex[0]
        registry, ordering, supplement = top.ROS
        order = font.getGlyphOrder()
        cid_of = {name: (0 if name == ".notdef" else int(name[3:])) for name in order}  # "cid01234" → 1234
        cmap = font.getBestCmap()
        cids = {code: cid_of[name] for code, name in cmap.items()}
        metrics = font["hmtx"].metrics
        advances = {cid_of[name]: metrics[name][0] for name in {order[0], *cmap.values()}}
        head, os2 = font["head"], font["OS/2"]
        postscript_name = font["name"].getDebugName(6) or f"{FAMILY.replace(' ', '')}-{face.name[1]}"
    return FontProgram(
        face=face,
        postscript_name=postscript_name,
        units_per_em=head.unitsPerEm,
        registry=registry,
        ordering=ordering,
        supplement=int(supplement),
        bbox=(head.xMin, head.yMin, head.xMax, head.yMax),
        ascent=os2.sTypoAscender,
        descent=os2.sTypoDescender,
        cap_height=getattr(os2, "sCapHeight", 0) or os2.sTypoAscender,
        cids=cids,
        advances=advances,
    )
