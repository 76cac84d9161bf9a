"""Fixtures of the deployment tests (see cfn_model.py)."""

from __future__ import annotations

from typing import Any

import pytest
from cfn_model import load_template, sam_transform


@pytest.fixture(scope="session")
def template() -> dict[str, Any]:
    return load_template()


@pytest.fixture(scope="session")
def transformed(template: dict[str, Any]) -> dict[str, Any]:
    return sam_transform(template)
