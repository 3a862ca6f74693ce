"""Datasets as tensors: find, read, split, normalise and augment.

Every dataset comes back as a :class:`Splits` of float32 images in [0, 1]
(``(N, C, H, W)``, not normalised: models normalise internally with
:func:`normalize`) and int64 labels. Splits are pure functions of the
:class:`~analysis.specs.DataSpec`, so the same spec gives identical tensors in
every process.

Where data comes from:

* ``digits``: scikit-learn's bundled ``load_digits``; always available offline.
* ``fashion-mnist``: IDX files (gzipped or not) under the data root
  (``--data-root`` / ``PRUNESCOPE_DATA``) as ``<root>/fashion-mnist/`` or
  torchvision's ``<root>/FashionMNIST/raw/``; then Debian's
  ``dataset-fashion-mnist`` package in ``/usr/share/datasets/fashion-mnist``;
  then a torchvision download.
* ``mnist``, ``cifar10``, ``cifar100`` (its 100 fine labels): torchvision's classes and folder
  layouts (``<root>/MNIST/raw/``, ``<root>/cifar-10-batches-py/``, ``<root>/cifar-100-python/``).

Without a data root, downloads go to ``~/.cache/prunescope/data``.
"""

from __future__ import annotations

import dataclasses
import functools
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from analysis import seeding
from analysis.data_help import DATA_ENV  # noqa: F401  (re-exported: the data root variable)
from analysis.data_help import missing as _missing
from analysis.errors import DataError, SpecError
from analysis.idx import _idx_file, read_idx  # noqa: F401  (read_idx re-exported)
from analysis.label_noise import noisy_labels
from analysis.specs import DATASETS, DataSpec, check_int, check_option
from analysis.transforms import augment, normalize  # noqa: F401  (re-exported)

#: Where Debian's ``dataset-fashion-mnist`` package installs the IDX files.
DEBIAN_FASHION_MNIST = Path("/usr/share/datasets/fashion-mnist")

#: The digits test split is fixed: the same 20% whatever ``split_seed`` says,
#: so test accuracies of differently split runs stay comparable.
DIGITS_TEST_FRACTION = 0.2
DIGITS_TEST_SEED = 0

# Independent random streams, one per purpose, all derived through SeedSequence
# so that e.g. the validation split never correlates with the train subset.
_STREAM_VAL = 1
_STREAM_SUBSET = 2
_STREAM_DIGITS_TEST = 3
_STREAM_EVAL = 4


_MNIST_FILES = (
    "train-images-idx3-ubyte",
    "train-labels-idx1-ubyte",
    "t10k-images-idx3-ubyte",
    "t10k-labels-idx1-ubyte",
)


# ---------------------------------------------------------------------------
# what a dataset is


@dataclass(frozen=True)
class DatasetInfo:
    """Static facts about a dataset: shape, classes and normalisation constants."""

    name: str
    in_channels: int
    image_size: int
    num_classes: int
    classes: tuple[str, ...]
    mean: tuple[float, ...]
    std: tuple[float, ...]


@dataclass(frozen=True)
class Splits:
    """Train / validation / test tensors of one dataset.

    ``*_x``: (N, C, H, W) float32 in [0, 1], not normalised; ``*_y``: (N,) int64.
    Treat every tensor as read-only: they may share memory with the in-process
    cache, so an in-place edit could leak into later loads.
    """

    info: DatasetInfo
    source: str
    train_x: torch.Tensor
    train_y: torch.Tensor
    val_x: torch.Tensor
    val_y: torch.Tensor
    test_x: torch.Tensor
    test_y: torch.Tensor

    def tensors(self) -> dict[str, torch.Tensor]:
        """The six tensors by field name (``train_x`` ... ``test_y``)."""
        names = ("train_x", "train_y", "val_x", "val_y", "test_x", "test_y")
        return {name: getattr(self, name) for name in names}

    def nbytes(self) -> int:
        """Bytes of all six tensors."""
        return sum(t.numel() * t.element_size() for t in self.tensors().values())

    def to(self, device: torch.device) -> Splits:
        """These splits with every tensor on ``device`` (``self`` when all are there already)."""
        tensors = self.tensors()
        if all(t.device == device for t in tensors.values()):
            return self
        return dataclasses.replace(self, **{k: t.to(device) for k, t in tensors.items()})

    def pinned(self) -> Splits:
        """These (CPU) splits in page-locked memory, so copies to a GPU need not block."""
        return dataclasses.replace(self, **{k: t.pin_memory() for k, t in self.tensors().items()})


