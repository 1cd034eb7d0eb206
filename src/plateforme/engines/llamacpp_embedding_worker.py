"""Worker process: one GGUF embedding model served by llama.cpp (xllamacpp) in embedding mode.

Run by the supervisor as `python -m plateforme.engines.llamacpp_embedding_worker ...`: the chat
worker's parameters (engines/llamacpp_worker.py) plus llama.cpp's embedding mode (`embedding`,
the pooling of token vectors into one, euclidean normalisation). Each input must fit one batch
(encoder models see the whole input at once): the micro-batch is the context per slot.
"""

import argparse

from plateforme.engines.llamacpp_worker import build_params, serve

POOLINGS = ("mean", "cls", "last")


def embedding_params(args: argparse.Namespace):
    import xllamacpp

    params = build_params(args)
    params.embedding = True
    if args.pooling:
        params.pooling_type = getattr(xllamacpp.llama_pooling_type, f"LLAMA_POOLING_TYPE_{args.pooling.upper()}")
    params.embd_normalize = 2  # euclidean: unit vectors, as the gateway answers them
    params.n_batch = params.n_ctx  # every slot's input at once
    params.n_ubatch = args.context_length  # one whole input (an encoder sees it at once)
    return params


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="plateforme-llamacpp-embedding-worker")
    p.add_argument("--model", required=True, help="GGUF file")
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, required=True)
    p.add_argument("--context-length", type=int, required=True, help="tokens one input may have")
    p.add_argument("--parallel", type=int, required=True)
    p.add_argument("--threads", type=int, default=0)
    p.add_argument("--pooling", choices=POOLINGS, help="default: the GGUF's own pooling")
    return p


def main(argv: list[str] | None = None) -> None:
    serve(embedding_params, parser().parse_args(argv), "embedding worker")


if __name__ == "__main__":
    main()
