"""Bearer-token auth, the refusal to serve beyond loopback without a token, and a store that
cannot be reached (503 with the store's hint)."""

from __future__ import annotations

from pathlib import Path

from tests.api.serving import cli_env, free_port, ideamine, serving, wait_until

TOKEN = "s3cret-token-for-tests"


def test_token_is_required_when_configured(tmp_path: Path) -> None:
    with serving(tmp_path, "--token", TOKEN) as server, server.client() as anonymous:
        missing = anonymous.get("/runs")
        assert missing.status_code == 401 and missing.json()["error"] == "unauthorized"
        assert missing.headers["www-authenticate"].startswith("Bearer")
        assert "bearer token" in missing.json()["message"] and missing.json()["hint"]
        wrong = anonymous.get("/runs", headers={"Authorization": "Bearer nope"})
        assert wrong.status_code == 401 and "wrong" in wrong.json()["message"]
        for path in ("/metrics", "/runs/x/events", "/dashboard/"):
            assert anonymous.get(path).status_code == 401, path
        assert anonymous.post("/runs", json={"idea": "a thing"}).status_code == 401
        assert anonymous.get("/health").status_code == 200  # probes need no token
        with server.client(TOKEN) as client:
            assert client.get("/runs").status_code == 200
            assert client.get("/metrics").status_code == 200


def test_dashboard_login_sets_a_cookie(tmp_path: Path) -> None:
    with serving(tmp_path, "--token", TOKEN) as server, server.client() as browser:
        page = browser.get("/dashboard/")
        assert page.status_code == 401 and 'name="token"' in page.text
        refused = browser.post("/login", data={"token": "nope", "next": "/dashboard/"})
        assert refused.status_code == 401 and "not right" in refused.text
        login = browser.post("/login", data={"token": TOKEN, "next": "/dashboard/"})
        assert login.status_code == 303 and login.headers["location"] == "/dashboard/"
        assert "httponly" in login.headers["set-cookie"].lower()
        assert browser.get("/dashboard/").status_code == 200  # the cookie now goes along
        assert browser.get("/runs").status_code == 200
        elsewhere = browser.post("/login", data={"token": TOKEN, "next": "https://evil.example/"})
        assert elsewhere.headers["location"] == "/dashboard/"


def test_token_from_the_environment(tmp_path: Path) -> None:
    env = cli_env({"IDEAMINE_API_TOKEN": TOKEN})
    with serving(tmp_path, env=env) as server, server.client() as client:
        assert client.get("/runs").status_code == 401
        assert client.get("/runs", headers={"Authorization": f"Bearer {TOKEN}"}).status_code == 200


def test_no_token_needed_on_loopback(tmp_path: Path) -> None:
    with serving(tmp_path) as server, server.client() as client:
        assert client.get("/runs").json() == []
        assert client.get("/dashboard/").status_code == 200


def test_refuses_a_public_address_without_a_token(tmp_path: Path) -> None:
    refused = ideamine("serve", "--host", "0.0.0.0", "--port", str(free_port()), cwd=tmp_path)
    assert refused.returncode == 2
    assert "refusing to serve on 0.0.0.0 without a token" in refused.stderr
    assert "--token" in refused.stderr


def test_serves_a_public_address_with_a_token(tmp_path: Path) -> None:
    with serving(tmp_path, "--token", TOKEN, host="0.0.0.0") as server, server.client() as anon:
        assert anon.get("/runs").status_code == 401
        with server.client(TOKEN) as client:
            assert client.get("/runs").status_code == 200


def test_unreachable_store_is_503_with_its_hint(tmp_path: Path) -> None:
    store = tmp_path / "missing-folder" / "ideamine.db"
    with serving(tmp_path, store=store, healthy=False) as server, server.client() as client:
        health = client.get("/health")
        assert health.status_code == 503 and health.json()["status"] == "unavailable"
        assert "missing-folder" in health.json()["message"] and health.json()["hint"]
        for method, path in (("GET", "/runs"), ("GET", "/runs/x"), ("GET", "/metrics")):
            reply = client.request(method, path)
            assert reply.status_code == 503, path
            assert reply.json()["error"] == "store_unavailable"
            assert "create the folder" in reply.json()["hint"]
        created = client.post("/runs", json={"idea": "a marketplace for farmers"})
        assert created.status_code == 503
        (tmp_path / "missing-folder").mkdir()  # the opener keeps trying: the server recovers
        wait_until(lambda: client.get("/health").status_code == 200, timeout=30, what="recovery")
