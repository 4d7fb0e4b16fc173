"""``repsr train`` as users run it: kill -9 then --resume, user errors, and DDP with 2 gloo processes."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
from test_train import make_tiny_set

from repsr.train.checkpoint import load_checkpoint
from repsr.weights import load_model

ENV = {**os.environ, "OMP_NUM_THREADS": "1"}


@pytest.fixture(scope="module")
def tiny_set(data_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_tiny_set(data_dir, tmp_path_factory.mktemp("tiny") / "Tiny5")


def overrides(data: Path, output: Path, *extra: str) -> list[str]:
    return ["--set", "model.blocks=2", "model.channels=8", "model.scale=2", "train.batch_size=4",
            "train.patch_size=16", "train.bn_switch=0.5", "train.bn_calib_batches=2", "train.val_every=0",
            "train.log_every=50", "train.threads=1", "train.amp=false", f"data.train=[{data}]", "data.val=[]",
            f"output={output}", *extra]


def repsr(*args: str, **kwargs) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "repsr", "train", *args], env=ENV, capture_output=True,
                          text=True, timeout=120, **kwargs)


def test_killed_run_resumes_and_finishes(tiny_set, tmp_path):
    out = tmp_path / "run"
    args = ["configs/repsr.yaml", *overrides(tiny_set, out, "train.iters=400", "train.ckpt_every=20")]
    proc = subprocess.Popen([sys.executable, "-m", "repsr", "train", *args], env=ENV,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    ckpt = out / "checkpoints" / "latest.safetensors"
    deadline = time.monotonic() + 60
    while not ckpt.exists() and proc.poll() is None and time.monotonic() < deadline:
        time.sleep(0.02)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    assert proc.returncode == -signal.SIGKILL, "the run ended before it could be killed"
    interrupted = load_checkpoint(ckpt)["iteration"]
    assert 0 < interrupted < 400
    assert repsr(*args).returncode != 0  # without --resume an existing run is never overwritten
    done = repsr(*args, "--resume")
    assert done.returncode == 0, done.stderr
    assert load_checkpoint(ckpt)["iteration"] == 400
    merged = load_model(out / "model_merged.safetensors")
    assert merged.config.arch == "compact"


def test_user_errors_are_one_line(tiny_set, tmp_path):
    bad = repsr("configs/repsr.yaml", "--set", "train.bn_swich=0.5")
    assert bad.returncode == 2 and bad.stderr.strip().count("\n") == 0
    assert "train.bn_swich" in bad.stderr and "configs/repsr.yaml" in bad.stderr
    missing = repsr("configs/repsr.yaml", *overrides(tiny_set, tmp_path / "none"), "--resume")
    assert missing.returncode == 2 and "no checkpoint" in missing.stderr and "Traceback" not in missing.stderr


def test_ddp_two_gloo_processes_match_one_process_with_the_global_batch(tiny_set, tmp_path):
    """2 ranks x batch 2 with SyncBN == 1 process x batch 4: sharding, gradient averaging, BN re-estimation."""
    common = overrides(tiny_set, tmp_path, "train.iters=4", "train.ckpt_every=0", "train.sync_bn=true",
                       "model.blocks=1", "model.channels=4", "train.bn_switch=2")
    ddp_args = [*common[:-1], f"output={tmp_path / 'ddp'}", "train.batch_size=2"]
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2",
           "-m", "repsr", "train", "configs/repsr.yaml", *ddp_args]
    ddp = subprocess.run(cmd, env=ENV, capture_output=True, text=True, timeout=180)
    assert ddp.returncode == 0, f"stdout: {ddp.stdout[-2000:]}\nstderr: {ddp.stderr[-4000:]}"
    single = repsr("configs/repsr.yaml", *common[:-1], f"output={tmp_path / 'single'}")
    assert single.returncode == 0, single.stderr
    a = load_checkpoint(tmp_path / "ddp" / "checkpoints" / "latest.safetensors")
    b = load_checkpoint(tmp_path / "single" / "checkpoints" / "latest.safetensors")
    assert a["iteration"] == b["iteration"] == 4 and a["bn_switch"]["switched"]
    for key, value in b["model"].items():  # few steps: Adam amplifies rounding noise in tiny gradients
        torch.testing.assert_close(a["model"][key], value, atol=1e-5, rtol=1e-5, msg=key)


def test_an_unwritable_output_is_one_line(tiny_set, tmp_path):
    """A path under a regular file stands in for a read-only place (TensorBoard used to raise)."""
    (tmp_path / "blocker").write_text("a file, not a folder")
    result = repsr("configs/repsr.yaml", *overrides(tiny_set, tmp_path / "blocker" / "run", "train.iters=2"))
    assert result.returncode == 2 and "Traceback" not in result.stderr, result.stderr
    assert result.stderr.strip().count("\n") == 0 and "cannot create the output folder" in result.stderr
