"""The torch devices the glue tests run on: the CPU, and CUDA where torch sees a GPU (skipped elsewhere)."""

from __future__ import annotations

import pytest
import torch

DEVICES = ["cpu", pytest.param("cuda", marks=pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA"))]
