"""``restore_test``: our restore test vs the usual logical baseline, on the same data.

* ours: :func:`sanvi_ops.tasks.backup_testing.restore.run_restore_test` of a full physical backup taken with
  :mod:`sanvi_ops.core.backups` — download (SHA-256 checked, streamed into tar), start the scratch
  cluster, validate (``pg_amcheck --heapallindexed``, row counts, schema, a smoke query), stop and
  delete. Wall time of the whole call; each phase's seconds and MB/s are printed as ``# phase``
  lines (``recovery_tests.details.phases``).
* baseline: a ``pg_dump -Fd`` of the same database uploaded beforehand (not timed); timed: boto3
  ``download_file`` of every file, then ``pg_restore -j 2`` into an empty database. No validation.

Target ratio ≤ 1.15. Data as ``bench.backup`` (pgbench + random text), scale
``BENCH_RESTORE_SCALE`` (default 20, about 1 GB).
"""

from __future__ import annotations

import os
import secrets
import subprocess
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

from bench.backup import BUCKET, _moto, _seed
from bench.common import Figure


def _patient_s3(url: str) -> object:
    """An S3 client that waits for a loaded moto (assembling a 2 GB multipart upload can take
    minutes on the shared machine: a retried CompleteMultipartUpload then fails with a 500)."""
    import boto3
    from botocore.config import Config

    cfg = Config(read_timeout=900, connect_timeout=30, retries={"max_attempts": 1, "mode": "standard"})
    return boto3.client("s3", endpoint_url=url, region_name="us-east-1", config=cfg)


def _quiet_for_backup(pg: object, dbname: str) -> None:
    """Before the backup: freeze (an autovacuum of the fresh data during the backup writes WAL,
    hint-bit FPIs, faster than ``-X fetch`` keeps it), keep the WAL, and no wal_sender_timeout
    (on the loaded machine the upload to moto can stall the stream for over a minute)."""
    import psycopg

    with psycopg.connect(pg.dsn(dbname), autocommit=True) as conn:  # type: ignore[attr-defined]
        conn.execute("VACUUM (FREEZE, ANALYZE)")
        conn.execute("ALTER SYSTEM SET wal_keep_size = '8GB'")
        conn.execute("ALTER SYSTEM SET wal_sender_timeout = 0")
        conn.execute("SELECT pg_reload_conf()")
        conn.execute("CHECKPOINT")


def _baseline(pg: object, dbname: str, s3_url: str, work: Path) -> float:
    import boto3
    import psycopg
    from psycopg import sql

    from devstack.postgres import pg_bin
    from sanvi_ops.core.backups import PgTarget, libpq_env

    s3 = boto3.client("s3", endpoint_url=s3_url, region_name="us-east-1")
    dump = work / "dump"
    with libpq_env(PgTarget.from_dsn(pg.dsn(dbname))) as env:  # type: ignore[attr-defined]
        subprocess.run(  # noqa: S603
            [pg_bin("pg_dump"), "-Fd", "-j", "2", "-f", str(dump), dbname],
            env=env,
            check=True,
            capture_output=True,
        )
    for f in sorted(dump.iterdir()):
        s3.upload_file(str(f), BUCKET, f"logical/{f.name}")
    target = f"{dbname}_restored"
    with psycopg.connect(pg.dsn(), autocommit=True) as conn:  # type: ignore[attr-defined]
        conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(target)))

    down = work / "download"
    down.mkdir()
    t0 = time.perf_counter()
    keys = [o["Key"] for o in s3.list_objects_v2(Bucket=BUCKET, Prefix="logical/")["Contents"]]
    for key in keys:
        s3.download_file(BUCKET, key, str(down / key.rsplit("/", 1)[-1]))
    with libpq_env(PgTarget.from_dsn(pg.dsn(target))) as env:  # type: ignore[attr-defined]
        subprocess.run(  # noqa: S603
            [pg_bin("pg_restore"), "-j", "2", "-d", target, str(down)],
            env=env,
            check=True,
            capture_output=True,
        )
    return time.perf_counter() - t0


