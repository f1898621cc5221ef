"""Small files that claim a lot, made in the test (nothing hostile is stored in the repository),
and a peak-memory probe that runs code in a fresh subprocess.

* :func:`png16` — a 16-bit greyscale PNG of ``width x height`` whose rows repeat (zlib keeps it
  small: 80 MP is a few hundred KB), written row by row so making it costs no memory;
* :func:`tiff_shared_strips` — a deflate TIFF whose strips all point at ONE compressed strip: a
  few KB on disk that decode to ``width x height`` 16-bit or float32 pixels;
* :func:`peak_rss_mb` — runs a snippet in ``python -c`` and returns how far its peak resident
  memory (``VmHWM`` of /proc/self/status) rose above the resident memory after the imports.
"""

from __future__ import annotations

import os
import struct
import subprocess
import sys
import threading
import zlib
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def _png_chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)


def png16(path: Path, width: int, height: int) -> Path:
    """A 16-bit greyscale PNG: every row is the same ramp 0..65535 (so the image has a range)."""
    row = bytearray(b"\x00")  # filter type 0
    for x in range(width):
        row += struct.pack(">H", (x * 65535) // max(width - 1, 1))
    comp = zlib.compressobj(9)
    with open(path, "wb") as fh:
        fh.write(b"\x89PNG\r\n\x1a\n" + _png_chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, 16, 0, 0, 0, 0)))
        parts = []
        for _ in range(height):
            parts.append(comp.compress(bytes(row)))
        parts.append(comp.flush())
        fh.write(_png_chunk(b"IDAT", b"".join(parts)))
        fh.write(_png_chunk(b"IEND", b""))
    return path


def tiff_shared_strips(
    path: Path,
    width: int,
    height: int,
    *,
    bits: int = 16,
    sample_format: int = 1,
    rows_per_strip: int = 64,
    stored_rows: int | None = None,
) -> Path:
    """A little-endian deflate TIFF (one sample per pixel) whose strips share one compressed strip.

    ``bits=16, sample_format=1``: uint16 (Pillow mode I;16); ``bits=32, sample_format=3``: float32
    (mode F). The shared strip holds a ramp, so the picture has a range. ``stored_rows`` (default
    ``rows_per_strip``) rows are actually compressed: fewer make a file that is truncated but whose
    header is whole (for checks made before decoding).
    """
    row = b"".join(
        struct.pack("<H", (x * 997) % 65536) if bits == 16 else struct.pack("<f", float(x % 1000)) for x in range(width)
    )
    strip = zlib.compress(row * (rows_per_strip if stored_rows is None else stored_rows), 9)
    n_strips = -(-height // rows_per_strip)
    header = 8
    strip_at = header
    offsets_at = strip_at + len(strip) + (len(strip) & 1)
    counts_at = offsets_at + 4 * n_strips
    ifd_at = counts_at + 4 * n_strips
    entries = [
        (256, 4, 1, width),
        (257, 4, 1, height),
        (258, 3, 1, bits),
        (259, 3, 1, 8),  # deflate
        (262, 3, 1, 1),
        (273, 4, n_strips, offsets_at),
        (277, 3, 1, 1),
        (278, 4, 1, rows_per_strip),
        (279, 4, n_strips, counts_at),
        (284, 3, 1, 1),
        (339, 3, 1, sample_format),
    ]
    with open(path, "wb") as fh:
        fh.write(b"II*\x00" + struct.pack("<I", ifd_at))
        fh.write(strip + b"\x00" * (len(strip) & 1))
        fh.write(struct.pack(f"<{n_strips}I", *([strip_at] * n_strips)))
        fh.write(struct.pack(f"<{n_strips}I", *([len(strip)] * n_strips)))
        fh.write(struct.pack("<H", len(entries)))
        for tag, kind, count, value in entries:
            packed = struct.pack("<HI", value, 0)[:4] if kind == 3 and count == 1 else struct.pack("<I", value)
            fh.write(struct.pack("<HHI", tag, kind, count) + packed)
        fh.write(struct.pack("<I", 0))
    return path


_PROBE = """
import os, sys
sys.path.insert(0, {repo!r})
{imports}
def _kb(key):
    for line in open('/proc/self/status'):
        if line.startswith(key):
            return int(line.split()[1])
_base = _kb('VmRSS:')
_error = ''
try:
{body}
except Exception as _exc:  # the probe reports the error; the test decides whether it is right
    _error = type(_exc).__name__ + ': ' + str(_exc)
print('PEAK_MB', (_kb('VmHWM:') - _base) / 1024)
print('ERROR', _error.replace(chr(10), ' '))
"""


def peak_rss_mb(imports: str, body: str, *, timeout: float = 300) -> tuple[float, str]:
    """Run ``imports`` then ``body`` in a fresh interpreter; return (peak MB above the RSS after
    the imports, the error ``body`` raised as "Type: message" or "").

    The baseline is the resident memory after ``imports``, so a fixture's setup (building a file)
    belongs in the test process, not in ``body``.
    """
    code = _PROBE.format(
        repo=str(REPO), imports=imports, body="\n".join("    " + line for line in body.strip().splitlines())
    )
    env = dict(os.environ, PYTHONPATH=str(REPO), OMP_NUM_THREADS="1")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=timeout, env=env)
    if done.returncode != 0:
        raise AssertionError(f"the probe crashed (rc {done.returncode}):\n{done.stderr[-3000:]}")
    lines = dict(line.split(" ", 1) for line in done.stdout.splitlines() if line.startswith(("PEAK_MB", "ERROR")))
    return float(lines["PEAK_MB"]), lines.get("ERROR", "").strip()


