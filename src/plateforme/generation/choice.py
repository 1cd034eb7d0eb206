"""One planned choice of a generation, as the core drives it."""

from collections.abc import AsyncIterator
from typing import Protocol

from plateforme.chat.types import Delta, Usage


class ChoiceGeneration(Protocol):
    index: int

    def stream(self) -> AsyncIterator[Delta | Usage]:
        """This choice's deltas, then its Usage; nothing before the engine accepted it."""

    def prompt_token_bound(self) -> int:
        """An upper bound of the prompt's tokens, known without asking the engine."""

    async def count_prompt_tokens(self) -> int:
        """The exact prompt token count (may ask the engine)."""
