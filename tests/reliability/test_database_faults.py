"""The database going away for a while, through a TCP proxy the test can cut and restore."""

import contextlib
import os
import socket
import threading

import pytest
from django.contrib.auth import get_user_model
from django.db import close_old_connections, connection
from django.test import Client
from rest_framework_simplejwt.tokens import RefreshToken

pytestmark = [
    pytest.mark.services,
    pytest.mark.django_db(transaction=True),
    pytest.mark.skipif(
        not os.environ.get("DATABASE_URL", "").startswith("postgres"),
        reason="needs PostgreSQL (DATABASE_URL)",
    ),
]


class CuttableProxy:
    """Forwards 127.0.0.1:<port> to the database; ``cut`` drops every connection and refuses new
    ones (as when the database host disappears), ``restore`` accepts again on the same port."""

    def __init__(self, target_host: str, target_port: int) -> None:
        self.target = (target_host, target_port)
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.port = self.listener.getsockname()[1]
        self.open = threading.Event()
        self.open.set()
        self.sockets: list[socket.socket] = []
        self.lock = threading.Lock()
        self.closed = False
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while not self.closed:
            try:
                client, _ = self.listener.accept()
            except OSError:
                return
            if not self.open.is_set():
                client.close()
                continue
            upstream = socket.create_connection(self.target)
            with self.lock:
                self.sockets += [client, upstream]
            for source, sink in ((client, upstream), (upstream, client)):
                threading.Thread(target=self._pump, args=(source, sink), daemon=True).start()

    @staticmethod
    def _pump(source: socket.socket, sink: socket.socket) -> None:
        with contextlib.suppress(OSError):
            while data := source.recv(65536):
                sink.sendall(data)
        for sock in (source, sink):
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)

    def cut(self) -> None:
        self.open.clear()
        with self.lock:
            for sock in self.sockets:
                with contextlib.suppress(OSError):
                    sock.shutdown(socket.SHUT_RDWR)
                sock.close()
            self.sockets.clear()

    def restore(self) -> None:
        self.open.set()

    def close(self) -> None:
        self.closed = True
        self.cut()
        self.listener.close()


@pytest.fixture
def database_proxy():
    original = dict(connection.settings_dict)
    proxy = CuttableProxy(original["HOST"] or "127.0.0.1", int(original["PORT"] or 5432))
    connection.close()
    connection.settings_dict.update(HOST="127.0.0.1", PORT=str(proxy.port))
    try:
        yield proxy
    finally:
        proxy.restore()
        connection.close()
        connection.settings_dict.update(HOST=original["HOST"], PORT=original["PORT"])
        proxy.close()


class ServerClient(Client):
    """The test client without the test shortcut: like a real server, every request ends with
    ``close_old_connections`` (Django's test client disconnects it), which drops a connection
    that failed so the next request opens a fresh one."""

    def request(self, **request):
        try:
            return super().request(**request)
        finally:
            close_old_connections()


def test_database_outage_is_reported_and_recovered(database_proxy):
    client = ServerClient(raise_request_exception=False)
    assert client.get("/healthz").status_code == 200
    assert client.get("/api/v1/backtests").status_code == 200

    database_proxy.cut()
    health = client.get("/healthz")
    api = client.get("/api/v1/backtests")

    assert health.status_code == 503
    assert health.json()["checks"]["database"]["ok"] is False
    assert health.json()["checks"]["storage"]["ok"] is True
    assert api.status_code == 503
    assert api.headers["Content-Type"].startswith("application/json"), api.content[:200]
    assert b"Traceback" not in api.content

    database_proxy.restore()
    assert client.get("/healthz").status_code == 200
    assert client.get("/api/v1/backtests").status_code == 200


def test_database_outage_is_a_503_for_api_callers(database_proxy):
    client = ServerClient(raise_request_exception=False)
    assert client.get("/api/v1/backtests").status_code == 200
    database_proxy.cut()

    response = client.get("/api/v1/backtests")

    assert response.status_code == 503
    assert response.json() == {"detail": "The database is unavailable; retry shortly."}


def test_database_outage_is_a_503_in_the_results_api_and_backfolio_shapes(database_proxy):
    client = ServerClient(raise_request_exception=False)
    user = get_user_model().objects.create_user(username="outage", password="correct-horse-61")
    bearer = f"Bearer {RefreshToken.for_user(user).access_token}"
    assert client.get("/api/backtests", HTTP_AUTHORIZATION=bearer).status_code == 200
    database_proxy.cut()

    results = client.get("/api/backtests", HTTP_AUTHORIZATION=bearer)
    portfolio = client.get("/api/v2/backtest/runs", HTTP_X_USER_ID="outage")

    unavailable = "The database is unavailable; retry shortly."
    assert results.status_code == 503
    assert results.json() == {
        "error": {"code": "SERVICE_UNAVAILABLE", "message": unavailable, "status": 503}
    }
    assert portfolio.status_code == 503
    assert portfolio.json() == {
        "success": False,
        "error": "Backtest failed",
        "warnings": [unavailable],
        "errors": [unavailable],
    }
    database_proxy.restore()
