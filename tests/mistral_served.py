"""One server shared by test_mistral_prompts.py and test_fim.py (started once per session).

Models: a tiny random Mistral-native checkpoint imported with `plateforme models import`'s code
(tekken tokenizer, v3: JSON tool calls) and the same weights with a v11 copy of its tokenizer
(`[TOOL_CALLS]name[ARGS]{...}`; token ids are unchanged, only the file's version and special
token names differ, and the gateway speaks token ids); the default model's GGUF with three rarely
used special tokens turned into StarCoder-style FIM tokens; and the default model (no FIM).
"""

from pathlib import Path

from gguf_copy import copy_with_fim_tokens
from mistral_tokenizers import write_v11_tekken
from server_process import DEFAULT_MODEL, ServerProcess, default_model_entry

from plateforme.models.registry import ModelRegistry

TINY, TINY_V11, STARCODER_FIM = "tiny-mistral", "tiny-mistral-v11", "smollm2-fim"
# <jupyter_start>, <jupyter_text>, <jupyter_code> of SmolLM2's vocabulary.
FIM_IDS = (11, 12, 13)
# The importer caps this model's context at its 64-token sliding window; its weights are random,
# so a longer window changes nothing the tests look at.
TINY_CONTEXT = 1024

_shared: dict = {}


def shared_server(start_server, tmp_path_factory) -> tuple[ServerProcess, dict[str, Path]]:
    """(server, tokenizer file of each tiny model)."""
    if "server" not in _shared:
        from tiny_checkpoints import make_checkpoint

        from plateforme.models.importer import import_checkpoint

        work = tmp_path_factory.mktemp("mistral-served")
        checkpoint = make_checkpoint(work / "ckpt", "mistral", "native", tokenizer="tekken-small")
        spec = import_checkpoint(checkpoint, work / "data", name=TINY, progress=False)
        v11 = write_v11_tekken(work / "tekken-v11.json", Path(spec.tokenizer))
        tiny = spec.model_dump(exclude_defaults=True) | {"context_length": TINY_CONTEXT, "max_queue": 8}
        src = ModelRegistry.from_file(None).get(DEFAULT_MODEL).weights_path()
        fim_gguf = copy_with_fim_tokens(src, work / "smollm2-fim.gguf", FIM_IDS)
        models = [
            tiny, tiny | {"name": TINY_V11, "tokenizer": str(v11)},
            default_model_entry(name=STARCODER_FIM, path=str(fim_gguf), parallel=2, max_queue=4, aliases=[]),
            default_model_entry(parallel=2, max_queue=4),
        ]
        _shared["server"] = start_server(models=models, shared=True)  # stopped at the end of the session
        _shared["tokenizers"] = {TINY: Path(spec.tokenizer), TINY_V11: v11}
    return _shared["server"], _shared["tokenizers"]
