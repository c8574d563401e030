"""Grade a model's answer against a MATH-500-style expected answer.

:func:`grade` takes the model's final answer — the last ``\\boxed{...}`` (braces balanced), else the
last "answer is X" — and compares it with the expected one after both go through the same
normalisation: LaTeX spacing and sizing (``\\left``, ``\\!``, ``$``) dropped, ``\\text{}`` unwrapped,
``\\dfrac`` read as ``\\frac``, degrees and unit words removed, thousands separators removed, and
fractions written as ``a/b``. Then values that are plain numbers compare exactly as rationals
(``\\frac{1}{2}`` == ``1/2`` == ``0.5``, ``5.0`` == ``5``, ``1\\frac{4}{5}`` == ``9/5``); tuples,
intervals and matrices compare element by element; bare lists such as ``1,-2`` as unordered sets.
That textual pass is cheap and never needs sympy. When it finds no match and both sides parse as
LaTeX (math-verify's parser, into sympy), they are compared symbolically (``\\frac{1}{\\sqrt3}`` ==
``\\frac{\\sqrt3}{3}``, ``(x+1)^2`` == ``x^2+2x+1``); when either does not parse the textual verdict
stands. Only the answer is graded: a ``<think>…</think>`` block leaked into it is cut away first.

sympy can hold the GIL for seconds (or forever: ``10^{10^{10}}``), so a load run never grades inline:
:func:`grade_many` grades a finished run's answers in worker processes, each item under a time limit.
"""

from __future__ import annotations

import contextlib
import logging
import math
import multiprocessing
import os
import re
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from fractions import Fraction
from multiprocessing.connection import Connection, wait
from typing import Any, cast

from runner.records import Outcome, RequestRecord
from runner.spec import Prompt

__all__ = [
    "Grade",
    "accuracy_block",
    "equivalent",
    "extract_answer",
    "grade",
    "grade_many",
    "grade_one",
    "grade_records",
    "normalize",
    "symbolic_equal",
    "wilson",
]

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


# Why a verdict is what it is (``Grade.reason``).
NO_ANSWER = "no final answer"
TEXT_EQUAL = "equal as text"
TEXT_DIFFERENT = "different as text (not parsed as math)"
SYMBOLIC_EQUAL = "equal symbolically"
SYMBOLIC_DIFFERENT = "different symbolically"
TIMEOUT = "timeout"
WORKER_DIED = "error: the grading process died"
FAILED_REQUEST = "failed request"
_THINK_BLOCK = re.compile(r"<(think|thinking|reasoning)>.*?(</\1>|$)", re.DOTALL | re.IGNORECASE)
_BASE_SUBSCRIPT = re.compile(r"\d_\{?\d")  # 52_8: a base, which the LaTeX parser would drop


@dataclass(frozen=True, slots=True)
class Grade:
    correct: bool
    extracted: str | None  # the final answer found in the text; None when there was none
    reason: str


def grade(answer_text: str, expected: str) -> bool:
    """True when the final answer in ``answer_text`` equals ``expected`` by the textual pass alone:
    microseconds, safe inside an event loop. The symbolic pass is :func:`grade_one` (in this process)
    and :func:`grade_many` / :func:`grade_records` (in worker processes, under a time limit)."""
    got = extract_answer(answer_text)
    return got is not None and equivalent(got, expected)


def grade_one(answer_text: str, expected: str) -> Grade:
    """The verdict with the extracted answer and its reason, in this process and without a time
    limit; see :func:`grade_many` for untrusted answers."""
    got = extract_answer(answer_text)
    if got is None:
        return Grade(False, None, NO_ANSWER)
    if equivalent(got, expected):
        return Grade(True, got, TEXT_EQUAL)
    verdict = symbolic_equal(got, expected)
    if verdict is None:
        return Grade(False, got, TEXT_DIFFERENT)
    return Grade(verdict, got, SYMBOLIC_EQUAL if verdict else SYMBOLIC_DIFFERENT)


# --- finding the answer --------------------------------------------------------------------------


def extract_answer(text: str) -> str | None:
    """The last ``\\boxed{...}``'s content, else what follows the last "answer is"; None if neither.
    Reasoning inside think tags is not the answer and is never searched."""
    text = _THINK_BLOCK.sub("", text)
    for close in ("</think>", "</thinking>", "</reasoning>"):
        text = text.rpartition(close)[2]  # the opening tag was in the prompt (chat templates do that)
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


# --- symbolic ------------------------------------------------------------------------------------


def symbolic_equal(got: str, expected: str) -> bool | None:
    """Whether both answers have the same value as sympy expressions; None when either side does not
    parse (or is written in a base, ``52_8``, that parsing would drop). Unbounded time: see
    :func:`grade_many`."""
    if _BASE_SUBSCRIPT.search(got) or _BASE_SUBSCRIPT.search(expected):
        return None
    from math_verify import parse, verify  # sympy and an ANTLR grammar: ~0.5 s to import, only here

    logging.getLogger("math_verify").setLevel(logging.ERROR)  # "timeout disabled": ours is outside

    def parsed(answer: str) -> list[Any]:
        return list(parse(f"${answer}$", parsing_timeout=None))

    a, b = parsed(got), parsed(expected)
    if not a or not b:
        return None
    return bool(verify(b, a, timeout_seconds=None))


