#!/usr/bin/env python3
"""Extract every RFC 2119 requirement (MUST, MUST NOT, REQUIRED) of the runtime spec.

Scans runtime.md, runtime-linux.md, config.md, config-linux.md and features.md and writes
requirements.json: one entry per sentence (or table row) holding an uppercase MUST, MUST NOT or
REQUIRED, with an id made of the file, the nearest heading's slug and an ordinal within that
heading (`config-linux.md#namespaces-3`). The ids only move when the spec text under a heading
changes, which is when the traceability mapping has to be looked at again anyway.

Usage: python3 oci-conformance/extract.py [--spec DIR] [--out FILE] [--check]
  --check  fail (exit 1) if the existing requirements.json differs from a fresh extraction
"""

from __future__ import annotations

import argparse
import json
import re
import sys
from dataclasses import asdict, dataclass, field
from pathlib import Path

HERE = Path(__file__).resolve().parent
DEFAULT_SPEC = Path("/work/shared/runtime-spec")
FILES = ("runtime.md", "runtime-linux.md", "config.md", "config-linux.md", "features.md")
SPEC_URL = "https://github.com/opencontainers/runtime-spec/blob/v1.3.0"

KEYWORD = re.compile(r"\b(MUST NOT|MUST|REQUIRED)\b")
HEADING = re.compile(r"^(#{1,6})\s+(.*)$")
ANCHOR = re.compile(r'<a name="([^"]+)"\s*/>')
LIST_ITEM = re.compile(r"^(\s*)(?:[*-]|\d+\.)\s+(.*)$")
LINK_DEF = re.compile(r"^\s*\[[^\]]+\]:\s")
ABBREVIATIONS = ("e.g.", "i.e.", "etc.", "vs.")


@dataclass
class Requirement:
    """One normative sentence, with where it lives and what surrounds it."""

    id: str
    file: str
    heading: str
    anchor: str
    line: int
    keywords: list[str]
    sentence: str
    context: str = ""
    url: str = field(default="")


def slugify(text: str) -> str:
    """GitHub's heading slug: lower case, punctuation dropped, spaces to dashes."""
    text = ANCHOR.sub("", text)
    text = re.sub(r"[`*_]", "", text).strip().lower()
    text = re.sub(r"[^\w\- ]", "", text)
    return re.sub(r" ", "-", text)


def clean(text: str) -> str:
    """Markdown to plain-ish text: links to their labels, emphasis dropped, spaces squeezed."""
    text = ANCHOR.sub("", text)
    text = re.sub(r"\[([^\]]+)\]\([^)]*\)", r"\1", text)
    text = re.sub(r"\[([^\]]+)\]\[[^\]]*\]", r"\1", text)
    text = re.sub(r"\[\^\d+\]", "", text)
    text = text.replace("**", "").replace("*(", "(").replace(")*", ")")
    return re.sub(r"\s+", " ", text).strip()


def split_sentences(text: str) -> list[str]:
    """Split a paragraph after '.', '!' or '?' followed by a space, but not after e.g./i.e."""
    out: list[str] = []
    start = 0
    for m in re.finditer(r"[.!?](?=\s+\S)", text):
        end = m.end()
        before = text[start:end]
        if any(before.endswith(a) for a in ABBREVIATIONS):
            continue
        out.append(before.strip())
        start = end
    rest = text[start:].strip()
    if rest:
        out.append(rest)
    return [s for s in out if s]


@dataclass
class Block:
    """A paragraph, a list item (with its indentation) or a table row."""

    kind: str  # "para", "item", "row"
    indent: int
    line: int
    text: str


def blocks_of(lines: list[str]) -> list[tuple[str, str, Block | None]]:
    """Yield (heading text, anchor, block) in document order; headings as block None."""
    out: list[tuple[str, str, Block | None]] = []
    in_code = False
    current: Block | None = None

    def flush() -> None:
        nonlocal current
        if current is not None:
            out.append(("", "", current))
            current = None

    for number, raw in enumerate(lines, start=1):
        line = raw.rstrip("\n")
        if line.lstrip().startswith("```"):
            flush()
            in_code = not in_code
            continue
        if in_code:
            continue
        if not line.strip() or LINK_DEF.match(line) or line.lstrip().startswith(">"):
            flush()
            continue
        heading = HEADING.match(line)
        if heading:
            flush()
            anchor = ANCHOR.search(heading.group(2))
            out.append((heading.group(2), anchor.group(1) if anchor else "", None))
            continue
        if line.count("|") >= 2:
            flush()
            out.append(("", "", Block("row", 0, number, line)))
            continue
        item = LIST_ITEM.match(line)
        if item:
            flush()
            current = Block("item", len(item.group(1)), number, item.group(2))
            continue
        if current is None:
            current = Block("para", len(line) - len(line.lstrip()), number, line.strip())
        else:
            current.text += " " + line.strip()
    flush()
    return out


