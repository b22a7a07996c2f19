"""The git and GitHub side of the update: clone, branch, commit, push, one pull request per branch.

* :class:`Git` runs the git CLI as a child process with a minimal environment (no user or
  system config, no prompts); a token for an HTTPS remote travels as an ``http.extraHeader``
  through ``GIT_CONFIG_*`` variables, never in the URL, the command line or a log line.
* :class:`GitHub` speaks the REST API (``GET/POST /repos/{owner}/{repo}/pulls``, ``PATCH
  /repos/{owner}/{repo}/pulls/{number}``) at a configurable base URL, so GitHub Enterprise
  Server (``https://<host>/api/v3``) works as github.com does. :meth:`GitHub.upsert_pull` finds
  the open pull request of a branch and updates it, else opens one: a re-run in the same month
  updates the month's pull request instead of opening another.
"""

from __future__ import annotations

import base64
import os
import subprocess
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx

IDENTITY = {"name": "Sanvi Ops", "email": "sanvi-ops@users.noreply.github.com"}


class GitError(RuntimeError):
    """A git command failed (its message never contains the token)."""


class Git:
    def __init__(self, work: Path, *, token: str | None = None, timeout_s: float = 300.0) -> None:
        self.work = work
        self.timeout_s = timeout_s
        self._token = token
        # A private HOME beside the checkout (removed with it): no user's git config is read.
        self.home = work.parent / "git-home"
        self.home.mkdir(parents=True, exist_ok=True)

    def env(self) -> dict[str, str]:
        env = {
            "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
            "HOME": str(self.home),
            "LANG": "C.UTF-8",
            "GIT_CONFIG_NOSYSTEM": "1",
            "GIT_CONFIG_GLOBAL": os.devnull,
            "GIT_TERMINAL_PROMPT": "0",
            "GIT_AUTHOR_NAME": IDENTITY["name"],
            "GIT_AUTHOR_EMAIL": IDENTITY["email"],
            "GIT_COMMITTER_NAME": IDENTITY["name"],
            "GIT_COMMITTER_EMAIL": IDENTITY["email"],
        }
        if self._token:
            basic = base64.b64encode(f"x-access-token:{self._token}".encode()).decode()
            env.update(
                {
                    "GIT_CONFIG_COUNT": "1",
                    "GIT_CONFIG_KEY_0": "http.extraHeader",
                    "GIT_CONFIG_VALUE_0": f"Authorization: Basic {basic}",
                }
            )
        return env

    def run(self, *args: str, cwd: Path | None = None) -> str:
        try:
            proc = subprocess.run(  # noqa: S603 - git with fixed subcommands
                ["git", *args],
                cwd=cwd or self.work,
                env=self.env(),
                capture_output=True,
                text=True,
                timeout=self.timeout_s,
                check=False,
            )
        except subprocess.TimeoutExpired as exc:
            raise GitError(f"git {args[0]} timed out after {self.timeout_s:.0f}s") from exc
        if proc.returncode != 0:
            msg = (proc.stderr or proc.stdout).strip()[-600:]
            if self._token:
                msg = msg.replace(self._token, "***")
            raise GitError(f"git {args[0]} failed: {msg}")
        return proc.stdout

    def clone(self, url: str, branch: str) -> None:
        self.work.parent.mkdir(parents=True, exist_ok=True)
        self.run(
            "clone",
            "--quiet",
            "--depth=50",
            "--branch",
            branch,
            "--",
            url,
            str(self.work),
            cwd=self.work.parent,
        )

    def changed(self) -> bool:
        return bool(self.run("status", "--porcelain").strip())

    def commit_all(self, message: str) -> str:
        self.run("add", "--all")
        self.run("commit", "--quiet", "--no-verify", "-m", message)
        return self.run("rev-parse", "HEAD").strip()

    def force_push(self, branch: str) -> None:
        self.run("push", "--quiet", "--force", "origin", f"HEAD:refs/heads/{branch}")


@dataclass(frozen=True)
class PullRequest:
    number: int
    url: str
    created: bool


class GitHubError(RuntimeError):
    pass


class GitHub:
    """The pull-request calls of the GitHub REST API at ``api_url`` (github.com: ``https://api.github.com``)."""

    def __init__(self, api_url: str, token: str | None, repository: str, *, timeout_s: float = 15.0) -> None:
        if repository.count("/") != 1:
            raise ValueError(f"pull request repository {repository!r} is not owner/name")
        self.api_url = api_url.rstrip("/")
        self.repository = repository
        headers = {
            "Accept": "application/vnd.github+json",
            "X-GitHub-Api-Version": "2022-11-28",
            "User-Agent": "sanvi-ops-dependency-updates",
        }
        if token:
            headers["Authorization"] = f"Bearer {token}"
        self._client = httpx.Client(timeout=httpx.Timeout(timeout_s), headers=headers)

    def close(self) -> None:
        self._client.close()

    def __enter__(self) -> GitHub:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _call(self, method: str, path: str, **kw: Any) -> Any:
        url = f"{self.api_url}/repos/{self.repository}{path}"
        try:
            resp = self._client.request(method, url, **kw)
        except httpx.HTTPError as exc:
            raise GitHubError(f"{method} {url}: {type(exc).__name__}: {exc}") from exc
        if resp.status_code >= 300:
            raise GitHubError(f"{method} {url}: HTTP {resp.status_code} {resp.text[:300]}")
        try:
            return resp.json()
        except ValueError as exc:
            raise GitHubError(f"{method} {url}: unreadable answer") from exc

    def upsert_pull(self, *, head: str, base: str, title: str, body: str) -> PullRequest:
        owner = self.repository.split("/", 1)[0]
        found = self._call("GET", "/pulls", params={"head": f"{owner}:{head}", "state": "open", "base": base})
        if isinstance(found, list) and found:
            number = int(found[0]["number"])
            pr = self._call("PATCH", f"/pulls/{number}", json={"title": title, "body": body})
            return PullRequest(number, str(pr.get("html_url", "")), created=False)
        pr = self._call("POST", "/pulls", json={"title": title, "head": head, "base": base, "body": body})
        return PullRequest(int(pr["number"]), str(pr.get("html_url", "")), created=True)
