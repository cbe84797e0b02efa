"""Data of the supervised tasks (family ``sl``): inputs, and each task's labels.

``sl:digits-random-labels`` is the random-label memorisation protocol of Lyle et al.
(ICML 2023, "Understanding plasticity in neural networks"), on scikit-learn's bundled
digits instead of MNIST: the package ships the 1797 8x8 images, so nothing is downloaded.
The inputs stay the same over the whole run; every task draws new labels, uniform over the
10 classes and independent of the images and of every other task, so what one task taught
is of no use on the next and a task's final accuracy measures only how well the network can
still fit new targets.
"""

from __future__ import annotations

import numpy as np
import torch

CLASSES = 10
DIGITS_COUNT = 1797  # images in sklearn.datasets.load_digits (checked by tests/test_supervised.py)
DIGITS_PIXEL_MAX = 16.0  # load_digits' grey levels are 0..16
LABEL_STREAM = 5  # label draws apart from every other seeded stream of a run (training/run.py's are 1-4)


def task_inputs(name: str, samples: int) -> torch.Tensor:
    """The ``samples`` inputs that every task of supervised task ``name`` labels: the first
    ``samples`` digits, as float32 vectors of 64 pixels scaled to [0, 1]."""
    if name != "digits-random-labels":
        raise ValueError(f"unknown supervised task {name!r}; valid: digits-random-labels")
    if not 1 <= samples <= DIGITS_COUNT:
        raise ValueError(f"samples={samples} is out of range; valid: 1 to {DIGITS_COUNT} (the digits in the data set)")
    from sklearn.datasets import load_digits  # imported here: validating a spec must stay cheap

    images, _ = load_digits(return_X_y=True)
    return torch.as_tensor(images[:samples] / DIGITS_PIXEL_MAX, dtype=torch.float32)


def task_labels(seed: int, task_index: int, samples: int) -> torch.Tensor:
    """Labels of task ``task_index`` (from 0) of the run with ``seed``: ``samples`` draws
    uniform over the classes, a function of (seed, task index) alone, so a resumed run and
    a rerun draw the same labels."""
    rng = np.random.default_rng([seed, LABEL_STREAM, task_index])
    return torch.as_tensor(rng.integers(CLASSES, size=samples), dtype=torch.int64)
