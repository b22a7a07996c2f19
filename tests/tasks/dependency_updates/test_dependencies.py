"""Dependency Updates logic without servers: requirement files, index answers, classification."""

from __future__ import annotations

from pathlib import Path

import pytest
from packaging.version import Version

from sanvi_ops.core.config import ConfigError, parse_config
from sanvi_ops.tasks.dependency_updates.dependencies import (
    _redact,
    candidate_update,
    classify,
    parse_requirements,
    read_requirement_files,
    versions_from_json_api,
    versions_from_simple_html,
    versions_from_simple_json,
)
from tests.fixtures.config import shipped_config

pytestmark = pytest.mark.unit

REPO = Path(__file__).resolve().parents[3]


def _write(path: Path, text: str) -> Path:
    path.write_text(text)
    return path


def test_parse_handles_comments_extras_markers_hashes_and_continuations(tmp_path):
    f = _write(
        tmp_path / "requirements.txt",
        "# a comment line\n"
        "--index-url https://example.invalid/simple\n"
        "Flask==3.0.0            # why we need it\n"
        "psycopg[binary,pool]==3.3.9\n"
        'tomli==2.0.1 ; python_version < "3.11"\n'
        "Some.Package_Name==1.2 \\\n"
        "    --hash=sha256:abc \\\n"
        "    --hash=sha256:def\n"
        "requests>=2.0\n"
        "pkg @ https://example.invalid/pkg-1.0.tar.gz\n"
        "wild==1.*\n"
        "-e ./local\n"
        "-c constraints.txt\n"
        "!!! not a requirement\n",
    )
    rf = parse_requirements(f)
    pinned = {p.name: p for p in rf.pinned}
    assert set(pinned) == {"flask", "psycopg", "tomli", "some-package-name"}
    assert pinned["flask"].version == "3.0.0" and pinned["flask"].line == 3
    assert pinned["psycopg"].extras == ("binary", "pool")
    assert pinned["tomli"].marker == 'python_version < "3.11"'
    assert pinned["some-package-name"].version == "1.2" and pinned["some-package-name"].line == 6
    assert {p.name for p in rf.unpinned} == {"requests", "pkg", "wild"}
    assert len(rf.problems) == 1 and "line 14" in rf.problems[0]


def test_includes_are_followed_once_and_reported_under_their_own_name(tmp_path):
    (tmp_path / "sub").mkdir()
    _write(tmp_path / "base.txt", "alpha==1.0.0\n-r base.txt\n")  # a cycle is harmless
    _write(tmp_path / "sub" / "dev.txt", "-r ../base.txt\n--requirement=../other.txt\nbeta-pkg==0.9.0\n")
    _write(tmp_path / "other.txt", "gamma==4.2.0\n")
    files = read_requirement_files([tmp_path / "sub" / "dev.txt", tmp_path / "base.txt"])
    assert [f.path.name for f in files] == ["dev.txt", "base.txt", "other.txt"]
    assert [p.name for f in files for p in f.pinned] == ["beta-pkg", "alpha", "gamma"]


def test_missing_file_is_a_problem_not_an_exception(tmp_path):
    (rf,) = read_requirement_files([tmp_path / "nope.txt"])
    assert rf.pins == [] and "cannot read" in rf.problems[0]


def test_this_projects_requirements_parse_completely():
    files = read_requirement_files([REPO / "requirements.txt", REPO / "requirements-dev.txt"])
    # requirements-dev.txt includes requirements-local.txt (the local stack), which is read too.
    assert [f.path.name for f in files] == [
        "requirements.txt",
        "requirements-dev.txt",
        "requirements-local.txt",
    ]
    assert all(not f.problems and not f.unpinned for f in files), [(f.path, f.problems) for f in files]
    names = {p.name for f in files for p in f.pinned}
    assert {"apache-airflow", "psycopg", "moto", "pytest", "types-pyyaml"} <= names


