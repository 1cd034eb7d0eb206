"""How the agent benchmark scores one conversation's response (benchmarks/bench_agents.py).

The response is read as the API returned it (the output entries, as JSON dicts):
  - the final answer: the last `message.output` entry, its text chunks joined, and the
    `tool_reference` chunks it carries (its citations);
  - the tool executions (`tool.execution` entries): `info` of the document_library tool lists
    the retrieved documents (`results`), a database query's lists `columns` and `rows`, a
    refused call carries `error`.

Matching is deliberately plain: text is compared case-folded, without accents, with runs of
white space as one space; a number matches a number of the text whatever its thousands
separator or decimal comma ("887 704", "887,704", "887704.0"). A database value is found in a
tool result only as a whole cell of a returned row, not anywhere in the table, so that a wrong
query does not pass by a coincidence of digits elsewhere.
"""

import json
import math
import re
import unicodedata
from dataclasses import dataclass, field

_SPACES = re.compile(r"[\s\u00a0\u202f]+")
# "887 704", "887,704.50": digits in groups of three; and plain tokens ("17", "0,42", "405.0").
_GROUPED = re.compile(r"(?<![\d.,])\d{1,3}(?:[ \u00a0\u202f,.]\d{3})+(?:[.,]\d+)?(?!\d)")
_PLAIN = re.compile(r"(?<![\d.,])\d+(?:[.,]\d+)?(?!\d)")


def fold(text: str) -> str:
    """Lower case, no accents, one space for any run of white space (kept at the ends)."""
    decomposed = unicodedata.normalize("NFKD", text.casefold())
    return _SPACES.sub(" ", "".join(c for c in decomposed if not unicodedata.combining(c)))


def _readings(token: str) -> set[float]:
    """The values a number token can mean: "1,250" is 1250 or 1.25, "887 704" is 887704."""
    compact = re.sub(r"[ \u00a0\u202f]", "", token)
    readings = set()
    if "," in compact and "." in compact:
        decimal = max(compact.rfind(","), compact.rfind("."))
        compact = compact[:decimal].replace(",", "").replace(".", "") + "." + compact[decimal + 1:]
        readings.add(float(compact))
        return readings
    for separator in (",", "."):
        if separator in compact:
            if all(len(group) == 3 for group in compact.split(separator)[1:]):
                readings.add(float(compact.replace(separator, "")))  # thousands separators
            if compact.count(separator) == 1:
                readings.add(float(compact.replace(separator, ".")))  # a decimal point or comma
            return readings
    readings.add(float(compact))
    return readings


def numbers_in(text: str) -> set[float]:
    found = set()
    for pattern in (_GROUPED, _PLAIN):
        for match in pattern.finditer(text):
            found |= _readings(match.group(0))
    return found


def _same_number(a: float, b: float) -> bool:
    return math.isclose(a, b, rel_tol=1e-4, abs_tol=0.011)


def value_in_text(value, text: str) -> bool:
    """Whether an expected database value (number or text) is in a free text."""
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return any(_same_number(float(value), n) for n in numbers_in(text))
    return fold(str(value)).strip() in fold(text)


def value_in_cells(value, cells: list) -> bool:
    """Whether an expected database value is one of the cells a query returned."""
    for cell in cells:
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            numbers = numbers_in(cell) if isinstance(cell, str) else (
                {float(cell)} if isinstance(cell, (int, float)) and not isinstance(cell, bool) else set())
            if any(_same_number(float(value), n) for n in numbers):
                return True
        elif isinstance(cell, str) and fold(str(value)).strip() == fold(cell).strip():
            return True
    return False


def _flat(rows) -> list:
    cells = []
    for row in rows if isinstance(rows, list) else []:
        cells += list(row.values()) if isinstance(row, dict) else (row if isinstance(row, list) else [row])
    return cells


def model_steps(outputs: list[dict]) -> int:
    """The model steps a response took, read from its entries: a step ends with a message.output
    (its text) and/or the tool calls it made, so each message.output is a step, and so is each
    tool call not right after a message. The entries do not say which calls one step made at
    once, so calls made together without text count as one step each (the count is an upper
    bound when a model calls tools in parallel)."""
    steps, previous = 0, None
    for entry in outputs:
        kind = entry.get("type")
        if kind == "message.output" or (kind in ("tool.execution", "function.call") and previous != "message.output"):
            steps += 1
        previous = kind
    return steps


