"""Shapes of the traces routes: feedback on a chat completion, dataset export."""

from datetime import datetime
from typing import Literal

from pydantic import BaseModel, Field, field_validator

from plateforme.api.schemas.chat_messages import Strict
from plateforme.storage.trace_tables import ChatTrace


class FeedbackIn(Strict):
    rating: Literal[1, -1]
    # The answer the model should have given; it replaces the original one in exported datasets.
    corrected_answer: str | None = Field(default=None, min_length=1, max_length=200_000)
    comment: str | None = Field(default=None, max_length=10_000)

    @field_validator("rating", mode="before")
    @classmethod
    def _integer(cls, value):
        if not isinstance(value, int) or isinstance(value, bool):
            # pydantic reports ValueError (not TypeError) as a validation error of the field
            raise ValueError("rating must be the integer 1 (good answer) or -1 (bad answer)")  # noqa: TRY004
        return value


class FeedbackOut(BaseModel):
    object: Literal["chat.completion.feedback"] = "chat.completion.feedback"
    completion_id: str
    rating: int
    corrected_answer: str | None
    comment: str | None
    created_at: int  # when this feedback was given

    @classmethod
    def of(cls, trace: ChatTrace) -> "FeedbackOut":
        return cls(completion_id=trace.completion_id, rating=trace.rating, corrected_answer=trace.corrected_answer,
                   comment=trace.comment, created_at=int(trace.feedback_at.timestamp()))


class DatasetExportIn(Strict):
    since: datetime | None = None  # only traces captured at or after this time (UTC when no offset)
    include: list[Literal["liked", "corrected"]] = Field(default_factory=lambda: ["liked", "corrected"],
                                                         min_length=1)
