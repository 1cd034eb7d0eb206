"""Worker process: one GGUF model served by llama.cpp (xllamacpp) over OpenAI-compatible HTTP.

Run by the supervisor as `python -m plateforme.engines.llamacpp_worker ...`; it listens on
loopback only and exits when its parent (the gateway) dies.

OpenMP (llama.cpp's libgomp) reads its settings once, when xllamacpp loads: OMP_WAIT_POLICY=passive
(unless the operator set it) keeps the worker's idle threads from spinning on cores that the
gateway, other workers and trainers share (on 2 cores, spinning threads cost several times the
CPU of the generation itself).
"""

import argparse
import ctypes
import os
import signal
import sys
import threading


def _die_with_parent() -> None:
    """Ask Linux to SIGKILL us when the gateway dies, so no orphan keeps the model loaded."""
    try:
        libc = ctypes.CDLL("libc.so.6", use_errno=True)
        PR_SET_PDEATHSIG = 1
        libc.prctl(PR_SET_PDEATHSIG, signal.SIGKILL)
    except OSError:
        parent = os.getppid()

        def watch() -> None:
            while os.getppid() == parent:
                threading.Event().wait(1.0)
            os._exit(1)

        threading.Thread(target=watch, daemon=True).start()


def build_params(args: argparse.Namespace):
    import xllamacpp

    params = xllamacpp.CommonParams()
    params.model.path = args.model
    params.hostnames = [args.host]
    params.port = args.port
    params.n_parallel = args.parallel
    # llama.cpp splits n_ctx between slots: each request gets exactly context_length tokens.
    params.n_ctx = args.context_length * args.parallel
    params.cont_batching = True
    params.use_jinja = True
    params.n_predict = -1
    # Every streaming request holds an HTTP thread for its whole life; context checks (tokenize,
    # apply-template) run beside them and must never make a stream wait for a thread.
    params.n_threads_http = max(8, 3 * args.parallel + 4)
    lora = getattr(args, "lora", None)
    if lora:
        # LoRA adapters of fine-tunes: loaded with the base, off until a request switches one on
        # (body field `lora: [{"id": i, "scale": 1.0}, ...]`).
        params.lora_adapters = [xllamacpp.CommonAdapterLoraInfo(path, 0.0) for path in lora]
        params.lora_init_without_apply = True
    api_key = getattr(args, "api_key", None)
    if api_key:  # a standalone server that requires `Authorization: Bearer <key>` (/health stays open)
        params.api_keys = [api_key]
    if getattr(args, "speculative", "none") == "ngram":
        # Drafts from n-grams of the slot's own tokens (prompt and answer so far), checked by the
        # model: the output is unchanged, edits that copy their input (predicted outputs) go faster.
        params.speculative.types = [xllamacpp.common_speculative_type.COMMON_SPECULATIVE_TYPE_NGRAM_SIMPLE]
    if args.threads:
        params.cpuparams.n_threads = args.threads
        params.cpuparams_batch.n_threads = args.threads
    return params


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="plateforme-llamacpp-worker")
    parser.add_argument("--model", required=True, help="GGUF file")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--context-length", type=int, required=True)
    parser.add_argument("--parallel", type=int, required=True)
    parser.add_argument("--threads", type=int, default=0)
    parser.add_argument("--api-key", help="require this API key (standalone use; the gateway's own "
                        "workers listen on loopback without one)")
    parser.add_argument("--speculative", choices=["none", "ngram"], default="none",
                        help="speculative decoding: ngram drafts from the prompt and the answer so far")
    parser.add_argument("--lora", action="append", default=[], help="LoRA adapter GGUF (repeatable)")
    args = parser.parse_args(argv)
    serve(build_params, args, "worker")


def serve(make_params, args: argparse.Namespace, label: str) -> None:
    """Run the llama.cpp server with `make_params(args)` until SIGTERM/SIGINT (or the parent's death)."""
    _die_with_parent()
    os.environ.setdefault("OMP_WAIT_POLICY", "passive")  # before libgomp loads (see above)
    import xllamacpp

    server = xllamacpp.Server(make_params(args))
    print(f"{label} ready on {server.listening_address}", file=sys.stderr, flush=True)
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    while not stop.wait(3600):
        pass
    del server


if __name__ == "__main__":
    main()
