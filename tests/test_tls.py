"""HTTPS: verified by default, --insecure for self-signed hosts, TLS failures typed."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
SURGE = [sys.executable, "-c", "from surge.cli.main import main; main()"]

pytestmark = pytest.mark.skipif(shutil.which("openssl") is None, reason="needs the openssl command")


@pytest.fixture(scope="module")
def https_server(tmp_path_factory):
    d = tmp_path_factory.mktemp("tls")
    cert, key = d / "cert.pem", d / "key.pem"
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1", "-subj",
                    "/CN=127.0.0.1", "-addext", "subjectAltName=IP:127.0.0.1",
                    "-keyout", str(key), "-out", str(cert)], check=True, capture_output=True)
    p = subprocess.Popen([sys.executable, str(ROOT / "tests" / "servers.py"), "--port", "0",
                          "--certfile", str(cert), "--keyfile", str(key)], stdout=subprocess.PIPE, text=True)
    try:
        line = p.stdout.readline()
        assert line.startswith("PORT "), line
        yield f"https://127.0.0.1:{line.split()[1]}"
    finally:
        p.kill()
        p.wait(timeout=5)


def _hit(url: str, *extra: str) -> dict:
    r = subprocess.run([*SURGE, "hit", url, "-c", "2", "-d", "1s", "-w", "1", "--no-save", "--json", *extra],
                       capture_output=True, text=True, timeout=60)
    assert "Traceback" not in r.stderr
    return json.loads(r.stdout)


def test_insecure_reaches_a_self_signed_host(https_server):
    s = _hit(https_server + "/", "--insecure")
    assert s["requests"] > 10 and s["errors"] == 0


def test_unverifiable_certificate_is_a_typed_tls_error(https_server):
    s = _hit(https_server + "/")
    assert s["requests"] > 0
    assert set(s["errors_by_type"]) == {"tls"}


def test_scenario_client_over_tls(https_server, tmp_path):
    scen = tmp_path / "s.py"
    scen.write_text("from surge import check\n\nasync def a(client):\n"
                    "    r = await client.get('/echo', params={'x': 1})\n"
                    "    check(r, {'echo': lambda r: r.json()['url'] == '/echo?x=1'})\n")
    r = subprocess.run([*SURGE, "run", str(scen), "--base-url", https_server, "--vus", "2", "-d", "1s", "-w", "1",
                        "--insecure", "--no-save", "--json"], capture_output=True, text=True, timeout=60)
    s = json.loads(r.stdout)
    assert s["errors"] == 0 and s["checks"][0]["fails"] == 0 and s["checks"][0]["passes"] > 5

