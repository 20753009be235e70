"""Constants shared by the NAS tests and their fixtures (a uniquely named module, importable from tests/nas)."""

from __future__ import annotations

from autostruct.nas.config import SupernetConfig

VAL_SIZE = 300
TINY_SUPERNET = SupernetConfig(epochs=2, batch_size=64, min_steps=0)
