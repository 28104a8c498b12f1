"""Each head checks its own stored state: bundle.py holds no per-method table."""

from __future__ import annotations

import pytest
import torch

from deepseg.nn.heads import (
    HEADS,
    GaussianMixtureHead,
    MixturePosterior,
    NearestCenter,
    StudentTAssignment,
)


def _heads() -> list:
    k, d = 4, 3
    g = torch.Generator().manual_seed(0)
    centers = torch.randn(k, d, generator=g)
    return [
        StudentTAssignment(centers, alpha=2.0),
        NearestCenter(centers.double()),
        GaussianMixtureHead(
            centers.double(), torch.ones(k, d).double(), torch.full((k,), 0.25).double(),
            torch.ones(k, d).double(), "diag",
        ),
        MixturePosterior(torch.zeros(k), centers, torch.zeros(k, d)),
    ]  # fmt: skip


def test_every_registered_head_is_covered():
    assert {type(h).kind for h in _heads()} == set(HEADS)


@pytest.mark.parametrize("head", _heads(), ids=lambda h: h.kind)
def test_a_head_checks_its_stored_state_and_counts_its_clusters(head):
    config = {"type": head.kind, **head.config}
    stored = head.stored_tensors()
    assert type(head).check_state(config, stored) == 4
    assert head.centers_ is not None and head.centers_.shape == (4, 3)
    rebuilt = type(head).from_state(config, stored)
    z = torch.randn(6, 3)
    assert torch.equal(rebuilt(z), head(z))
    first = next(iter(head.tensors()))
    with pytest.raises(KeyError, match=first):
        type(head).check_state(config, {k: v for k, v in stored.items() if k != first})


def test_an_edited_numeric_argument_is_refused():
    head = StudentTAssignment(torch.zeros(3, 2), alpha=1.0)
    stored = head.stored_tensors()
    assert set(stored) == {"centers", "alpha"}
    assert StudentTAssignment.check_state({"alpha": 1.0}, stored) == 3
    for claimed in (5.0, "1.0", None, True):
        with pytest.raises(ValueError, match=r"alpha=.* does not match the weights' alpha 1.0"):
            StudentTAssignment.check_state({"alpha": claimed}, stored)
