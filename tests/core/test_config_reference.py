"""docs/configuration.md is generated from the schema and must not drift from it."""

from __future__ import annotations

import pytest

from sanvi_ops.core import config_reference
from sanvi_ops.core.config import MaintenanceConfig

pytestmark = pytest.mark.unit


def test_committed_reference_is_up_to_date():
    assert config_reference.OUTPUT.exists(), "docs/configuration.md is missing: run `make docs`"
    assert config_reference.OUTPUT.read_text() == config_reference.render(), (
        "docs/configuration.md is out of date with include/sanvi_ops/core/config.py or "
        "include/config/maintenance.yaml: run `make docs` and commit the result"
    )


def test_every_top_level_key_is_documented():
    text = config_reference.render()
    for name in MaintenanceConfig.model_fields:
        assert f"`{name}" in text, name


def test_yaml_comments_follow_nesting_and_lists():
    text = """\
top:
  a: 1            # first
  nested:
    b: "x # not a comment"   # second
  items:
    - name: one   # third
      sql: "SELECT 1"
"""
    notes = config_reference.yaml_comments(text)
    assert notes == {"top.a": "first", "top.nested.b": "second", "top.items[].name": "third"}


def test_section_comment_is_the_block_above_the_key():
    text = "# ----\n# Line one\n# line two.\nsection:\n  key: 1\n"
    assert config_reference.section_comments(text) == {"section": "Line one line two."}


def test_type_names_are_readable():
    import datetime as dt
    from typing import Literal

    assert config_reference.type_name(int | None) == "integer or null"
    assert config_reference.type_name(Literal["a", "b"]) == "one of a, b"
    assert config_reference.type_name(list[str]) == "list of string"
    assert config_reference.type_name(dt.timedelta) == "duration"
