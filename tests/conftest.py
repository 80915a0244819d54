import os
from pathlib import Path

import pytest

os.environ.setdefault("NO_ALBUMENTATIONS_UPDATE", "1")

ROOT = Path(__file__).resolve().parent.parent
SHARED_MPII = ROOT.parent / "shared" / "mpii"


@pytest.fixture
def mpii_dir() -> Path:
    if not SHARED_MPII.is_dir():
        pytest.skip(f"real MPII annotation files not found at {SHARED_MPII}")
    return SHARED_MPII