# --- grading a run, off the measuring loop -------------------------------------------------------

Grader = Callable[[str, str], Grade]


def grade_many(
    items: Sequence[tuple[str, str]],
    *,
    timeout_s: float = 2.0,
    processes: int | None = None,
    grader: Grader = grade_one,
) -> list[Grade]:
    """Grade ``(answer_text, expected)`` pairs; the verdicts line up with ``items``.

    Answers decided as text (or with no final answer) are graded here; the rest go to ``processes``
    worker processes (default: one per core, at most one per item), each item under ``timeout_s``
    from when a worker takes it. An item over its limit is wrong with reason ``"timeout"`` and its
    worker is replaced. ``processes=0`` grades everything in this process, without a time limit (as
    does a daemonic process, which may not start workers).
    ``grader`` must be a module-level function (it is sent to the workers by name).
    """
    out: list[Grade | None] = [None] * len(items)
    todo: list[int] = []
    for i, (answer_text, expected) in enumerate(items):
        got = extract_answer(answer_text)
        if grader is grade_one and (got is None or equivalent(got, expected)):
            out[i] = Grade(got is not None, got, TEXT_EQUAL if got is not None else NO_ANSWER)
        else:
            todo.append(i)
    if processes == 0 or multiprocessing.current_process().daemon:  # a daemon may not have children
        for i in todo:
            out[i] = grader(*items[i])
    elif todo:
        workers = max(1, min(processes or os.cpu_count() or 1, len(todo)))
        with _Pool(workers, grader) as pool:
            for i, result in pool.grade([(i, *items[i]) for i in todo], timeout_s):
                out[i] = (
                    result if isinstance(result, Grade) else Grade(False, extract_answer(items[i][0]), result)
                )
    return [g if g is not None else Grade(False, None, TIMEOUT) for g in out]


def grade_records(
    records: Sequence[RequestRecord],
    prompts: Mapping[str, Prompt],
    *,
    timeout_s: float = 2.0,
    processes: int | None = None,
) -> list[Grade | None]:
    """Grade a finished run's records against their prompts' expected answers (:func:`grade_many`),
    lined up with ``records`` (None: the prompt has no expected answer). Sets ``correct`` and, where
    the record has them, ``extracted_answer`` and ``grade_reason``. A failed request is wrong without
    grading its partial text; a cancelled one is left ungraded."""
    grades: list[Grade | None] = [None] * len(records)
    todo: list[tuple[int, str, str]] = []
    for i, rec in enumerate(records):
        prompt = prompts.get(rec.prompt_id)
        if prompt is None or prompt.expected is None or rec.outcome == Outcome.CANCELLED.value:
            continue
        if rec.ok:
            todo.append((i, rec.answer_text, prompt.expected))
        else:
            grades[i] = Grade(False, None, FAILED_REQUEST)
    graded = grade_many([(a, e) for _, a, e in todo], timeout_s=timeout_s, processes=processes)
    for (i, _, _), done in zip(todo, graded, strict=True):
        grades[i] = done
    for rec, g in zip(records, grades, strict=True):
        if g is not None:
            rec.correct = g.correct
            for name, value in (("extracted_answer", g.extracted), ("grade_reason", g.reason)):
                if hasattr(rec, name):
                    setattr(rec, name, value)
    return grades


def _worker(conn: Connection, grader: Grader) -> None:
    # warm up (imports) before saying ready, so no item's clock pays for them; an error here comes
    # back with the first item, as its reason
    with contextlib.suppress(Exception):
        grader("\\boxed{x}", "y")
    conn.send("ready")
    while True:
        job = conn.recv()
        if job is None:
            return
        index, answer_text, expected = job
        try:
            result = grader(answer_text, expected)
        except Exception as exc:  # a parser bug is a wrong answer with its reason, not a lost run
            result = Grade(False, extract_answer(answer_text), f"error: {type(exc).__name__}: {exc}")
        conn.send((index, result))


