"""Citations: the final answer as Mistral's content chunks, each [n] the model wrote replaced by the
tool_reference chunk of the n-th passage the tools retrieved.

The loop (conversations/loop.py) calls `cite(text, references)` with the answer's text and every
reference the response's tool calls returned, in the order the calls ran. Reference n (1-based,
repeats of one passage counted once) is what `[n]` names: the document_library tool numbers the
excerpts it shows the model the same way, continuing across the calls of one response.

    cite("Leave is 25 days [1].", [ref1, ref2])
    -> [{"type": "text", "text": "Leave is 25 days"}, {**ref1}, {"type": "text", "text": "."}]

Only what was retrieved is ever cited: a marker naming no retrieved passage ([7] of 3) is dropped
with the space before it; an answer with no marker that names one gets the retrieved references
after its text, so the reader still sees the sources the answer was written from.

A streamed answer goes through CitationStream: the text deltas become message.output.delta
contents (text pieces and tool_reference chunks, each with its content_index) that add up to
cite(text), and the entry stored at the end has cite(text) as its content.
"""

import re

# [1], [2, 3], [2,3]: one bracket, one or more numbers. The spaces before a marker go with it.
MARKER = re.compile(r"[ \t]*\[(\d{1,4}(?:[ \t]*,[ \t]*\d{1,4})*)\]")
# Code (``` fenced blocks, `inline` spans) is never read for markers: x[0] there is code.
CODE = re.compile(r"```.*?(?:```|\Z)|`[^`\n]*`", re.DOTALL)

# The keys of Mistral's ToolReferenceChunk (additionalProperties: false): anything else is left out.
REFERENCE_KEYS = ("type", "tool", "title", "url", "favicon", "description")

CITING_INSTRUCTION = (
    "When you use a numbered search result, cite it by writing its number in square brackets right "
    "after the sentence that uses it, for example [1] or [1, 2]. Cite only the numbers of results you "
    "were given, and do not write a list of sources at the end.")


def with_citing_instruction(instructions: str | None) -> str:
    """The system instructions of a response whose tools return references, with the citing rule."""
    return f"{instructions.rstrip()}\n\n{CITING_INSTRUCTION}" if instructions and instructions.strip() \
        else CITING_INSTRUCTION


def reference_key(reference: dict) -> tuple:
    """What makes two references one passage (their links differ: each carries its own signature)."""
    return reference.get("tool"), reference.get("title"), reference.get("description")


def numbered(references: list[dict]) -> list[dict]:
    """The references as [1], [2]... name them: repeats of one passage counted once, spec keys only."""
    seen, out = set(), []
    for reference in references:
        if not isinstance(reference, dict) or reference.get("type", "tool_reference") != "tool_reference":
            continue
        key = reference_key(reference)
        if key in seen:
            continue
        seen.add(key)
        chunk = {k: reference[k] for k in REFERENCE_KEYS if reference.get(k) is not None}
        chunk["type"] = "tool_reference"
        out.append(chunk)
    return out


def _add_text(chunks: list[dict], text: str) -> None:
    if not text:
        return
    if chunks and chunks[-1]["type"] == "text":
        chunks[-1]["text"] += text
    else:
        chunks.append({"type": "text", "text": text})


def _markers(text: str):
    """The markers of `text` outside code."""
    code = [match.span() for match in CODE.finditer(text)]
    for match in MARKER.finditer(text):
        if not any(start <= match.start(1) < end for start, end in code):
            yield match


def _glued(text: str, match: re.Match) -> bool:
    """The marker follows a word with no space between (an index like items[0], not a citation)."""
    start = match.start()
    return start > 0 and text[start] == "[" and (text[start - 1].isalnum() or text[start - 1] in "_)")


