"""The fine-tuning trainer: LoRA on a GGUF base model, run as its own process (`python -m plateforme.training`).

The gateway never imports this package (it needs torch); it starts the trainer and reads the
JSON events the trainer prints on stdout. See `__main__` for the command line and the events.
"""
