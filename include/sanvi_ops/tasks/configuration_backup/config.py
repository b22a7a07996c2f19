"""How the configuration is backed up: ``configuration_backups`` in ``maintenance.yaml``, read by
``configuration_backup`` (and by the drills that read its snapshot back).

Validated with the rest of ``include/config/maintenance.yaml`` by :mod:`sanvi_ops.core.config`,
which assembles the per-task models into the whole file's.
"""

from __future__ import annotations

import re

from pydantic import Field, field_validator

from sanvi_ops.core.config import NonEmpty, _Model

#: Repository URLs git may use: https, ssh (``ssh://`` or scp-like ``user@host:path``), a local
#: path or ``file://`` (the local stack and the tests). Never ``ext::`` or other transports.
_REPO_URL = re.compile(r"^(https://|ssh://|file:///|/|[A-Za-z0-9._-]+@[A-Za-z0-9.-]+:)")


class GitSettings(_Model):
    """The version-control half: each changed snapshot is committed and pushed here."""

    #: ``https://…``, ``ssh://…``, ``git@host:org/repo.git``, or a local path / ``file://``
    #: (``make run``: a bare repository under the stack's directory). ``None``: S3 only, reported
    #: as a warning (the guide asks for version control too).
    repository: str | None = None
    branch: NonEmpty = "main"
    #: Airflow connection with the credentials, if the repository needs any: its password is an
    #: HTTPS token (sent as an ``Authorization`` header, never on a command line), or its extra
    #: ``private_key_file`` an SSH key file. ``None``: no credentials (a local repository).
    connection: str | None = None
    author_name: NonEmpty = "Sanvi Ops"
    author_email: NonEmpty = "sanvi-ops@sanvi-machinery.com"
    timeout_seconds: int = Field(default=120, gt=0)

    @field_validator("repository")
    @classmethod
    def _known_transport(cls, value: str | None) -> str | None:
        if value is not None and (not _REPO_URL.match(value) or value.startswith("-")):
            raise ValueError(
                f"{value!r} is not a repository URL git may use here (https://, ssh://, "
                "user@host:path, file:/// or an absolute path)"
            )
        return value

    @field_validator("branch")
    @classmethod
    def _branch_name(cls, value: str) -> str:
        if not re.fullmatch(r"[A-Za-z0-9._/-]+", value) or value.startswith(("-", "/")) or ".." in value:
            raise ValueError(f"{value!r} is not a plain branch name")
        return value


class ConfigurationSources(_Model):
    """What a snapshot reads. Secret values are never read: SecureString parameters and
    Secrets Manager secrets are recorded by their metadata only."""

    #: SSM Parameter Store paths, read recursively (names, types, versions; values of String and
    #: StringList only). Empty: no SSM.
    ssm_paths: list[NonEmpty] = Field(default_factory=lambda: ["/sanvi/"])
    #: Secrets Manager name prefixes (metadata only). Empty list: no Secrets Manager.
    secret_name_prefixes: list[NonEmpty] = Field(default_factory=lambda: ["sanvi/"])
    #: ECS cluster and services (``None``: ``tasks.system_health_check.settings``' ones); their
    #: settings and every ACTIVE revision of their task definitions' families.
    ecs_cluster: str | None = None
    ecs_services: list[NonEmpty] | None = None
    #: This project's ``maintenance.yaml`` (the file the DAGs run with).
    maintenance_yaml: bool = True


class ConfigurationBackupSettings(_Model):
    """The configuration backup (``configuration_backup``): runs when the Asset
    ``x-sanvi-ops://configuration`` is updated (a deployment announcing a change) and, as a
    fallback for changes nobody announced, on ``fallback_cron``. It snapshots the sources, and only
    when their digest changed writes ``<bucket>/<prefix>snapshot.json`` (a new S3 version; old
    versions expire after ``backups.configuration.retention_days``) and commits it to git."""

    team: NonEmpty = "devops"
    #: Cron (in ``timezone``) of the check for unannounced changes; cheap when nothing changed.
    fallback_cron: NonEmpty = "20 * * * *"
    #: ``None``: ``database_backups.bucket``. Must be versioned (each change is a new version).
    bucket: str | None = None
    prefix: NonEmpty = "configuration/"
    git: GitSettings = Field(default_factory=GitSettings)
    sources: ConfigurationSources = Field(default_factory=ConfigurationSources)
    timeout_minutes: int = Field(default=15, gt=0)

    @field_validator("prefix")
    @classmethod
    def _prefix_shape(cls, value: str) -> str:
        if value.startswith("/") or not value.endswith("/"):
            raise ValueError(f"{value!r} must be a key prefix ending in '/' and not starting with one")
        return value

    @field_validator("fallback_cron")
    @classmethod
    def _cron(cls, value: str) -> str:
        from croniter import croniter

        if not croniter.is_valid(value) or len(value.split()) != 5:
            raise ValueError(f"{value!r} is not a 5-field cron expression")
        return value
