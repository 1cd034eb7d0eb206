"""Sampling defaults every generation applies the same way."""


def temperature_of(asked: float | None, default: float) -> float:
    """The request's temperature, or the model's default (shown on its model card)."""
    return asked if asked is not None else default


def choice_seed(seed: int | None, index: int) -> int | None:
    """Choice `index` samples with seed + index: distinct but reproducible choices."""
    return None if seed is None else seed + index
