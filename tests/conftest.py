import os
from pathlib import Path

import pytest
import torch

os.environ.setdefault("NO_ALBUMENTATIONS_UPDATE", "1")
# Tiny test models: one intra-op thread is faster, and immune to a loaded 2-core machine.
torch.set_num_threads(1)

ROOT = Path(__file__).resolve().parent.parent
SHARED_MPII = ROOT.parent / "shared" / "mpii"


@pytest.fixture
def mpii_dir() -> Path:
    if not SHARED_MPII.is_dir():
        pytest.skip(f"real MPII annotation files not found at {SHARED_MPII}")
    return SHARED_MPII


@pytest.fixture
def one_thread():
    """For tests that change the thread count (the bench's probe): restore it afterwards."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)
