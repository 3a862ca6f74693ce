"""What to tell a user whose dataset is not on the machine: where we looked, how to get it."""

from __future__ import annotations

from analysis.errors import DataError

#: The environment variable naming the data root (as in ``analysis.data``).
DATA_ENV = "PRUNESCOPE_DATA"


def how_to_get(name: str) -> str:
    """Advice on getting dataset ``name`` onto this machine."""
    layout = {
        "fashion-mnist": "fashion-mnist/ (or FashionMNIST/raw/) with the four IDX files",
        "mnist": "MNIST/raw/ with the four uncompressed IDX files",
        "cifar10": "cifar-10-batches-py/ (the python version of CIFAR-10)",
        "cifar100": "cifar-100-python/ (the python version of CIFAR-100)",
    }[name]
    advice = [
        f"set {DATA_ENV} or --data-root to a folder holding {layout}",
        "or run once with internet access so torchvision downloads it",
    ]
    if name == "fashion-mnist":
        advice.insert(0, "install Debian's package: apt-get install dataset-fashion-mnist")
    return "; ".join(advice)


def missing(name: str, looked: list[str]) -> DataError:
    """The one error raised when ``name`` is found nowhere."""
    places = "\n".join(f"  - {p}" for p in looked)
    return DataError(
        f"Dataset {name!r} not found. Looked in:\n{places}\nTo get it: {how_to_get(name)}."
    )
