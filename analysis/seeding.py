"""Seeds at the boundary: every random stream is a ``torch.Generator`` seeded through SeedSequence.

A spec holds integer seeds only. Each use of randomness draws its own stream,
named by the entropy it mixes (the spec's seed, a purpose number, indices):
``numpy.random.SeedSequence`` hashes that entropy into well-mixed words, so
nearby seeds and different purposes never give correlated streams, and no
computation touches a global RNG. ``sklearn.utils.check_random_state`` plays the
same role for scikit-learn; ours must also feed ``torch``.

The formulas below are fixed: changing one changes every result computed with
it, so the stored results' keys pin them through the tests that compare
results with stored values.
"""

from __future__ import annotations

import numpy as np
import torch


def seed_words(*entropy: int) -> int:
    """A 64-bit seed from ``entropy``: two SeedSequence words, high word first."""
    state = np.random.SeedSequence(list(entropy)).generate_state(2, dtype=np.uint32)
    return int(state[0]) << 32 | int(state[1])


def seed_word(*entropy: int) -> int:
    """A 32-bit seed from ``entropy``: the first SeedSequence word."""
    return int(np.random.SeedSequence(list(entropy)).generate_state(1)[0])


def seed_63(*entropy: int) -> int:
    """A 63-bit seed from ``entropy`` (two words mixed as ``w0 * 2**31 + w1``, top bit cleared)."""
    state = np.random.SeedSequence(list(entropy)).generate_state(2, dtype=np.uint32)
    return int(state.astype(np.uint64) @ [1 << 31, 1]) & ((1 << 63) - 1)


def generator(seed: int, device: torch.device | str | None = None) -> torch.Generator:
    """A ``torch.Generator`` on ``device`` (default CPU) seeded with ``seed``.

    Draws on CPU and on CUDA differ for the same seed (different algorithms);
    results record the device they ran on.
    """
    gen = torch.Generator(device=device) if device is not None else torch.Generator()
    return gen.manual_seed(seed)
