"""Chat completions: prompt checks, generation and streaming on top of the model workers."""