# ----------------------------------------------------------------------------- checkpoints

_ELEMENT = {
    "FloatStorage": 4,
    "DoubleStorage": 8,
    "HalfStorage": 2,
    "LongStorage": 8,
    "IntStorage": 4,
    "BoolStorage": 1,
    "ComplexFloatStorage": 8,
    "ByteStorage": 1,
}


class _Storage:
    def __init__(self, key: str, kind: str, numel: int) -> None:
        self.key, self.kind, self.numel = key, kind, numel


class _Tensor:
    def __init__(self, storage: _Storage, shape: tuple[int, ...]) -> None:
        self.storage, self.shape = storage, shape

    def __reduce_ex__(self, protocol):
        import collections

        import torch

        stride, step = [], 1
        for n in reversed(self.shape):
            stride.insert(0, step)
            step *= n
        return (
            torch._utils._rebuild_tensor_v2,
            (self.storage, 0, tuple(self.shape), tuple(stride), False, collections.OrderedDict()),
        )


def torch_archive(path: Path, tensors: dict, *, deflate: bool = True, chunk: int = 1 << 24, level: int = 1) -> Path:
    """A torch.save-style zip archive of ``tensors`` (name -> (shape, storage class name such as
    "FloatStorage"[, storage numel when larger than the shape's])) whose data are zeros, written in chunks (a 2.4 GB tensor costs no memory to
    make). With ``deflate`` the data records are compressed: 2.4 GB of zeros become 2.3 MB at
    ``level=9`` (26 s to write), 10 MB at level 1 (6 s).

    The pickle is written the way torch.save writes it (``_rebuild_tensor_v2`` of a persistent
    ``("storage", <class>, key, "cpu", numel)``), so torch.load reads it as a normal checkpoint.
    """
    import pickle
    import zipfile

    import torch

    storages = {}
    objects = {}
    for i, (name, spec) in enumerate(tensors.items()):
        shape, kind = spec[0], spec[1]
        numel = 1
        for n in shape:
            numel *= n
        numel = spec[2] if len(spec) > 2 else numel
        storages[str(i)] = _Storage(str(i), kind, numel)
        objects[name] = _Tensor(storages[str(i)], tuple(shape))

    class Pickler(pickle.Pickler):
        def persistent_id(self, obj):
            if isinstance(obj, _Storage):
                return ("storage", getattr(torch, obj.kind), obj.key, "cpu", obj.numel)
            return None

    import io

    buf = io.BytesIO()
    Pickler(buf, protocol=2).dump(objects)
    method = zipfile.ZIP_DEFLATED if deflate else zipfile.ZIP_STORED
    with zipfile.ZipFile(path, "w", compression=method, compresslevel=level) as zf:
        zf.writestr("archive/data.pkl", buf.getvalue())
        zf.writestr("archive/byteorder", "little")
        zf.writestr("archive/version", "3\n")
        zero = bytes(chunk)
        for key, s in storages.items():
            with zf.open(f"archive/data/{key}", "w", force_zip64=True) as out:
                left = s.numel * _ELEMENT[s.kind]
                while left > 0:
                    out.write(zero[: min(left, chunk)])
                    left -= chunk
    return path


def call_on_fifo(fifo: Path, call) -> tuple[bool, BaseException | None]:
    """Run ``call(fifo)`` in a thread; returns ``(blocked, what it raised)``. If it is still waiting
    for a writer after 10 s, the writing end is opened here so the reader is released."""
    outcome: list[BaseException | None] = []

    def run() -> None:
        try:
            call(fifo)
            outcome.append(None)
        except BaseException as exc:  # noqa: BLE001 - reported to the caller
            outcome.append(exc)

    worker = threading.Thread(target=run, daemon=True)
    worker.start()
    worker.join(timeout=10)
    blocked = worker.is_alive()
    if blocked:
        os.close(os.open(fifo, os.O_WRONLY | os.O_NONBLOCK))  # release the reader
        worker.join(timeout=10)
    return blocked, (outcome[0] if outcome else None)
