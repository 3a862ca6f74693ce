"""Tests of analysis.data: every dataset path runs offline on tiny files written here."""

from __future__ import annotations

import gzip
import pickle
import struct
from collections import Counter
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
import torch

from analysis import data
from analysis.data import (
    DatasetInfo,
    augment,
    dataset_info,
    eval_subset,
    find_root,
    load,
    normalize,
)
from analysis.errors import DataError, SpecError
from analysis.specs import DATASETS, DataSpec

N_TRAIN, N_TEST = 60, 20


@pytest.fixture(autouse=True)
def _no_ambient_data(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """Keep the user's data root and download cache out of every test."""
    monkeypatch.delenv(data.DATA_ENV, raising=False)
    monkeypatch.setattr(data, "default_root", lambda: tmp_path / "default-cache")


# ---------------------------------------------------------------------------
# writing real-format files


def idx_bytes(array: np.ndarray) -> bytes:
    """IDX encoding of a uint8 array: (N,) -> magic 2049, (N, H, W) -> magic 2051."""
    header = struct.pack(">I", 0x0800 + array.ndim) + struct.pack(f">{array.ndim}I", *array.shape)
    return header + array.astype(np.uint8).tobytes()


def make_mnist_like(seed: int) -> dict[str, np.ndarray]:
    """Random train/test images (N, 28, 28) uint8 and labels (N,) uint8 covering 0..9."""
    rng = np.random.default_rng(seed)
    return {
        "train-images-idx3-ubyte": rng.integers(0, 256, (N_TRAIN, 28, 28), dtype=np.uint8),
        "train-labels-idx1-ubyte": (np.arange(N_TRAIN) % 10).astype(np.uint8),
        "t10k-images-idx3-ubyte": rng.integers(0, 256, (N_TEST, 28, 28), dtype=np.uint8),
        "t10k-labels-idx1-ubyte": (np.arange(N_TEST) % 10).astype(np.uint8),
    }


def write_idx(folder: Path, arrays: dict[str, np.ndarray], *, gz: bool) -> None:
    """Write each array as ``folder/<stem>[.gz]`` in IDX format."""
    folder.mkdir(parents=True, exist_ok=True)
    for stem, array in arrays.items():
        blob = idx_bytes(array)
        if gz:
            (folder / f"{stem}.gz").write_bytes(gzip.compress(blob))
        else:
            (folder / stem).write_bytes(blob)


def write_cifar(root: Path, per_batch: int = 4, n_test: int = 6) -> tuple[np.ndarray, np.ndarray]:
    """CIFAR-10 python batches under root/cifar-10-batches-py; returns (train, test) rows (N, 3072)."""
    # The real batches were pickled by Python 2, whose str keys torchvision reads
    # back as str through encoding="latin1" (b"data" only under encoding="bytes"),
    # so a Python 3 writer must use str keys to produce what torchvision sees.
    folder = root / "cifar-10-batches-py"
    folder.mkdir(parents=True)
    rng = np.random.default_rng(0)
    rows = []
    for i in range(1, 6):
        x = rng.integers(0, 256, (per_batch, 3072), dtype=np.uint8)
        labels = [(i + j) % 10 for j in range(per_batch)]
        rows.append(x)
        with open(folder / f"data_batch_{i}", "wb") as f:
            pickle.dump({"data": x, "labels": labels}, f)
    test = rng.integers(0, 256, (n_test, 3072), dtype=np.uint8)
    with open(folder / "test_batch", "wb") as f:
        pickle.dump({"data": test, "labels": list(range(n_test))}, f)
    with open(folder / "batches.meta", "wb") as f:
        pickle.dump({"label_names": list(dataset_info("cifar10").classes)}, f)
    return np.concatenate(rows), test


def row_bytes(x: torch.Tensor) -> list[bytes]:
    """Each image of x: (N, C, H, W) as bytes, to compare datasets as multisets."""
    return [r.numpy().tobytes() for r in x.flatten(1)]


# ---------------------------------------------------------------------------
# dataset_info


def test_dataset_info_all_names() -> None:
    for name in DATASETS:
        info = dataset_info(name)
        assert isinstance(info, DatasetInfo)
        assert info.num_classes == len(info.classes) == (100 if name == "cifar100" else 10)
        assert len(info.mean) == len(info.std) == info.in_channels
    assert dataset_info("cifar10").image_size == 32
    assert dataset_info("fashion-mnist").classes[0] == "T-shirt/top"


def test_dataset_info_unknown_lists_valid_names() -> None:
    with pytest.raises(SpecError, match="fashion-mnist") as err:
        dataset_info("imagenet")
    assert "imagenet" in str(err.value)


def test_find_root(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    assert find_root() is None
    monkeypatch.setenv(data.DATA_ENV, str(tmp_path))
    assert find_root() == tmp_path
    assert find_root(tmp_path / "x") == tmp_path / "x"


# ---------------------------------------------------------------------------
# digits


def test_digits_shapes_range_labels() -> None:
    s = load(DataSpec(name="digits"))
    assert s.info.name == "digits"
    for x, y in ((s.train_x, s.train_y), (s.val_x, s.val_y), (s.test_x, s.test_y)):
        assert x.shape[1:] == (1, 28, 28) and x.dtype == torch.float32
        assert y.dtype == torch.int64 and len(x) == len(y)
        assert x.min() >= 0.0 and x.max() <= 1.0
    assert set(s.train_y.tolist()) == set(range(10))
    assert len(s.train_y) + len(s.val_y) + len(s.test_y) == 1797
    assert len(s.test_y) == round(0.2 * 1797)
    assert len(s.val_y) == round(0.1 * (1797 - len(s.test_y)))


def test_digits_mean_std_constants_match_data() -> None:
    x, _ = data._digits_arrays()
    info = dataset_info("digits")
    assert x.double().mean().item() == pytest.approx(info.mean[0], abs=1e-4)
    assert x.double().std(unbiased=False).item() == pytest.approx(info.std[0], abs=1e-4)


def test_digits_splits_partition_the_dataset() -> None:
    s = load(DataSpec(name="digits"))
    # Same multiset of images as the whole dataset: disjoint splits covering it all
    # (a few digits are exact duplicates in the source, hence a multiset).
    got = Counter(row_bytes(torch.cat([s.train_x, s.val_x, s.test_x])))
    assert got == Counter(row_bytes(data._digits_arrays()[0]))


def test_digits_deterministic_and_seed_dependent() -> None:
    a = load(DataSpec(name="digits", split_seed=3))
    b = load(DataSpec(name="digits", split_seed=3))
    for field in ("train_x", "train_y", "val_x", "val_y", "test_x", "test_y"):
        assert torch.equal(getattr(a, field), getattr(b, field))
    c = load(DataSpec(name="digits", split_seed=4))
    assert not torch.equal(a.val_x, c.val_x)
    # The test split is fixed whatever split_seed says.
    assert torch.equal(a.test_x, c.test_x) and torch.equal(a.test_y, c.test_y)


def test_digits_train_size_subset() -> None:
    full = load(DataSpec(name="digits"))
    small = load(DataSpec(name="digits", train_size=100))
    assert small.train_x.shape == (100, 1, 28, 28)
    assert torch.equal(small.val_x, full.val_x)  # val does not depend on train_size
    full_rows = {tuple(r.tolist()) for r in full.train_x.flatten(1)}
    assert all(tuple(r.tolist()) in full_rows for r in small.train_x.flatten(1))


def test_train_size_too_large() -> None:
    with pytest.raises(SpecError, match="train_size"):
        load(DataSpec(name="digits", train_size=5000))


def test_val_fraction_zero_gives_empty_val() -> None:
    s = load(DataSpec(name="digits", val_fraction=0.0))
    assert s.val_x.shape == (0, 1, 28, 28) and s.val_y.shape == (0,)


# ---------------------------------------------------------------------------
# fashion-mnist from IDX files


@pytest.mark.parametrize(
    ("sub", "gz"),
    [("fashion-mnist", True), ("fashion-mnist", False), ("FashionMNIST/raw", True)],
)
def test_fashion_from_root(tmp_path: Path, sub: str, gz: bool) -> None:
    arrays = make_mnist_like(seed=1)
    write_idx(tmp_path / sub, arrays, gz=gz)
    s = load(DataSpec(name="fashion-mnist", val_fraction=0.2), tmp_path, download=False)
    assert s.train_x.shape == (48, 1, 28, 28) and s.val_x.shape == (12, 1, 28, 28)
    assert s.test_x.shape == (N_TEST, 1, 28, 28)
    expected_test = torch.from_numpy(arrays["t10k-images-idx3-ubyte"]).float().unsqueeze(1) / 255
    assert torch.allclose(s.test_x, expected_test)
    assert s.test_y.tolist() == arrays["t10k-labels-idx1-ubyte"].tolist()
    # Train + val are exactly the training images, each once.
    expected = torch.from_numpy(arrays["train-images-idx3-ubyte"]).float().unsqueeze(1) / 255
    assert sorted(row_bytes(torch.cat([s.train_x, s.val_x]))) == sorted(row_bytes(expected))
    assert str(tmp_path) in s.source


def test_fashion_from_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    write_idx(tmp_path / "fashion-mnist", make_mnist_like(seed=2), gz=True)
    monkeypatch.setenv(data.DATA_ENV, str(tmp_path))
    s = load(DataSpec(name="fashion-mnist"), download=False)
    assert len(s.train_y) + len(s.val_y) == N_TRAIN


def test_fashion_from_debian_location(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    debian = tmp_path / "debian"
    write_idx(debian, make_mnist_like(seed=3), gz=True)
    monkeypatch.setattr(data, "DEBIAN_FASHION_MNIST", debian)
    s = load(DataSpec(name="fashion-mnist"), tmp_path / "empty", download=False)
    assert "dataset-fashion-mnist" in s.source
    assert len(s.test_y) == N_TEST


@pytest.mark.parametrize(
    ("stem", "mangle"),
    [
        ("train-images-idx3-ubyte", lambda b: b[:-7]),  # truncated
        ("t10k-labels-idx1-ubyte", lambda b: struct.pack(">I", 1234) + b[4:]),  # bad magic
        ("train-labels-idx1-ubyte", lambda b: b[:5]),  # shorter than a header
    ],
)
def test_fashion_malformed_names_file(
    tmp_path: Path, stem: str, mangle: Callable[[bytes], bytes]
) -> None:
    folder = tmp_path / "fashion-mnist"
    write_idx(folder, make_mnist_like(seed=4), gz=True)
    bad = folder / f"{stem}.gz"
    bad.write_bytes(gzip.compress(mangle(gzip.decompress(bad.read_bytes()))))
    with pytest.raises(DataError, match=stem):
        load(DataSpec(name="fashion-mnist"), tmp_path, download=False)


def test_fashion_corrupt_gzip_names_file(tmp_path: Path) -> None:
    folder = tmp_path / "fashion-mnist"
    write_idx(folder, make_mnist_like(seed=5), gz=True)
    bad = folder / "t10k-images-idx3-ubyte.gz"
    bad.write_bytes(bad.read_bytes()[:50])
    with pytest.raises(DataError, match="t10k-images-idx3-ubyte"):
        load(DataSpec(name="fashion-mnist"), tmp_path, download=False)


def test_fashion_wrong_image_size(tmp_path: Path) -> None:
    arrays = make_mnist_like(seed=6)
    arrays["train-images-idx3-ubyte"] = np.zeros((N_TRAIN, 8, 8), dtype=np.uint8)
    write_idx(tmp_path / "fashion-mnist", arrays, gz=False)
    with pytest.raises(DataError, match="shape"):
        load(DataSpec(name="fashion-mnist"), tmp_path, download=False)


def test_fashion_cached_and_refreshed(tmp_path: Path) -> None:
    folder = tmp_path / "fashion-mnist"
    write_idx(folder, make_mnist_like(seed=7), gz=False)
    spec = DataSpec(name="fashion-mnist")
    first = load(spec, tmp_path, download=False)
    hits = data._idx_arrays.cache_info().hits
    again = load(spec, tmp_path, download=False)
    assert data._idx_arrays.cache_info().hits == hits + 1
    assert torch.equal(first.test_x, again.test_x)
    # Rewriting a file (new size) changes the cache key, so new data is read.
    arrays = make_mnist_like(seed=8)
    arrays["t10k-images-idx3-ubyte"] = arrays["t10k-images-idx3-ubyte"][:10]
    arrays["t10k-labels-idx1-ubyte"] = arrays["t10k-labels-idx1-ubyte"][:10]
    write_idx(folder, arrays, gz=False)
    assert len(load(spec, tmp_path, download=False).test_y) == 10


def test_fashion_missing_everywhere(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    nowhere = tmp_path / "no-debian"
    monkeypatch.setattr(data, "DEBIAN_FASHION_MNIST", nowhere)
    root = tmp_path / "root"
    root.mkdir()
    with pytest.raises(DataError) as err:
        load(DataSpec(name="fashion-mnist"), root, download=False)
    msg = str(err.value)
    for place in (root / "fashion-mnist", root / "FashionMNIST" / "raw", nowhere):
        assert str(place) in msg
    assert "apt-get install dataset-fashion-mnist" in msg
    assert data.DATA_ENV in msg and "download" in msg


def test_fashion_incomplete_folder_says_what_is_missing(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setattr(data, "DEBIAN_FASHION_MNIST", tmp_path / "no-debian")
    arrays = make_mnist_like(seed=9)
    del arrays["t10k-labels-idx1-ubyte"]
    write_idx(tmp_path / "fashion-mnist", arrays, gz=True)
    with pytest.raises(DataError, match="missing t10k-labels-idx1-ubyte"):
        load(DataSpec(name="fashion-mnist"), tmp_path, download=False)


def test_fashion_failed_download_is_one_data_error(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setattr(data, "DEBIAN_FASHION_MNIST", tmp_path / "no-debian")

    def offline(name: str, target: Path) -> str:
        return "URLError: no network"

    monkeypatch.setattr(data, "_try_download", offline)
    with pytest.raises(DataError, match="no network") as err:
        load(DataSpec(name="fashion-mnist"), tmp_path / "root")
    assert "dataset-fashion-mnist" in str(err.value)


DEBIAN = Path("/usr/share/datasets/fashion-mnist")


@pytest.mark.skipif(
    not (DEBIAN / "train-images-idx3-ubyte.gz").is_file(),
    reason="dataset-fashion-mnist not installed",
)
def test_real_fashion_mnist_from_debian(tmp_path: Path) -> None:
    s = load(DataSpec(name="fashion-mnist"), tmp_path / "empty", download=False)
    assert len(s.train_y) + len(s.val_y) == 60000
    assert s.test_x.shape == (10000, 1, 28, 28)
    assert s.val_x.shape == (6000, 1, 28, 28)
    assert torch.bincount(s.test_y).tolist() == [1000] * 10
    assert s.train_x.mean().item() == pytest.approx(s.info.mean[0], abs=5e-3)


# ---------------------------------------------------------------------------
# mnist and cifar10 through torchvision's classes


def test_mnist_via_torchvision(tmp_path: Path) -> None:
    arrays = make_mnist_like(seed=10)
    # torchvision wants the uncompressed files in <root>/MNIST/raw/.
    write_idx(tmp_path / "MNIST" / "raw", arrays, gz=False)
    s = load(DataSpec(name="mnist", val_fraction=0.0), tmp_path, download=False)
    assert s.train_x.shape == (N_TRAIN, 1, 28, 28) and s.test_x.shape == (N_TEST, 1, 28, 28)
    expected = torch.from_numpy(arrays["train-images-idx3-ubyte"]).float().unsqueeze(1) / 255
    assert torch.allclose(s.train_x, expected)  # val_fraction=0: train keeps file order
    assert s.train_y.tolist() == arrays["train-labels-idx1-ubyte"].tolist()
    assert s.train_y.dtype == torch.int64


def test_mnist_missing(tmp_path: Path) -> None:
    with pytest.raises(DataError) as err:
        load(DataSpec(name="mnist"), tmp_path, download=False)
    assert str(tmp_path / "MNIST" / "raw") in str(err.value)
    assert data.DATA_ENV in str(err.value)


def test_cifar10_via_torchvision(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    import torchvision.datasets.cifar as tv_cifar

    train_rows, test_rows = write_cifar(tmp_path)
    # Our files are not the real ones, so their md5s differ: skip torchvision's
    # integrity check here only. _check_integrity covers the batches; the meta
    # file is checked by _load_meta through the module-level check_integrity.
    monkeypatch.setattr(tv_cifar.CIFAR10, "_check_integrity", lambda self: True)
    monkeypatch.setattr(tv_cifar, "check_integrity", lambda *a, **k: True)
    s = load(DataSpec(name="cifar10", val_fraction=0.0), tmp_path, download=False)
    assert s.train_x.shape == (20, 3, 32, 32) and s.test_x.shape == (6, 3, 32, 32)
    assert s.train_x.dtype == torch.float32
    # The python format is channel-major rows of 3072 = 3 x 32 x 32.
    assert torch.allclose(s.train_x, torch.from_numpy(train_rows).float().view(-1, 3, 32, 32) / 255)
    assert torch.allclose(s.test_x, torch.from_numpy(test_rows).float().view(-1, 3, 32, 32) / 255)
    assert s.test_y.tolist() == list(range(6))


def test_cifar10_wrong_md5_is_data_error(tmp_path: Path) -> None:
    write_cifar(tmp_path)  # not the real files: torchvision refuses to unpickle them
    with pytest.raises(DataError, match="cifar-10-batches-py"):
        load(DataSpec(name="cifar10"), tmp_path, download=False)


# ---------------------------------------------------------------------------
# eval_subset


def test_eval_subset_deterministic_sorted_nested() -> None:
    a = eval_subset(50, 1000, seed=1)
    assert torch.equal(a, eval_subset(50, 1000, seed=1))
    assert a.dtype == torch.int64 and a.shape == (50,)
    assert torch.equal(a, a.sort().values) and len(set(a.tolist())) == 50
    assert a.min() >= 0 and a.max() < 1000
    assert not torch.equal(a, eval_subset(50, 1000, seed=2))
    assert set(a.tolist()) <= set(eval_subset(100, 1000, seed=1).tolist())
    assert eval_subset(10, 10, seed=0).tolist() == list(range(10))


@pytest.mark.parametrize(("n", "total", "seed"), [(0, 10, 0), (11, 10, 0), (5, 10, -1)])
def test_eval_subset_errors(n: int, total: int, seed: int) -> None:
    with pytest.raises(SpecError):
        eval_subset(n, total, seed)


# ---------------------------------------------------------------------------
# normalize and augment


def test_normalize() -> None:
    info = dataset_info("cifar10")
    x = torch.rand(4, 3, 32, 32)
    y = normalize(x, info)
    for c in range(3):
        assert torch.allclose(y[:, c], (x[:, c] - info.mean[c]) / info.std[c])
    with pytest.raises(ValueError, match="cifar10"):
        normalize(torch.rand(4, 1, 32, 32), info)


@pytest.mark.parametrize("name", DATASETS)
def test_augment_deterministic_shape_range(name: str) -> None:
    info = dataset_info(name)
    x = torch.rand(64, info.in_channels, info.image_size, info.image_size)
    a = augment(x, info, torch.Generator().manual_seed(0))
    b = augment(x, info, torch.Generator().manual_seed(0))
    assert torch.equal(a, b)
    assert a.shape == x.shape and a.dtype == x.dtype
    assert a.min() >= 0.0 and a.max() <= 1.0
    assert not torch.equal(a, x)
    assert not torch.equal(a, augment(x, info, torch.Generator().manual_seed(1)))


def test_augment_is_a_shifted_crop() -> None:
    info = dataset_info("mnist")
    x = torch.rand(32, 1, 28, 28)
    out = augment(x, info, torch.Generator().manual_seed(0))
    pad = 2
    padded = torch.nn.functional.pad(x, (pad,) * 4)
    for i in range(len(x)):
        # Every output is one of the (2*pad+1)^2 windows of its own padded image, unflipped.
        windows = [
            padded[i, :, dy : dy + 28, dx : dx + 28]
            for dy in range(2 * pad + 1)
            for dx in range(2 * pad + 1)
        ]
        assert any(torch.equal(out[i], w) for w in windows)


def test_augment_flips_only_where_label_safe() -> None:
    x = torch.rand(256, 3, 32, 32)
    out = augment(x, dataset_info("cifar10"), torch.Generator().manual_seed(0))
    padded = torch.nn.functional.pad(x, (4,) * 4)
    flipped = 0
    for i in range(len(x)):
        windows = [padded[i, :, dy : dy + 32, dx : dx + 32] for dy in range(9) for dx in range(9)]
        plain = any(torch.equal(out[i], w) for w in windows)
        mirrored = any(torch.equal(out[i], w.flip(-1)) for w in windows)
        assert plain or mirrored
        flipped += mirrored and not plain
    assert 64 < flipped < 192  # about half are mirrored


def test_augment_does_not_touch_global_rng() -> None:
    torch.manual_seed(123)
    expected = torch.rand(3)
    torch.manual_seed(123)
    empty = augment(torch.zeros(0, 1, 28, 28), dataset_info("digits"), torch.Generator())
    assert empty.shape == (0, 1, 28, 28)
    augment(
        torch.zeros(8, 1, 28, 28), dataset_info("fashion-mnist"), torch.Generator().manual_seed(0)
    )
    assert torch.equal(torch.rand(3), expected)
