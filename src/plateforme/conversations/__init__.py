"""Conversations: stored, stateful exchanges with an agent or a model, run in a bounded tool loop."""
