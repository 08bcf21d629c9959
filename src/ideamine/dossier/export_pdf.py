"""PDF export: WeasyPrint lays out the same HTML with its print styles (A4, a table of
contents with page numbers, "Page N of M" in every footer)."""

from __future__ import annotations

import logging
from collections.abc import Mapping

from ideamine.dossier.export_html import render_html
from ideamine.errors import UsageError

__all__ = ["render_pdf"]


def render_pdf(document: Mapping[str, object]) -> bytes:
    """The dossier as PDF bytes. Blocking (seconds for a full run): call it in a thread.

    Raises:
        UsageError: WeasyPrint or the system libraries it needs (Pango) are missing.
    """
    try:
        from weasyprint import HTML  # type: ignore[import-untyped]  # noqa: PLC0415
    except (ImportError, OSError) as exc:
        raise UsageError(
            f"PDF export needs WeasyPrint and Pango ({exc})",
            hint="install them: pip install weasyprint; apt-get install libpango-1.0-0 "
            "libpangoft2-1.0-0",
        ) from exc
    # WeasyPrint logs every CSS property it ignores at WARNING; the page needs none of them.
    logging.getLogger("weasyprint").setLevel(logging.ERROR)
    logging.getLogger("fontTools").setLevel(logging.ERROR)
    pdf: bytes = HTML(string=render_html(document), base_url=None).write_pdf()
    return pdf
