"""``python -m sanvi_ops <command>``: operator commands.

``preflight``: check that a deployment is complete (connections, pool, ``[api] base_url``,
PostgreSQL binaries, database rights, S3/KMS, Slack); exit 1 when anything would fail. See
docs/preflight.md.

``migrate``: bring the results store (the config's ``connections.store``) up to this code's schema
and copy the config's ``silences:`` into it. Idempotent; run at every deploy and start
(deploy/airflow-init.sh, the Helm migration job, ``make run``). Tasks never migrate: they fail
naming the missing migrations until this has run. ``--check`` only says what is missing (exit 1).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import sys
from typing import Any


def _preflight(cfg: Any, args: argparse.Namespace) -> int:
    from sanvi_ops.airflow_kit.preflight import exit_code, render, run_preflight

    # The findings are stdout; whatever Airflow and the libraries log goes to stderr.
    with contextlib.redirect_stdout(sys.stderr):
        results = run_preflight(cfg, base_url=args.base_url, local=args.local, timeout_s=args.timeout)
    if args.json:
        print(json.dumps([r.to_dict() for r in results], indent=2))
    else:
        print(render(results))
    return exit_code(results)


def _migrate(cfg: Any, args: argparse.Namespace) -> int:
    from sanvi_ops.airflow_kit.publish import results_store
    from sanvi_ops.core.silences import sync_config_silences
    from sanvi_ops.core.store import StoreError

    try:
        store = results_store(cfg, check=False)
        if args.check:
            missing = store.pending_migrations()
            print(
                f"{store.name} at {store.target}: "
                + (f"missing {', '.join(missing)}" if missing else "up to date")
            )
            return 1 if missing else 0
        applied = store.migrate()
        print(
            f"{store.name} at {store.target}: "
            + (f"applied {', '.join(applied)}" if applied else "up to date")
        )
        report = sync_config_silences(
            store.dsn, cfg.silences, timezone=cfg.timezone, max_duration=cfg.silence_max_duration
        )
    except (StoreError, LookupError, ValueError) as exc:  # the connection is missing or unusable
        print(f"migrate: {exc}", file=sys.stderr)
        return 1
    print(
        f"config silences: {len(report.added)} added, {len(report.lifted)} lifted, {report.kept} unchanged"
        + "".join(f"\n  not applied: {problem}" for problem in report.problems)
    )
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m sanvi_ops", description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True)
    pre = sub.add_parser("preflight", help="check that this deployment is complete (docs/preflight.md)")
    pre.add_argument("--json", action="store_true", help="print the findings as JSON")
    pre.add_argument(
        "--local",
        action="store_true",
        help="the local stack (make run): a loopback [api] base_url is expected there",
    )
    pre.add_argument(
        "--base-url", default=None, help="check this base_url instead of Airflow's [api] base_url"
    )
    pre.add_argument("--timeout", type=float, default=10.0, help="seconds per connection probe (default 10)")
    mig = sub.add_parser("migrate", help="bring the results store's schema up to date; sync config silences")
    mig.add_argument(
        "--check", action="store_true", help="only list the migrations not applied (exit 1 if any)"
    )
    args = parser.parse_args(argv)
    from sanvi_ops.core.config import ConfigError, load_config

    try:
        cfg = load_config()
    except ConfigError as exc:
        print(f"{args.command}: the maintenance config does not load: {exc}", file=sys.stderr)
        return 2
    if args.command == "preflight":
        return _preflight(cfg, args)
    if args.command == "migrate":
        return _migrate(cfg, args)
    parser.error(f"unknown command {args.command!r}")
    return 2


if __name__ == "__main__":
    sys.exit(main())
