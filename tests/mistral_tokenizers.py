"""Mistral tokenizer files for tests: the ones mistral-common ships, and a v11 tekken.

mistral-common ships v1/v2/v3/v7 tokenizers but no v11 one. A v11 tekken file is the same
format with `config.version: "v11"` and an explicit `special_tokens` list (mandatory above v7)
that has [ARGS] and [CALL_ID]; ranks follow Mistral's released v11 tekken files (the 20 legacy
control tokens, then <SPECIAL_n> fillers, [ARGS] at 32 and [CALL_ID] at 33).
"""

import json
from pathlib import Path

from mistral_common.tokens.tokenizers.mistral import MistralTokenizer
from mistral_common.tokens.tokenizers.tekken import Tekkenizer

DATA = Path(MistralTokenizer._data_path())
V3_SPM = DATA / "mistral_instruct_tokenizer_240323.model.v3"
V7_SPM = DATA / "mistral_instruct_tokenizer_241114.model.v7"
V3_TEKKEN = DATA / "tekken_240718.json"
V1_SPM = DATA / "tokenizer.model.v1"
V11_NAMED = {32: "[ARGS]", 33: "[CALL_ID]"}


def write_v11_tekken(dst: Path, src: Path = V3_TEKKEN) -> Path:
    body = json.loads(src.read_text())
    body["config"]["version"] = "v11"
    specials = [{"rank": t["rank"], "token_str": str(t["token_str"]), "is_control": True}
                for t in Tekkenizer.DEPRECATED_SPECIAL_TOKENS]
    for rank in range(len(specials), body["config"]["default_num_special_tokens"]):
        specials.append({"rank": rank, "token_str": V11_NAMED.get(rank, f"<SPECIAL_{rank}>"), "is_control": True})
    body["special_tokens"] = specials
    dst.write_text(json.dumps(body))
    return dst
