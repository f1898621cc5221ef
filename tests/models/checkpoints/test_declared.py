"""Checkpoints checked before their data is read (methods/models/checkpoints/declared.py, architectures.py,
weight_files.py): inflating archives, non-float weights, refused pickles, the architecture a file
looks like, non-regular paths.
"""

from __future__ import annotations

import io
import os
import pickle
import warnings
import zipfile
from pathlib import Path

import pytest
import torch
from torchvision.models import get_model

from hostile_files import call_on_fifo, peak_rss_mb, torch_archive
from methods.errors import CheckpointError
from methods.models import checkpoint_architectures, load_checkpoint
from methods.models.checkpoints import architectures as archs
from methods.models.checkpoints import declared as dec
from methods.models.checkpoints import weight_files
from methods.models.task_zoo import task_architectures


def _saved(obj, **kwargs) -> bytes:
    buf = io.BytesIO()
    torch.save(obj, buf, **kwargs)
    return buf.getvalue()


@pytest.fixture(scope="module")
def r18() -> dict[str, torch.Tensor]:
    torch.manual_seed(0)
    return get_model("resnet18", weights=None, num_classes=10).state_dict()


def _r18_specs() -> dict:
    net = archs.template("resnet18", num_classes=10)
    kinds = {torch.float32: "FloatStorage", torch.int64: "LongStorage"}
    return {k: (tuple(v.shape), kinds[v.dtype]) for k, v in net.state_dict().items()}


# ----------------------------------------------------------------------------- inflating archives


@pytest.mark.slow
def test_inflating_archives_are_refused_before_their_data_is_read(tmp_path: Path):
    """Two ~5 MB archives with resnet18's keys whose 'fc.weight' inflates to 1.2 GB: declared with
    that shape (refused by the shape check), and declared (10, 512) on a 1.2 GB storage (refused by
    the size check). Both are refused with under 200 MB of peak memory above the baseline; before
    the declarations were checked, torch.load inflated the storage first (>= 1.2 GB)."""
    big = 300_000_000  # floats: 1.2 GB
    shaped = _r18_specs() | {"fc.weight": ((big,), "FloatStorage")}
    viewed = _r18_specs() | {"fc.weight": ((10, 512), "FloatStorage", big)}
    files = [torch_archive(tmp_path / "shape.pt", shaped), torch_archive(tmp_path / "view.pt", viewed)]
    assert max(f.stat().st_size for f in files) < 8_000_000
    body = "\n".join(
        f"try:\n    load_checkpoint({str(f)!r}, arch='resnet18', num_classes=10)\n"
        f"except CheckpointError as e:\n    print('REFUSED', e)\nelse:\n    raise AssertionError('loaded')"
        for f in files
    )
    peak, error = peak_rss_mb(
        "from methods.models import load_checkpoint\nfrom methods.errors import CheckpointError", body
    )
    assert error == ""
    assert peak < 200, f"peak {peak:.0f} MB above the baseline"


def test_declared_shape_and_size_messages(tmp_path: Path):
    """The same two archives with smaller storages (fast): what each refusal says. Sizes by hand:
    resnet18 with 10 classes holds 11,191,262 values (11,181,642 parameters, 9,600 BatchNorm
    statistics, 20 counters): 42.7 MiB as float32; the limit is 8 bytes a value + 16 MiB =
    101.4 MiB. The second file's storages: 4 x (11,191,262 - 20 - 5,120 + 30,000,000) + 8 x 20
    bytes = 157.1 MiB."""
    n = 1_000_000
    shaped = torch_archive(tmp_path / "a.pt", _r18_specs() | {"fc.weight": ((n,), "FloatStorage")})
    with pytest.raises(
        CheckpointError,
        match=r"does not fit arch='resnet18'.*'fc\.weight' is \(1000000,\) in the file, "
        r"the model needs \(10, 512\)",
    ):
        load_checkpoint(shaped, arch="resnet18", num_classes=10)
    viewed = torch_archive(tmp_path / "b.pt", _r18_specs() | {"fc.weight": ((10, 512), "FloatStorage", 30_000_000)})
    with pytest.raises(
        CheckpointError,
        match=r"declares 157\.1 MB of tensor data, more than the 101\.4 MB this "
        r"architecture can use \(it needs 42\.7 MB as float32\); refused before reading it",
    ):
        load_checkpoint(viewed, arch="resnet18", num_classes=10)
    with pytest.raises(CheckpointError, match=r"more than the 20\.0 MB \(max_bytes\)"):
        load_checkpoint(
            torch_archive(tmp_path / "c.pt", _r18_specs()), arch="resnet18", num_classes=10, max_bytes=20 * 2**20
        )


