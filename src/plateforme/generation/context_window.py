"""A request's prompt plus the tokens it asks for must fit the model's window: never truncated."""

from plateforme.chat.errors import ContextLengthExceeded
from plateforme.engines.engine import Engine
from plateforme.engines.errors import EngineContextExceeded
from plateforme.generation.choice import ChoiceGeneration


def _asked(req) -> tuple[str, int]:
    """The larger of max_tokens and min_tokens, with its field name."""
    return max(("max_tokens", req.max_tokens or 0), ("min_tokens", req.min_tokens or 0), key=lambda pair: pair[1])


async def check_context(engine: Engine, req, choice: ChoiceGeneration, prompt: str, param: str) -> None:
    """Refuse prompt + max_tokens (or min_tokens) beyond the window. `prompt` names what to
    shorten ("the messages", "the prompt and suffix"); `param` is the error's param."""
    window = engine.spec.context_length
    field, wanted = _asked(req)
    bound = choice.prompt_token_bound()
    if bound + max(wanted, 1) <= window:
        return  # surely fits: no round trip to the engine (it would delay every stream's start)
    if not engine.capabilities.exact_prompt_count:
        return  # the engine cannot count the prompt: the server itself refuses what does not fit
    prompt_tokens = await choice.count_prompt_tokens()
    if prompt_tokens >= window or prompt_tokens + wanted > window:
        asked = f" and {field} is {wanted}: together they exceed" if wanted else ", which fills"
        raise ContextLengthExceeded(
            f"Prompt contains {prompt_tokens} tokens{asked} the {window}-token context of model "
            f"{req.model!r}. Shorten {prompt}" + (f" or lower {field}." if wanted else "."), param=param)


def too_long(exc: EngineContextExceeded, req, prompt: str, param: str) -> ContextLengthExceeded:
    """The engine itself refused the prompt as longer than its context."""
    return ContextLengthExceeded(
        f"Prompt contains {exc.prompt_tokens} tokens, too large for model {req.model!r} "
        f"with {exc.context} maximum context length. Shorten {prompt}.", param=param)
