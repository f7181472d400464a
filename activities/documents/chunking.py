"""Split Markdown and text into passages small enough to cite and to carry in history."""

from __future__ import annotations

import re
from dataclasses import dataclass

MAX_CHUNK_CHARS = 700
_SENTENCE_END = re.compile(r"(?<=[.!?])\s+")


@dataclass(frozen=True)
class ParsedDocument:
    title: str
    chunks: list[str]


def parse_document(text: str, fallback_title: str) -> ParsedDocument:
    """Title from the first `# ` heading; passages are paragraphs, headings kept with them."""
    title = fallback_title
    paragraphs: list[str] = []
    heading = ""
    for block in re.split(r"\n\s*\n", text.replace("\r\n", "\n")):
        block = block.strip()
        if not block:
            continue
        if block.startswith("# ") and title == fallback_title and not paragraphs:
            first, _, rest = block.partition("\n")
            title = first[2:].strip() or fallback_title
            block = rest.strip()
            if not block:
                continue
        if re.fullmatch(r"#{2,6} [^\n]+", block):
            heading = block.lstrip("#").strip()
            continue
        body = " ".join(line.strip() for line in block.splitlines())
        paragraphs.append(f"{heading}: {body}" if heading else body)
        heading = ""
    chunks: list[str] = []
    for paragraph in paragraphs:
        chunks.extend(_split_long(paragraph))
    return ParsedDocument(title=title, chunks=chunks)


def _split_long(paragraph: str) -> list[str]:
    if len(paragraph) <= MAX_CHUNK_CHARS:
        return [paragraph]
    parts: list[str] = []
    current = ""
    for sentence in _SENTENCE_END.split(paragraph):
        if current and len(current) + 1 + len(sentence) > MAX_CHUNK_CHARS:
            parts.append(current)
            current = ""
        current = f"{current} {sentence}".strip()
        while len(current) > MAX_CHUNK_CHARS:
            parts.append(current[:MAX_CHUNK_CHARS])
            current = current[MAX_CHUNK_CHARS:]
    if current:
        parts.append(current)
    return parts