_DIGIT_NAMES = tuple(str(i) for i in range(10))
#: CIFAR-100's fine labels in label order (the ``fine_label_names`` of its ``meta`` file).
_CIFAR100_NAMES = tuple(  # one string: a list literal would be 25 lines
    """apple aquarium_fish baby bear beaver bed bee beetle bicycle bottle bowl boy bridge bus
    butterfly camel can castle caterpillar cattle chair chimpanzee clock cloud cockroach couch
    crab crocodile cup dinosaur dolphin elephant flatfish forest fox girl hamster house kangaroo
    keyboard lamp lawn_mower leopard lion lizard lobster man maple_tree motorcycle mountain mouse
    mushroom oak_tree orange orchid otter palm_tree pear pickup_truck pine_tree plain plate poppy
    porcupine possum rabbit raccoon ray road rocket rose sea seal shark shrew skunk skyscraper
    snail snake spider squirrel streetcar sunflower sweet_pepper table tank telephone television
    tiger tractor train trout tulip turtle wardrobe whale willow_tree wolf woman worm""".split()  # noqa: SIM905
)

_INFO = {
    "digits": DatasetInfo(
        name="digits",
        in_channels=1,
        image_size=28,
        num_classes=10,
        classes=_DIGIT_NAMES,
        # Mean and (population) std of all 1797 digits after /16, bilinear
        # antialiased upscaling to 28x28 and clamping, i.e. of _digits_arrays()[0],
        # computed once in float64 and rounded to 4 places.
        mean=(0.3053,),
        std=(0.3247,),
    ),
    "fashion-mnist": DatasetInfo(
        name="fashion-mnist",
        in_channels=1,
        image_size=28,
        num_classes=10,
        classes=(
            "T-shirt/top",
            "Trouser",
            "Pullover",
            "Dress",
            "Coat",
            "Sandal",
            "Shirt",
            "Sneaker",
            "Bag",
            "Ankle boot",
        ),
        mean=(0.2860,),
        std=(0.3530,),
    ),
    "mnist": DatasetInfo(
        name="mnist",
        in_channels=1,
        image_size=28,
        num_classes=10,
        classes=_DIGIT_NAMES,
        mean=(0.1307,),
        std=(0.3081,),
    ),
    "cifar10": DatasetInfo(
        name="cifar10",
        in_channels=3,
        image_size=32,
        num_classes=10,
        classes=(
            "airplane",
            "automobile",
            "bird",
            "cat",
            "deer",
            "dog",
            "frog",
            "horse",
            "ship",
            "truck",
        ),
        mean=(0.4914, 0.4822, 0.4465),
        std=(0.2470, 0.2435, 0.2616),
    ),
    "cifar100": DatasetInfo(
        name="cifar100",
        in_channels=3,
        image_size=32,
        num_classes=100,
        classes=_CIFAR100_NAMES,
        mean=(0.5071, 0.4865, 0.4409),
        std=(0.2673, 0.2564, 0.2762),
    ),
}


def dataset_info(name: str) -> DatasetInfo:
    """The static facts of dataset ``name`` (loads nothing)."""
    check_option("dataset_info", "name", name, DATASETS)
    return _INFO[name]


# ---------------------------------------------------------------------------
# seeds and index subsets


def _generator(seed: int, stream: int) -> torch.Generator:
    """A CPU torch.Generator seeded from SeedSequence([seed, stream])."""
    return seeding.generator(seeding.seed_words(seed, stream))


def _permutation(total: int, seed: int, stream: int) -> torch.Tensor:
    """A seeded permutation of range(total): (total,) int64."""
    return torch.randperm(total, generator=_generator(seed, stream))


