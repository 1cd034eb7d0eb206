"""The deployment files (deploy/: compose, Kubernetes, models configs) parse, name only settings
that exist, and probe /health the way deploy/probe.py does (docker cannot run here, so this is
what can be checked without it; probe.py itself runs against live replicas in test_replicas.py)."""

import re
from pathlib import Path

import yaml

from plateforme.models.registry import read_models_file
from plateforme.settings import Settings

DEPLOY = Path(__file__).parent.parent / "deploy"
SRC = Path(__file__).parent.parent / "src" / "plateforme"


def _known_variables() -> set[str]:
    """PLATEFORME_* variables the platform reads: its settings, and those read from os.environ."""
    known = {f"PLATEFORME_{name.upper()}" for name in Settings.model_fields}
    for path in SRC.rglob("*.py"):
        known |= set(re.findall(r"environ(?:\.get)?[\(\[]\s*[\"'](PLATEFORME_[A-Z0-9_]+)", path.read_text()))
    return known


def _variables(node) -> set[str]:
    """Every PLATEFORME_* name used as a key or `name:` anywhere in a YAML document."""
    found = set()
    if isinstance(node, dict):
        for key, value in node.items():
            if isinstance(key, str) and key.startswith("PLATEFORME_"):
                found.add(key)
            if key == "name" and isinstance(value, str) and value.startswith("PLATEFORME_"):
                found.add(value)
            found |= _variables(value)
    elif isinstance(node, list):
        for item in node:
            found |= _variables(item)
    return found


def _k8s_documents() -> list[dict]:
    return [doc for path in sorted((DEPLOY / "k8s").glob("*.yaml")) for doc in yaml.safe_load_all(path.read_text())]


def test_every_platform_variable_in_the_deployment_files_is_a_real_setting():
    known = _known_variables()
    assert "PLATEFORME_S3_ENDPOINT_URL" in known and "PLATEFORME_LIMITS_BACKEND" in known
    compose = yaml.safe_load((DEPLOY / "compose.yaml").read_text())
    used = _variables(compose) | set().union(*(_variables(doc) for doc in _k8s_documents()))
    assert {"PLATEFORME_DATABASE_URL", "PLATEFORME_BLOB_STORE", "PLATEFORME_URL_SIGNING_KEY"} <= used
    assert used <= known, f"not settings of the platform: {sorted(used - known)}"
    Settings(limits_backend=compose["x-gateway"]["environment"]["PLATEFORME_LIMITS_BACKEND"])  # a valid value


def test_compose_runs_two_replicas_behind_the_balancer_with_shared_storage():
    compose = yaml.safe_load((DEPLOY / "compose.yaml").read_text())
    services = compose["services"]
    gateways = [name for name, s in services.items() if s.get("command") is None and s.get("image") == "plateforme:latest"]
    assert gateways == ["gateway-1", "gateway-2"]
    one, two = (services[g] for g in gateways)
    assert one["environment"] == two["environment"]  # one platform: same database, store, keys
    assert one["environment"]["PLATEFORME_DATABASE_URL"].startswith("postgresql://")
    assert one["environment"]["PLATEFORME_BLOB_STORE"].startswith("s3://")
    assert one["healthcheck"]["test"][-2:] == ["/opt/plateforme/probe.py", "ready"]
    assert one["depends_on"]["init"]["condition"] == "service_completed_successfully"  # migrated first
    nginx = (DEPLOY / "nginx.conf").read_text()
    assert all(f"server {g}:8000" in nginx for g in gateways) and "proxy_buffering off" in nginx
    assert services["vllm"]["profiles"] == ["gpu"]
    for mount in one["volumes"]:
        host = mount.split(":")[0]
        if host.startswith("./"):
            assert (DEPLOY / host).exists(), mount
    for name in ("models.yaml", "models-vllm.yaml"):
        assert read_models_file(DEPLOY / name)  # valid models configs


def test_kubernetes_probes_match_health_and_vllm_gets_a_gpu():
    docs = {(d["kind"], d["metadata"]["name"]): d for d in _k8s_documents()}
    gateway = docs[("Deployment", "plateforme-gateway")]["spec"]["template"]["spec"]["containers"][0]
    assert gateway["readinessProbe"]["exec"]["command"][-1] == "ready"
    assert gateway["livenessProbe"]["exec"]["command"][-1] == "alive"
    health_timeout = Settings.model_fields["health_probe_timeout"].default
    for probe in ("startupProbe", "readinessProbe", "livenessProbe"):
        assert gateway[probe]["timeoutSeconds"] > health_timeout
    config = docs[("ConfigMap", "plateforme")]["data"]
    assert yaml.safe_load(config["models.yaml"])["models"]
    secret_keys = set(docs[("Secret", "plateforme")]["stringData"])
    for env in gateway["env"]:
        assert env["valueFrom"]["secretKeyRef"]["key"] in secret_keys
    assert docs[("Service", "plateforme")]["spec"]["selector"] == \
        docs[("Deployment", "plateforme-gateway")]["spec"]["template"]["metadata"]["labels"]
    vllm = docs[("Deployment", "vllm")]["spec"]["template"]["spec"]["containers"][0]
    assert vllm["resources"]["limits"]["nvidia.com/gpu"] >= 1
    assert vllm["readinessProbe"]["httpGet"]["path"] == "/health"
