"""Container base images: each Dockerfile ``FROM`` against its registry's tag list.

* :func:`read_dockerfile` finds the ``FROM`` lines (``--platform=…``, ``AS stage``; a ``FROM``
  naming an earlier stage, ``scratch``, an ``${ARG}`` or a digest is not an image to update).
* :class:`ImageRegistry` reads ``GET /v2/<repository>/tags/list`` (Docker Registry HTTP API v2),
  following ``Link`` pagination and the anonymous bearer-token challenge (``WWW-Authenticate:
  Bearer realm=…``) that Docker Hub and GHCR answer with.
* :func:`image_candidates`: a tag that is not a full ``X.Y.Z`` version (``latest``, ``20``,
  ``20.11-alpine``) is *floating*; otherwise the newest tag of the same variant (the suffix,
  ``-alpine``) in the same major is *ready*, a higher major is for review.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

import httpx

_FROM = re.compile(r"^(?P<head>\s*FROM\s+(?:--\S+\s+)*)(?P<image>\S+)(?P<tail>.*)$", re.IGNORECASE)
_TAG = re.compile(r"^(?P<v>v?)(?P<nums>\d+(?:\.\d+){0,2})(?P<suffix>-[A-Za-z0-9._-]+)?$")


@dataclass(frozen=True)
class ImageRef:
    file: str  # relative to the checkout
    line: int
    image: str  # as written, without tag (``node``, ``ghcr.io/org/app``)
    tag: str
    registry: str | None  # the host part, None for Docker Hub names
    repository: str  # the registry's repository path (``library/node``)


def split_image(ref: str) -> tuple[str | None, str, str]:
    """(registry host or None, repository, tag) of ``[host/]path[:tag]`` (Docker Hub adds ``library/``)."""
    name, _, tag = ref.rpartition(":") if ":" in ref.rsplit("/", 1)[-1] else (ref, "", "")
    tag = tag or "latest"
    first, _, rest = name.partition("/")
    if rest and ("." in first or ":" in first or first == "localhost"):
        return first, rest, tag
    return None, name if "/" in name else f"library/{name}", tag


def read_dockerfile(checkout: Path, rel: str) -> list[ImageRef]:
    """The base images of ``<checkout>/<rel>``.

    :raises OSError: the file cannot be read.
    """
    stages: set[str] = set()
    out: list[ImageRef] = []
    for number, raw in enumerate((checkout / rel).read_text(encoding="utf-8").splitlines(), start=1):
        m = _FROM.match(raw)
        if not m:
            continue
        ref = m.group("image")
        alias = re.search(r"\bAS\s+(\S+)", m.group("tail"), re.IGNORECASE)
        if alias:
            stages.add(alias.group(1).lower())
        if ref.lower() in stages or ref == "scratch" or "$" in ref or "@" in ref:
            continue
        registry, repository, tag = split_image(ref)
        image = ref.rsplit(":", 1)[0] if ":" in ref.rsplit("/", 1)[-1] else ref
        out.append(ImageRef(rel, number, image, tag, registry, repository))
    return out


def _tag_parts(tag: str) -> tuple[tuple[int, ...], str] | None:
    m = _TAG.match(tag)
    if not m:
        return None
    return tuple(int(n) for n in m.group("nums").split(".")), (m.group("v") + "|" + (m.group("suffix") or ""))


@dataclass(frozen=True)
class ImageUpdate:
    floating: bool
    ready: str | None  # newest full-version tag of the same variant in the same major
    latest: str | None  # newest full-version tag of the same variant
    kind: str | None  # latest vs current: patch/minor/major, None = up to date


def image_candidates(tag: str, tags: list[str]) -> ImageUpdate:
    parts = _tag_parts(tag)
    full = [(p[0], p[1], t) for t in tags if (p := _tag_parts(t)) is not None and len(p[0]) == 3]
    if parts is None:  # latest, alpine, lts, …: floating; the newest full version is the suggestion
        newest = max(full, default=None)
        return ImageUpdate(True, None, newest[2] if newest else None, None)
    nums, variant = parts
    same = sorted((n, t) for n, v, t in full if v == variant)
    if len(nums) < 3:  # 20, 20.11-alpine: floating within a line; pin its newest patch
        line = [(n, t) for n, t in same if n[: len(nums)] == nums]
        return ImageUpdate(True, line[-1][1] if line else None, same[-1][1] if same else None, None)
    newer = [(n, t) for n, t in same if n > nums]
    if not newer:
        return ImageUpdate(False, None, tag, None)
    latest_n, latest_t = newer[-1]
    same_major = [(n, t) for n, t in newer if n[0] == nums[0]]
    kind = "major" if latest_n[0] != nums[0] else "minor" if latest_n[1] != nums[1] else "patch"
    return ImageUpdate(False, same_major[-1][1] if same_major else None, latest_t, kind)


class ImageRegistry:
    """Tag lists from Docker Registry HTTP API v2 endpoints."""

    def __init__(self, default_url: str, *, timeout_s: float = 10.0) -> None:
        self.default_url = default_url.rstrip("/")
        self._client = httpx.Client(timeout=httpx.Timeout(timeout_s), follow_redirects=True)
        self._tokens: dict[str, str] = {}

    def close(self) -> None:
        self._client.close()

    def __enter__(self) -> ImageRegistry:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def base_url(self, registry: str | None) -> str:
        return self.default_url if registry is None else f"https://{registry}"

    def _token(self, challenge: str) -> str | None:
        params = dict(re.findall(r'(\w+)="([^"]*)"', challenge))
        realm = params.pop("realm", None)
        if not realm or not challenge.lower().startswith("bearer"):
            return None
        resp = self._client.get(realm, params=params)
        resp.raise_for_status()
        data = resp.json()
        token = data.get("token") or data.get("access_token")
        return str(token) if token else None

    def tags(self, registry: str | None, repository: str, max_pages: int = 20) -> list[str]:
        """Every tag of ``repository``.

        :raises httpx.HTTPError: the registry is down or answered with an error.
        :raises ValueError: the answer is not the tags/list shape.
        """
        base = self.base_url(registry)
        url: str | None = f"{base}/v2/{repository}/tags/list?n=1000"
        out: list[str] = []
        for _ in range(max_pages):
            if url is None:
                break
            headers = {"Authorization": f"Bearer {self._tokens[base]}"} if base in self._tokens else {}
            resp = self._client.get(url, headers=headers)
            if resp.status_code == 401 and base not in self._tokens:
                token = self._token(resp.headers.get("WWW-Authenticate", ""))
                if token:
                    self._tokens[base] = token
                    continue
            resp.raise_for_status()
            data = resp.json()
            tags = data.get("tags")
            if not isinstance(tags, list):
                raise ValueError(f"{url}: no 'tags' list in the answer")
            out.extend(str(t) for t in tags)
            link = re.search(r"<([^>]+)>", resp.headers.get("Link", ""))
            url = httpx.URL(url).join(link.group(1)).__str__() if link else None
        return out


def bump_from_line(text: str, line: int, image: str, old: str, new: str) -> str:
    """``text`` with the ``FROM image:old`` on ``line`` (1-based) changed to ``image:new``."""
    lines = text.splitlines(keepends=True)
    target = lines[line - 1]
    replaced = target.replace(f"{image}:{old}", f"{image}:{new}", 1)
    if replaced == target and old == "latest" and f"{image}:" not in target:
        replaced = target.replace(image, f"{image}:{new}", 1)
    lines[line - 1] = replaced
    return "".join(lines)