def restore_figures() -> Iterator[Figure]:
    """``restore_test`` (ours) with the logical baseline in the same run."""
    import boto3

    from devstack.aws import LOCAL_AWS_ENV
    from devstack.postgres import LocalPostgres
    from sanvi_ops.core import backups
    from sanvi_ops.tasks.backup_testing import restore

    scale = int(os.environ.get("BENCH_RESTORE_SCALE", "20"))
    os.environ.update(LOCAL_AWS_ENV)
    root = Path(tempfile.mkdtemp(prefix="sanvi-bench-restore-"))
    pg = LocalPostgres(root / "pg", password=secrets.token_hex(12)).start()
    moto, s3_url = _moto()
    scratch = Path(tempfile.mkdtemp(prefix="sbr-", dir="/tmp")) / "scratch"
    try:
        s3 = boto3.client("s3", endpoint_url=s3_url, region_name="us-east-1")
        s3.create_bucket(Bucket=BUCKET)
        dbname = f"bench_r{scale}"
        size = _seed(pg, dbname, scale)
        print(f"# scale {scale}: database {size / 1e6:.0f} MB", flush=True)
        _quiet_for_backup(pg, dbname)
        app = backups.PgTarget.from_dsn(pg.dsn(dbname))
        backups.run_backup(
            _patient_s3(s3_url),
            boto3.client("kms", endpoint_url=s3_url, region_name="us-east-1"),
            target=app,
            bucket=BUCKET,
            prefix="physical/",
            kms_alias="alias/bench",
            kind="full",
        )
        settings = restore.RestoreSettings(
            bucket=BUCKET,
            prefix="physical/",
            scratch_root=scratch,
            smoke_queries=[("accounts", "SELECT count(*) FROM pgbench_accounts")],
        )
        t0 = time.perf_counter()
        outcome = restore.run_restore_test(s3, settings, app=app)
        ours = time.perf_counter() - t0
        bad = [r for r in outcome.results if r.status not in ("ok", "skipped")]
        if bad:
            raise RuntimeError(f"restore test not clean: {[(r.check, r.summary) for r in bad]}")
        print(
            f"# ours: restore {outcome.restore_seconds:.1f} s ({outcome.mb_per_s} MB/s), "
            f"RTO {outcome.rto_seconds:.1f} s, total with validation {ours:.1f} s",
            flush=True,
        )
        for phase in outcome.details.get("phases", []):  # issue 18: where the time goes
            rate = f", {phase['mb_per_s']} MB/s" if phase.get("mb_per_s") is not None else ""
            mark = "" if phase.get("in_rto") else " (validation, after the RTO mark)"
            print(f"#   phase {phase['name']}: {phase['seconds']:.1f} s{rate}{mark}", flush=True)
        base = _baseline(pg, dbname, s3_url, root)
        yield Figure(
            "restore_test",
            ours,
            "s",
            baseline=base,
            target="ratio<=1.15",
            meets=lambda _v, r: r is not None and r <= 1.15,
        )
    finally:
        restore.clean_leftovers(scratch)
        moto.terminate()
        moto.wait(timeout=30)
        pg.destroy()


def _single_get_mb_s(s3: object, key: str) -> float:
    """One streaming GET of ``key`` read to nowhere: what one connection to this S3 serves."""
    t0 = time.perf_counter()
    body = s3.get_object(Bucket=BUCKET, Key=key)["Body"]  # type: ignore[attr-defined]
    n = 0
    while chunk := body.read(1 << 20):
        n += len(chunk)
    return n / 1e6 / (time.perf_counter() - t0)


def _disk_write_mb_s(directory: Path, nbytes: int) -> float:
    """Write ``nbytes`` to a new file under ``directory`` in 1 MiB blocks and fsync it (as
    ``dd … conv=fdatasync``): what the restore's file system takes."""
    block = os.urandom(1 << 20)
    path = directory / "disk-probe"
    t0 = time.perf_counter()
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        written = 0
        while written < nbytes:
            written += os.write(fd, block)
        os.fsync(fd)
    finally:
        os.close(fd)
    seconds = time.perf_counter() - t0
    path.unlink()
    return written / 1e6 / seconds