@pytest.mark.parametrize(
    ("current", "newer", "kind"),
    [
        ("1.0.0", "1.0.1", "patch"),
        ("1.0.0", "1.2.0", "minor"),
        ("1.9", "2.0", "major"),
        ("1.0", "1.0.post1", "patch"),
    ],
)
def test_classify(current, newer, kind):
    assert classify(Version(current), Version(newer)) == kind


def test_candidate_update_skips_prereleases_unless_pinned_one():
    avail = [Version(v) for v in ("1.0.0", "1.0.1", "1.2.0", "2.0.0", "2.1.0rc1")]
    upd = candidate_update(Version("1.0.0"), avail)
    assert (upd.latest, upd.latest_kind, upd.ready) == (Version("2.0.0"), "major", Version("1.2.0"))
    pre = candidate_update(Version("2.1.0b1"), avail)
    assert (pre.latest, pre.latest_kind) == (Version("2.1.0rc1"), "patch")
    assert candidate_update(Version("2.0.0"), avail).latest_kind is None
    assert candidate_update(Version("1.0.0"), [Version("3.0.0a1")]).latest is None


def test_simple_html_json_and_json_api_agree_and_drop_yanked():
    html = (
        '<a href="/f/alpha-1.0.0-py3-none-any.whl#sha256=1">alpha-1.0.0-py3-none-any.whl</a>'
        '<a href="/f/alpha-1.1.0.tar.gz" data-yanked="">alpha-1.1.0.tar.gz</a>'
        '<a href="/f/alpha-1.2.0.tar.gz" data-yanked="oops">alpha-1.2.0.tar.gz</a>'
        '<a href="/f/alpha-1.2.0-py3-none-any.whl">alpha-1.2.0-py3-none-any.whl</a>'  # one file not yanked
        '<a href="/f/alphabet-9.0.tar.gz">alphabet-9.0.tar.gz</a>'  # another project's sdist
        '<a href="/f/alpha-0.1.egg">alpha-0.1.egg</a>'
    )
    expect = (Version("1.0.0"), Version("1.2.0"))
    assert versions_from_simple_html(html, "alpha") == expect
    files = [
        {"filename": "alpha-1.0.0-py3-none-any.whl", "yanked": False},
        {"filename": "alpha-1.1.0.tar.gz", "yanked": "reason"},
        {"filename": "alpha-1.2.0.tar.gz", "yanked": True},
        {"filename": "alpha-1.2.0-py3-none-any.whl"},
    ]
    assert versions_from_simple_json({"files": files}, "alpha") == expect
    releases = {
        "1.0.0": [files[0]],
        "1.1.0": [files[1]],
        "1.2.0": files[2:],
        "not a version": [files[0]],
        "9.9": [],
    }
    assert versions_from_json_api({"releases": releases}) == expect


def test_redact_hides_index_credentials():
    assert _redact("https://user:tok@index.example/simple/") == "https://***@index.example/simple/"
    assert _redact("http://127.0.0.1:8080/simple/") == "http://127.0.0.1:8080/simple/"


def _cfg(section: dict) -> dict:

    data = shipped_config()
    data["tasks"]["dependency_updates"]["settings"] = section
    return data


def test_config_section_defaults_and_validation():
    cfg = parse_config(_cfg({}))
    du = cfg.tasks.dependency_updates.settings
    assert du.index_api == "simple" and du.advisory_url is None
    assert du.project_requirements == ["requirements.txt", "requirements-dev.txt"]
    with pytest.raises(ConfigError) as err:
        parse_config(_cfg({"app_requirements": ["relative.txt"], "index_api": "xml", "concurrency": 0}))
    text = str(err.value)
    assert "tasks.dependency_updates.settings.app_requirements" in text
    assert (
        "tasks.dependency_updates.settings.index_api" in text
        and "tasks.dependency_updates.settings.concurrency" in text
    )
