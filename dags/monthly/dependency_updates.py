"""
# Dependency Updates (monthly, 4th Tuesday, 11:00)

*The guide: "Update non-critical dependencies" — Development Team.*

Every exact pin (`name==version`) of the requirement files in `tasks.dependency_updates.settings` is looked up
on the configured package index (`index_url`; a PEP 503/691 simple index, or the PyPI JSON API
with `index_api: json`). Yanked releases never count; pre-releases only for a pin that is one.

| task | what |
|---|---|
| `check_app_requirements` | the managed application's files (`app_requirements`, absolute paths) |
| `check_project_requirements` | this project's `requirements.txt` and `requirements-dev.txt` |
| `check_app_repository` | the application's git repository (`app_repository`): npm, Python and container images |
| `update_app_repository` | applies the routine updates found there and opens the pull requests |

**The application's repository.** `check_app_repository` clones `app_repository.url` and reviews,
with one result per dependency (`app.dependency[<file>:<name>]`, `details.ecosystem` npm / PyPI /
image) and one for the repository (`app.repository`):

* **npm** — each `npm_projects` folder's `package.json` ranges (and its workspaces') with the
  versions its `package-lock.json` (v2/v3) resolved, against `npm_registry_url`'s packuments
  (`dist-tags.latest`, deprecated versions are flagged and never a target).
* **Python** — the exact pins of `requirements`, as above.
* **Container images** — each Dockerfile `FROM` tag against the registry's tag list (Docker
  Registry HTTP API v2). A floating tag (`latest`, `20`, `20.11-alpine`) is a warning: pin a
  version. A newer patch or minor of the same variant (`-alpine`) in the same major is ready.
* **Vulnerabilities** — npm and PyPI versions (current and target) through `advisory_url`'s
  OSV `querybatch`.

`update_app_repository` then:

* applies every **routine** update (patch/minor, no known vulnerability in the current or the
  target version) on the month's branch `<branch_prefix>-YYYY-MM`: `npm install
  --package-lock-only --ignore-scripts` against `npm_registry_url`, pins and `FROM` tags rewritten;
  commits, force-pushes, and opens **one pull request** (`pull_requests.repository` through the
  GitHub REST API at connection `pull_requests.connection_id`'s host: github.com or GitHub
  Enterprise). Its body lists each change with its changelog link, what could not be resolved,
  and the majors, floating tags and failed lookups **for review** (never applied). A re-run in the
  same month updates that pull request and its branch instead of opening another.
* gives each **vulnerable** dependency with a clean patch/minor fix its own branch
  (`…-YYYY-MM-security-<name>`) and pull request, beside the P3 incident its critical result opens.
* reports `app.pull_request[routine]` / `app.pull_request[security:<name>]` with the pull
  request's link (the Slack summary shows it). Without the connection or `pull_requests.repository`
  the branch is still pushed and the result is a warning "PR step not configured" naming what is
  missing (as in `make run`).

Each file gets a summary result (`<app|ops>.requirements[<file>]`) and each pin its own
(`<app|ops>.dependency[<file>:<name>]`):

* **ok** — up to date.
* **warning, ready** — a patch or minor update: update it in this cycle (staging Mon–Thu
  10:00–16:00, then Thursday night's production window).
* **warning, for review** — a new major: read the changelog and plan it; the newest release of the
  current major is listed as ready too when there is one.
* **critical (P3)** — the pin has known vulnerabilities (with `advisory_url`, an OSV-compatible
  API): an incident is opened and resolves when a later run finds the pin clean.
* **error** — the index or the advisory source could not be read; the summary names its URL.

A `-r` include is reported once, under its own name. Pins not written as `name==version`
(ranges, URLs) are counted as "not pinned" in the file's summary.

Started by hand (trigger form): Param `checks` picks the tasks to run (default all; leave out
`update_app_repository` for a review that opens no pull request); one left out reports
`<task>.not_selected` as skipped. See the README, "Starting a DAG by hand".

## Acting on the report
1. Bump the ready pins in one branch, run `make test`, deploy to staging.
2. For each major, open a ticket with the changelog link; update after review.
3. A vulnerable pin: upgrade to a fixed version now (the advisory id is in the summary), or record
   why it does not apply.
4. An `error`: check the index/advisory URL in the summary and the worker's network access.
5. The month's pull request: review the changelog links, let CI run, merge; deploy through staging.
   The majors it lists: a ticket each. "could not be resolved": npm's reason is in the body.
6. `app.pull_request[...]` error: the summary names the git or GitHub call that failed (a
   token without `contents:write`/`pull_requests:write`, a protected branch name).
"""

from __future__ import annotations

from typing import Any

from airflow.sdk import task

from sanvi_ops.airflow_kit.frame import maintenance_dag
from sanvi_ops.airflow_kit.params import checks_param, when_selected
from sanvi_ops.airflow_kit.publish import publish
from sanvi_ops.tasks.dependency_updates import airflow_tasks as dependency_tasks

#: The check tasks a manual run may choose from (the trigger form's `checks`).
CHECKS = (
    "check_app_requirements",
    "check_project_requirements",
    "check_app_repository",
    "update_app_repository",
)


@maintenance_dag(__file__, __doc__, params={"checks": checks_param(CHECKS)})
def dependency_updates() -> None:
    @task
    @when_selected
    def check_app_requirements() -> list[dict[str, Any]]:
        """The managed application's pinned requirements vs the package index and advisories."""
        return dependency_tasks.app_requirements()

    @task
    @when_selected
    def check_project_requirements() -> list[dict[str, Any]]:
        """This project's pinned requirements vs the package index and advisories."""
        return dependency_tasks.project_requirements()

    @task
    @when_selected
    def check_app_repository() -> list[dict[str, Any]]:
        """The application's repository: npm, Python and container image dependencies."""
        return dependency_tasks.app_repository()

    @task
    @when_selected
    def update_app_repository(review: list[dict[str, Any]], **context: Any) -> list[dict[str, Any]]:
        """Routine updates on the month's branch, one pull request; a security fix gets its own."""
        when = context.get("logical_date") or context["dag_run"].run_after
        return dependency_tasks.app_repository_update(review, f"{when:%Y-%m}", context["ti"].log_url)

    review = check_app_repository()
    publish(check_app_requirements(), check_project_requirements(), review, update_app_repository(review))


dependency_updates()
