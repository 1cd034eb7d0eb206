"""Fill-in-the-middle completions: code between a prompt and a suffix, on models with FIM tokens."""
