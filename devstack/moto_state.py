"""``make run``'s moto server, with its S3 and KMS state kept across restarts.

moto keeps everything in memory, so a restart of the stack used to lose the S3 backups (and
``backup_testing`` went critical). This module is the moto server process of the stack:

- on start it loads ``--state FILE`` (when it exists) into moto's backends, then serves;
- on SIGTERM / SIGINT (the stack's stop) it writes the state of :data:`KEPT_SERVICES` to
  ``FILE`` (atomically: a temporary file renamed over it), then exits.

What is kept is what cannot be re-created: S3 (buckets, objects, versions, multipart uploads:
the backups and their manifests) and KMS (the backup key and its alias). Everything else (ECS,
RDS, ElastiCache, EC2, IAM, CloudWatch Logs, ECR) is re-seeded by
:mod:`devstack.aws_seed` on every start, idempotently.

moto's objects are plain Python objects; S3 keys pickle their data themselves
(``FakeKey.__getstate__``). KMS keys hold ``cryptography`` private keys, which do not pickle:
they are written as DER bytes and loaded back (:class:`_StatePickler`). The file is written
and read only by this process, under ``.local/`` (mode 600): it is trusted local state, never
input from elsewhere.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import pickle
import signal
import sys
import threading
import time
from pathlib import Path
from types import FrameType
from typing import Any

#: moto services whose state survives a restart (the rest is re-seeded).
KEPT_SERVICES: tuple[str, ...] = ("s3", "kms")
FORMAT_VERSION = 1


def _load_private_key(der: bytes) -> Any:
    from cryptography.hazmat.primitives.serialization import load_der_private_key

    return load_der_private_key(der, password=None)


class _StatePickler(pickle.Pickler):
    """Pickles moto backends; ``cryptography`` private keys travel as DER (PKCS#8) bytes."""

    def reducer_override(self, obj: Any) -> Any:
        if type(obj).__module__.startswith("cryptography.") and hasattr(obj, "private_bytes"):
            from cryptography.hazmat.primitives import serialization

            # By its importable name: run as ``python -m`` this module is ``__main__``.
            from devstack.moto_state import _load_private_key as loader

            der = obj.private_bytes(
                serialization.Encoding.DER,
                serialization.PrivateFormat.PKCS8,
                serialization.NoEncryption(),
            )
            return loader, (der,)
        return NotImplemented


def snapshot(services: tuple[str, ...] = KEPT_SERVICES) -> dict[str, Any]:
    """The in-memory state of ``services``: service → account → region → backend object."""
    from moto.backends import get_backend

    state: dict[str, Any] = {}
    for service in services:
        backends = get_backend(service)  # type: ignore[call-overload]
        state[service] = {account: dict(regions) for account, regions in backends.items()}
    return state


def summary_path(path: Path) -> Path:
    """The small JSON beside the state file: when it was saved, how many S3 objects it holds."""
    return path.with_suffix(".json")


def _s3_objects(state: dict[str, Any]) -> int:
    count = 0
    for regions in state.get("s3", {}).values():
        for backend in regions.values():
            count += sum(len(bucket.keys) for bucket in getattr(backend, "buckets", {}).values())
    return count


def save(path: Path, services: tuple[str, ...] = KEPT_SERVICES) -> int:
    """Write the state of ``services`` to ``path`` (atomically, mode 600) and its summary;
    returns the state file's size."""
    tmp = path.with_name(path.name + ".tmp")
    path.parent.mkdir(parents=True, exist_ok=True)
    state = snapshot(services)
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as fh:
        _StatePickler(fh, protocol=pickle.HIGHEST_PROTOCOL).dump(
            {"version": FORMAT_VERSION, "saved_at": time.time(), "state": state}
        )
    tmp.replace(path)
    summary = {"saved_at": time.time(), "services": list(services), "s3_objects": _s3_objects(state)}
    summary_path(path).write_text(json.dumps(summary))
    return path.stat().st_size


def load(path: Path) -> list[str]:
    """Put the state saved in ``path`` back into moto's backends; returns the services loaded.

    A missing file loads nothing; a file of another format version is refused (ValueError).
    """
    from moto.backends import get_backend

    if not path.exists():
        return []
    with path.open("rb") as fh:
        saved = pickle.load(fh)  # noqa: S301 - our own state file under .local/ (mode 600)
    if not isinstance(saved, dict) or saved.get("version") != FORMAT_VERSION:
        raise ValueError(f"{path}: not a moto state file of version {FORMAT_VERSION}")
    loaded = []
    for service, accounts in saved["state"].items():
        backends = get_backend(service)
        for account, regions in accounts.items():
            for region, backend in regions.items():
                backends[account][region] = backend
        loaded.append(service)
    return loaded


def objects_kept(path: Path) -> int:
    """How many S3 objects the state in ``path`` holds (0 when none was saved), from its summary."""
    if not path.exists():
        return 0
    try:
        return int(json.loads(summary_path(path).read_text())["s3_objects"])
    except (OSError, ValueError, KeyError, TypeError):
        return 0


def serve(
    host: str, port: int, state_file: Path, replicate_every: float = 0, regions: tuple[str, ...] = ()
) -> None:
    """Load ``state_file``, serve moto on ``host:port`` until SIGTERM/SIGINT, save, exit.

    With ``replicate_every`` > 0, buckets with a replication rule are copied to their
    destinations that often (:mod:`devstack.s3_replication`; ``regions``: source first).
    """
    from moto.server import ThreadedMotoServer

    from devstack.moto_extras import install

    install()  # the few AWS calls of the DAGs moto does not implement (see moto_extras)
    try:
        loaded = load(state_file)
    except (OSError, ValueError, pickle.UnpicklingError, EOFError, AttributeError) as exc:
        broken = state_file.with_name(state_file.name + ".unreadable")
        with contextlib.suppress(OSError):
            state_file.replace(broken)
        print(
            f"moto state: could not load {state_file} ({exc}); moved to {broken}, starting empty", flush=True
        )
        loaded = []
    print(f"moto state: loaded {', '.join(loaded) or 'nothing'} from {state_file}", flush=True)
    server = ThreadedMotoServer(ip_address=host, port=port, verbose=False)
    stop = False

    def on_signal(signum: int, _frame: FrameType | None) -> None:
        nonlocal stop
        stop = True

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    server.start()
    print(f"moto serving on http://{host}:{port}", flush=True)
    replication = threading.Event()
    if replicate_every > 0 and regions:
        from devstack import s3_replication

        threading.Thread(
            target=s3_replication.run,
            args=(f"http://{host}:{port}", replicate_every, replication, regions),
            name="s3-replication",
            daemon=True,
        ).start()
    while not stop:
        time.sleep(0.2)
    replication.set()
    server.stop()
    size = save(state_file)
    print(f"moto state: saved {', '.join(KEPT_SERVICES)} to {state_file} ({size:,} bytes)", flush=True)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument(
        "--state", type=Path, required=True, help="state file (loaded on start, written on stop)"
    )
    parser.add_argument(
        "--replicate-every", type=float, default=0, help="seconds between S3 replication rounds (0: none)"
    )
    parser.add_argument("--regions", default="", help="comma-separated regions, the source's first")
    args = parser.parse_args(argv)
    if args.host not in {"127.0.0.1", "localhost", "::1"}:
        parser.error(f"--host: loopback only, not {args.host!r}")
    regions = tuple(r for r in args.regions.split(",") if r)
    serve(args.host, args.port, args.state, args.replicate_every, regions)
    return 0


if __name__ == "__main__":
    sys.exit(main())
