"""Run the mock: ``python -m conformance.mock --port 8080 [--defect NAME]... [--fault NAME]...``.

On start it prints the seeded credentials as ``export NAME=value`` lines (the base URL first,
with the real port even for ``--port 0``), so a shell can ``eval`` or source them. The API key
printed is a throwaway generated for this mock process.
"""

from __future__ import annotations

import argparse
import json
import logging
import shlex
import signal
import sys
import threading
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import yaml

from conformance.mock.app import create_app
from conformance.mock.clock import STEP, TIME_MODES
from conformance.mock.defects import DEFECTS
from conformance.mock.faults import FAULTS
from conformance.mock.server import MockServer


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m conformance.mock", description="Mock of the Raff VM-backups API.")
    parser.add_argument("--host", default="127.0.0.1", help="address to bind (default: %(default)s)")
    parser.add_argument("--port", type=int, default=8080, help="port; 0 picks a free one (default: %(default)s)")
    parser.add_argument("--defect", action="append", default=[], metavar="NAME", help="plant a defect (repeatable)")
    parser.add_argument("--list-defects", action="store_true", help="list the defects and exit")
    parser.add_argument("--seed", type=Path, metavar="FILE", help="seed data, YAML or JSON (see world.py)")
    parser.add_argument("--backup-delay", type=float, default=0.3, metavar="S", help="seconds until a backup is ready")
    parser.add_argument("--restore-delay", type=float, default=0.2, metavar="S", help="seconds a restore takes")
    parser.add_argument(
        "--time",
        choices=TIME_MODES,
        default="wall",
        help="'wall': the delays are seconds; 'requests': every request moves mock time on by "
        f"{STEP:g} s, so a backup is ready three requests after its create (default: %(default)s)",
    )
    parser.add_argument("--rate-limit", type=float, metavar="N", help="requests/s per API key (default: off)")
    parser.add_argument(
        "--real-stack",
        action="store_true",
        help="habits of real HTTP stacks: a router's plain-text 404 for paths that do not route, "
        "header names and JSON media types in other spellings",
    )
    parser.add_argument(
        "--one-backup-at-a-time",
        action="store_true",
        help="a VM takes one backup at a time: a create while another of it is pending or creating answers "
        "409 (the overlay's inferred createBackup 409)",
    )
    parser.add_argument(
        "--fault",
        action="append",
        default=[],
        choices=sorted(FAULTS),
        metavar="NAME",
        help=f"turn on a fault mode (repeatable): {', '.join(sorted(FAULTS))}",
    )
    return parser


def _load_seed(path: Path) -> dict[str, Any]:
    text = path.read_text(encoding="utf-8")
    seed = json.loads(text) if path.suffix == ".json" else yaml.safe_load(text)
    if not isinstance(seed, dict):
        raise ValueError(f"{path}: the seed must be a mapping with an 'accounts' list")
    return seed


def main(argv: Sequence[str] | None = None) -> int:
    parser = _parser()
    args = parser.parse_args(argv)
    if args.list_defects:
        width = max(len(name) for name in DEFECTS)
        for defect in DEFECTS.values():
            print(f"{defect.name:<{width}}  {defect.requirement}  {defect.description}")
        return 0
    try:
        seed = _load_seed(args.seed) if args.seed else None
        app = create_app(
            defects=args.defect,
            seed=seed,
            backup_delay=args.backup_delay,
            restore_delay=args.restore_delay,
            rate_limit=args.rate_limit,
            faults=args.fault,
            real_stack=args.real_stack,
            one_backup_at_a_time=args.one_backup_at_a_time,
            time_mode=args.time,
        )
    except (OSError, ValueError, yaml.YAMLError) as exc:
        parser.error(str(exc))
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    stop = threading.Event()
    for signum in (signal.SIGINT, signal.SIGTERM):
        signal.signal(signum, lambda *_: stop.set())
    with MockServer(app, host=args.host, port=args.port) as server:
        for name, value in server.credentials().items():
            print(f"export {name}={shlex.quote(value)}")
        sys.stdout.flush()
        # A timed wait, so the main thread keeps running Python code and sees the signal promptly.
        while not stop.wait(0.5):
            pass
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
