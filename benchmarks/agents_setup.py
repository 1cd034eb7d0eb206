"""What the agent benchmark sets up before its tasks, all through the API of a server it starts.

    stack = AgentStack.start(models, chat_model)    # `plateforme serve`, no auth, a temporary data dir
    stack.register_database(sqlite_path, connector)  # POST /v1/admin/workspaces/{ws}/databases
    library_id, names = stack.create_library(DOCUMENTS)  # SDK beta.libraries: create, upload, wait
    agents = stack.create_agents(library_id, connector["name"], completion_args)
    stack.stop()

The server is the one bench_moderation.py starts (moderation_gateway.Gateway): the packaged
default models, or the operator's models config. In --no-auth mode the caller is the admin of the
implicit workspace (tenancy/principal.py DEV_WORKSPACE), so the admin routes are reachable with
no key.
"""

import os
import time
from dataclasses import dataclass
from pathlib import Path

import httpx
from mistralai.client import Mistral
from moderation_gateway import BenchError, Gateway

from plateforme.tenancy.principal import DEV_WORKSPACE

INGESTION_TIMEOUT_S = 600
SDK_TIMEOUT_MS = 900_000  # a response is bounded by the server's own agent_max_seconds (300 s)

COMPANY = "Valmery Technologies"
INSTRUCTIONS = {
    "library": (f"You are the internal assistant of {COMPANY}. Answer from the company's documents: search "
                "them with the document library tool, then answer in one or two sentences and cite the "
                "passage you used."),
    "database": (f"You are the internal assistant of {COMPANY}. Answer questions about customers, products and "
                 "orders by querying the company database with SQL (its schema tool lists the tables and "
                 "columns). Answer in one or two sentences with the values the query returned."),
    "mixed": (f"You are the internal assistant of {COMPANY}. Use the document library tool for the company's "
              "policies and papers, and the database tools (SQL) for customers, products and orders. Answer "
              "in one or two sentences, citing the passages you used and giving the values the queries "
              "returned."),
}


def _check(response: httpx.Response, what: str) -> dict:
    if response.status_code >= 300:
        raise BenchError(f"{what} answered {response.status_code}: {response.text[:800]}")
    return response.json()


@dataclass
class AgentStack:
    gateway: Gateway
    model: str
    http: httpx.Client
    client: Mistral

    @classmethod
    def start(cls, models: list[dict] | None, model: str) -> "AgentStack":
        # The loop's bounds as the operator set them for this run (PLATEFORME_AGENT_MAX_SECONDS on a slow
        # machine...); the server takes no other setting of the caller's environment.
        bounds = {k: v for k, v in os.environ.items() if k.startswith("PLATEFORME_AGENT_")}
        gateway = Gateway("agents", models, None, bounds)
        try:
            gateway.wait_healthy()
        except BenchError:
            gateway.stop()
            raise
        served = [m["id"] for m in httpx.get(f"{gateway.url}/v1/models", timeout=30).json()["data"]]
        if model not in served:
            gateway.stop()
            raise BenchError(f"the server does not serve {model!r} (it serves {', '.join(served)}); "
                             "name a chat model of the models config with --model")
        http = httpx.Client(base_url=gateway.url, timeout=SDK_TIMEOUT_MS / 1000)
        return cls(gateway, model, http, Mistral(api_key="no-auth", server_url=gateway.url, timeout_ms=SDK_TIMEOUT_MS))

    @property
    def dir(self) -> Path:
        return self.gateway.dir

    def alive(self) -> bool:
        return self.gateway.proc.poll() is None

    def stop(self) -> None:
        self.http.close()
        self.gateway.stop()

    def register_database(self, sqlite_path: Path, connector: dict) -> dict:
        """The company database as a connector of the workspace, with the tables tasks.yaml lists."""
        body = {"name": connector["name"], "description": connector.get("description"),
                "url": f"sqlite:///{Path(sqlite_path).resolve()}", "tables": connector["tables"]}
        if connector.get("row_cap"):
            body["row_cap"] = connector["row_cap"]
        return _check(self.http.post(f"/v1/admin/workspaces/{DEV_WORKSPACE}/databases", json=body),
                      "registering the company database")

    def create_library(self, documents: Path) -> tuple[str, dict[str, str]]:
        """A library holding every shipped document, ingested: its id and {document id: file name}."""
        library = self.client.beta.libraries.create(name=f"{COMPANY} documents",
                                                    description="Policies, guides and minutes of the company")
        names = {}
        for path in sorted(documents.iterdir()):
            document = self.client.beta.libraries.documents.upload(
                library_id=library.id, file={"file_name": path.name, "content": path.read_bytes()})
            names[document.id] = path.name
        deadline = time.monotonic() + INGESTION_TIMEOUT_S
        for document_id, name in names.items():
            while True:
                status = self.client.beta.libraries.documents.status(library_id=library.id, document_id=document_id)
                if status.process_status not in ("todo", "in_progress", "waiting_for_capacity"):
                    break
                if time.monotonic() > deadline:
                    raise BenchError(f"{name} was not ingested after {INGESTION_TIMEOUT_S} s")
                time.sleep(0.3)
            if status.process_status != "done":
                raise BenchError(f"{name} was not ingested: {status.process_status} "
                                 f"({getattr(status, 'process_error', None)})")
        return library.id, names

    def create_agents(self, library_id: str, connector: str, completion_args: dict) -> dict[str, str]:
        """One agent per kind of task: library, database, and one with both; their ids by kind."""
        tools = {"library": [{"type": "document_library", "library_ids": [library_id]}],
                 "database": [{"type": "connector", "connector_id": connector}]}
        tools["mixed"] = tools["library"] + tools["database"]
        agents = {}
        for kind, kind_tools in tools.items():
            agent = self.client.beta.agents.create(model=self.model, name=f"valmery-{kind}",
                                                   instructions=INSTRUCTIONS[kind], tools=kind_tools,
                                                   completion_args=completion_args)
            agents[kind] = agent.id
        return agents