def _chunks(text: str, refs: list[dict]) -> tuple[list[dict], bool]:
    """`text` as chunks with its markers resolved against `refs` (already numbered), and whether
    any marker named one of them."""
    chunks: list[dict] = []
    cited = False
    position = 0
    for match in _markers(text):
        numbers = [int(n) for n in match.group(1).split(",")]
        names = [n for n in numbers if 1 <= n <= len(refs)]
        if not names and _glued(text, match):
            continue  # e.g. items[0]: an index, not a citation; left as written
        _add_text(chunks, text[position:match.start()])
        position = match.end()
        for number in names:
            chunks.append(dict(refs[number - 1]))
            cited = True
    _add_text(chunks, text[position:])
    if chunks and chunks[0]["type"] == "text" and not text[:1].isspace():
        chunks[0]["text"] = chunks[0]["text"].lstrip()  # a marker dropped at the very start
        if not chunks[0]["text"]:
            chunks.pop(0)
    return chunks, cited


def cite(text: str, references: list[dict]) -> list[dict]:
    """`text` as content chunks: text, and after each [n] naming a retrieved passage its
    tool_reference chunk (a copy); markers naming nothing retrieved dropped; with no valid marker,
    every retrieved reference after the text. Never a reference that was not retrieved."""
    refs = numbered(references)
    chunks, cited = _chunks(text, refs)
    if not cited:
        chunks.extend(dict(ref) for ref in refs)
    return chunks or [{"type": "text", "text": ""}]


# What may still change meaning when more text comes: spaces and an unfinished marker at the end
# ("capital [", "[1, 2"), an unclosed inline code span on the last line, a backtick at the end.
_OPEN_TAIL = re.compile(r"[ \t]*(?:\[[\d \t,]*)?\Z")


class CitationStream:
    """cite() for a streamed answer: feed the model's text deltas, get the message.output.delta
    contents to send, as (content_index, content) pairs, where content is a piece of text or a
    tool_reference chunk. A piece whose meaning the next delta may change (a space, an unfinished
    marker or code span) is held back until it is known. Joined, the pieces are cite(text).

        stream = CitationStream(references)
        for delta in deltas:
            for index, content in stream.feed(delta): send(index, content)
        for index, content in stream.finish(): send(index, content)
        entry_content = stream.content()
    """

    def __init__(self, references: list[dict]):
        self.refs = numbered(references)
        self.text = ""
        self.sent: list[dict] = []  # the chunks as the client has them so far

    def feed(self, delta: str) -> list[tuple[int, str | dict]]:
        self.text += delta
        return self._send(_chunks(self.text[:self._settled()], self.refs)[0])

    def finish(self) -> list[tuple[int, str | dict]]:
        return self._send(self.content())

    def content(self) -> list[dict]:
        """The answer's content chunks (the MessageOutputEntry's content): cite(text)."""
        chunks, cited = _chunks(self.text, self.refs)
        if not cited:
            chunks.extend(dict(ref) for ref in self.refs)
        return chunks or [{"type": "text", "text": ""}]

    def _settled(self) -> int:
        end = _OPEN_TAIL.search(self.text).start()
        line_start = self.text.rfind("\n", 0, end) + 1
        ticks = [i for i in range(line_start, end) if self.text[i] == "`"]
        if len(ticks) % 2 or (ticks and ticks[-1] == end - 1):  # a span open, or a ``` still coming
            end = ticks[0]
        return end

    def _send(self, chunks: list[dict]) -> list[tuple[int, str | dict]]:
        out: list[tuple[int, str | dict]] = []
        for index, chunk in enumerate(chunks):
            if index < len(self.sent):
                before = self.sent[index]
                if chunk == before:
                    continue
                grown = chunk["type"] == before["type"] == "text" and chunk["text"].startswith(before["text"])
                if grown and index == len(self.sent) - 1:
                    out.append((index, chunk["text"][len(before["text"]):]))
                    self.sent[index] = dict(chunk)
                continue  # a chunk already sent is never taken back (the entry has the final form)
            out.append((index, chunk["text"] if chunk["type"] == "text" else dict(chunk)))
            self.sent.append(dict(chunk))
        return out
