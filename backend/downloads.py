"""Responses that hand a person a file: its name in Chinese with an ASCII fallback (never cached: backend/security.py).

Flask's ``send_file(download_name=…)`` derives the ASCII fallback by dropping what is not ASCII,
which leaves "-.pdf" of a Chinese name; these responses name the fallback explicitly
("deputy-12-poster.pdf") and use the same RFC 5987 ``filename*`` for the Chinese name.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from urllib.parse import quote

from flask import Response, make_response, stream_with_context

# Characters a file system or a header would refuse in a file name.
UNSAFE_FILENAME_RE = re.compile(r'[\\/:*?"<>|\x00-\x1f\x7f]+')


def safe_filename(name: str) -> str:
    """``name`` without characters a file system or a header would refuse."""
    return UNSAFE_FILENAME_RE.sub("_", name).strip(" .") or "poster"


def content_disposition(kind: str, name: str, ascii_name: str) -> str:
    """A Content-Disposition naming the file in Chinese (RFC 5987 ``filename*``) with an ASCII fallback."""
    return f"{kind}; filename=\"{ascii_name}\"; filename*=UTF-8''{quote(safe_filename(name), safe='')}"


def name_download(response: Response, name: str, ascii_name: str, *, inline: bool = False) -> Response:
    """Name ``response``'s file (an attachment, or shown inline); it is kept by no cache (backend/security.py
    answers every attachment no-store)."""
    response.headers["Content-Disposition"] = content_disposition(
        "inline" if inline else "attachment", name, ascii_name
    )
    return response


def download(body: bytes | Iterable[bytes], mimetype: str, name: str, ascii_name: str, *, inline: bool = False):
    """A response of ``body`` (bytes, or chunks streamed as they come) named by :func:`name_download`."""
    if not isinstance(body, bytes):
        body = stream_with_context(body)
    return name_download(Response(body, mimetype=mimetype), name, ascii_name, inline=inline)


def jpeg_response(data: bytes, *, private: bool = True):
    """A JPEG answer that no browser will run as anything else.

    Private (a resident's photo: never cached) unless ``private`` is False (a deputy's public
    photo, whose address changes with it: cached for good).
    """
    response = make_response(data)
    response.headers["Content-Type"] = "image/jpeg"
    response.headers["Content-Disposition"] = "inline"
    response.headers["Content-Security-Policy"] = "default-src 'none'; sandbox"
    if not private:  # a private one is no-store, as every answer is unless it says otherwise (security.cache_policy)
        response.headers["Cache-Control"] = "public, max-age=31536000, immutable"
    return response
