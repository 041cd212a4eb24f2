"""One intra-op thread for network tests (imported by the conftests that want it): on a
shared 2-core machine, spinning OpenMP threads make tiny convolutions many times slower
than a single thread."""

from __future__ import annotations

import pytest
import torch


@pytest.fixture(autouse=True)
def one_thread():
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)
