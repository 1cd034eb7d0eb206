"""The generation core shared by chat and fill-in-the-middle completions (core.py).

Resolution of the engine (base model or a workspace's fine-tune), admission (n choices take n
slots), the context-window check, default sampling, seeds per choice, gating of a stream until
the engine accepted every choice, and the reduction of deltas to choices. Chat and FIM only plan
their choices (how the prompt is built and which engine protocol generates it). Results are the
chat types (chat/types.py), which FIM shares as Mistral's API answers FIM with chat shapes.
"""