def eval_subset(n: int, total: int, seed: int) -> torch.Tensor:
    """Sorted (n,) int64 indices of a fixed, seeded subset of range(total).

    Prefixes of one permutation: for a given seed, a smaller subset is always
    contained in a larger one.
    """
    check_int("eval_subset", "total", total, lo=1)
    check_int("eval_subset", "n", n, lo=1, hi=total)
    check_int("eval_subset", "seed", seed, lo=0)
    return _permutation(total, seed, _STREAM_EVAL)[:n].sort().values


def _split_indices(n_train: int, spec: DataSpec) -> tuple[torch.Tensor, torch.Tensor]:
    """Sorted (train, val) indices into a training set of n_train items."""
    n_val = round(spec.val_fraction * n_train)
    perm = _permutation(n_train, spec.split_seed, _STREAM_VAL)
    val_idx, rest = perm[:n_val], perm[n_val:]
    if spec.train_size is not None:
        if spec.train_size > len(rest):
            raise SpecError(
                "train_size",
                f"an int in the range [10, {len(rest)}] for {spec.name} "
                f"with val_fraction={spec.val_fraction:g}",
                spec.train_size,
                owner="DataSpec",
            )
        # A separate stream, so the validation split is the same whatever train_size.
        pick = _permutation(len(rest), spec.split_seed, _STREAM_SUBSET)[: spec.train_size]
        rest = rest[pick]
    return rest.sort().values, val_idx.sort().values


def _check_arrays(
    info: DatasetInfo, where: str, x: np.ndarray, y: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """Raise DataError unless x: (N, H, W[, C]) matches info and y: (N,) holds valid labels."""
    size = info.image_size
    if x.ndim < 3 or x.shape[1:3] != (size, size):
        raise DataError(f"{where}: images have shape {x.shape}, expected (N, {size}, {size}, ...)")
    if len(x) != len(y):
        raise DataError(f"{where}: {len(x)} images but {len(y)} labels")
    if len(y) and (y.min() < 0 or y.max() >= info.num_classes):
        raise DataError(f"{where}: labels outside 0..{info.num_classes - 1}")
    return x, y


# ---------------------------------------------------------------------------
# raw arrays, cached per process
#
# Every cached function returns uint8 images (N, C, H, W) and int64 labels (N,)
# for (train, test); callers only index them (which copies), never edit them.

Raw = tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]


@functools.lru_cache(maxsize=1)
def _digits_arrays() -> tuple[torch.Tensor, torch.Tensor]:
    """All 1797 digits upscaled to 28x28: x (1797, 1, 28, 28) float32 in [0, 1], y (1797,) int64."""
    from sklearn.datasets import load_digits  # late import: scikit-learn is slow to import

    digits = load_digits()
    x = torch.as_tensor(digits.images, dtype=torch.float32).unsqueeze(1) / 16.0
    x = F.interpolate(x, size=(28, 28), mode="bilinear", antialias=True, align_corners=False)
    # Bilinear interpolation of values in [0, 1] stays in [0, 1] up to rounding.
    return x.clamp_(0.0, 1.0), torch.as_tensor(digits.target, dtype=torch.int64)


@functools.lru_cache(maxsize=4)
def _idx_arrays(folder: str, signature: tuple) -> Raw:
    """Fashion-MNIST style IDX files in ``folder``; ``signature`` (mtimes) invalidates the cache."""
    del signature  # only part of the cache key: a rewritten file is read again
    info = _INFO["fashion-mnist"]
    out = []
    for split in ("train", "t10k"):
        x_path = _idx_file(Path(folder), f"{split}-images-idx3-ubyte")
        y_path = _idx_file(Path(folder), f"{split}-labels-idx1-ubyte")
        assert x_path is not None and y_path is not None  # _find_idx_folder checked
        x, y = _check_arrays(
            info, str(x_path), read_idx(x_path, "images"), read_idx(y_path, "labels")
        )
        out += [torch.from_numpy(x).unsqueeze(1), torch.from_numpy(y).long()]
    return tuple(out)  # type: ignore[return-value]


