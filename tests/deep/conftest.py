"""Fixtures shared by the clustering tests."""

import pytest
import torch


@pytest.fixture(scope="module", autouse=True)
def one_thread():
    # The networks are tiny: intra-op threads only add overhead, and on a busy 2-core machine
    # they made each fit several times slower.
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)