class _Pool:
    """Worker processes with one pipe each, so a hung item's worker alone is killed and replaced."""

    def __init__(self, size: int, grader: Grader) -> None:
        self.ctx = multiprocessing.get_context("spawn")  # no fork of a process with threads or a loop
        self.grader = grader
        self.procs: dict[Connection, Any] = {}
        for _ in range(size):
            self._start()

    def _start(self) -> None:
        parent, child = self.ctx.Pipe()
        proc = self.ctx.Process(target=_worker, args=(child, self.grader), daemon=True)
        proc.start()
        child.close()
        self.procs[parent] = proc

    def _kill(self, conn: Connection) -> None:
        proc = self.procs.pop(conn)
        proc.kill()
        proc.join()
        conn.close()

    def grade(self, jobs: list[tuple[int, str, str]], timeout_s: float) -> list[tuple[int, Grade | str]]:
        """``(item, its grade or why it has none)`` for every job, in the order they finished."""
        pending = list(reversed(jobs))
        busy: dict[Connection, tuple[int, float]] = {}  # conn -> (item, deadline)
        done: list[tuple[int, Grade | str]] = []
        idle_deaths = 0  # workers that died holding no item: a broken worker, not a hard item
        while pending or busy:
            if idle_deaths > 3 * len(self.procs):  # give up rather than respawn for ever
                return (
                    done
                    + [(job[0], WORKER_DIED) for job in pending]
                    + [(i, WORKER_DIED) for i, _ in busy.values()]
                )
            now = time.monotonic()
            for conn, (index, deadline) in list(busy.items()):
                if now >= deadline:  # hung (sympy holding on): kill it, the item is a timeout
                    del busy[conn]
                    self._kill(conn)
                    done.append((index, TIMEOUT))
                    self._start()
            wait_for = min((d for _, d in busy.values()), default=now + 60) - now
            for ready in wait(list(self.procs), timeout=max(0.0, wait_for)):
                conn = cast(Connection, ready)
                try:
                    message = conn.recv()
                except EOFError:  # the worker died (out of memory?): its item is wrong
                    if conn in busy:
                        done.append((busy.pop(conn)[0], WORKER_DIED))
                    else:
                        idle_deaths += 1
                    self._kill(conn)
                    self._start()
                    continue
                if message != "ready":
                    busy.pop(conn)
                    done.append(message)
                if pending:
                    job = pending.pop()
                    conn.send(job)
                    busy[conn] = (job[0], time.monotonic() + timeout_s)
        return done

    def __enter__(self) -> _Pool:
        return self

    def __exit__(self, *exc: object) -> None:
        for conn in list(self.procs):
            self._kill(conn)


# --- a run's accuracy ----------------------------------------------------------------------------

Z95 = 1.959963984540054


def wilson(correct: int, n: int, z: float = Z95) -> list[float] | None:
    """The Wilson score interval of ``correct`` of ``n`` (95% by default); None when n is 0."""
    if n <= 0:
        return None
    p = correct / n
    centre = (p + z * z / (2 * n)) / (1 + z * z / n)
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / (1 + z * z / n)
    return [max(0.0, centre - half), min(1.0, centre + half)]


def _tally(recs: Sequence[RequestRecord]) -> dict[str, Any]:
    right = sum(1 for r in recs if r.ok and r.correct)
    n = len(recs)
    return {
        "graded": n,
        "correct": right,
        "rate": right / n if n else None,
        "ci95": wilson(right, n),
        "failed": sum(1 for r in recs if not r.ok),  # counted in graded, as wrong
    }


def _groups(recs: Sequence[RequestRecord], key: Callable[[RequestRecord], Any]) -> dict[str, Any]:
    keyed: dict[Any, list[RequestRecord]] = {}
    for r in recs:
        k = key(r)
        if k is not None:
            keyed.setdefault(k, []).append(r)
    return {str(k): _tally(keyed[k]) for k in sorted(keyed, key=lambda k: (str(type(k)), k))}


def accuracy_block(
    records: Iterable[RequestRecord],
    *,
    prompts: Mapping[str, Prompt] | None = None,
    buckets: Mapping[str, Sequence[RequestRecord]] | None = None,
    detail: bool = True,
) -> dict[str, Any] | None:
    """``{graded, correct, rate, ci95 (Wilson), failed}`` over the graded requests (``correct`` set) and
    the failed ones whose prompt in ``prompts`` has an expected answer, graded as wrong; cancelled ones
    left out. With ``detail``: the same per subject and level
    (from the prompt's ``meta``), per input bucket (``buckets``: label → records) and per variant.
    None when nothing was graded."""
    prompts = prompts or {}

    def gradable(r: RequestRecord) -> bool:
        if r.outcome == Outcome.CANCELLED.value:
            return False
        p = prompts.get(r.prompt_id)
        return r.correct is not None or (not r.ok and p is not None and p.expected is not None)

    graded = [r for r in records if gradable(r)]
    if not graded:
        return None
    block = _tally(graded)
    if not detail:
        return block

    def meta(name: str) -> Callable[[RequestRecord], Any]:
        return lambda r: p.meta.get(name) if (p := prompts.get(r.prompt_id)) is not None else None

    block["by_subject"] = _groups(graded, meta("subject"))
    block["by_level"] = _groups(graded, meta("level"))
    block["by_bucket"] = {
        label: _tally(inside)
        for label, recs in (buckets or {}).items()
        if (inside := [r for r in recs if gradable(r)])
    }
    if len({r.variant for r in graded}) > 1:
        block["by_variant"] = _groups(graded, lambda r: r.variant)
    return block