def _torchvision_class(name: str) -> type:
    """torchvision's dataset class for ``name``."""
    from torchvision import datasets  # late import: torchvision is slow to import

    return {
        "mnist": datasets.MNIST,
        "cifar10": datasets.CIFAR10,
        "cifar100": datasets.CIFAR100,
        "fashion-mnist": datasets.FashionMNIST,
    }[name]


@functools.lru_cache(maxsize=4)
def _torchvision_arrays(name: str, root: str) -> Raw:
    """MNIST, CIFAR-10 or CIFAR-100 read by torchvision from ``root`` (download=False).

    CIFAR's python batches are pickles. torchvision unpickles them only after
    checking each file's md5 against the known originals, so a tampered file is
    refused rather than executed; do not bypass that check here.
    """
    cls = _torchvision_class(name)
    info = _INFO[name]
    out = []
    for train in (True, False):
        ds = cls(root, train=train, download=False)
        # .data is the whole split at once: uint8 (N, H, W) for MNIST,
        # numpy (N, H, W, C) for CIFAR-10; no per-image PIL round trip.
        x = np.asarray(ds.data)
        y = np.asarray(ds.targets, dtype=np.int64)
        _check_arrays(info, f"{name} in {root}", x, y)
        xt = torch.as_tensor(x)
        xt = xt.unsqueeze(1) if xt.ndim == 3 else xt.permute(0, 3, 1, 2).contiguous()
        out += [xt, torch.from_numpy(y)]
    return tuple(out)  # type: ignore[return-value]


# ---------------------------------------------------------------------------
# finding the files


def default_root() -> Path:
    """Where downloads go when no data root is given."""
    return Path.home() / ".cache" / "prunescope" / "data"


def find_root(root: str | Path | None = None) -> Path | None:
    """The data root: ``root`` if given, else $PRUNESCOPE_DATA if set, else None."""
    if root is not None and str(root) != "":
        return Path(root).expanduser()
    env = os.environ.get(DATA_ENV, "")
    return Path(env).expanduser() if env else None


def _find_idx_folder(folder: Path) -> tuple[bool, str]:
    """Whether ``folder`` holds all four IDX files, and a note for the error message."""
    if not folder.is_dir():
        return False, "no such folder"
    missing = [stem for stem in _MNIST_FILES if _idx_file(folder, stem) is None]
    if missing:
        return False, "missing " + ", ".join(f"{m}[.gz]" for m in missing)
    return True, "found"


def _signature(folder: Path) -> tuple:
    """(name, size, mtime) of the IDX files in ``folder``: part of the cache key."""
    files = (_idx_file(folder, stem) for stem in _MNIST_FILES)
    return tuple((p.name, p.stat().st_size, p.stat().st_mtime_ns) for p in files if p is not None)


def _try_download(name: str, target: Path) -> str | None:
    """Let torchvision download ``name`` into ``target``; None on success, else the reason."""
    try:
        target.mkdir(parents=True, exist_ok=True)
        cls = _torchvision_class(name)
        for train in (True, False):
            cls(str(target), train=train, download=True)
    # Any failure (no network, proxy, disk full, bad checksum) means "not available
    # this way"; the reason goes into the one DataError listing every place looked.
    except Exception as err:
        return f"{type(err).__name__}: {err}"
    return None


def _load_fashion(root: Path | None, download: bool | None) -> tuple[Raw, str]:
    """Fashion-MNIST raw arrays from the first place that has them, and their source."""
    looked: list[str] = []
    target = root if root is not None else default_root()
    debian = (DEBIAN_FASHION_MNIST, "Debian package dataset-fashion-mnist")
    ours = [(target / "fashion-mnist", "IDX files"), (target / "FashionMNIST" / "raw", "IDX files")]
    # The user's own root wins over the system copy; without one, the system copy
    # wins over an earlier download into the cache (which is where `target` points).
    folders = [*ours, debian] if root is not None else [debian, *ours]
    for folder, what in folders:
        ok, note = _find_idx_folder(folder)
        looked.append(f"{folder} ({note})")
        if ok:
            return _idx_arrays(str(folder), _signature(folder)), f"{what} in {folder}"
    if download is False:
        looked.append("torchvision download (not attempted: download=False)")
        raise _missing("fashion-mnist", looked)
    reason = _try_download("fashion-mnist", target)
    raw_folder = target / "FashionMNIST" / "raw"
    if reason is None and _find_idx_folder(raw_folder)[0]:
        raw = _idx_arrays(str(raw_folder), _signature(raw_folder))
        return raw, f"downloaded by torchvision into {target}"
    looked.append(f"torchvision download into {target} (failed: {reason})")
    raise _missing("fashion-mnist", looked)


