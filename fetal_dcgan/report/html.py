"""One self-contained HTML page: tables and figures inline, readable offline."""

from __future__ import annotations

import base64
import html
from pathlib import Path

import pandas as pd

STYLE = """
body{font-family:system-ui,sans-serif;max-width:1200px;margin:2em auto;padding:0 1em;color:#222}
table{border-collapse:collapse;font-size:12px;margin:.5em 0 1.5em}
td,th{border:1px solid #ccc;padding:2px 6px;text-align:right}th{background:#f3f3f3}
td:first-child,th:first-child{text-align:left}img{max-width:100%}
.grids{display:flex;flex-wrap:wrap;gap:12px}.grids figure{margin:0;width:220px;font-size:11px}
.wide{overflow-x:auto;max-width:100%}.note{color:#555;font-size:13px}code{background:#f5f5f5;padding:0 3px}
"""


def image_tag(path: Path, alt: str) -> str:
    data = base64.b64encode(Path(path).read_bytes()).decode()
    return f'<img alt="{html.escape(alt)}" src="data:image/png;base64,{data}">'


def table(frame: pd.DataFrame, digits: int = 4) -> str:
    if frame.empty:
        return '<p class="note">(none)</p>'
    body = frame.to_html(index=False, na_rep="–", float_format=lambda v: f"{v:.{digits}g}", border=0)
    return f'<div class="wide">{body}</div>'  # a wide table scrolls inside the page, not the page


def render(title: str, sections: list[tuple[str, str]]) -> str:
    body = "\n".join(f"<h2>{html.escape(head)}</h2>\n{content}" for head, content in sections)
    return (
        f"<!doctype html><html><head><meta charset='utf-8'><title>{html.escape(title)}</title>"
        f"<style>{STYLE}</style></head><body><h1>{html.escape(title)}</h1>\n{body}\n</body></html>"
    )
