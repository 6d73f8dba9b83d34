"""The distribution name, the wheel's contents and the README's install lines."""

import importlib.metadata as md
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

import jaxnn

ROOT = Path(__file__).resolve().parent.parent


def test_distribution_name_and_version():
    # `jaxnn` on the package index is an unrelated project: ours is distributed as jaxnn-torch
    assert jaxnn.__distribution__ == "jaxnn-torch"
    assert md.version("jaxnn-torch") == jaxnn.__version__


def test_readme_names_the_distribution():
    readme = (ROOT / "README.md").read_text()
    assert "pip install jaxnn " not in readme and "pip install jaxnn\n" not in readme
    assert f"jaxnn_torch-{jaxnn.__version__}-py3-none-any.whl" in readme
    assert "jaxnn.__distribution__" in readme


@pytest.mark.skipif(not (ROOT / "pyproject.toml").exists(), reason="needs the source tree")
def test_wheel_builds_with_the_import_package_only(tmp_path):
    subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q", str(ROOT),
         "-w", str(tmp_path)],
        check=True,
        capture_output=True,
    )
    (wheel,) = tmp_path.glob("*.whl")
    assert wheel.name == f"jaxnn_torch-{jaxnn.__version__}-py3-none-any.whl"
    names = zipfile.ZipFile(wheel).namelist()
    assert "jaxnn/__init__.py" in names and "jaxnn/functional/_norm.py" in names
    assert not [n for n in names if n.startswith(("tests/", "examples/", "benchmarks/", "notebooks/"))]
    metadata = zipfile.ZipFile(wheel).read(f"jaxnn_torch-{jaxnn.__version__}.dist-info/METADATA").decode()
    assert "Name: jaxnn-torch" in metadata
    assert "Provides-Extra: cuda12" in metadata and "Provides-Extra: tpu" in metadata
