"""A real nginx in front of a dummy upstream, asking the API through ``auth_request``.

The configuration is the one ``docs/gateway.md`` shows, fail-closed and fail-open, against the
live API and against a dead one. Skipped without an nginx binary, unless
``SENTRA_REQUIRE_NGINX=1`` (CI), where a missing nginx fails.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import httpx
import pytest
from api_support import GATEWAY_KEY, LiveServer, free_port

NGINX = shutil.which("nginx") or next(
    (p for p in ("/usr/sbin/nginx", "/usr/local/sbin/nginx") if Path(p).exists()), None
)


@pytest.fixture(scope="module")
def nginx_binary() -> str:
    if NGINX is None:
        if os.environ.get("SENTRA_REQUIRE_NGINX") == "1":
            pytest.fail("SENTRA_REQUIRE_NGINX=1 but no nginx binary (apt-get install -y nginx)")
        pytest.skip("no nginx binary (apt-get install -y nginx); SENTRA_REQUIRE_NGINX=1 fails")
    return NGINX


@dataclass
class Upstream:
    """A tiny HTTP server standing for the protected model API; records what reaches it."""

    port: int
    seen: list[dict[str, str]] = field(default_factory=list)


@pytest.fixture(scope="module")
def upstream() -> Iterator[Upstream]:
    record = Upstream(port=0)

    class Handler(BaseHTTPRequestHandler):
        def _answer(self) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            body = self.rfile.read(length).decode() if length else ""
            seen = {
                "method": self.command,
                "path": self.path,
                "body": body,
                "decision": self.headers.get("X-Sentra-Decision", ""),
                "score": self.headers.get("X-Sentra-Score", ""),
            }
            record.seen.append(seen)
            payload = json.dumps({"upstream": True, **seen}).encode()
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(payload)))
            self.end_headers()
            self.wfile.write(payload)

        do_GET = do_POST = _answer

        def log_message(self, format: str, *args: object) -> None:
            return

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    record.port = server.server_address[1]
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield record
    server.shutdown()
    server.server_close()


def api_upstream(name: str, port: int) -> str:
    """The API as an nginx upstream with kept-alive connections, as in docs/gateway.md."""
    return f"""
  upstream {name} {{
    server 127.0.0.1:{port};
    keepalive 16;
  }}
"""


def server_block(listen: int, api: str, upstream: int, fail_open: bool) -> str:
    """One protected site, as in docs/gateway.md."""
    fail_open_lines = (
        "        error_page 500 502 503 504 = @sentra_unavailable;\n" if fail_open else ""
    )
    fallback = (
        f"""
    location @sentra_unavailable {{
        proxy_set_header X-Sentra-Decision unavailable;
        proxy_pass http://127.0.0.1:{upstream};
    }}
"""
        if fail_open
        else ""
    )
    return f"""
  server {{
    listen 127.0.0.1:{listen};

    location / {{
        auth_request /_sentra_check;
        auth_request_set $sentra_decision $upstream_http_x_sentra_decision;
        auth_request_set $sentra_score $upstream_http_x_sentra_score;
        proxy_set_header X-Sentra-Decision $sentra_decision;
        proxy_set_header X-Sentra-Score $sentra_score;
{fail_open_lines}        proxy_pass http://127.0.0.1:{upstream};
    }}

    location = /_sentra_check {{
        internal;
        proxy_pass http://{api}/v1/gateway/check;
        proxy_http_version 1.1;
        proxy_set_header Connection "";
        proxy_pass_request_body off;
        proxy_set_header Content-Length "";
        proxy_set_header Authorization "Bearer {GATEWAY_KEY}";
        proxy_set_header X-Account-Id $http_x_account_id;
        proxy_connect_timeout 1s;
        proxy_read_timeout 2s;
    }}
{fallback}  }}
"""


@dataclass
class Nginx:
    ports: dict[str, int]
    error_log: Path

    def get(self, site: str, account_id: str | None, **kwargs: object) -> httpx.Response:
        headers = {"X-Account-Id": account_id} if account_id else {}
        method = "POST" if "json" in kwargs else "GET"
        url = f"http://127.0.0.1:{self.ports[site]}/v1/chat/completions"
        return httpx.request(method, url, headers=headers, timeout=10, **kwargs)  # type: ignore[arg-type]


@pytest.fixture(scope="module")
def nginx(
    nginx_binary: str,
    live_server: LiveServer,
    upstream: Upstream,
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[Nginx]:
    prefix = tmp_path_factory.mktemp("nginx")
    api_port = int(live_server.base_url.rsplit(":", 1)[1])
    dead_port = free_port()
    ports = {site: free_port() for site in ("closed", "open", "closed-dead", "open-dead")}
    blocks = [
        api_upstream("sentra_api", api_port),
        api_upstream("sentra_down", dead_port),
        server_block(ports["closed"], "sentra_api", upstream.port, fail_open=False),
        server_block(ports["open"], "sentra_api", upstream.port, fail_open=True),
        server_block(ports["closed-dead"], "sentra_down", upstream.port, fail_open=False),
        server_block(ports["open-dead"], "sentra_down", upstream.port, fail_open=True),
    ]
    user = "user root;\n" if os.geteuid() == 0 else ""
    config = prefix / "nginx.conf"
    config.write_text(
        f"""{user}daemon off;
