"""The demo application's git repository, for ``make run`` and the Dependency Updates tests.

The guide's application is a Next.js frontend and a NestJS backend (TypeScript, npm) on ECS. The
demo is that pair, small: ``frontend/`` and ``backend/`` each with a ``package.json``, a real
``package-lock.json`` (lockfile v3, integrity hashes of the tarballs the registry serves) and a
``Dockerfile``; plus ``tools/requirements.txt`` (a Python helper with exact pins).

:func:`seed_registry` publishes the packages in two steps on a local verdaccio: the versions the
lockfiles pin (``OLD``), then, after :func:`create_demo_repo` has resolved the lockfiles against
them, the newer releases (``NEW``) the monthly run is to find. Resolved URLs in the lockfiles are
written as the public registry's (as in a real application); npm swaps that host for the
``--registry`` it is given (``replace-registry-host``), so the same repository works against any
registry that serves the same tarballs.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path
from typing import Any

from devstack.verdaccio import LocalVerdaccio, minimal_env

PUBLIC_REGISTRY = "https://registry.npmjs.org/"

#: name -> [(version, dependencies, deprecated)] published before the lockfiles are resolved.
OLD: dict[str, list[tuple[str, dict[str, str], str | None]]] = {
    "tiny-helper": [("1.0.0", {}, None)],
    "next": [("14.2.3", {"tiny-helper": "^1.0.0"}, None)],
    "react": [("18.3.1", {}, None)],
    "react-dom": [("18.3.1", {}, None)],
    "eslint": [("8.56.0", {}, "This version is no longer supported.")],
    "@nestjs/common": [("10.3.0", {}, None)],
    "@nestjs/core": [("10.3.0", {}, None)],
    "rxjs": [("7.8.1", {}, None)],
    "axios": [("1.6.0", {}, None)],
}
#: Published after the lockfiles: what the monthly run finds.
NEW: dict[str, list[tuple[str, dict[str, str], str | None]]] = {
    "tiny-helper": [("1.0.1", {}, None)],
    "next": [("14.2.35", {"tiny-helper": "^1.0.0"}, None), ("15.0.3", {"tiny-helper": "^1.0.0"}, None)],
    "react": [("19.0.0", {}, None)],
    "eslint": [("8.57.0", {}, None)],
    "@nestjs/common": [("10.4.15", {}, None), ("11.0.1", {}, None)],
    "@nestjs/core": [("10.4.15", {}, None), ("11.0.1", {}, None)],
    "axios": [("1.7.9", {}, None)],
}
#: OSV-style advisories the stand-in reports for the demo: (ecosystem, name, version) -> ids.
VULNS: dict[tuple[str, str, str], list[str]] = {("npm", "axios", "1.6.0"): ["GHSA-demo-axios-ssrf"]}

#: Docker Registry v2 tags the demo's image registry serves (repository -> tags).
IMAGE_TAGS: dict[str, list[str]] = {
    "library/node": [
        "latest", "alpine", "20", "20-alpine", "20.11-alpine", "20.18-alpine",
        "20.11.0-alpine", "20.11.1-alpine", "20.18.1-alpine", "22.12.0-alpine", "22-alpine",
    ],
    "library/nginx": ["latest", "1.27", "1.27.2-alpine", "1.27.3-alpine"],
}  # fmt: skip

FILES: dict[str, str] = {
    "README.md": "# Sanvi demo application\n\nNext.js frontend, NestJS backend (the guide's stack).\n",
    "frontend/package.json": json.dumps(
        {
            "name": "sanvi-frontend",
            "version": "1.0.0",
            "private": True,
            "scripts": {"build": "next build", "start": "next start"},
            "dependencies": {"next": "^14.2.3", "react": "18.3.1", "react-dom": "^18.3.1"},
            "devDependencies": {"eslint": "~8.56.0"},
        },
        indent=2,
    )
    + "\n",
    "frontend/Dockerfile": (
        "FROM node:20.11.0-alpine AS build\nWORKDIR /app\nCOPY package*.json ./\nRUN npm ci\nCOPY . .\n"
        "RUN npm run build\n\nFROM nginx:latest\nCOPY --from=build /app/out /usr/share/nginx/html\n"
    ),
    "backend/package.json": json.dumps(
        {
            "name": "sanvi-backend",
            "version": "1.0.0",
            "private": True,
            "scripts": {"start": "node dist/main.js"},
            "dependencies": {
                "@nestjs/common": "^10.3.0",
                "@nestjs/core": "^10.3.0",
                "rxjs": "^7.8.1",
                "axios": "^1.6.0",
            },
        },
        indent=2,
    )
    + "\n",
    "backend/Dockerfile": (
        "FROM node:20.11.0-alpine\nWORKDIR /app\nCOPY package*.json ./\nRUN npm ci --omit=dev\nCOPY dist ./dist\n"
        'CMD ["node", "dist/main.js"]\n'
    ),
    "tools/requirements.txt": "# data migration helper\nalpha==1.0.0\ndelta==1.0.0\nbeta-pkg==0.9.3\n",
}
NPM_PROJECTS = ["frontend", "backend"]
DOCKERFILES = ["frontend/Dockerfile", "backend/Dockerfile"]
REQUIREMENTS = ["tools/requirements.txt"]


def git_env(home: Path) -> dict[str, str]:
    """A minimal environment for git child processes (no user config, a fixed identity)."""
    env = minimal_env(home)
    env.update(
        {
            "GIT_CONFIG_NOSYSTEM": "1",
            "GIT_CONFIG_GLOBAL": os.devnull,
            "GIT_TERMINAL_PROMPT": "0",
            "GIT_AUTHOR_NAME": "Sanvi Demo",
            "GIT_AUTHOR_EMAIL": "demo@sanvi.invalid",
            "GIT_COMMITTER_NAME": "Sanvi Demo",
            "GIT_COMMITTER_EMAIL": "demo@sanvi.invalid",
        }
    )
    return env


def _run(args: list[str], cwd: Path, env: dict[str, str]) -> None:
    proc = subprocess.run(args, cwd=cwd, env=env, capture_output=True, text=True, timeout=300, check=False)  # noqa: S603
    if proc.returncode != 0:
        raise RuntimeError(f"{' '.join(args[:3])} failed in {cwd}: {proc.stderr.strip()[-800:]}")


def _publish_all(
    registry: LocalVerdaccio, catalog: dict[str, list[tuple[str, dict[str, str], str | None]]]
) -> None:
    for name, versions in catalog.items():
        for version, deps, deprecated in versions:
            registry.publish(name, version, dependencies=deps, deprecated=deprecated)


def seed_registry_old(registry: LocalVerdaccio) -> None:
    _publish_all(registry, OLD)


def seed_registry_new(registry: LocalVerdaccio) -> None:
    _publish_all(registry, NEW)


def _public_resolved(lockfile: Path, registry_url: str) -> None:
    data: dict[str, Any] = json.loads(lockfile.read_text())
    for entry in (data.get("packages") or {}).values():
        resolved = entry.get("resolved")
        if isinstance(resolved, str) and resolved.startswith(registry_url):
            entry["resolved"] = PUBLIC_REGISTRY + resolved[len(registry_url) :]
    lockfile.write_text(json.dumps(data, indent=2) + "\n")


def create_demo_repo(registry: LocalVerdaccio, bare: Path, work: Path) -> Path:
    """Publish the old versions, resolve the lockfiles, push ``main`` to a new bare repository
    at ``bare``, then publish the newer versions. Returns ``bare``."""
    seed_registry_old(registry)
    if work.exists():
        shutil.rmtree(work)
    work.mkdir(parents=True)
    home = work.parent / f"{work.name}-home"
    home.mkdir(exist_ok=True)
    for rel, text in FILES.items():
        path = work / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    env = minimal_env(home)
    for project in NPM_PROJECTS:
        _run(
            ["npm", "install", "--package-lock-only", "--ignore-scripts", "--no-audit", "--no-fund",
             f"--registry={registry.url}"],
            work / project,
            env,
        )  # fmt: skip
        _public_resolved(work / project / "package-lock.json", registry.url)
    genv = git_env(home)
    _run(["git", "init", "--quiet", "--bare", "--initial-branch=main", str(bare)], work, genv)
    _run(["git", "init", "--quiet", "--initial-branch=main"], work, genv)
    _run(["git", "add", "."], work, genv)
    _run(["git", "commit", "--quiet", "-m", "Demo application: Next.js frontend, NestJS backend"], work, genv)
    _run(["git", "push", "--quiet", str(bare), "main"], work, genv)
    seed_registry_new(registry)
    return bare


def start_dependency_stack(stack: Any, local_dir: Path, say: Any) -> dict[str, Any]:
    """For ``make run``: verdaccio with the demo packages, the image registry stand-in and the demo
    application's bare repository (all recreated on every start), and the
    ``tasks.dependency_updates.settings`` that point at them. Without node/verdaccio: nothing
    (the repository review then reports "not configured"), with a note saying why.

    No GitHub stand-in runs here: the monthly run pushes its branch to the local repository and
    reports "PR step not configured" until connection ``github_default`` and
    ``pull_requests.repository`` are set. No local PyPI either: the demo's ``tools/requirements.txt``
    is reviewed by the tests, not by ``make run``.
    """
    from devstack.image_registry import ImageRegistryStandIn
    from devstack.verdaccio import INSTALL_HINT, missing_tools

    missing = missing_tools()
    if missing:
        say(f"note: no npm registry for Dependency Updates ({', '.join(missing)} missing; {INSTALL_HINT})")
        return {}
    root = local_dir / "dependency-updates"
    shutil.rmtree(root, ignore_errors=True)
    registry = LocalVerdaccio(root / "verdaccio")
    stack.callback(registry.stop)
    try:
        registry.start()
        bare = create_demo_repo(registry, root / "demo-app.git", root / "seed")
    except (RuntimeError, OSError) as exc:
        say(f"warning: the Dependency Updates' demo registry did not start ({exc})")
        return {}
    images = ImageRegistryStandIn(IMAGE_TAGS)
    images.start()
    stack.callback(images.stop)
    say(f"npm registry (verdaccio) {registry.url}, image registry {images.url}, demo app repository {bare}")
    return {
        "npm_registry_url": registry.url,
        "image_registry_url": images.url,
        "app_repository": {
            "url": str(bare),
            "branch": "main",
            "npm_projects": NPM_PROJECTS,
            "dockerfiles": DOCKERFILES,
            "requirements": [],
        },
    }
