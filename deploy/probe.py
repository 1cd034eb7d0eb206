"""Container probes that match GET /health (which needs a key, like every route).

    python probe.py ready   exit 0 when /health answers 200: every model worker answers
    python probe.py alive   exit 0 when the gateway answers /health at all (200, or 503 while a
                            worker is down: the supervisor restarts workers itself, the gateway
                            process must not be killed for it)

The key is PLATEFORME_API_KEY (the static admin key shared by the replicas); the port
PLATEFORME_PORT. /health generates one token per worker (reused for PLATEFORME_HEALTH_CACHE_S)
within PLATEFORME_HEALTH_PROBE_TIMEOUT (15 s): give the probe a timeout above that.
"""

import os
import sys
import urllib.error
import urllib.request


def main() -> int:
    mode = sys.argv[1] if len(sys.argv) > 1 else "ready"
    request = urllib.request.Request(f"http://127.0.0.1:{os.environ.get('PLATEFORME_PORT', '8000')}/health",
                                     headers={"Authorization": f"Bearer {os.environ.get('PLATEFORME_API_KEY', '')}"})
    try:
        with urllib.request.urlopen(request, timeout=float(os.environ.get("PROBE_TIMEOUT_S", "18"))) as answer:
            status = answer.status
    except urllib.error.HTTPError as error:
        status = error.code
    except OSError as error:
        print(f"/health: no answer ({error})", file=sys.stderr)
        return 1
    if status == 401:
        print("/health refused the key: set PLATEFORME_API_KEY (the same on every replica)", file=sys.stderr)
        return 1
    if mode == "alive":
        return 0 if status in (200, 503) else 1
    return 0 if status == 200 else 1


if __name__ == "__main__":
    sys.exit(main())
