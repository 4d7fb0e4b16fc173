"""Every command refuses a device it cannot use with one ``error:`` line (``repsr eval`` used to raise)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from repsr import cli
from repsr.imageio import write_image


@pytest.mark.parametrize("device, message", [("cuda", "no CUDA device"), ("gpu", "unknown device")])
@pytest.mark.parametrize("command", ["eval", "upscale"])
def test_an_unusable_device_is_a_one_line_error(command: str, device: str, message: str, tmp_path: Path,
                                                monkeypatch: pytest.MonkeyPatch,
                                                capsys: pytest.CaptureFixture[str]) -> None:
    if device == "cuda" and torch.cuda.is_available():
        pytest.skip("a GPU is present")
    monkeypatch.setattr(cli, "COMMANDS", (command,))
    write_image(tmp_path / "a.png", np.zeros((8, 8, 3), np.uint8))
    argv = {"eval": ["eval", "-m", "repsr-m4c16-x2", "-d", str(tmp_path / "a.png"), "--quiet"],
            "upscale": ["upscale", str(tmp_path / "a.png"), "-o", str(tmp_path / "b.png")]}[command]
    assert cli.main([*argv, "--device", device]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("error:") and message in err[0]
