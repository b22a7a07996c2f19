"""Commit a snapshot to a git repository with the git CLI, in a child process with a minimal
environment (no Airflow import).

Each commit happens in a fresh temporary clone (``--depth 1`` of the branch; an empty
repository or a missing branch starts it): files written, ``git add``, nothing staged → no
commit; otherwise one commit and a push to the branch. The child gets only ``PATH``, a throw-away
``HOME``, ``LANG``, the author, no system or global git config, no terminal prompt and only the
https/ssh/file transports; credentials, when the repository needs them, travel in environment
variables (an HTTPS token as an ``Authorization`` header through ``GIT_CONFIG_*``, an SSH key
through ``GIT_SSH_COMMAND``), never on a command line, and are scrubbed from error messages.
"""

from __future__ import annotations

import base64
import os
import shlex
import subprocess
import tempfile
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

__all__ = ["GitCredentials", "GitError", "commit_files", "git_env"]


class GitError(RuntimeError):
    """A git command failed; the message names the command (never a credential)."""


@dataclass(frozen=True)
class GitCredentials:
    """From the Airflow connection ``configuration_backups.git.connection``."""

    username: str | None = None
    token: str | None = None
    ssh_key_file: str | None = None

    def secrets(self) -> list[str]:
        """What must never appear in a message: the token, also in its header form."""
        if not self.token:
            return []
        basic = base64.b64encode(f"{self.username or 'x-access-token'}:{self.token}".encode()).decode()
        return [self.token, basic]


def git_env(author: str, email: str, home: str, creds: GitCredentials | None = None) -> dict[str, str]:
    """The child's whole environment."""
    env = {
        "PATH": os.environ.get("PATH", os.defpath),
        "HOME": home,
        "LANG": "C.UTF-8",
        "LC_ALL": "C.UTF-8",
        "GIT_CONFIG_NOSYSTEM": "1",
        "GIT_CONFIG_GLOBAL": os.devnull,
        "GIT_TERMINAL_PROMPT": "0",
        "GIT_ASKPASS": "/bin/false",
        "SSH_ASKPASS": "/bin/false",
        "GIT_ALLOW_PROTOCOL": "https:ssh:file",
        "GIT_AUTHOR_NAME": author,
        "GIT_AUTHOR_EMAIL": email,
        "GIT_COMMITTER_NAME": author,
        "GIT_COMMITTER_EMAIL": email,
    }
    config = {"init.defaultBranch": "main", "commit.gpgSign": "false", "core.hooksPath": os.devnull}
    if creds is not None and creds.token:
        basic = base64.b64encode(f"{creds.username or 'x-access-token'}:{creds.token}".encode()).decode()
        config["http.extraHeader"] = f"Authorization: Basic {basic}"
    if creds is not None and creds.ssh_key_file:
        env["GIT_SSH_COMMAND"] = (
            f"ssh -i {shlex.quote(creds.ssh_key_file)} -o IdentitiesOnly=yes -o BatchMode=yes "
            "-o StrictHostKeyChecking=accept-new"
        )
    env["GIT_CONFIG_COUNT"] = str(len(config))
    for i, (key, value) in enumerate(config.items()):
        env[f"GIT_CONFIG_KEY_{i}"] = key
        env[f"GIT_CONFIG_VALUE_{i}"] = value
    return env


def _run(args: list[str], cwd: Path, env: Mapping[str, str], timeout: float, hide: list[str]) -> str:
    try:
        proc = subprocess.run(  # noqa: S603 - fixed argv, no shell
            ["git", *args],
            cwd=cwd,
            env=dict(env),
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
        )
    except subprocess.TimeoutExpired:
        raise GitError(f"git {args[0]} timed out after {timeout:.0f} s") from None
    except FileNotFoundError:
        raise GitError("git is not installed on this worker (not on PATH)") from None
    if proc.returncode != 0:
        message = (proc.stderr or proc.stdout).strip().splitlines()[-3:]
        text = " ".join(message)
        for secret in hide:
            text = text.replace(secret, "***")
        raise GitError(f"git {args[0]} failed (exit {proc.returncode}): {text[:500]}")
    return proc.stdout


def _remote_has_branch(repository: str, branch: str, cwd: Path, env: Mapping[str, str], timeout: float,
                       hide: list[str]) -> bool:  # fmt: skip
    out = _run(["ls-remote", "--heads", "--", repository, f"refs/heads/{branch}"], cwd, env, timeout, hide)
    return bool(out.strip())


def commit_files(
    repository: str,
    branch: str,
    files: Mapping[str, bytes],
    message: str,
    *,
    author: str,
    email: str,
    creds: GitCredentials | None = None,
    timeout: float = 120.0,
) -> str | None:
    """Make ``files`` (relative path → content) the branch's content under those paths and push.

    :returns: the new commit's sha, or ``None`` when the branch already held exactly these files.
    :raises GitError: clone, commit or push failed (the message names the step).
    """
    for path in files:
        parts = Path(path).parts
        if Path(path).is_absolute() or ".." in parts or not parts or parts[0] == ".git":
            raise ValueError(f"{path!r}: not a path inside the repository")
    hide = creds.secrets() if creds else []
    with tempfile.TemporaryDirectory(prefix="sanvi-config-git-") as tmp:
        root = Path(tmp)
        home = root / "home"
        home.mkdir()
        env = git_env(author, email, str(home), creds)
        work = root / "work"
        if _remote_has_branch(repository, branch, root, env, timeout, hide):
            _run(["clone", "--quiet", "--depth", "1", "--branch", branch, "--", repository, str(work)],
                 root, env, timeout, hide)  # fmt: skip
        else:
            work.mkdir()
            _run(["init", "--quiet"], work, env, timeout, hide)
            _run(["checkout", "--quiet", "-b", branch], work, env, timeout, hide)
            _run(["remote", "add", "origin", "--", repository], work, env, timeout, hide)
        for path, content in files.items():
            target = work / path
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_bytes(content)
        _run(["add", "--", *files], work, env, timeout, hide)
        staged = _run(["diff", "--cached", "--name-only"], work, env, timeout, hide)
        if not staged.strip():
            return None
        _run(["commit", "--quiet", "--no-verify", "-m", message], work, env, timeout, hide)
        sha = _run(["rev-parse", "HEAD"], work, env, timeout, hide).strip()
        _run(["push", "--quiet", "origin", f"HEAD:refs/heads/{branch}"], work, env, timeout, hide)
        return sha
