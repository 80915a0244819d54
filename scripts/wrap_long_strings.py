"""Split string literals on lines longer than ruff's line length into adjacent literals.

``ruff format`` wraps code but never splits a string, so a long help text or message stays
one long line. This splits such a single-line literal at spaces (never inside an f-string's
``{...}``) into implicitly concatenated pieces, one per line at the literal's indentation;
``ruff format`` then lays the result out. The value of every string is unchanged. Run by
``scripts/lint_fix.sh``; usage: ``python scripts/wrap_long_strings.py FILE...``.
"""

from __future__ import annotations

import io
import re
import sys
import tokenize
import tomllib
from pathlib import Path

_LITERAL = re.compile(r"^([rRfFuU]{0,2})('|\")(.*)\2$", re.S)
_OPEN, _CLOSE = "([{", ")]}"
_STATEMENT_START = {tokenize.NEWLINE, tokenize.NL, tokenize.INDENT, tokenize.DEDENT, tokenize.ENCODING}


def line_length() -> int:
    pyproject = Path(__file__).resolve().parent.parent / "pyproject.toml"
    return int(tomllib.loads(pyproject.read_text())["tool"]["ruff"]["line-length"])


def _split_points(body: str, fstring: bool) -> list[int]:
    """Indices just after a space where the literal may be cut (outside ``{...}``)."""
    points, depth, k = [], 0, 0
    while k < len(body):
        ch = body[k]
        if ch == "\\":
            k += 2
            continue
        if fstring and body.startswith(("{{", "}}"), k):
            k += 2
            continue
        if fstring and ch == "{":
            depth += 1
        elif fstring and ch == "}":
            depth -= 1
        elif ch == " " and depth == 0 and k + 1 < len(body):
            points.append(k + 1)
        k += 1
    return points


def split_literal(text: str, width: int) -> list[str] | None:
    """``text`` (one literal) as pieces of at most ``width`` characters, or None."""
    m = _LITERAL.match(text)
    if m is None or "b" in m.group(1).lower():
        return None
    prefix, quote, body = m.groups()
    fstring = "f" in prefix.lower()
    room = width - len(prefix) - 2
    pieces, start, last = [], 0, None
    for point in _split_points(body, fstring):
        if point - start > room and last is not None:
            pieces.append(body[start:last])
            start = last
        last = point
    if len(body) - start > room and last is not None and last > start:
        pieces.append(body[start:last])
        start = last
    pieces.append(body[start:])
    if len(pieces) < 2:
        return None
    out = []
    for piece in pieces:
        p = (
            prefix
            if not fstring or "{" in piece.replace("{{", "")
            else prefix.replace("f", "").replace("F", "")
        )
        out.append(f"{p}{quote}{piece}{quote}")
    return out


def wrap(source: str, limit: int) -> str:
    lines = source.splitlines(keepends=True)
    tokens = list(tokenize.generate_tokens(io.StringIO(source).readline))
    edits = []
    depth, previous = 0, tokenize.NEWLINE
    for tok in tokens:
        if tok.type == tokenize.OP and tok.string in _OPEN:
            depth += 1
        elif tok.type == tokenize.OP and tok.string in _CLOSE:
            depth -= 1
        elif (
            tok.type == tokenize.STRING
            and tok.start[0] == tok.end[0]
            and len(lines[tok.start[0] - 1].rstrip("\n")) > limit
            and previous not in _STATEMENT_START
        ):
            indent = tok.start[1]
            pieces = split_literal(tok.string, max(limit - indent - 2, 40))
            if pieces:
                joined = ("\n" + " " * indent).join(pieces)
                edits.append((tok.start, tok.end, joined if depth else f"({joined})"))
        if tok.type not in (tokenize.COMMENT, tokenize.NL):
            previous = tok.type
    for (row, col), (_, end_col), text in reversed(edits):
        line = lines[row - 1]
        lines[row - 1] = line[:col] + text + line[end_col:]
    return "".join(lines)


def main(paths: list[str]) -> int:
    limit = line_length()
    changed = 0
    for name in paths:
        path = Path(name)
        source = path.read_text(encoding="utf-8")
        new = wrap(source, limit)
        if new != source:
            compile(new, name, "exec")  # never write a file that no longer parses
            path.write_text(new, encoding="utf-8")
            changed += 1
    print(f"split long strings in {changed} files")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
