"""Grade a model's answer against a MATH-500-style expected answer.

:func:`grade` takes the model's final answer — the last ``\\boxed{...}`` (braces balanced), else the
last "answer is X" — and compares it with the expected one after both go through the same
normalisation: LaTeX spacing and sizing (``\\left``, ``\\!``, ``$``) dropped, ``\\text{}`` unwrapped,
``\\dfrac`` read as ``\\frac``, degrees and unit words removed, thousands separators removed, and
fractions written as ``a/b``. Then values that are plain numbers compare exactly as rationals
(``\\frac{1}{2}`` == ``1/2`` == ``0.5``, ``5.0`` == ``5``, ``1\\frac{4}{5}`` == ``9/5``); tuples,
intervals and matrices compare element by element; bare lists such as ``1,-2`` as unordered sets.
Anything else must match as normalised text: no algebra is attempted (``\\frac{1}{\\sqrt3}`` is not
``\\frac{\\sqrt3}{3}``), so a "wrong" verdict can be a false negative, never a lucky guess.

Pure functions, no I/O.
"""

from __future__ import annotations

import re
from fractions import Fraction

__all__ = ["equivalent", "extract_answer", "grade", "normalize"]

_BOXED = ("\\boxed", "\\fbox")
_ANSWER_IS = re.compile(r"answer\s+is\s*:?\s*(.+)", re.IGNORECASE)
_DROP = ("\\left", "\\right", "\\displaystyle", "~", "$")
_SPACING = re.compile(r"(?<!\\)\\[,;:! ]")  # \, \! \; ... but not a matrix row break "\\ "
_WRAPPERS = ("\\text", "\\textbf", "\\textit", "\\mbox", "\\mathrm", "\\mathbf", "\\operatorname")
_UNITS = (
    "degrees",
    "degree",
    "inches",
    "inch",
    "feet",
    "foot",
    "meters",
    "meter",
    "cm",
    "mm",
    "km",
    "m",
    "units",
    "unit",
    "cents",
    "cent",
    "dollars",
    "dollar",
    "hours",
    "hour",
    "minutes",
    "minute",
    "seconds",
    "second",
    "sq",
    "square",
    "mph",
)
# Unit words after the value and a space ("864 inches^2", "5.4 cents"); a bare "2m" stays algebra.
_UNIT_TAIL = re.compile(r"(?:\s+(?:" + "|".join(_UNITS) + r")\b(?:\^\{?[23]\}?)?)+\s*$")
_THOUSANDS = re.compile(r"^-?\d{1,3}(?:,\d{3})+(?:\.\d+)?$")
_NUMBER = re.compile(r"^[+-]?(?:\d+\.?\d*|\.\d+)$")
_LHS = re.compile(r"^[a-zA-Z](?:_\{?\w+\}?)?\s*(?:=|\\in)\s*(?=\S)")
_MIXED = re.compile(r"^(-?\d+)\\frac\{(\d+)\}\{(\d+)\}$")
_CHOICE = re.compile(r"^\(([A-Ea-e])\)$")


def grade(answer_text: str, expected: str) -> bool:
    """True when the model's final answer in ``answer_text`` equals ``expected``."""
    got = extract_answer(answer_text)
    return got is not None and equivalent(got, expected)


# --- finding the answer --------------------------------------------------------------------------


def extract_answer(text: str) -> str | None:
    """The last ``\\boxed{...}``'s content, else what follows the last "answer is"; None if neither."""
    boxed = _last_boxed(text)
    if boxed is not None:
        return boxed
    found = list(_ANSWER_IS.finditer(text))
    if not found:
        return None
    tail = found[-1].group(1).strip().split("\n")[0]
    tail = tail.replace("**", "").strip()
    if tail.startswith("$") and tail.count("$") >= 2:
        tail = tail[1 : tail.index("$", 1)]  # "$\frac{1}{2}$. Done" -> the math part
    return tail.rstrip(" .;").strip() or None


def _last_boxed(text: str) -> str | None:
    start = max(text.rfind(cmd) for cmd in _BOXED)
    if start < 0:
        return None
    cmd = next(c for c in _BOXED if text.startswith(c, start))
    pos = start + len(cmd)
    while pos < len(text) and text[pos] == " ":
        pos += 1
    if pos < len(text) and text[pos] == "{":
        group = _group(text, pos)
        return group[0] if group else None
    match = re.match(r"\s*([^\s$]+)", text[pos:])  # "\boxed 5"
    return match.group(1) if match else None


def _group(text: str, pos: int) -> tuple[str, int] | None:
    """``text[pos]`` is ``{``: the balanced group's content and the index after its ``}``."""
    depth = 0
    for i in range(pos, len(text)):
        if text[i] == "{" and (i == 0 or text[i - 1] != "\\"):
            depth += 1
        elif text[i] == "}" and text[i - 1] != "\\":
            depth -= 1
            if depth == 0:
                return text[pos + 1 : i], i + 1
    return None


def _arg(text: str, pos: int) -> tuple[str, int] | None:
    """One argument of a command at ``pos``: a ``{group}``, a ``\\command`` or a single character."""
    while pos < len(text) and text[pos] == " ":
        pos += 1
    if pos >= len(text):
        return None
    if text[pos] == "{":
        return _group(text, pos)
    if text[pos] == "\\":
        match = re.match(r"\\[a-zA-Z]+", text[pos:])
        if match:
            return match.group(0), pos + len(match.group(0))
    return text[pos], pos + 1


