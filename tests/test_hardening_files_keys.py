"""Hardening of files and keys without a server: download headers for any filename, signed-link
signatures of any characters, integer ranges of columns, and the admin CLI's bounds and time zones."""

from datetime import datetime, timedelta, timezone
from email.message import Message
from email.utils import collapse_rfc2231_value

import pytest
from cli_in_process import CliResult, run_cli

from plateforme.files.names import content_disposition
from plateforme.files.signing import UrlSigner
from plateforme.storage.database import open_database
from plateforme.storage.int_range import int_range
from plateforme.storage.tables import ApiKey, Workspace
from plateforme.tenancy.accounts import Accounts
from plateforme.tenancy.ids import as_utc, utcnow

NAMES = ["train.jsonl", "学習データ.jsonl", "🚀 launch.jsonl", "invoice\u202egnp.jsonl", "a\u2028b.jsonl",
         "Café \"menu\".jsonl", "100%.jsonl", "\u2066\u2069", "؟.jsonl"]


def filenames(header: str) -> tuple[str, str]:
    """(filename, filename*) of a Content-Disposition header, decoded by the standard library's RFC 2231
    reader; the second is the one RFC 6266 readers (browsers, curl -J, SDKs) use."""
    parsed = Message()
    parsed["Content-Disposition"] = header
    params = [v for k, v in parsed.get_params(header="Content-Disposition") if k == "filename"]
    plain = next(v for v in params if isinstance(v, str))
    extended = next(v for v in params if isinstance(v, tuple))
    assert extended[0].lower() == "utf-8"
    return plain, collapse_rfc2231_value(extended)


@pytest.mark.parametrize("name", NAMES)
def test_content_disposition_carries_any_name_in_ascii(name):
    header = content_disposition(name)
    assert header.isascii() and header.isprintable()  # what an HTTP server can send (latin-1 at most)
    fallback, exact = filenames(header)
    assert exact == name
    assert fallback and fallback.isascii() and fallback.isprintable() and not set('"\\%') & set(fallback)
    if name.isascii() and name.isprintable() and not set('"\\%') & set(name):
        assert fallback == name


def test_a_non_ascii_signature_is_refused_not_an_error():
    signer = UrlSigner(b"k" * 32)
    expires, good = signer.sign("f", 1)
    assert signer.verify("f", expires, good)
    for forged in ["é" * 64, "署名", "\u202e" + good[1:], good + "\x00", ""]:
        assert signer.verify("f", expires, forged) is False


def test_column_ranges_follow_the_column_types():
    assert int_range(Workspace.requests_per_minute) == (-(2 ** 31), 2 ** 31 - 1)  # INTEGER
    assert int_range(ApiKey.tokens_per_minute) == (-(2 ** 31), 2 ** 31 - 1)
    assert int_range(Workspace.token_budget) == (-(2 ** 63), 2 ** 63 - 1)  # BIGINT


def test_as_utc_keeps_the_instant_and_takes_naive_times_as_utc():
    moment = datetime(2030, 1, 1, 12, tzinfo=timezone(timedelta(hours=5)))
    assert as_utc(moment) == moment and as_utc(moment).utcoffset() == timedelta(0)
    assert as_utc(datetime(2030, 1, 1, 7)) == moment
    with pytest.raises(ValueError):
        as_utc(datetime(9999, 12, 31, 23, tzinfo=timezone(timedelta(hours=-5))))


def _admin(tmp_path, *args) -> CliResult:
    # In the test process (an uncaught exception fails the test as a traceback in a subprocess's stderr would).
    return run_cli("admin", *args, env={"PLATEFORME_DATA_DIR": str(tmp_path)})


def test_admin_cli_bounds_integers_and_converts_expiry_to_utc(tmp_path):
    accounts = Accounts(open_database(f"sqlite:///{tmp_path / 'plateforme.db'}"))
    admin, _ = accounts.bootstrap("root@example.com")
    too_big = _admin(tmp_path, "workspaces", "create", "huge", "--budget", str(10 ** 30))
    assert too_big.returncode == 2 and str(2 ** 63 - 1) in too_big.stderr and "Traceback" not in too_big.stderr
    too_big = _admin(tmp_path, "keys", "create", "--user", admin.id, "--rpm", str(2 ** 31))
    assert too_big.returncode == 2 and str(2 ** 31 - 1) in too_big.stderr
    in_an_hour = utcnow() + timedelta(hours=1)
    west = in_an_hour.astimezone(timezone(timedelta(hours=-5))).isoformat()
    made = _admin(tmp_path, "keys", "create", "--user", admin.id, "--expires-at", west)
    assert made.returncode == 0, made.stderr
    principal = accounts.authenticate(made.stdout.strip())
    assert principal is not None  # not taken as 5 hours ago
    stored = as_utc(accounts.db.session().get(ApiKey, principal.key_id).expires_at)
    assert abs((stored - in_an_hour).total_seconds()) < 1
    far = _admin(tmp_path, "keys", "create", "--user", admin.id, "--expires-in-days", "1e12")
    assert far.returncode == 1 and "Traceback" not in far.stderr
    accounts.db.dispose()