def test_a_pickle_that_inflates_is_refused_from_the_zip_directory():
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", compression=zipfile.ZIP_DEFLATED, compresslevel=1) as zf:
        zf.writestr("archive/data.pkl", bytes(dec.MAX_PICKLE_BYTES + 1))
    assert len(buf.getvalue()) < 400_000
    with pytest.raises(CheckpointError, match=r"pickle 'archive/data\.pkl' inflates to 64 MB"):
        load_checkpoint(buf.getvalue(), arch="resnet18", num_classes=10)
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", compression=zipfile.ZIP_DEFLATED, compresslevel=1) as zf:
        zf.writestr("archive/data.pkl", pickle.dumps({}, protocol=2))
        zf.writestr("archive/version", bytes(dec.MAX_PICKLE_BYTES + 1))  # torch reads this record whole
    with pytest.raises(CheckpointError, match=r"record 'archive/version' inflates to 64 MB"):
        load_checkpoint(buf.getvalue(), arch="resnet18", num_classes=10)


def test_a_normal_archive_reads_no_data_when_declared(r18):
    """torch.load(map_location="meta") declares shapes, dtypes and storage sizes without data."""
    declared = dec.declared_of(weight_files.torch_load(_saved(r18), meta=True))
    assert declared["fc.weight"] == dec.Declared(
        (10, 512), torch.float32, "strided", 10 * 512 * 4, declared["fc.weight"].storage_key
    )
    assert declared["bn1.num_batches_tracked"].dtype == torch.int64


# ----------------------------------------------------------------------------- weights that are not float


@pytest.mark.parametrize(
    ("change", "pattern"),
    [
        (
            lambda v: v.to(torch.int32) if v.is_floating_point() else v,
            r"integer weights where the model has floating-point ones \('conv1\.weight'",
        ),
        (lambda v: v > 0, r"bool tensors \('conv1\.weight'"),
        (lambda v: v.to(torch.complex64), r"complex tensors \('conv1\.weight'"),
    ],
    ids=["int", "bool", "complex"],
)
def test_non_float_weights_are_refused_at_load(r18, change, pattern):
    for data in (_saved({k: change(v) for k, v in r18.items()}),):
        with pytest.raises(CheckpointError, match=pattern):
            load_checkpoint(data, arch="resnet18", num_classes=10)


def test_non_float_safetensors_refused_from_the_header(r18, monkeypatch):
    from safetensors.torch import save

    data = save({k: (v.to(torch.int16) if v.is_floating_point() else v) for k, v in r18.items()})
    monkeypatch.setattr(
        "methods.models.checkpoints.load.safetensors_load", lambda data: pytest.fail("the tensor data was read")
    )
    with pytest.raises(CheckpointError, match=r"integer weights.*dtype torch\.int16"):
        load_checkpoint(data, arch="resnet18", num_classes=10)


def test_sparse_and_quantized_weights_are_refused(r18):
    sparse = dict(r18) | {"fc.weight": r18["fc.weight"].to_sparse()}
    with pytest.raises(CheckpointError, match=r"sparse tensors; GradLens loads dense tensors only"):
        load_checkpoint(_saved(sparse), arch="resnet18", num_classes=10)
    empty = dict(r18) | {"fc.bias": torch.zeros(10).to_sparse()}  # no values: the meta device builds it
    with pytest.raises(CheckpointError, match=r"sparse_coo tensors \('fc\.bias'\); GradLens loads dense tensors only"):
        load_checkpoint(_saved(empty), arch="resnet18", num_classes=10)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # torch's deprecation notice for quantized tensors
        quantized = dict(r18) | {"fc.weight": torch.quantize_per_tensor(r18["fc.weight"], 0.01, 0, torch.qint8)}
    with pytest.raises(CheckpointError, match="quantized tensors"):
        load_checkpoint(_saved(quantized), arch="resnet18", num_classes=10)


def test_half_and_double_weights_still_load(r18):
    for dtype in (torch.float16, torch.float64):
        lm = load_checkpoint(
            _saved({k: v.to(dtype) if v.is_floating_point() else v for k, v in r18.items()}),
            arch="resnet18",
            num_classes=10,
        )
        assert all(p.dtype == torch.float32 for p in lm.model.parameters())