def _load_torchvision(name: str, root: Path | None, download: bool | None) -> tuple[Raw, str]:
    """MNIST / CIFAR-10 / CIFAR-100 raw arrays via torchvision, downloading if allowed, and their source."""
    target = root if root is not None else default_root()
    try:
        return _torchvision_arrays(name, str(target)), f"torchvision {name} files in {target}"
    except DataError:
        raise
    # torchvision says RuntimeError for missing or corrupted (md5) files; a
    # malformed IDX file surfaces as ValueError / TypeError from its reader.
    except (RuntimeError, ValueError, TypeError, OSError) as err:
        sub = {"mnist": "MNIST/raw", "cifar10": "cifar-10-batches-py"}.get(name, "cifar-100-python")
        looked = [f"{target / sub} (torchvision: {err})"]
    if download is False:
        looked.append("torchvision download (not attempted: download=False)")
        raise _missing(name, looked)
    reason = _try_download(name, target)
    if reason is None:
        try:
            return _torchvision_arrays(
                name, str(target)
            ), f"downloaded by torchvision into {target}"
        except (RuntimeError, ValueError, TypeError, OSError) as err:
            reason = f"{type(err).__name__}: {err}"
    looked.append(f"torchvision download into {target} (failed: {reason})")
    raise _missing(name, looked)


# ---------------------------------------------------------------------------
# the public entry point


def _to_float(x: torch.Tensor) -> torch.Tensor:
    """uint8 (N, C, H, W) -> float32 in [0, 1]; float input passes through."""
    return x.float().div_(255.0) if x.dtype == torch.uint8 else x


def load(spec: DataSpec, root: str | Path | None = None, *, download: bool | None = None) -> Splits:
    """Load ``spec.name`` and split it as ``spec`` says.

    ``root`` (else $PRUNESCOPE_DATA) is the data root. ``download``: False never
    downloads; True and None (auto) download through torchvision only when the
    data is found nowhere locally. Missing data raises one :class:`DataError`
    naming every place looked. Raw arrays are cached per process, so a second
    load of the same dataset does not touch the disk.
    """
    info = dataset_info(spec.name)
    data_root = find_root(root)
    if spec.name == "digits":
        x, y = _digits_arrays()
        test_idx = _permutation(len(y), DIGITS_TEST_SEED, _STREAM_DIGITS_TEST)
        n_test = round(DIGITS_TEST_FRACTION * len(y))
        test_idx, pool_idx = test_idx[:n_test].sort().values, test_idx[n_test:].sort().values
        raw = (x[pool_idx], y[pool_idx], x[test_idx], y[test_idx])
        source = "scikit-learn load_digits (bundled), upscaled from 8x8 to 28x28"
    elif spec.name == "fashion-mnist":
        raw, source = _load_fashion(data_root, download)
    else:
        raw, source = _load_torchvision(spec.name, data_root, download)

    pool_x, pool_y, test_x, test_y = raw
    train_idx, val_idx = _split_indices(len(pool_y), spec)
    return Splits(
        info=info,
        source=source,
        train_x=_to_float(pool_x[train_idx]),
        train_y=noisy_labels(
            pool_y[train_idx], spec.label_noise, info.num_classes, spec.split_seed
        ),
        val_x=_to_float(pool_x[val_idx]),
        val_y=pool_y[val_idx],
        # _to_float copies uint8 input; float (digits) test images are a fresh index copy.
        test_x=_to_float(test_x) if test_x.dtype == torch.uint8 else test_x.clone(),
        test_y=test_y.clone(),
    )
