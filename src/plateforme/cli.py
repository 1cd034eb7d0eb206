"""`plateforme` command line: serve the API, list models."""

import argparse
import sys
from pathlib import Path

from plateforme import cli_admin, cli_datasets
from plateforme.models.importer import QUANTS, ImportFailed, import_checkpoint
from plateforme.models.registry import IMPORTED_MODELS_FILE, ConfigError, ModelRegistry
from plateforme.models.spec import ModelFileMissing
from plateforme.observability.logging import configure_logging
from plateforme.settings import Settings


def _load(settings: Settings) -> ModelRegistry:
    try:
        registry = ModelRegistry.from_file(settings.config, settings.data_dir)
        for spec in registry.specs:
            if spec.local:
                spec.weights_path()
        return registry
    except (ConfigError, ModelFileMissing) as exc:
        sys.exit(f"plateforme: {exc}")


def serve(args: argparse.Namespace) -> None:
    import uvicorn

    from plateforme.api.app import create_app
    from plateforme.api.header_timeout import protocol_with_header_timeout

    overrides = {k: v for k, v in {"host": args.host, "port": args.port, "config": args.config,
                                   "no_auth": args.no_auth}.items() if v}
    settings = Settings(**overrides)
    configure_logging(settings.log_format, settings.log_level)
    registry = _load(settings)
    app = create_app(settings, registry)
    uvicorn.run(app, host=settings.host, port=settings.port, log_level=settings.log_level, access_log=False,
                log_config=None, http=protocol_with_header_timeout(settings.header_timeout))


def list_models(args: argparse.Namespace) -> None:
    settings = Settings(**({"config": args.config} if args.config else {}))
    registry = _load(settings)
    print(f"{'NAME':28} {'ENGINE':9} {'CONTEXT':>7} {'SLOTS':>5}  WEIGHTS")
    for spec in registry.specs:
        where = spec.weights_path() if spec.local else spec.vllm.model if spec.vllm else " ".join(spec.urls)
        print(f"{spec.name:28} {spec.engine:9} {spec.context_length:>7} {spec.parallel:>5}  {where}")


def import_model(args: argparse.Namespace) -> None:
    data_dir = Settings().data_dir
    try:
        spec = import_checkpoint(args.src, data_dir, name=args.name, quant=args.quant)
    except (ImportFailed, ConfigError) as exc:
        sys.exit(f"plateforme: {exc}")
    except OSError as exc:
        sys.exit(f"plateforme: import failed: {exc}")
    print(f"imported {spec.name} ({spec.context_length} tokens of context): {spec.path}\n"
          f"registered in {data_dir / IMPORTED_MODELS_FILE}; `plateforme serve` will serve it")


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="plateforme", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    p_serve = sub.add_parser("serve", help="serve the API and the configured models")
    p_serve.add_argument("--host", help="address to listen on (default 127.0.0.1)")
    p_serve.add_argument("--port", type=int, help="port to listen on (default 8000)")
    p_serve.add_argument("--config", type=Path, help="models config file (YAML)")
    p_serve.add_argument("--no-auth", action="store_true",
                         help="development only: accept requests without an API key")
    p_serve.set_defaults(func=serve)
    p_models = sub.add_parser("models", help="model registry")
    models_sub = p_models.add_subparsers(dest="models_command", required=True)
    p_list = models_sub.add_parser("list", help="list the configured models")
    p_list.add_argument("--config", type=Path, help="models config file (YAML)")
    p_list.set_defaults(func=list_models)
    p_import = models_sub.add_parser("import", help="convert a checkpoint directory to GGUF and register it")
    p_import.add_argument("src", type=Path, help="Mistral-native (params.json) or Hugging Face (config.json) checkpoint")
    p_import.add_argument("--name", help="model name (default: from the directory name)")
    p_import.add_argument("--quant", choices=QUANTS, default="f16", help="weights type (default f16)")
    p_import.set_defaults(func=import_model)
    cli_admin.add_parser(sub)
    cli_datasets.add_parser(sub)
    args = parser.parse_args(argv)
    args.func(args)


if __name__ == "__main__":
    main()