def restore_phases_figures() -> Iterator[Figure]:
    """``restore_phases``: the restore test on a database of ≥ 2 GB, each phase's MB/s, and the
    download + extract rate against the machine's limit measured in the same run.

    limit = min(one streaming GET of the same object from the same moto server, writing + fsyncing
    a file of the same size on the scratch file system); the figure's ratio is the share of that
    limit the pipelined download + extraction reaches (target ≥ 0.7). Scale ``BENCH_PHASES_SCALE``
    (default 42: pgbench + random text, about 2.1 GB).
    """
    import boto3

    from devstack.aws import LOCAL_AWS_ENV
    from devstack.postgres import LocalPostgres
    from sanvi_ops.core import backups
    from sanvi_ops.tasks.backup_testing import restore

    scale = int(os.environ.get("BENCH_PHASES_SCALE", "42"))
    print(f"# load average at start: {' '.join(f'{x:.2f}' for x in os.getloadavg())}", flush=True)
    os.environ.update(LOCAL_AWS_ENV)
    root = Path(tempfile.mkdtemp(prefix="sanvi-bench-phases-"))
    pg = LocalPostgres(root / "pg", password=secrets.token_hex(12)).start()
    moto, s3_url = _moto()
    scratch = Path(tempfile.mkdtemp(prefix="sbp-", dir="/tmp")) / "scratch"
    try:
        s3 = boto3.client("s3", endpoint_url=s3_url, region_name="us-east-1")
        s3.create_bucket(Bucket=BUCKET)
        dbname = f"bench_p{scale}"
        size = _seed(pg, dbname, scale)
        print(f"# scale {scale}: database {size / 1e6:.0f} MB", flush=True)
        _quiet_for_backup(pg, dbname)
        app = backups.PgTarget.from_dsn(pg.dsn(dbname))
        manifest, _ = backups.run_backup(
            _patient_s3(s3_url),
            boto3.client("kms", endpoint_url=s3_url, region_name="us-east-1"),
            target=app,
            bucket=BUCKET,
            prefix="physical/",
            kms_alias="alias/bench",
            kind="full",
        )
        tar = next(o for o in manifest["objects"] if o["name"] == backups.TAR_NAME)
        settings = restore.RestoreSettings(
            bucket=BUCKET,
            prefix="physical/",
            scratch_root=scratch,
            smoke_queries=[("accounts", "SELECT count(*) FROM pgbench_accounts")],
        )
        outcome = restore.run_restore_test(s3, settings, app=app)
        bad = [r for r in outcome.results if r.status not in ("ok", "skipped")]
        if bad:
            raise RuntimeError(f"restore test not clean: {[(r.check, r.summary) for r in bad]}")
        # The limit, measured right after on the same endpoint, object and file system.
        get_mb_s = _single_get_mb_s(s3, tar["key"])
        scratch.mkdir(parents=True, exist_ok=True)
        disk_mb_s = _disk_write_mb_s(scratch, int(tar["size"]))
        limit = min(get_mb_s, disk_mb_s)
        phases = {p["name"]: p for p in outcome.details.get("phases", [])}
        for phase in phases.values():
            rate = f", {phase['mb_per_s']} MB/s" if phase.get("mb_per_s") is not None else ""
            mark = "" if phase.get("in_rto") else " (validation, after the RTO mark)"
            print(f"#   phase {phase['name']}: {phase['seconds']:.1f} s{rate}{mark}", flush=True)
        dl_ex = phases["download"]["seconds"] + phases["extract"]["seconds"]
        dl_ex_mb_s = int(tar["size"]) / 1e6 / dl_ex
        print(
            f"# {int(tar['size']) / 1e6:.0f} MB: download + extract {dl_ex:.1f} s = {dl_ex_mb_s:.0f} MB/s; "
            f"single GET {get_mb_s:.0f} MB/s, disk write+fsync {disk_mb_s:.0f} MB/s: limit {limit:.0f} MB/s, "
            f"share {dl_ex_mb_s / limit:.2f}; RTO {outcome.rto_seconds:.1f} s, restore {outcome.mb_per_s} MB/s",
            flush=True,
        )
        print(f"# load average at end: {' '.join(f'{x:.2f}' for x in os.getloadavg())}", flush=True)
        yield Figure(
            "restore_phases",
            dl_ex_mb_s,
            "MB/s",
            baseline=limit,
            target="ratio>=0.7",
            meets=lambda _v, r: r is not None and r >= 0.7,
        )
    finally:
        restore.clean_leftovers(scratch)
        moto.terminate()
        moto.wait(timeout=30)
        pg.destroy()
