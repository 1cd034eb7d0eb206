"""Turn a checked conversation into token ids and the mask of the tokens trained on.

The text is what the platform would send the model when serving it: the gateway's own rendering
of tools and tool traffic (chat/generic_tools.py: tools described in the system message, tool
calls and answers as JSON text, tool results as user messages), formatted by the GGUF's chat
template. When a line offers tools, its trained assistant text turns are written as the
`{"content": ...}` object the served model must answer with when tools are offered.

Which characters belong to a trained assistant turn is found by rendering prefixes of the
conversation (up to the turn with the generation prompt, then including the turn), so it works
for any template; token offsets map those characters to tokens. A turn's span ends with its
end-of-turn marker (whitespace after it is not trained on: the served model stops at the marker).
"""

import json
from dataclasses import dataclass

import torch

from plateforme.chat import generic_tools
from plateforme.training.conversation_checks import BadLine, Conversation


@dataclass(frozen=True)
class TokenizedExample:
    ids: torch.Tensor  # int64, the whole conversation up to its last trained turn
    trained: torch.Tensor  # bool, per token: a target of the loss (predicted from the token before)

    def __len__(self) -> int:
        return int(self.ids.numel())

    @property
    def trained_tokens(self) -> int:
        return int(self.trained.sum())


def served_messages(conversation: Conversation) -> tuple[list[dict], list[int]]:
    """The messages as the gateway sends them to the engine, and their weights (1: trained)."""
    if conversation.tools:
        messages = generic_tools.with_tool_prompt(conversation.messages, conversation.tools, must_call=False)
    else:
        messages = generic_tools.as_plain_messages(conversation.messages)
    offset = len(messages) - len(conversation.messages)  # 1 when a system message was added for the tools
    weights = [0] * offset + list(conversation.weights)
    if conversation.tools:
        for i, original in enumerate(conversation.messages):
            if conversation.weights[i] and not original.get("tool_calls"):
                messages[offset + i]["content"] = json.dumps({"content": original["content"]}, ensure_ascii=False)
    last = max(i for i, w in enumerate(weights) if w)
    return messages[:last + 1], weights[:last + 1]


def _render(tokenizer, messages: list[dict], generation_prompt: bool) -> str:
    try:
        return tokenizer.apply_chat_template(messages, tokenize=False, add_generation_prompt=generation_prompt)
    except Exception as exc:  # noqa: BLE001 - jinja2 errors, including the template's raise_exception
        raise BadLine(f"the model's chat template refuses this conversation: {exc}") from None


def _trained_spans(tokenizer, messages: list[dict], weights: list[int], full: str) -> list[tuple[int, int]]:
    spans = []
    for i, weight in enumerate(weights):
        if not weight:
            continue
        prompt = _render(tokenizer, messages[:i], generation_prompt=True)
        turn = _render(tokenizer, messages[:i + 1], generation_prompt=False).rstrip()
        if not turn.startswith(prompt) or not full.startswith(turn):
            raise BadLine(f"the model's chat template renders messages[{i}] differently depending on what "
                          "follows it, so its assistant turn cannot be isolated for training")
        spans.append((len(prompt), len(turn)))
    return spans


def tokenize_conversation(tokenizer, conversation: Conversation) -> TokenizedExample:
    """Token ids and trained-token mask of `conversation` (BadLine when the template cannot render it)."""
    messages, weights = served_messages(conversation)
    full = _render(tokenizer, messages, generation_prompt=False)
    spans = _trained_spans(tokenizer, messages, weights, full)
    encoded = tokenizer(full, add_special_tokens=True, return_offsets_mapping=True)
    ids, offsets = encoded["input_ids"], encoded["offset_mapping"]
    bos = tokenizer.bos_token_id
    if len(ids) > 1 and bos is not None and ids[0] == ids[1] == bos:  # template's BOS plus the tokenizer's
        ids, offsets = ids[1:], offsets[1:]
    ids_tensor = torch.tensor(ids, dtype=torch.long)
    starts = torch.tensor([start for start, _ in offsets], dtype=torch.long)
    ends = torch.tensor([end for _, end in offsets], dtype=torch.long)
    trained = torch.zeros(len(ids), dtype=torch.bool)
    for start, end in spans:
        trained |= (starts >= start) & (starts < end) & (ends > starts)
    trained[0] = False  # the first token has nothing before it to be predicted from
    if not trained.any():
        raise BadLine("the trained assistant turns hold no token once formatted by the chat template")
    return TokenizedExample(ids_tensor, trained)
