"""A real HTTP server on 127.0.0.1 and a network that reaches nothing else, for the weight
download tests (tests/models/test_downloads.py and the dashboard's tests/dashboard/test_imagenet.py).

``loopback_server()`` serves ``server.payload``: GET /ok/<f> the whole payload; /drop/<f> sends
the full Content-Length, half the bytes, then closes; /stall/<f> sends 1 KiB then waits until
``server.release`` is set; anything else is a 404. ``block_network(monkeypatch)`` lets sockets
reach 127.0.0.1 only and makes every other name lookup or connection fail (returns the list of
refused attempts).
"""

from __future__ import annotations

import hashlib
import http.server
import socket
import threading
from contextlib import contextmanager


class LoopbackHandler(http.server.BaseHTTPRequestHandler):
    """GET /ok/<f>, /drop/<f>, /stall/<f> (see the module docstring); anything else is a 404."""

    def do_GET(self) -> None:  # noqa: N802 - http.server's name
        server = self.server
        server.requests.append(self.path)
        body = server.payload
        mode = self.path.split("/")[1]
        if mode not in ("ok", "drop", "stall"):
            self.send_error(404, "no such file")
            return
        self.send_response(200)
        self.send_header("Content-Type", "application/octet-stream")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if mode == "ok":
            self.wfile.write(body)
        elif mode == "drop":
            self.wfile.write(body[: len(body) // 2])
            self.wfile.flush()
            self.connection.shutdown(socket.SHUT_RDWR)
        else:
            self.wfile.write(body[:1024])
            self.wfile.flush()
            server.release.wait(10)

    def log_message(self, *args) -> None:  # keep the test output clean
        pass


@contextmanager
def loopback_server():
    """A ThreadingHTTPServer on 127.0.0.1 (free port) with ``payload``, ``requests``, ``release``."""
    srv = http.server.ThreadingHTTPServer(("127.0.0.1", 0), LoopbackHandler)
    srv.daemon_threads = True
    srv.payload = b""
    srv.requests = []
    srv.release = threading.Event()
    thread = threading.Thread(target=srv.serve_forever, daemon=True)
    thread.start()
    try:
        yield srv
    finally:
        srv.release.set()
        srv.shutdown()
        srv.server_close()


def block_network(monkeypatch) -> list[str]:
    """Connections and name lookups only for 127.0.0.1; returns the refused attempts (live list)."""
    real_connect, real_lookup = socket.socket.connect, socket.getaddrinfo
    refused: list[str] = []

    def connect(self, address):
        if not (isinstance(address, tuple) and address[0] == "127.0.0.1"):
            refused.append(f"connect {address}")
            raise OSError("only 127.0.0.1 is reachable in this test")
        return real_connect(self, address)

    def lookup(host, *args, **kwargs):
        if host != "127.0.0.1":
            refused.append(f"getaddrinfo {host}")
            raise OSError("name lookups are blocked in this test")
        return real_lookup(host, *args, **kwargs)

    monkeypatch.setattr(socket.socket, "connect", connect)
    monkeypatch.setattr(socket, "getaddrinfo", lookup)
    return refused


class HubHandler(http.server.BaseHTTPRequestHandler):
    """A fake Hugging Face hub: HEAD/GET ``/{owner}/{name}/resolve/{revision}/{file}`` serves
    ``server.files[file]`` (the requests huggingface_hub 2.4.0 makes for ``hf_hub_download``:
    a HEAD for the metadata - ETag, X-Repo-Commit, size - then a GET); anything else is a 404
    with ``X-Error-Code: EntryNotFound``."""

    def _answer(self, body: bool) -> None:
        server = self.server
        server.requests.append(f"{self.command} {self.path}")
        parts = self.path.split("?")[0].strip("/").split("/")
        data = server.files.get(parts[4]) if len(parts) == 5 and parts[2] == "resolve" else None
        if data is None:
            self.send_response(404)
            self.send_header("X-Error-Code", "EntryNotFound")
            self.send_header("Content-Length", "0")
            self.end_headers()
            return
        self.send_response(200)
        self.send_header("Content-Length", str(len(data)))
        self.send_header("ETag", '"' + hashlib.sha256(data).hexdigest() + '"')
        self.send_header("X-Repo-Commit", "0" * 40)
        self.end_headers()
        if body:
            self.wfile.write(data)

    def do_GET(self) -> None:  # noqa: N802 - http.server's name
        self._answer(True)

    def do_HEAD(self) -> None:  # noqa: N802 - http.server's name
        self._answer(False)

    def log_message(self, *args) -> None:
        pass


@contextmanager
def hub_server(files: dict[str, bytes]):
    """A :class:`HubHandler` server on 127.0.0.1 serving ``files`` (name -> bytes); yields it
    (``server.requests`` lists "METHOD path"); its URL is ``http://127.0.0.1:<server.server_address[1]>``."""
    srv = http.server.ThreadingHTTPServer(("127.0.0.1", 0), HubHandler)
    srv.daemon_threads = True
    srv.files = dict(files)
    srv.requests = []
    thread = threading.Thread(target=srv.serve_forever, daemon=True)
    thread.start()
    try:
        yield srv
    finally:
        srv.shutdown()
        srv.server_close()
