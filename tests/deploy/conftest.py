"""Fixtures of the deployment tests (see cfn_model.py)."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import pytest
from cfn_model import load_template, sam_transform

# tests/ holds helpers shared with tests/e2e (lambda_watch.py).
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))


@pytest.fixture(scope="session")
def template() -> dict[str, Any]:
    return load_template()


@pytest.fixture(scope="session")
def transformed(template: dict[str, Any]) -> dict[str, Any]:
    return sam_transform(template)
