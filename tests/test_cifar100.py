"""CIFAR-100 through torchvision's class, its 100-class heads, CIFAR-100-C, and refusal without data.

The fixture writes small files in the real format (``cifar-100-python/`` with
``train``, ``test`` and ``meta`` pickles, fine and coarse labels), as the
CIFAR-10 tests do; torchvision's md5 check is skipped only where a test says so
(the files are not the originals), and where it is not skipped the files are
never unpickled.
"""

from __future__ import annotations

import pickle
import urllib.error
from pathlib import Path

import numpy as np
import pytest
import torch

from analysis.data import dataset_info, load
from analysis.errors import DataError
from analysis.specs import DataSpec

STUDY = """
name = "cifar100-small"
[data]
name = "cifar100"
[model]
arch = "vgg"
width_mult = 0.125
[train]
epochs = 1
[[methods]]
method = "dense"
"""


def write_cifar100(root: Path, n_train: int = 20, n_test: int = 6) -> tuple[np.ndarray, ...]:
    """CIFAR-100's python files under root/cifar-100-python; (train rows, test rows, fine labels).

    As in the originals (pickled by Python 2, read by torchvision with
    ``encoding="latin1"``): str keys, ``data`` uint8 (N, 3072) channel-major,
    ``fine_labels`` 0..99 and ``coarse_labels`` 0..19; ``meta`` names both.
    """
    folder = root / "cifar-100-python"
    folder.mkdir(parents=True)
    rng = np.random.default_rng(0)
    train = rng.integers(0, 256, (n_train, 3072), dtype=np.uint8)
    test = rng.integers(0, 256, (n_test, 3072), dtype=np.uint8)
    fine = [(7 * i + 3) % 100 for i in range(n_train)]  # up to 99: the fine labels are read
    for name, x, labels in (("train", train, fine), ("test", test, list(range(94, 94 + n_test)))):
        with open(folder / name, "wb") as f:
            pickle.dump({"batch_label": name, "filenames": [f"{i}.png" for i in range(len(x))],
                         "data": x, "fine_labels": labels,
                         "coarse_labels": [lab // 5 for lab in labels]}, f)  # fmt: skip
    with open(folder / "meta", "wb") as f:
        pickle.dump({"fine_label_names": list(dataset_info("cifar100").classes),
                     "coarse_label_names": [f"super{i}" for i in range(20)]}, f)  # fmt: skip
    return train, test, np.array(fine)


@pytest.fixture
def no_md5(monkeypatch):
    """Skip torchvision's md5 checks (our files are not the originals); this test only."""
    import torchvision.datasets.cifar as tv_cifar

    monkeypatch.setattr(tv_cifar.CIFAR10, "_check_integrity", lambda self: True)
    monkeypatch.setattr(tv_cifar, "check_integrity", lambda *a, **k: True)


def test_cifar100_loads_from_files_in_the_real_format(tmp_path, no_md5):
    train, test, fine = write_cifar100(tmp_path)
    s = load(DataSpec(name="cifar100", val_fraction=0.0), tmp_path, download=False)
    assert s.info.num_classes == 100 and s.info.classes[:3] == ("apple", "aquarium_fish", "baby")
    assert s.train_x.shape == (20, 3, 32, 32) and s.test_x.shape == (6, 3, 32, 32)
    assert torch.equal(s.train_x, torch.from_numpy(train).float().view(-1, 3, 32, 32) / 255)
    assert torch.equal(s.test_x, torch.from_numpy(test).float().view(-1, 3, 32, 32) / 255)
    assert s.train_y.tolist() == fine.tolist()  # fine labels, not coarse
    assert s.test_y.tolist() == list(range(94, 100)) and s.train_y.dtype == torch.int64
    assert "cifar100" in s.source


def test_cifar100_files_that_are_not_the_originals_are_never_unpickled(tmp_path, monkeypatch):
    import torchvision.datasets.cifar as tv_cifar

    write_cifar100(tmp_path)

    def refuse(*args, **kwargs):
        raise AssertionError("a file that failed its md5 check was unpickled")

    monkeypatch.setattr(tv_cifar.pickle, "load", refuse)
    with pytest.raises(DataError, match="cifar-100-python"):
        load(DataSpec(name="cifar100"), tmp_path, download=False)


@pytest.mark.parametrize("arch", ["mlp", "lenet", "vgg", "resnet20"])
def test_every_model_has_a_100_class_head_on_cifar100(arch):
    from analysis.models import build_for
    from analysis.specs import ModelSpec

    spec = ModelSpec(arch=arch, width=16) if arch == "mlp" else ModelSpec(arch=arch)
    model = build_for(spec, dataset_info("cifar100")).eval()
    with torch.no_grad():
        assert model(torch.rand(2, 3, 32, 32)).shape == (2, 100)


def test_cifar100_c_is_the_colour_suite_at_five_severities(tmp_path, no_md5):
    from analysis.corruptions import corrupt_suite, corruptions_for
    from analysis.corruptions.cifar_c import BENCHMARKS, TABLE

    write_cifar100(tmp_path)
    x = load(DataSpec(name="cifar100"), tmp_path, download=False).test_x[:2]
    names = corruptions_for(dataset_info("cifar100").in_channels)
    assert BENCHMARKS["cifar100"] == "CIFAR-100-C" and names == tuple(TABLE)
    assert len(names) == 15 and "frost" in names and "jpeg_compression" in names
    out = corrupt_suite(x, 3, seed=0, names=names[:3])
    assert len(out) == 15 and all(v.shape == x.shape for v in out.values())
    assert all(float(v.min()) >= 0 and float(v.max()) <= 1 for v in out.values())
    assert not torch.equal(out[("gaussian_noise", 5)], x)


def test_a_cifar100_study_without_data_or_network_is_refused_clearly(tmp_path, monkeypatch):
    import torchvision.datasets.cifar as tv_cifar

    from analysis.study import parse_study, with_available_data

    def offline(*args, **kwargs):
        raise urllib.error.URLError("[Errno -3] Temporary failure in name resolution")

    monkeypatch.setattr(tv_cifar, "download_and_extract_archive", offline)
    study = parse_study(STUDY)
    assert study.data.name == "cifar100"
    with pytest.raises(DataError) as err:
        with_available_data(study, tmp_path)
    text = str(err.value)
    assert text.startswith("Dataset 'cifar100' not found.")
    assert str(tmp_path / "cifar-100-python") in text
    assert "name resolution" in text and "PRUNESCOPE_DATA" in text
    assert not (tmp_path / "cifar-100-python").exists()  # nothing half-written to use later


def test_the_cli_refuses_a_cifar100_study_in_one_error(tmp_path, monkeypatch, capsys):
    import torchvision.datasets.cifar as tv_cifar

    from dashboard.cli import main

    def offline(*args, **kwargs):
        raise urllib.error.URLError("no network")

    monkeypatch.setattr(tv_cifar, "download_and_extract_archive", offline)
    path = tmp_path / "study.toml"
    path.write_text(STUDY)
    args = ["compute", str(path), "--data-root", str(tmp_path / "data"),
            "--cache-dir", str(tmp_path / "cache")]  # fmt: skip
    assert main(args) == 2
    err = capsys.readouterr().err
    assert err.startswith("prunescope: error: Dataset 'cifar100' not found.")
    assert "cifar-100-python" in err and "no network" in err
    assert not (tmp_path / "cache").exists() or not any((tmp_path / "cache").rglob("meta.json"))
