"""Judging recorded traffic: the capture judge against per-exchange schema validation, and big captures.

    python benchmarks/captures.py [--defects NAME ...] [--sizes 10000 30000 100000] [--skip-big] [--skip-table]

1. For the clean mock and every planted defect of ``conformance.mock.DEFECTS``: one plain client
   session recorded as HAR (tests/captures.py), judged by ``conformance.traffic.judge_capture``
   and by per-exchange validation (Schemathesis' response checks on each exchange alone, as
   Redocly's drift, ``oav validate-traffic`` and Prism's proxy work). A defect counts as caught by
   the judge when it calls a requirement violated; by validation when it reports a failure
   (operation, check) that the clean capture's validation does not. Totals: both counts, their
   ratio, whether the judge's catches include every validation catch, and the clean capture's
   violations.
2. Big captures: a synthetic capture of N exchanges (one session replayed, tests/captures.py),
   judged by ``raff-conformance traffic`` in a child process; the judging time and the child's
   peak memory (its own rusage, from wait4), for each N, so that one sees whether memory stays flat.

Prints numbers; asserts nothing (tests/test_captures.py holds the table's proof).
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterable
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from conformance.mock import DEFECTS  # noqa: E402
from tests.captures import record_session, synthetic_capture, validate_per_exchange  # noqa: E402

CLEAN = "(clean)"
SIZES = (10_000, 30_000, 100_000)


def violated(results: dict[str, Any]) -> set[str]:
    """The requirements a results dict calls violated."""
    return {row["id"] for row in results["requirements"] if row["verdict"] == "violation"}


def failures(records: Iterable[dict[str, Any]]) -> set[tuple[str, str]]:
    return {(record["operation"], record["check"]) for record in records}


def table(names: list[str], out: list[str]) -> None:
    from conformance.traffic import judge_capture

    rows: list[tuple[str, str, set[str], set[tuple[str, str]]]] = []
    started = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="raff-captures-") as tmp:
        clean_har = Path(tmp) / "clean.har"
        record_session(clean_har)
        clean_violated = violated(judge_capture(clean_har))
        clean_failures = failures(validate_per_exchange(clean_har))
        for name in names:
            har = Path(tmp) / f"{name}.har"
            record_session(har, defects=[name])
            judged = violated(judge_capture(har))
            validated = failures(validate_per_exchange(har)) - clean_failures
            rows.append((name, DEFECTS[name].requirement, judged, validated))
    elapsed = time.perf_counter() - started

    from tests.test_captures import CAPTURE_CAUGHT  # the exact sets, read against each capture's evidence

    width = max(len(name) for name in names)
    out.append("judge vs table: '=' the judge calls violated exactly CAPTURE_CAUGHT's set (tests/test_captures.py);")
    out.append("  '+X' it also calls X violated (a false blame), '-X' it misses X (a true violation the capture shows)")
    out.append(f"{'defect':<{width}}  req    capture judge (violated)        vs table    per-exchange validation")
    out.append(f"{CLEAN:<{width}}  -      {', '.join(sorted(clean_violated)) or '-':<30}  "
               f"{', '.join(f'{op} {check}' for op, check in sorted(clean_failures)) or '-'}")
    for name, requirement, judged, validated in rows:
        checks = sorted({check for _, check in validated})
        expected = CAPTURE_CAUGHT[name]
        diff = [f"+{r}" for r in sorted(judged - expected)] + [f"-{r}" for r in sorted(expected - judged)]
        out.append(
            f"{name:<{width}}  {requirement:<5}  {', '.join(sorted(judged)) or '-':<30}  {' '.join(diff) or '=':<10}  "
            f"{'y ' + ', '.join(checks) if validated else 'n'}"
        )
    by_judge = {name for name, _, judged, _ in rows if judged}
    by_validation = {name for name, _, _, validated in rows if validated}
    own = {name for name, requirement, judged, _ in rows if requirement in judged}
    out.append("")
    out.append(f"defects: {len(rows)}; recorded, judged and validated in {elapsed:.1f} s")
    out.append(f"caught by the capture judge:         {len(by_judge)} (under the defect's own requirement: {len(own)})")
    true_catches = {name for name, _, judged, _ in rows if judged & CAPTURE_CAUGHT[name]}
    false_blames = {name: judged - CAPTURE_CAUGHT[name] for name, _, judged, _ in rows if judged - CAPTURE_CAUGHT[name]}
    holes = {name: CAPTURE_CAUGHT[name] - judged for name, _, judged, _ in rows if CAPTURE_CAUGHT[name] - judged}
    out.append(f"  of them with a true violation:     {len(true_catches)}")
    out.append(f"  false blames (extra requirements): {len(false_blames)}"
               + "".join(f"; {n} +{', '.join(sorted(r))}" for n, r in sorted(false_blames.items())))
    out.append(f"  true violations missed:            {len(holes)}"
               + "".join(f"; {n} -{', '.join(sorted(r))}" for n, r in sorted(holes.items())))
    out.append(f"caught by per-exchange validation:   {len(by_validation)}")
    ratio = f"{len(by_judge) / len(by_validation):.2f}" if by_validation else "n/a (validation caught none)"
    out.append(f"ratio judge / validation:            {ratio}")
    missing = sorted(by_validation - by_judge)
    out.append(f"judge's catches include validation's: {'yes' if not missing else 'no: ' + ', '.join(missing)}")
    out.append(f"violations on the clean capture:     {len(clean_violated)}"
               + (f" ({', '.join(sorted(clean_violated))})" if clean_violated else ""))
    out.append(f"per-exchange failures on the clean capture: {len(clean_failures)}")


def judge_in_child(har: Path, report_dir: Path) -> tuple[float, int, int]:
    """Judge a capture with the command in a child process: (wall seconds, peak RSS in MiB, exit code)."""
    command = [sys.executable, "-m", "conformance.cli", "traffic", str(har), "--report-dir", str(report_dir)]
    started = time.perf_counter()
    child = subprocess.Popen(command, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    assert child.stderr is not None
    child.stderr.read()  # drained, so a chatty child never blocks on a full pipe
    _, status, usage = os.wait4(child.pid, 0)
    child.returncode = os.waitstatus_to_exitcode(status)
    return time.perf_counter() - started, usage.ru_maxrss // 1024, child.returncode


def big(sizes: Iterable[int], out: list[str]) -> None:
    out.append(f"{'exchanges':>10}  {'file MiB':>8}  {'build s':>7}  {'judge s':>7}  {'per 1k ms':>9}  "
               f"{'peak RSS MiB':>12}  exit")
    with tempfile.TemporaryDirectory(prefix="raff-big-capture-") as tmp:
        baseline = Path(tmp) / "empty.har"
        synthetic_capture(baseline, 1)
        seconds, rss, code = judge_in_child(baseline, Path(tmp) / "report-1")
        out.append(f"{1:>10}  {baseline.stat().st_size / 2**20:>8.1f}  {'':>7}  {seconds:>7.1f}  {'':>9}  "
                   f"{rss:>12}  {code}   (one exchange: the interpreter, imports and report)")
        for size in sizes:
            har = Path(tmp) / f"big-{size}.har"
            started = time.perf_counter()
            synthetic_capture(har, size)
            built = time.perf_counter() - started
            seconds, rss, code = judge_in_child(har, Path(tmp) / f"report-{size}")
            out.append(
                f"{size:>10}  {har.stat().st_size / 2**20:>8.1f}  {built:>7.1f}  {seconds:>7.1f}  "
                f"{seconds / size * 1000 * 1000:>9.1f}  {rss:>12}  {code}"
            )
            har.unlink()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--defects", nargs="*", default=sorted(DEFECTS), help="defects to record (default: all)")
    parser.add_argument("--sizes", nargs="*", type=int, default=list(SIZES), help="exchanges per big capture")
    parser.add_argument("--skip-big", action="store_true", help="only the defect table")
    parser.add_argument("--skip-table", action="store_true", help="only the big captures")
    args = parser.parse_args()
    out: list[str] = []
    if not args.skip_table:
        out.append("== one plain client session per defect: capture judge vs per-exchange validation ==")
        table(args.defects, out)
        print("\n".join(out), flush=True)
    if not args.skip_big:
        start = len(out)
        out.append("")
        out.append("== big captures: `python -m conformance.cli traffic X.har --report-dir D` in a child process ==")
        big(args.sizes, out)
        print("\n".join(out[start:]), flush=True)


if __name__ == "__main__":
    main()
