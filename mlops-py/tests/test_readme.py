"""The README's Python example runs as written."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

import mlops

from conftest import ROOT


def test_the_readme_example_runs(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    readme = (ROOT / "README.md").read_text()
    section = readme.split("## From Python", 1)[1]
    match = re.search(r"```python\n(.*?)```", section, re.S)
    assert match is not None, "the README has no Python example"
    monkeypatch.chdir(tmp_path)
    exec(compile(match.group(1), "README.md", "exec"), {"__name__": "readme"})
    assert mlops.get_registry().get_model_version_by_alias("churn", "champion").version == 1
    assert (tmp_path / "mlops-data").is_dir()
