"""What a gateway or CLI process imports at start: mistral-common and psycopg only once a
Mistral-format model or a PostgreSQL connector is used (together about 0.8 s of CPU at every start)."""

import subprocess
import sys

CHECK = """
import sys
import plateforme.api.app, plateforme.cli
print(sorted(m for m in ("mistral_common", "psycopg") if m in sys.modules))
"""


def test_the_gateway_starts_without_mistral_common_or_psycopg():
    done = subprocess.run([sys.executable, "-c", CHECK], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "[]", done.stdout