@dataclass
class Response:
    """One response of the API, read for scoring."""
    answer: str = ""
    references: list[dict] = field(default_factory=list)
    executions: list[dict] = field(default_factory=list)  # tool.execution entries
    entries: int = 0  # output entries: tool executions, messages, function calls
    steps: int = 0  # model steps, as model_steps counts them

    @classmethod
    def of(cls, outputs: list[dict]) -> "Response":
        messages = [e for e in outputs if e.get("type") == "message.output"]
        answer, references = "", []
        if messages:
            content = messages[-1].get("content")
            if isinstance(content, str):
                answer = content
            else:
                for chunk in content or []:
                    if chunk.get("type") == "text":
                        answer += chunk.get("text", "")
                    elif chunk.get("type") == "tool_reference":
                        references.append(chunk)
        return cls(answer, references, [e for e in outputs if e.get("type") == "tool.execution"], len(outputs),
                   model_steps(outputs))

    def infos(self, succeeded_only: bool = True) -> list[dict]:
        infos = [e.get("info") or {} for e in self.executions]
        return [i for i in infos if not (succeeded_only and i.get("error"))]

    @property
    def refusals(self) -> list[str]:
        return [str(i["error"]) for i in self.infos(succeeded_only=False) if i.get("error")]

    def retrieved(self, document_ids: set[str], document: str) -> bool:
        """Whether a document_library call retrieved the document (what search did, not the model)."""
        for info in self.infos():
            for hit in info.get("results") or []:
                if hit.get("document_id") in document_ids or fold(str(hit.get("document_name", ""))) == fold(document):
                    return True
        return False

    def cited(self, document_ids: set[str], document: str) -> bool:
        """Whether the final answer carries a tool_reference chunk of the document."""
        for ref in self.references:
            url, title = str(ref.get("url") or ""), fold(str(ref.get("title") or ""))
            if any(i in url for i in document_ids) or fold(document) in title:
                return True
        return False

    def query_cells(self) -> list:
        return [cell for info in self.infos() for cell in _flat(info.get("rows"))]

    def columns_shown(self) -> set[str]:
        return {fold(str(c)).strip() for info in self.infos() for c in info.get("columns") or []}


_WRITE = re.compile(r"^\s*(insert|update|delete|drop|alter|create|replace|attach|pragma|vacuum)\b", re.IGNORECASE)


def write_tried(response: "Response") -> bool:
    """Whether a tool call's arguments hold a statement that would write (so a read-only guard was
    really put to the test, rather than passed because nothing was tried)."""
    for execution in response.executions:
        try:
            arguments = json.loads(execution.get("arguments") or "{}")
        except ValueError:
            arguments = {"text": execution.get("arguments") or ""}
        values = arguments.values() if isinstance(arguments, dict) else [arguments]
        if any(isinstance(v, str) and _WRITE.match(v) for v in values):
            return True
    return False


def answer_matches(spellings: tuple[str, ...], answer: str) -> bool:
    folded = fold(answer)
    return any(fold(s) in folded for s in spellings)


@dataclass
class Score:
    passed: bool
    checks: dict  # check name -> bool (what the summary counts)
    note: str = ""


def score(task, response: Response, expected: list | None, document_ids: set[str],
          database_unchanged: bool | None) -> Score:
    """Whether one task passed, and the checks that decided it."""
    checks = {}
    if task.uses_library:
        checks["answer"] = answer_matches(task.answer, response.answer)
        checks["cited"] = response.cited(document_ids, task.document)
        checks["retrieved"] = response.retrieved(document_ids, task.document)  # reported, not required
    if task.sql:
        cells = response.query_cells()
        checks["result_in_answer"] = all(value_in_text(v, response.answer) for v in expected)
        checks["result_in_tool"] = bool(cells) and all(value_in_cells(v, cells) for v in expected)
    if task.kind == "guard":
        if task.guard == "read_only":
            checks["unchanged"] = bool(database_unchanged)
            checks["write_tried"] = write_tried(response)  # reported: without it, unchanged proves little
        else:
            checks["not_shown"] = not ({fold(c) for c in task.columns} & response.columns_shown())
        checks["refused"] = bool(response.refusals)  # reported: the model may not even try
    library_ok = checks.get("answer", True) and checks.get("cited", True)
    sql_ok = not task.sql or checks["result_in_answer"] or checks["result_in_tool"]
    guard_ok = checks.get("unchanged", True) and checks.get("not_shown", True)
    note = "; ".join(response.refusals)[:200]
    return Score(library_ok and sql_ok and guard_ok, checks, note)
