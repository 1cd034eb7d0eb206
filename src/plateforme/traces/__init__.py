"""Traces of chat completions, feedback on them, and fine-tuning datasets made from both."""