worker_processes 1;
pid {prefix}/nginx.pid;
error_log {prefix}/error.log warn;
events {{ worker_connections 64; }}
http {{
  access_log off;
  client_body_temp_path {prefix}/client_body;
  proxy_temp_path {prefix}/proxy;
  fastcgi_temp_path {prefix}/fastcgi;
  uwsgi_temp_path {prefix}/uwsgi;
  scgi_temp_path {prefix}/scgi;
{"".join(blocks)}}}
"""
    )
    error_log = prefix / "error.log"
    process = subprocess.Popen(
        [nginx_binary, "-p", str(prefix), "-c", str(config), "-e", str(error_log)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    try:
        _wait_listening(list(ports.values()), process)
        yield Nginx(ports, error_log)
    finally:
        process.terminate()
        process.wait(timeout=15)


def _wait_listening(ports: list[int], process: subprocess.Popen[bytes]) -> None:
    deadline = time.monotonic() + 15
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise AssertionError(f"nginx exited: {process.stderr.read().decode()}")  # type: ignore[union-attr]
        try:
            for port in ports:
                httpx.get(f"http://127.0.0.1:{port}/", timeout=1)
            return
        except httpx.TransportError:
            time.sleep(0.1)
    raise AssertionError("nginx did not start listening")


def _hits(upstream: Upstream) -> int:
    return len(upstream.seen)


def test_a_blocked_account_is_refused_before_the_upstream(nginx: Nginx, upstream: Upstream) -> None:
    before = _hits(upstream)
    for site in ("closed", "open"):
        assert nginx.get(site, "a1").status_code == 403
    assert _hits(upstream) == before


@pytest.mark.parametrize(
    ("account_id", "decision"), [("a3", "allow"), ("a2", "review"), ("new-1", "allow")]
)
def test_allowed_accounts_pass_with_their_decision(
    nginx: Nginx, upstream: Upstream, account_id: str, decision: str
) -> None:
    for site in ("closed", "open"):
        response = nginx.get(site, account_id)
        assert response.status_code == 200
        body = response.json()
        assert body["upstream"] is True
        assert body["decision"] == decision
        assert body["path"] == "/v1/chat/completions"


def test_the_request_body_still_reaches_the_upstream(nginx: Nginx) -> None:
    response = nginx.get("closed", "a3", json={"model": "m", "messages": []})
    assert response.status_code == 200
    assert response.json()["method"] == "POST"
    assert json.loads(response.json()["body"]) == {"model": "m", "messages": []}


def test_without_an_account_header_nginx_reports_an_error(nginx: Nginx) -> None:
    assert nginx.get("closed", None).status_code == 500


def test_api_down_fail_closed_refuses_and_fail_open_passes(
    nginx: Nginx, upstream: Upstream
) -> None:
    assert nginx.get("closed-dead", "a3").status_code == 500
    before = _hits(upstream)
    passed = nginx.get("open-dead", "a1")
    assert passed.status_code == 200
    assert passed.json()["decision"] == "unavailable"
    assert _hits(upstream) == before + 1
