"""Golden vectors for an exported model (`deepscreen_train.golden_vectors`): PyTorch features,
raw outputs and calibrated scores on deterministic windows that `tests/it/golden.rs` rebuilds.

    python training/export_golden.py models/speech-cnn.safetensors tests/golden/embedded_speech-cnn_io.safetensors
"""

from __future__ import annotations

import sys
from pathlib import Path

from deepscreen_train.golden_vectors import write_golden
from deepscreen_train.torch_model import load

if __name__ == "__main__":
    write_golden(load(sys.argv[1]), Path(sys.argv[2]))
