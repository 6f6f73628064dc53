"""``raff-conformance``: the contract for other tools, and the sweep of earlier runs' leftovers.

raff-conformance contract --merged -o merged.yaml     published spec + overlay, one document
raff-conformance contract --gaps                       what the overlay adds (the spec gaps)
raff-conformance sweep --prefix raffconf [--dry-run]   delete backups an earlier run left behind
raff-conformance traffic CAPTURE.har [--report-dir DIR] judge recorded traffic (HAR 1.2), sending nothing
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path

import yaml

from conformance.client import RaffClient, RateLimiter
from conformance.contract import load_contract
from conformance.settings import SettingsError, resolve


def _contract(args: argparse.Namespace) -> int:
    contract = load_contract()
    if args.gaps:
        for entry in contract.overlay_entries:
            print(f"{entry.operation_id:18} {entry.status}  {entry.basis:10} {entry.description}")
        return 0
    document = contract.merged if args.merged else contract.published
    text = (
        json.dumps(document, indent=2)
        if args.output and args.output.endswith(".json")
        else yaml.safe_dump(document, sort_keys=False, allow_unicode=True)
    )
    if args.output:
        Path(args.output).write_text(text, encoding="utf-8")
        print(f"wrote {args.output}", file=sys.stderr)
    else:
        sys.stdout.write(text)
    return 0


def _sweep(args: argparse.Namespace) -> int:
    """Delete backups whose name starts with the prefix, newest restore point first."""
    try:
        settings = resolve({}, os.environ)
    except SettingsError as error:
        print(f"raff-conformance sweep: {error}", file=sys.stderr)
        return 2
    if not settings.base_url:
        print("raff-conformance sweep: RAFF_BASE_URL is not set", file=sys.stderr)
        return 2
    if not args.prefix:
        print("raff-conformance sweep: --prefix must not be empty", file=sys.stderr)
        return 2
    with RaffClient(settings.base_url, settings.api_key, settings.project_id, limiter=RateLimiter(10)) as client:
        response = client.list_backups(vm_id=args.vm_id, limit=1000)
        if response.status_code != 200:
            print(f"raff-conformance sweep: listBackups answered {response.status_code}", file=sys.stderr)
            return 1
        doomed = [b for b in response.json().get("data") or [] if str(b.get("name", "")).startswith(args.prefix)]
        # Newest first: later restore points depend on earlier ones.
        doomed.sort(key=lambda b: (b.get("created_at") or "", b.get("increment_id") or 0), reverse=True)
        for backup in doomed:
            label = f"{backup['id']}  {backup.get('name')}  vm={backup.get('product_vm')}"
            if args.dry_run:
                print(f"would delete {label}")
                continue
            answer = client.delete_backup(backup["id"])
            gone = answer.status_code == 200 and client.show_backup(backup["id"]).status_code == 404
            why = "a newer restore point depends on it" if answer.status_code == 409 else f"{answer.status_code}"
            print(f"{'deleted' if gone else f'NOT deleted ({why})'} {label}")
        if not doomed:
            print(f"no backups named {args.prefix}*")
    return 0


def _traffic(args: argparse.Namespace) -> int:
    """Judge a HAR capture: report.html, junit.xml and results.json in the report directory."""
    from conformance.report.render import write_reports
    from conformance.traffic import CaptureError, judge_capture, secrets_of

    capture = Path(args.capture)
    if not capture.is_file():
        print(f"raff-conformance traffic: CAPTURE {capture} is not a readable file", file=sys.stderr)
        return 4
    try:
        secrets = secrets_of(capture)
        results = judge_capture(capture)
    except (CaptureError, OSError) as error:
        print(f"raff-conformance traffic: CAPTURE {capture}: {error}", file=sys.stderr)
        return 4
    if results["capture"]["judged"] == 0 and results["capture"]["entries"] == 0:
        print(f"raff-conformance traffic: CAPTURE {capture} holds no HAR entries (log.entries)", file=sys.stderr)
        return 4
    paths = write_reports(results, Path(args.report_dir), secrets)
    c = results["capture"]
    print(f"{capture.name}: {c['entries']} entries, {c['judged']} judged, {c['outside_contract_total']} outside the "
          f"contract, {c['overlapping_pairs']} overlapping pairs")
    for row in results["requirements"]:
        if row["verdict"] in ("violation", "inconclusive"):
            titles = {f["title"] for f in results["findings"]
                      if f["requirement"] == row["id"] and f["classification"] == row["verdict"]}
            said = "; ".join(sorted(titles)) or row.get("reason") or ""
            print(f"  {row['id']}  {row['verdict']:12}  {said[:110]}  "
                  f"({paths['html'].name}#req-{row['id']})")
    counts: dict[str, int] = {}
    for row in results["requirements"]:
        counts[row["verdict"]] = counts.get(row["verdict"], 0) + 1
    tally = ", ".join(f"{n} {v}" for v, n in sorted(counts.items()))
    print(f"verdict: {results['run']['verdict']} ({tally})")
    print(f"report: {paths['html']}")
    return int(results["run"]["exit_status"])


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="raff-conformance", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    commands = parser.add_subparsers(dest="command", required=True)
    contract = commands.add_parser("contract", help="print or write the contract")
    contract.add_argument("--merged", action="store_true", help="apply the documented-behaviour overlay")
    contract.add_argument("--gaps", action="store_true", help="list what the overlay adds to the published spec")
    contract.add_argument("-o", "--output", help="write to this file (.json or .yaml)")
    contract.set_defaults(run=_contract)
    sweep = commands.add_parser("sweep", help="delete leftovers of earlier runs (RAFF_* settings from env)")
    sweep.add_argument("--prefix", required=True, help="name prefix of the suite's backups (RAFF_NAME_PREFIX)")
    sweep.add_argument("--vm-id", default=None, help="only this VM's backups")
    sweep.add_argument("--dry-run", action="store_true", help="show what would be deleted, delete nothing")
    sweep.set_defaults(run=_sweep)
    traffic = commands.add_parser("traffic", help="judge a HAR capture without sending a request")
    traffic.add_argument("capture", help="a HAR 1.2 file (browser devtools, mitmproxy savehar, Playwright record_har)")
    traffic.add_argument("--report-dir", default="reports", help="where report.html, junit.xml, results.json go")
    traffic.set_defaults(run=_traffic)
    args = parser.parse_args(argv)
    return int(args.run(args))


if __name__ == "__main__":
    raise SystemExit(main())
