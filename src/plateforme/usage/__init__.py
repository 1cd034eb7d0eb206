"""Usage metering (tokens per workspace, key and model) and the limits enforced from it."""
