"""The examples and notebooks run (small sizes) so they cannot rot."""

import importlib
import sys
import time
from pathlib import Path

import nbformat
import pytest
from nbclient import NotebookClient

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "examples"))


def test_train_digits_one_epoch(tmp_path):
    mod = importlib.import_module("train_digits")
    acc = mod.main(["--epochs", "2", "--out", str(tmp_path), "--no-progress", "--lr", "1e-2"])
    assert acc > 0.7
    assert (tmp_path / "digits.png").stat().st_size > 1000
    assert (tmp_path / "digits.safetensors").stat().st_size > 1000


def test_port_from_torch(tmp_path, capsys):
    mod = importlib.import_module("port_from_torch")
    diffs = mod.main(["--out", str(tmp_path)])
    assert diffs["output"] < 1e-5 and diffs["grad"] < 1e-5
    assert "max |output diff|" in capsys.readouterr().out


# diffusers' DPM-Solver set_timesteps calls np.array on a torch tensor (torch's __array__ predates NumPy 2's copy=)
@pytest.mark.filterwarnings("ignore:__array__ implementation doesn't accept a copy keyword:DeprecationWarning")
def test_sd_demo(tmp_path, capsys):
    # make sd-demo at 3 steps: diffusers and jaxnn from the same folder and latents give the same image
    mod = importlib.import_module("sd_demo")
    res = mod.main(["--out", str(tmp_path), "--steps", "3", "--repeats", "1"])
    assert res["steps"] == 3
    assert res["max_abs_diff"] < 1e-3  # the tolerance on images in [0, 1]
    assert res["max_rel_diff_latents"] < 1e-4
    want, got = res["images"]
    assert want.shape == got.shape == (32, 32, 3)
    assert 0.02 < (want > 0.5).mean() < 0.98  # not a saturated image: the comparison means something
    assert res["jaxnn_step_s"] > 0 and res["diffusers_step_s"] > 0 and res["jaxnn_first_call_s"] > 0
    assert (tmp_path / "sd_demo.png").stat().st_size > 5000
    assert (tmp_path / "pipeline" / "model_index.json").is_file()
    out = capsys.readouterr().out
    assert "max |image difference|" in out and "ms per step" in out


NOTEBOOKS = sorted((ROOT / "notebooks").glob("*.ipynb"))


def test_there_are_notebooks():
    assert len(NOTEBOOKS) >= 3


@pytest.mark.parametrize("path", NOTEBOOKS, ids=[p.name for p in NOTEBOOKS])
def test_notebook_runs(path):
    nb = nbformat.read(path, as_version=4)
    assert all(not c.get("outputs") for c in nb.cells if c.cell_type == "code"), "strip outputs before committing"
    start = time.perf_counter()
    NotebookClient(nb, timeout=240, kernel_name="python3", resources={"metadata": {"path": str(ROOT)}}).execute()
    assert time.perf_counter() - start < 240
    errors = [o for c in nb.cells for o in c.get("outputs", []) if o.get("output_type") == "error"]
    assert not errors
