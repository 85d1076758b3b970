"""Document blocks (headings, paragraphs, tables, preformatted text) rendered as Markdown or HTML."""

from __future__ import annotations

import html
from dataclasses import dataclass


@dataclass
class Heading:
    level: int
    text: str


@dataclass
class Paragraph:
    text: str


@dataclass
class Preformatted:
    text: str


@dataclass
class Table:
    columns: list[str]
    rows: list[list[str]]


@dataclass
class Items:
    entries: list[str]


Block = Heading | Paragraph | Preformatted | Table | Items


def _md_text(text: str) -> str:
    # Markdown passes inline HTML through, so "<addr>" would become a tag and
    # vanish in a viewer. "&" goes first, so that a literal "&lt;" stays visible.
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def _md_cell(text: str) -> str:
    # A pipe ends a Markdown table cell and a newline ends the row.
    return _md_text(text).replace("|", "\\|").replace("\n", "<br>")


def _md_fence(text: str) -> str:
    # The fence must be longer than any backtick run that starts a line of the text.
    longest = max((len(line) - len(line.lstrip("`")) for line in text.split("\n")), default=0)
    fence = "`" * max(3, longest + 1)
    return f"{fence}\n{text.rstrip(chr(10))}\n{fence}"


def to_markdown(blocks: list[Block]) -> str:
    """Render ``blocks`` as GitHub-flavoured Markdown."""
    parts: list[str] = []
    for block in blocks:
        if isinstance(block, Heading):
            parts.append(f"{'#' * block.level} {_md_text(block.text)}")
        elif isinstance(block, Paragraph):
            parts.append(_md_text(block.text))
        elif isinstance(block, Preformatted):
            parts.append(_md_fence(block.text))
        elif isinstance(block, Items):
            parts.append("\n".join(f"- {_md_cell(entry)}" for entry in block.entries))
        elif isinstance(block, Table):
            lines = [
                "| " + " | ".join(_md_cell(column) for column in block.columns) + " |",
                "|" + "---|" * len(block.columns),
            ]
            lines += ["| " + " | ".join(_md_cell(cell) for cell in row) + " |" for row in block.rows]
            parts.append("\n".join(lines))
    return "\n\n".join(parts) + "\n"


STYLE = """
body { font-family: sans-serif; max-width: 70rem; margin: 2rem auto; padding: 0 1rem; }
pre { background: #f4f4f4; padding: .6rem; overflow-x: auto; }
table { border-collapse: collapse; }
td, th { border: 1px solid #ccc; padding: .2rem .5rem; vertical-align: top; text-align: left; }
"""


def to_html(blocks: list[Block], title: str) -> str:
    """Render ``blocks`` as a standalone HTML page; every text is escaped."""
    escape = html.escape
    body: list[str] = []
    for block in blocks:
        if isinstance(block, Heading):
            body.append(f"<h{block.level}>{escape(block.text)}</h{block.level}>")
        elif isinstance(block, Paragraph):
            body.append(f"<p>{escape(block.text)}</p>")
        elif isinstance(block, Preformatted):
            body.append(f"<pre>{escape(block.text)}</pre>")
        elif isinstance(block, Items):
            body.append("<ul>" + "".join(f"<li>{escape(entry)}</li>" for entry in block.entries) + "</ul>")
        elif isinstance(block, Table):
            head = "".join(f"<th>{escape(column)}</th>" for column in block.columns)
            rows = "".join(
                "<tr>" + "".join(f"<td>{escape(cell)}</td>" for cell in row) + "</tr>" for row in block.rows
            )
            body.append(f"<table><thead><tr>{head}</tr></thead><tbody>{rows}</tbody></table>")
    return (
        "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n"
        f"<title>{escape(title)}</title>\n<style>{STYLE}</style>\n</head>\n<body>\n"
        + "\n".join(body)
        + "\n</body>\n</html>\n"
    )
