"""Magistral-style thinking on Mistral-format models: [THINK] / [/THINK] are control tokens that
decoding drops, so the choice stream writes them out from the token ids for the splitter.

No Magistral model can run here, so the engine is a stand-in object that streams llama.cpp
`/completion` chunks (text with its token ids, as llama.cpp sends them: control tokens decode to
nothing); the tokenizer is a real mistral-common v13 tekken built from the packaged one.
"""

import asyncio
import json
from pathlib import Path

import mistral_common
import pytest
from mistral_common.tokens.tokenizers.base import SpecialTokens
from mistral_common.tokens.tokenizers.mistral import MistralTokenizer
from mistral_common.tokens.tokenizers.tekken import Tekkenizer

from plateforme.chat.mistral_choice import MistralChoiceStream
from plateforme.chat.types import ChatRequest, Delta
from plateforme.models.reasoning import is_reasoning
from plateforme.models.spec import ModelSpec

PACKAGED = Path(mistral_common.__file__).parent / "data" / "tekken_240911.json"


@pytest.fixture(scope="module")
def tekken_v13(tmp_path_factory) -> Path:
    """A small v13 tekken whose special tokens include [THINK] and [/THINK]."""
    data = json.loads(PACKAGED.read_text())
    specials = [{"rank": t["rank"], "token_str": str(getattr(t["token_str"], "value", t["token_str"])),
                 "is_control": t["is_control"]} for t in Tekkenizer.DEPRECATED_SPECIAL_TOKENS]
    for token in SpecialTokens:
        if token.value not in {s["token_str"] for s in specials}:
            specials.append({"rank": len(specials), "token_str": token.value, "is_control": True})
    data.update(special_tokens=specials, vocab=data["vocab"][:4000])
    data["config"].update(version="v13", default_vocab_size=5000, num_vocab_tokens=4000)
    data.pop("image", None)
    path = tmp_path_factory.mktemp("tekken") / "tekken.json"
    path.write_text(json.dumps(data))
    return path


class _Engine:
    """Stands in for llama.cpp's /completion stream (see the module docstring)."""

    def __init__(self, pieces: list[tuple[str, list[int]]]):
        self.pieces = pieces

    async def stream_completion(self, body):
        for text, tokens in self.pieces:
            yield {"content": text, "tokens": tokens}
        yield {"content": "", "tokens": [], "stop": True, "stop_type": "eos",
               "tokens_predicted": sum(len(t) for _, t in self.pieces), "tokens_evaluated": 3}


def _run(tokenizer, pieces, reasoning: bool) -> list[Delta]:
    req = ChatRequest(model="magistral", messages=[{"role": "user", "content": "2+2?"}], reasoning=reasoning)
    stream = MistralChoiceStream(_Engine(pieces), 0, req, tokenizer, [1, 2, 3], [], False, {})

    async def collect():
        return [item async for item in stream.stream() if isinstance(item, Delta)]
    return asyncio.run(collect())


def test_think_control_tokens_become_thinking_deltas(tekken_v13):
    tokenizer = MistralTokenizer.from_file(str(tekken_v13))
    inner = tokenizer.instruct_tokenizer
    words = inner.tokenizer.encode("add two and two", bos=False, eos=False)
    answer = inner.tokenizer.encode("four", bos=False, eos=False)
    # llama.cpp's text drops the control tokens; the ids keep them
    pieces = [("", [inner.BEGIN_THINK]), (inner.tokenizer.decode(words[:2]), words[:2]),
              (inner.tokenizer.decode(words[2:]), words[2:] + [inner.END_THINK]),
              (inner.tokenizer.decode(answer), answer)]
    deltas = _run(tokenizer, pieces, reasoning=True)
    assert "".join(d.thinking or "" for d in deltas) == "add two and two"
    assert "".join(d.content or "" for d in deltas) == "four"
    assert sum(1 for d in deltas if d.thinking) >= 2  # streamed as generated
    plain = _run(tokenizer, pieces, reasoning=False)  # a model not reasoning: the text as decoded
    assert not any(d.thinking for d in plain) and "".join(d.content or "" for d in plain) == "add two and twofour"


def test_a_tekken_with_think_tokens_is_detected_as_reasoning(tekken_v13):
    assert is_reasoning(ModelSpec(name="magistral", path="x.gguf", tokenizer=str(tekken_v13))) is True
    assert is_reasoning(ModelSpec(name="nemo", path="x.gguf", tokenizer=str(PACKAGED))) is False