def extract_file(path: Path) -> list[Requirement]:
    """All requirements of one markdown file, ids numbered per heading."""
    name = path.name
    lines = path.read_text().splitlines()
    reqs: list[Requirement] = []
    heading, slug, anchor = "", "", ""
    seen_slugs: dict[str, int] = {}
    ordinal = 0
    stack: list[tuple[int, str]] = []  # open list items: (indent, first sentence)
    table_intro = ""
    last_para = ""

    def add(line: int, sentence: str, context: str) -> None:
        nonlocal ordinal
        found = KEYWORD.findall(sentence)
        if not found:
            return
        ordinal += 1
        reqs.append(
            Requirement(
                id=f"{name}#{slug}-{ordinal}",
                file=name,
                heading=heading,
                anchor=anchor or slug,
                line=line,
                keywords=sorted(set(found)),
                sentence=sentence,
                context=context,
                url=f"{SPEC_URL}/{name}#{anchor or slug}",
            )
        )

    for head, head_anchor, block in blocks_of(lines):
        if block is None:
            if re.match(r"(?i)^example\b", clean(head)):
                # examples illustrate the section above them: keep its id and numbering
                continue
            heading = clean(head)
            base = slugify(head)
            count = seen_slugs.get(base, 0)
            seen_slugs[base] = count + 1
            slug = base if count == 0 else f"{base}-{count}"
            anchor = head_anchor
            ordinal = 0
            stack.clear()
            table_intro = ""
            continue
        if block.kind == "row":
            cells = [c.strip() for c in block.text.strip().strip("|").split("|")]
            if all(re.fullmatch(r":?-+:?", c) for c in cells if c):
                continue
            if len(cells) >= 2 and cells[1] == "MUST":
                # the Linux mount options table: a MUST row is one requirement per option
                add(block.line, clean(f"{cells[0]} | {cells[1]} | {cells[2]}"), table_intro)
                continue
            subject = clean(cells[0])
            for cell in cells[1:]:
                for sentence in split_sentences(clean(cell)):
                    add(block.line, sentence, f"{table_intro} [{subject}]".strip())
            continue
        text = clean(block.text)
        sentences = split_sentences(text)
        if block.kind == "item":
            while stack and stack[-1][0] >= block.indent:
                stack.pop()
            parent = stack[-1][1] if stack else last_para
            stack.append((block.indent, sentences[0] if sentences else ""))
            for index, sentence in enumerate(sentences):
                context = parent if index == 0 else sentences[0]
                add(block.line, sentence, context)
        else:
            # a paragraph indented under a list item continues that item
            while stack and block.indent and stack[-1][0] >= block.indent:
                stack.pop()
            if stack and block.indent:
                context = stack[-1][1]
            else:
                stack.clear()
                context = ""
            for sentence in sentences:
                add(block.line, sentence, context)
            if not stack:
                last_para = sentences[0] if sentences else ""
        if sentences and sentences[-1].endswith(":"):
            table_intro = sentences[-1]
    return reqs


def extract(spec: Path) -> list[Requirement]:
    """The requirements of the five files, in file order."""
    out: list[Requirement] = []
    for name in FILES:
        out.extend(extract_file(spec / name))
    ids = [r.id for r in out]
    dupes = {i for i in ids if ids.count(i) > 1}
    if dupes:
        raise SystemExit(f"duplicate requirement ids: {sorted(dupes)}")
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--spec", type=Path, default=DEFAULT_SPEC)
    parser.add_argument("--out", type=Path, default=HERE / "requirements.json")
    parser.add_argument("--check", action="store_true")
    args = parser.parse_args(argv)
    reqs = [asdict(r) for r in extract(args.spec)]
    doc = {"spec": "OCI runtime-spec v1.3.0", "files": list(FILES), "requirements": reqs}
    text = json.dumps(doc, indent=2) + "\n"
    if args.check:
        if not args.out.exists() or args.out.read_text() != text:
            print(f"{args.out} is stale: run python3 oci-conformance/extract.py", file=sys.stderr)
            return 1
        print(f"{args.out}: {len(reqs)} requirements, up to date")
        return 0
    args.out.write_text(text)
    print(f"wrote {args.out}: {len(reqs)} requirements")
    return 0


if __name__ == "__main__":
    sys.exit(main())