# ----------------------------------------------------------------------------- refused pickles


class _System:
    def __reduce__(self):
        return (os.system, ("echo this must never run",))


@pytest.mark.parametrize("maker", ["torch.save", "pickle protocol 4", "pickle protocol 2"])
def test_the_os_system_pickle_names_what_was_refused(maker):
    """torch 2.14 says "unsupported GLOBAL posix.system" for protocol 2 and only "Unsupported
    operand 149" for protocol 4; both messages say the file would run os.system."""
    data = {
        "torch.save": lambda: _saved({"x": _System()}),
        "pickle protocol 4": lambda: pickle.dumps(_System(), protocol=4),
        "pickle protocol 2": lambda: pickle.dumps(_System(), protocol=2),
    }[maker]()
    with pytest.raises(
        CheckpointError,
        match=r"could run code \(it refers to (posix|nt)\.system, i\.e\. os\.system, "
        r"which runs a shell command\)",
    ):
        load_checkpoint(data, arch="resnet18", num_classes=10)


@pytest.mark.parametrize(
    "wording",
    [
        "WeightsUnpickler error: Unsupported global: GLOBAL posix.system was not an allowed global by default.",
        "Trying to load unsupported GLOBAL posix.system whose module posix is blocked.",
    ],
)
def test_both_torch_wordings_of_a_refused_global_are_understood(wording):
    assert weight_files._refused(pickle.UnpicklingError(wording), None) == "posix.system"


# ----------------------------------------------------------------------------- the architecture a file looks like


def test_signatures_file_is_complete_and_current():
    """Every torchvision CLASSIFIER load_checkpoint accepts has a stored signature (detectors and
    segmenters are named by the user, never recognised from their keys), and recomputing a few
    from torchvision gives the stored digests (when torchvision changes, rerun
    ``python -m methods.models.checkpoints.architectures``)."""
    stored = archs.signatures()
    tasks = set(task_architectures())
    assert sorted(stored) == [a for a in checkpoint_architectures() if not a.startswith("timm:") and a not in tasks]
    fresh = archs.build_signatures(
        ["resnet18", "wide_resnet50_2", "vgg16_bn", "densenet121", "googlenet", "squeezenet1_1"]
    )
    for arch, sig in fresh.items():
        assert stored[arch] == sig, arch


def test_looks_like_uses_the_classifier_for_the_number_of_classes():
    net = get_model("densenet121", weights=None, num_classes=4)
    legacy_names = {
        k.replace("norm1.", "norm.1.") if "denselayer" in k else k: tuple(v.shape) for k, v in net.state_dict().items()
    }
    assert archs.looks_like(legacy_names) == [("densenet121", 4)]
    assert archs.looks_like({"a.weight": (3, 3)}) == []


def test_regnet_checkpoint_loads():
    """RegNet cannot be built on the meta device (its constructor computes widths with tensors):
    it is built on the CPU instead, and its file loads (it raised NotImplementedError before)."""
    ref = get_model("regnet_x_400mf", weights=None, num_classes=3).eval()
    lm = load_checkpoint(_saved(ref.state_dict()), arch="regnet_x_400mf", num_classes=3)
    x = torch.randn(1, 3, 64, 64)
    with torch.no_grad():
        assert torch.equal(lm.model(x), ref(x))


# ----------------------------------------------------------------------------- paths


def test_a_file_over_the_cap_is_refused_before_reading(tmp_path: Path):
    big = tmp_path / "big.pt"
    with open(big, "wb") as fh:
        fh.truncate(90 * 2**20)  # sparse on disk: 90 MB that take no space
    with pytest.raises(
        CheckpointError, match=r"'big\.pt' is 90 MB, more than the 84 MB a checkpoint may be \(max_bytes\)"
    ):
        load_checkpoint(big, arch="resnet18", num_classes=10, max_bytes=20 * 2**20)


def test_fifo_checkpoint_path_is_refused_not_waited_on(tmp_path: Path):
    fifo = tmp_path / "weights.pt"
    os.mkfifo(fifo)
    blocked, raised = call_on_fifo(fifo, lambda f: load_checkpoint(f, arch="resnet18", num_classes=10))
    assert not blocked, "load_checkpoint blocked on a FIFO"
    assert isinstance(raised, CheckpointError) and "named pipe (FIFO)" in str(raised)