# --- normalising ---------------------------------------------------------------------------------


def normalize(answer: str) -> str:
    """The canonical text of an answer (see the module docstring)."""
    s = answer.strip()
    s = s.replace("\\$", "").replace("\\%", "").replace("%", "")
    for token in _DROP:
        s = s.replace(token, "")
    s = _SPACING.sub("", s)
    s = re.sub(r"\\[dt]frac", r"\\frac", s)
    s = _unwrap(s, _WRAPPERS)
    s = re.sub(r"\^\s*\{?\s*\\circ\s*\}?", "", s).replace("°", "").replace("\\circ", "")
    s = _UNIT_TAIL.sub("", s.strip())
    s = re.sub(r"\\sqrt\s*([0-9a-zA-Z])", r"\\sqrt{\1}", s)
    s = s.replace("\\{", "{").replace("\\}", "}")
    s = _LHS.sub("", s.strip())
    s = re.sub(r"\s+", "", s)
    s = re.sub(r"_\{(\w+)\}", r"_\1", s)
    mixed = _MIXED.match(s)
    if mixed:
        whole, num, den = (int(g) for g in mixed.groups())
        s = f"{abs(whole) * den + num}/{den}" if whole >= 0 else f"-{abs(whole) * den + num}/{den}"
    s = _fractions(s)
    if _THOUSANDS.match(s):
        s = s.replace(",", "")
    choice = _CHOICE.match(s)
    if choice:
        s = choice.group(1)
    if s.isalpha() and len(s) > 1:
        s = s.lower()  # word answers ("East", "\text{even}"); single letters stay case-sensitive
    return s


def _unwrap(s: str, commands: tuple[str, ...]) -> str:
    """``\\text{abc}`` -> ``abc`` (any listed command), innermost first."""
    changed = True
    while changed:
        changed = False
        for cmd in commands:
            for match in re.finditer(re.escape(cmd) + r"\s*\{", s):
                group = _group(s, match.end() - 1)
                if group is not None:
                    s = s[: match.start()] + group[0] + s[group[1] :]
                    changed = True
                    break
    return s


def _fractions(s: str) -> str:
    """``\\frac{a}{b}`` -> ``a/b``, with parentheses only where a bare slash would misread."""
    while (start := s.find("\\frac")) >= 0:
        first = _arg(s, start + len("\\frac"))
        second = _arg(s, first[1]) if first else None
        if first is None or second is None:
            break
        num, den = _fractions(first[0]), _fractions(second[0])
        num = num if not re.search(r"(?<!^)[+-]", num) else f"({num})"
        den = den if re.fullmatch(r"[\w.]+|\\[a-zA-Z]+", den) else f"({den})"
        s = s[:start] + f"{num}/{den}" + s[second[1] :]
    return s


# --- comparing -----------------------------------------------------------------------------------


def equivalent(got: str, expected: str) -> bool:
    """Whether two answers are the same after normalisation (numbers as exact rationals)."""
    a, b = normalize(got), normalize(expected)
    if a == b:
        return True
    return _same(a, b)


def _same(a: str, b: str) -> bool:
    if a == b:
        return True
    x, y = _value(a), _value(b)
    if x is not None and y is not None:
        return x == y
    matrix_a, matrix_b = _matrix(a), _matrix(b)
    if matrix_a is not None and matrix_b is not None:
        return len(matrix_a) == len(matrix_b) and all(map(_same, matrix_a, matrix_b))
    if a[:1] + a[-1:] == b[:1] + b[-1:] and a[:1] in "([{" and a[-1:] in ")]}":
        parts_a, parts_b = _split(a[1:-1]), _split(b[1:-1])
        return len(parts_a) == len(parts_b) > 1 and all(map(_same, parts_a, parts_b))
    parts_a, parts_b = _split(a), _split(b)
    if len(parts_a) > 1 and len(parts_a) == len(parts_b):
        rest = list(parts_b)  # solutions listed in any order
        for part in parts_a:
            match = next((r for r in rest if _same(part, r)), None)
            if match is None:
                return False
            rest.remove(match)
        return True
    return False


def _value(s: str) -> Fraction | None:
    """The exact value of a plain number: ``-3``, ``0.15``, ``.5``, ``14/3``, ``-7/2``, ``5.0``."""
    sign = -1 if s.startswith("-") else 1
    body = s[1:] if s[:1] in "+-" else s
    try:
        if "/" in body:
            num, den = body.split("/", 1)
            num, den = num.strip("()"), den.strip("()")
            if _NUMBER.match(num) and _NUMBER.match(den) and Fraction(den) != 0:
                return sign * Fraction(num) / Fraction(den)
            return None
        return sign * Fraction(body) if _NUMBER.match(body) else None
    except (ValueError, ZeroDivisionError):
        return None


def _matrix(s: str) -> list[str] | None:
    match = re.fullmatch(r"\\begin\{[pbv]?matrix\}(.*)\\end\{[pbv]?matrix\}", s)
    if not match:
        return None
    return [cell for row in match.group(1).split("\\\\") for cell in row.split("&")]


def _split(s: str) -> list[str]:
    """Top-level comma-separated parts (commas inside brackets stay)."""
    parts: list[str] = []
    current: list[str] = []
    depth = 0
    for ch in s:
        if ch in "([{":
            depth += 1
        elif ch in ")]}":
            depth -= 1
        if ch == "," and depth == 0:
            parts.append("".join(current))
            current = []
        else:
            current.append(ch)
    parts.append("".join(current))
    return parts
