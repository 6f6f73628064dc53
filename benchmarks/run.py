"""Wall time and planted defects caught: the suite versus plain Schemathesis on the same mock.

    python benchmarks/run.py [--workers 2] [--seed 20260514]
                             [--skip-sweep | --superset-only | --phase-table | --catch-rate N] [--defects NAME ...]
    python benchmarks/run.py --pair [--pair-runs 3] [--checkout PATH] [--python PATH]

1. Wall time against the clean bundled mock, default (thorough) profile: the suite's generated
   tests (test_fuzz_backups.py + test_backups_lifecycle.py), the whole suite, and the Schemathesis
   CLI on the merged contract (same mock, all four phases, the same fuzzing examples per operation
   as the suite's free + pinned variants, the key as OpenAPI auth), and the ratios.
2. A sweep over ``conformance.mock.DEFECTS``: each tool against a mock started with one defect, on
   a small budget so the sweep stays within minutes on two cores (suite: --raff-profile smoke;
   Schemathesis: the same examples per operation as the smoke profile gives the suite).
   Schemathesis counts a defect as caught when it reports a failure (code, operation) that its
   run on the clean mock with the same seed did not.
3. The superset check: for the clean mock and each defect, every (operation, failure code) that
   plain ``schemathesis run`` reports (the mock's own config pins the seeded ids, all checks, all
   phases, --max-examples 30) must be among what the suite reports (any verdict); it prints each
   pair that plain Schemathesis found and the suite did not.
4. ``--phase-table``: plain Schemathesis as in 3, one phase at a time, so that each defect shows
   which phase (and check code) finds it.
5. ``--catch-rate N``: the suite's generated tests, as plain pytest runs them, on N seeds per
   defect: how often the default run catches a defect that only random inputs reach.
6. ``--pair``: issue 21's comparison in one checkout (default: this one). A is the default run
   (``pytest -q``, the embedded mock), A-gen the same restricted to ``-m fuzz`` (the free fuzz and
   the lifecycle tests), B plain ``schemathesis run`` on the merged contract against the mock
   started on its own (``--checks all --max-examples 30 --seed 1``, the key and project as -H
   headers), taken in turns, N times each. Wall and CPU (user+sys of each process, by wait4; B's
   CPU includes its mock's, as A's includes the embedded mock's), the medians and the ratios.

Prints numbers; asserts nothing.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import re
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import hypothesis  # noqa: E402

import conformance.plugin  # noqa: E402,F401  (registers the thorough/bounded/smoke profiles)
from conformance.contract import load_contract  # noqa: E402
from conformance.fuzzing import fuzzing_examples  # noqa: E402
from conformance.mock import DEFECTS  # noqa: E402
from conformance.mock.process import mock_process as run_mock_process  # noqa: E402

FUZZ_MODULES = ("conformance/tests/test_fuzz_backups.py", "conformance/tests/test_backups_lifecycle.py")
PHASES = "examples,coverage,fuzzing,stateful"
MOCK_CONFIG = ROOT / "conformance" / "mock" / "schemathesis.toml"
TIMEOUT = 600


def examples_per_operation(profile: str) -> int:
    """Fuzzing examples per operation the suite spends on the bundled mock under a profile: free plus pinned variant."""
    settings = hypothesis.settings.get_profile(profile)
    return fuzzing_examples("free", settings, is_mock=True) + fuzzing_examples("pinned", settings, is_mock=True)


def clean_env(**extra: str) -> dict[str, str]:
    """This environment without RAFF_* settings: a stray RAFF_BASE_URL must not aim a run at a live API."""
    env = {key: value for key, value in os.environ.items() if not key.startswith("RAFF_")}
    env.update(extra)
    return env


# -- the suite -------------------------------------------------------------------------------------


@dataclass
class SuiteRun:
    wall_s: float
    exit_code: int
    results: dict[str, Any]
    output_tail: str = ""

    @property
    def note(self) -> str:
        """Why a run did not produce a verdict (exit 2-5: interrupted, internal or usage error, nothing run)."""
        return "" if self.exit_code in (0, 1) else f"  [pytest exit {self.exit_code}: {self.output_tail}]"

    def violations(self, modules: tuple[str, ...] | None = None) -> list[dict[str, Any]]:
        findings = [f for f in self.results.get("findings", []) if f["classification"] == "violation"]
        if modules is None:
            return findings
        return [f for f in findings if f["test"].split("::")[0] in modules]

    def verdict(self, requirement: str) -> str | None:
        return next((r["verdict"] for r in self.results.get("requirements", []) if r["id"] == requirement), None)

    @property
    def cases(self) -> int:
        operations = self.results.get("property_based", {}).get("operations", {})
        return sum(stats["cases"] for stats in operations.values())

    @property
    def requests(self) -> int:
        operations = self.results.get("coverage", {}).get("operations", [])
        return sum(sum(op["observed"].values()) for op in operations)


def run_suite(*paths: str, profile: str | None, seed: int, defect: str | None = None) -> SuiteRun:
    """The suite as a user runs it; ``profile`` None keeps the default (what plain ``pytest`` uses)."""
    with tempfile.TemporaryDirectory() as tmp:
        command = [
            sys.executable,
            "-m",
            "pytest",
            *paths,
            "-q",
            "-p",
            "no:cacheprovider",
            *(["--raff-profile", profile] if profile else []),
            # One argument: pytest takes a separate path-like value for a test path when it
            # picks the rootdir, and with no test paths given the run would miss conftest.py.
            f"--hypothesis-seed={seed}",
            f"--report-dir={tmp}",
        ]
        if defect:
            command += ["--mock-defect", defect]
        started = time.monotonic()
        completed = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, timeout=TIMEOUT, env=clean_env())
        wall = time.monotonic() - started
        results_path = Path(tmp) / "results.json"
        results = json.loads(results_path.read_text()) if results_path.exists() else {}
    lines = (completed.stdout + completed.stderr).strip().splitlines()
    return SuiteRun(wall, completed.returncode, results, lines[-1] if lines else "")


# -- Schemathesis CLI ------------------------------------------------------------------------------


@contextlib.contextmanager
def mock_process(defect: str | None = None) -> Iterator[dict[str, str]]:
    """The bundled mock in its own process (as a real server would be); yields its RAFF_* credentials."""
    with run_mock_process(*(["--defect", defect] if defect else []), env=clean_env()) as credentials:
        yield credentials


@dataclass
class CliRun:
    wall_s: float
    exit_code: int
    cases: int
    failures: set[tuple[str, str]] = field(default_factory=set)  # (failure code, operation)


@dataclass(frozen=True)
class CliFlavour:
    """How Schemathesis is configured: plain (key as auth only) or with the mock's own config file."""

    name: str
    config_file: Path | None
    project_header: bool


PLAIN = CliFlavour("plain", None, project_header=False)
CONFIGURED = CliFlavour("mock-config", MOCK_CONFIG, project_header=True)


def run_schemathesis(
    spec: Path,
    credentials: dict[str, str],
    *,
    max_examples: int,
    seed: int,
    flavour: CliFlavour,
    phases: str = PHASES,
) -> CliRun:
    with tempfile.TemporaryDirectory() as tmp:
        config = flavour.config_file
        if config is None:
            # The key as OpenAPI auth, never as -H: a fixed header defeats the ignored_auth probes.
            config = Path(tmp) / "schemathesis.toml"
            config.write_text('[auth.openapi.ApiKeyAuth]\napi_key = "${RAFF_API_KEY}"\n', encoding="utf-8")
        report = Path(tmp) / "report.json"
        command = [
            sys.executable,
            "-m",
            "schemathesis.cli",
            "--config-file",
            str(config),
            "run",
            str(spec),
            "--url",
            credentials["RAFF_BASE_URL"],
            "--phases",
            phases,
            "--max-examples",
            str(max_examples),
            "--seed",
            str(seed),
            "--generation-database",
            "none",
            "--report",
            "json",
            "--report-json-path",
            str(report),
            "--no-color",
        ]
        if flavour.project_header:
            command += ["-H", f"X-Project-ID: {credentials['RAFF_PROJECT_ID']}"]
        started = time.monotonic()
        completed = subprocess.run(
            command,
            cwd=tmp,
            capture_output=True,
            text=True,
            timeout=TIMEOUT,
            env=clean_env(RAFF_API_KEY=credentials["RAFF_API_KEY"]),
        )
        wall = time.monotonic() - started
        data = json.loads(report.read_text()) if report.exists() else {}
    failures = {(f["code"], op) for f in data.get("failures", []) for op in f.get("operations", [])}
    return CliRun(wall, completed.returncode, data.get("test_cases", {}).get("generated", 0), failures)


def schemathesis_against_mock(
    spec: Path,
    *,
    defect: str | None,
    max_examples: int,
    seed: int,
    flavours: list[CliFlavour],
    phases: str = PHASES,
) -> dict[str, CliRun]:
    """Each flavour in turn against one mock process (plain first: it creates nothing there)."""
    with mock_process(defect) as credentials:
        return {
            flavour.name: run_schemathesis(
                spec, credentials, max_examples=max_examples, seed=seed, flavour=flavour, phases=phases
            )
            for flavour in flavours
        }


def phase_table(spec: Path, merged: dict[str, Any], args: argparse.Namespace) -> None:
    """Which phase of plain Schemathesis finds what: each defect's pairs, one phase at a time."""
    print(
        f"== Plain schemathesis run (the mock's config, all checks, --max-examples {SUPERSET_EXAMPLES}, seed"
        f" {args.seed}), one phase at a time: the (operation, code) pairs each phase reports beyond the clean mock =="
    )
    labels = operation_ids(merged)

    def pairs(defect: str | None, phase: str) -> set[tuple[str, str]]:
        run = schemathesis_against_mock(
            spec, defect=defect, max_examples=SUPERSET_EXAMPLES, seed=args.seed, flavours=[CONFIGURED], phases=phase
        )[CONFIGURED.name]
        return {cli_pair(label, code, labels) for code, label in run.failures}

    phases = PHASES.split(",")
    jobs = [(defect, phase) for defect in [None, *sorted(args.defects or DEFECTS)] for phase in phases]
    with ThreadPoolExecutor(max_workers=args.workers) as pool:
        found = dict(zip(jobs, pool.map(lambda job: pairs(*job), jobs), strict=True))
    print(f"{'mock':<38} " + " ".join(f"{phase:<22}" for phase in phases))
    for defect in sorted(args.defects or DEFECTS):
        cells = []
        for phase in phases:
            extra = found[(defect, phase)] - found[(None, phase)]
            cells.append(", ".join(f"{op} {code}" for op, code in sorted(extra)) or "-")
        print(f"{defect:<38} " + " ".join(f"{cell:<22}" for cell in cells))


def catch_rate(args: argparse.Namespace) -> None:
    """How many random seeds of the default run's generated tests catch each defect.

    A defect that only generated traffic reaches is caught on some seeds and not others; the
    self-test rows pin one seed, so this is where a drop in the default run's odds shows.
    """
    defects = sorted(args.defects or DEFECTS)
    seeds = [args.seed + n for n in range(args.catch_rate)]
    print(
        f"== Catch rate: the generated tests ({', '.join(FUZZ_MODULES)}), default profile, seeds"
        f" {seeds[0]}..{seeds[-1]}: runs whose report names the defect's requirement as violated =="
    )
    jobs = [(defect, seed) for defect in defects for seed in seeds]

    def caught(job: tuple[str, int]) -> bool:
        defect, seed = job
        run = run_suite(*FUZZ_MODULES, profile=None, seed=seed, defect=defect)
        return run.verdict(DEFECTS[defect].requirement) == "violation"

    with ThreadPoolExecutor(max_workers=args.workers) as pool:
        hits = dict(zip(jobs, pool.map(caught, jobs), strict=True))
    for defect in defects:
        missed = [seed for seed in seeds if not hits[(defect, seed)]]
        line = f"{defect:<38} {DEFECTS[defect].requirement:<6} {len(seeds) - len(missed):>3}/{len(seeds)}"
        print(line + (f"  missed on seeds {', '.join(map(str, missed))}" if missed else ""))


# -- pair: the default run (A) versus plain Schemathesis (B), wall and CPU ---------------------------

PAIR_B_ARGS = ("--checks", "all", "--max-examples", "30", "--seed", "1")  # issue 21's measurement of B


@dataclass
class Timed:
    """One process: wall seconds from start to exit, CPU seconds (user+sys, reaped children included)."""

    wall_s: float
    cpu_s: float
    exit_code: int
    output: str


def run_timed(command: list[str], *, cwd: Path, env: dict[str, str]) -> Timed:
    """Run ``command`` to its end; its own rusage by wait4, so a concurrent process never counts."""
    with tempfile.TemporaryFile("w+") as out:
        started = time.monotonic()
        process = subprocess.Popen(command, cwd=cwd, env=env, stdout=out, stderr=subprocess.STDOUT, text=True)
        try:
            _, status, usage = os.wait4(process.pid, 0)
        except BaseException:
            process.kill()
            raise
        wall = time.monotonic() - started
        process.returncode = os.waitstatus_to_exitcode(status)  # reaped here: Popen must not wait again
        out.seek(0)
        return Timed(wall, usage.ru_utime + usage.ru_stime, process.returncode, out.read())


@contextlib.contextmanager
def timed_mock(python: str, checkout: Path) -> Iterator[tuple[dict[str, str], list[float]]]:
    """``python -m conformance.mock --port 0`` of ``checkout``; yields its RAFF_* credentials and a
    list that holds the mock's CPU seconds (startup included) once it has stopped.

    Its output goes to a file rather than a pipe: nobody reads a pipe after the credentials, and a
    full one would stall the mock in the middle of B's run."""
    cpu: list[float] = []
    with tempfile.NamedTemporaryFile("w+") as out:
        process = subprocess.Popen(
            [python, "-m", "conformance.mock", "--port", "0"],
            cwd=checkout,
            env=clean_env(),
            stdout=out,
            stderr=subprocess.STDOUT,
            text=True,
        )
        try:
            credentials: dict[str, str] = {}
            deadline = time.monotonic() + 60
            while "RAFF_OTHER_ACCOUNT_VM_ID" not in credentials:  # the mock prints this one last
                if process.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError(f"the mock did not start: {Path(out.name).read_text()[-500:]}")
                time.sleep(0.05)
                for line in Path(out.name).read_text().splitlines():
                    if line.startswith("export "):
                        name, _, value = line.removeprefix("export ").strip().partition("=")
                        credentials[name] = value.strip("'\"")
            yield credentials, cpu
        finally:
            process.terminate()
            try:
                _, _, usage = os.wait4(process.pid, 0)
                cpu.append(usage.ru_utime + usage.ru_stime)
            except ChildProcessError:
                pass
            process.returncode = 0


@dataclass
class PairRow:
    kind: str  # "A", "A-gen" or "B"
    run: Timed
    mock_cpu_s: float = 0.0  # B only: its mock process (A's mock runs inside the pytest process)

    @property
    def cpu_s(self) -> float:
        return self.run.cpu_s + self.mock_cpu_s

    @property
    def requests(self) -> str:
        """What the run says it sent: the suite's "requests sent", Schemathesis' generated cases."""
        pattern = r"requests sent: (\d+)" if self.kind != "B" else r"(\d+) generated"
        found = re.findall(pattern, self.run.output)
        return f"{found[-1]} {'requests' if self.kind != 'B' else 'cases'}" if found else "?"


def _median(values: list[float]) -> float:
    return statistics.median(values) if values else float("nan")


def pair(args: argparse.Namespace) -> None:
    """A, A-gen and B in turns, ``--pair-runs`` times each, in one checkout; medians and ratios."""
    checkout = Path(args.checkout).resolve()
    venv_python = checkout / ".venv" / "bin" / "python"
    python = args.python or (str(venv_python) if venv_python.exists() else sys.executable)
    with open("/proc/loadavg", encoding="ascii") as load:
        loadavg = " ".join(load.read().split()[:3])
    print(
        f"== Pair (issue 21): checkout {checkout}, python {python}; {args.pair_runs} runs each, in turns;"
        f" {os.cpu_count()} cores, load average {loadavg} at start =="
    )
    if os.environ.get("PYTHONDONTWRITEBYTECODE"):
        # No .pyc is written: A re-compiles the checkout and pytest re-rewrites every module of its
        # plugin packages (schemathesis, hypothesis, conformance) on every run; B's site-packages
        # were compiled at install.
        print("note: PYTHONDONTWRITEBYTECODE is set (A pays compiling and assertion rewriting on every run)")
    rows: list[PairRow] = []
    with tempfile.TemporaryDirectory() as tmp:
        spec = Path(tmp) / "merged.yaml"
        made = run_timed(
            [python, "-m", "conformance.cli", "contract", "--merged", "-o", str(spec)], cwd=checkout, env=clean_env()
        )
        if made.exit_code != 0:
            raise SystemExit(f"raff-conformance contract --merged failed: {made.output[-500:]}")
        suite = [python, "-m", "pytest", "-q", "-p", "no:cacheprovider"]
        for n in range(1, args.pair_runs + 1):
            for kind in ("A", "B", "A-gen"):
                with tempfile.TemporaryDirectory() as reports:
                    if kind == "B":
                        with timed_mock(python, checkout) as (credentials, mock_cpu):
                            command = [
                                python, "-m", "schemathesis.cli", "run", str(spec),
                                "--url", credentials["RAFF_BASE_URL"],
                                "-H", f"X-API-Key: {credentials['RAFF_API_KEY']}",
                                "-H", f"X-Project-ID: {credentials['RAFF_PROJECT_ID']}",
                                *PAIR_B_ARGS, "--no-color",
                            ]  # fmt: skip
                            run = run_timed(command, cwd=Path(reports), env=clean_env())
                        row = PairRow(kind, run, mock_cpu[0] if mock_cpu else 0.0)
                    else:
                        marker = ["-m", "fuzz"] if kind == "A-gen" else []
                        row = PairRow(
                            kind, run_timed([*suite, *marker, f"--report-dir={reports}"], cwd=checkout, env=clean_env())
                        )
                rows.append(row)
                mock = f" (schemathesis {row.run.cpu_s:5.1f} + mock {row.mock_cpu_s:4.1f})" if kind == "B" else ""
                print(
                    f"run {n} {kind:<5}  wall {row.run.wall_s:6.1f} s  cpu {row.cpu_s:6.1f} s{mock}"
                    f"  exit {row.run.exit_code}  {row.requests}",
                    flush=True,
                )
    medians = {
        kind: (
            _median([r.run.wall_s for r in rows if r.kind == kind]),
            _median([r.cpu_s for r in rows if r.kind == kind]),
        )
        for kind in ("A", "A-gen", "B")
    }
    for kind, (wall, cpu) in medians.items():
        print(f"median {kind:<5}  wall {wall:6.1f} s  cpu {cpu:6.1f} s")
    b_wall, b_cpu = medians["B"]
    for kind, goal in (("A", 2.0), ("A-gen", 1.2)):
        wall, cpu = medians[kind]
        label = f"{kind}/B"
        print(f"ratio {label:<7} wall {wall / b_wall:5.2f}x  cpu {cpu / b_cpu:5.2f}x  (issue 21's goal: <= {goal:g}x)")
    # The same work of B took 6.4-9.4 s over one session's turns: a slow spell of the machine moves A, A-gen and
    # B of the same turn together, so the ratio within each turn is the steadier figure.
    turns = [{r.kind: r for r in rows[i : i + 3]} for i in range(0, len(rows), 3)]
    for kind in ("A", "A-gen"):
        walls = [turn[kind].run.wall_s / turn["B"].run.wall_s for turn in turns]
        cpus = [turn[kind].cpu_s / turn["B"].cpu_s for turn in turns]
        print(
            f"per turn {kind + '/B':<7} wall {' '.join(f'{x:.2f}' for x in walls)}  (median {_median(walls):.2f}x);"
            f" cpu median {_median(cpus):.2f}x"
        )
    with open("/proc/loadavg", encoding="ascii") as load:
        print(f"load average at end: {' '.join(load.read().split()[:3])}")


# -- report ----------------------------------------------------------------------------------------


@dataclass
class DefectRow:
    name: str
    requirement: str
    suite_fails: bool
    suite_names_requirement: bool
    fuzz_catches: bool
    cli_catches: dict[str, bool]
    suite_s: float
    cli_s: float
    note: str


def sweep_one(
    defect: str, spec: Path, *, seed: int, cli_examples: int, flavours: list[CliFlavour], cli_clean: dict[str, CliRun]
) -> DefectRow:
    requirement = DEFECTS[defect].requirement
    suite = run_suite(profile="smoke", seed=seed, defect=defect)
    cli = schemathesis_against_mock(spec, defect=defect, max_examples=cli_examples, seed=seed, flavours=flavours)
    return DefectRow(
        name=defect,
        requirement=requirement,
        suite_fails=suite.exit_code == 1 and bool(suite.violations()),
        suite_names_requirement=suite.verdict(requirement) == "violation",
        fuzz_catches=bool(suite.violations(FUZZ_MODULES)),
        cli_catches={name: bool(run.failures - cli_clean[name].failures) for name, run in cli.items()},
        suite_s=suite.wall_s,
        cli_s=sum(run.wall_s for run in cli.values()),
        note=suite.note,
    )


# -- superset: what plain Schemathesis reports, the suite reports too ----------------------------

SUPERSET_EXAMPLES = 30  # as the measurement ran plain schemathesis: --max-examples 30


def failure_codes() -> dict[str, set[str]]:
    """Schemathesis' failure codes (ST103, ...) and the checks that raise each, from its own classes."""
    import schemathesis.specs.openapi.checks  # noqa: F401  (defines the OpenAPI failure classes)
    from schemathesis.checks import load_all_checks
    from schemathesis.core.failures import Failure

    load_all_checks()
    codes: dict[str, set[str]] = {}
    pending = list(Failure.__subclasses__())
    while pending:
        cls = pending.pop()
        pending += cls.__subclasses__()
        code = getattr(cls, "code", None)
        if isinstance(code, str):
            codes.setdefault(code, set()).update(getattr(cls, "checks", ()) or ())
    return codes


def operation_ids(spec: dict[str, Any]) -> dict[str, str]:
    """'METHOD /path' (Schemathesis' operation label) -> operationId."""
    return {
        f"{method.upper()} {path}": operation["operationId"]
        for path, item in spec.get("paths", {}).items()
        for method, operation in item.items()
        if isinstance(operation, dict) and "operationId" in operation
    }


STATEFUL_LABEL = "Stateful tests"  # how the JSON report names every stateful failure's operation
ANY_OPERATION = "(stateful: any operation)"


def cli_pair(label: str, code: str, labels: dict[str, str]) -> tuple[str, str]:
    """A plain-Schemathesis failure as (operation, code). An undeclared method (ST204, ST205) is no
    operation: it counts as the path's, "path /api/v1/backups", which the suite reports it under too.
    The JSON report names no operation for a stateful failure: only its code can be compared."""
    if label in labels:
        return labels[label], code
    if label == STATEFUL_LABEL:
        return ANY_OPERATION, code
    return f"path {label.split(' ', 1)[-1]}", code


def unmatched(pairs: set[tuple[str, str]], kinds: set[tuple[str, str]]) -> set[tuple[str, str]]:
    """The pairs the suite did not report; a stateful pair matches the same code on any operation."""
    codes = {code for _, code in kinds}
    return {(op, code) for op, code in pairs if (op, code) not in kinds and not (op == ANY_OPERATION and code in codes)}


def suite_kinds(suite: SuiteRun, codes: dict[str, set[str]], paths: dict[str, str]) -> set[tuple[str, str]]:
    """(operationId, failure code) of every finding of the suite, whatever its verdict.

    A finding from a Schemathesis failure carries its code ("[ST103] ..."); one of the suite's own
    checks counts for every code that a Schemathesis check of the same name raises.
    """
    kinds = set()
    for finding in suite.results.get("findings", []):
        operation = finding.get("operation")
        if not operation:
            continue
        message = finding.get("message") or ""
        if message.startswith("[ST") and "]" in message:
            kinds.add((operation, message[1 : message.index("]")]))
        kinds |= {(operation, code) for code, checks in codes.items() if finding.get("check") in checks}
    # The same kinds under the operation's path, where undeclared methods are counted.
    return kinds | {(f"path {paths[operation]}", code) for operation, code in kinds if operation in paths}


@dataclass
class SupersetRow:
    defect: str
    cli_pairs: set[tuple[str, str]]
    missed: set[tuple[str, str]]
    note: str


def superset_one(defect: str | None, spec: Path, *, seed: int, labels: dict[str, str]) -> SupersetRow:
    codes = failure_codes()
    suite = run_suite(profile=None, seed=seed, defect=defect)
    cli = schemathesis_against_mock(
        spec, defect=defect, max_examples=SUPERSET_EXAMPLES, seed=seed, flavours=[CONFIGURED]
    )[CONFIGURED.name]
    pairs = {cli_pair(label, code, labels) for code, label in cli.failures}
    paths = {operation: label.split(" ", 1)[1] for label, operation in labels.items()}
    return SupersetRow(defect or "(clean mock)", pairs, unmatched(pairs, suite_kinds(suite, codes, paths)), suite.note)


def print_superset(rows: list[SupersetRow]) -> None:
    print(f"{'mock':<38} {'plain st pairs':>14} {'missed by suite':>16}")
    for row in rows:
        print(f"{row.defect:<38} {len(row.cli_pairs):>14} {len(row.missed):>16}{row.note}")
        for operation, code in sorted(row.missed):
            print(f"    missed: {operation} {code}")
    failing = [row.defect for row in rows if row.missed]
    print(
        f"superset: {len(rows) - len(failing)}/{len(rows)} mocks where every (operation, failure code) of plain "
        f"schemathesis run is reported by the suite" + (f"; not: {', '.join(failing)}" if failing else "")
    )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--workers", type=int, default=2, help="defect rows run in parallel (default: %(default)s)")
    parser.add_argument("--seed", type=int, default=20260514, help="seed of every run (default: %(default)s)")
    parser.add_argument("--skip-sweep", action="store_true", help="timings only")
    parser.add_argument("--superset-only", action="store_true", help="only the superset check")
    parser.add_argument("--defects", nargs="*", help="superset check: only these defects (and the clean mock)")
    parser.add_argument(
        "--phase-table", action="store_true", help="only which phase of plain schemathesis finds each defect"
    )
    parser.add_argument(
        "--catch-rate", type=int, metavar="N", help="only: of N seeds, how many catch each of --defects"
    )
    parser.add_argument(
        "--pair",
        action="store_true",
        help="only: the default run (and its generated part) vs plain schemathesis run, wall and CPU",
    )
    parser.add_argument(
        "--pair-runs", type=int, default=3, metavar="N", help="--pair: runs of each (default: %(default)s)"
    )
    parser.add_argument("--checkout", default=str(ROOT), help="--pair: the checkout to measure (default: this one)")
    parser.add_argument("--python", help="--pair: its interpreter (default: CHECKOUT/.venv/bin/python, else this one)")
    args = parser.parse_args()
    began = time.monotonic()
    if args.pair:
        pair(args)
        print(f"total benchmark time: {time.monotonic() - began:.0f} s")
        return 0
    flavours = [PLAIN, *([CONFIGURED] if MOCK_CONFIG.exists() else [])]

    if args.catch_rate:
        catch_rate(args)
        print(f"total benchmark time: {time.monotonic() - began:.0f} s")
        return 0
    with tempfile.TemporaryDirectory() as tmp:
        spec = Path(tmp) / "merged.yaml"
        merged = load_contract().merged
        spec.write_text(yaml.safe_dump(merged, sort_keys=False), encoding="utf-8")
        if args.phase_table:
            phase_table(spec, merged, args)
            print(f"total benchmark time: {time.monotonic() - began:.0f} s")
            return 0
        if args.superset_only:
            superset(spec, merged, args)
            print(f"total benchmark time: {time.monotonic() - began:.0f} s")
            return 0

        full_examples = examples_per_operation("thorough")
        print(f"== Wall time against the clean bundled mock (2 cores; seed {args.seed}) ==")
        fuzz = run_suite(*FUZZ_MODULES, profile="thorough", seed=args.seed)
        whole = run_suite(profile="thorough", seed=args.seed)
        cli = schemathesis_against_mock(
            spec, defect=None, max_examples=full_examples, seed=args.seed, flavours=flavours
        )
        print(
            f"suite, generated tests only (fuzz + lifecycle, thorough): {fuzz.wall_s:6.1f} s  exit {fuzz.exit_code}"
            f"  {fuzz.cases} cases, {fuzz.requests} requests{fuzz.note}"
        )
        print(
            f"suite, whole (thorough):                                 {whole.wall_s:6.1f} s  exit {whole.exit_code}"
            f"  {len(whole.results.get('tests', []))} tests, {whole.requests} requests{whole.note}"
        )
        for name, run in cli.items():
            print(
                f"schemathesis run, {name:<11} (--max-examples {full_examples}, {PHASES}):"
                f" {run.wall_s:6.1f} s  exit {run.exit_code}  {run.cases} cases"
                f"  {len(run.failures)} failures on the clean mock"
            )
        plain = cli[PLAIN.name]
        print(
            f"ratio suite-generated / schemathesis-plain: {fuzz.wall_s / plain.wall_s:5.2f}x;"
            f" whole suite / schemathesis-plain: {whole.wall_s / plain.wall_s:5.2f}x"
        )

        if args.skip_sweep:
            print(f"total benchmark time: {time.monotonic() - began:.0f} s")
            return 0

        small = examples_per_operation("smoke")
        print()
        print(
            f"== Planted defects caught ({len(DEFECTS)} defects; small budget: suite --raff-profile smoke,"
            f" schemathesis --max-examples {small}; seed {args.seed}; {args.workers} in parallel) =="
        )
        clean = schemathesis_against_mock(spec, defect=None, max_examples=small, seed=args.seed, flavours=flavours)
        with ThreadPoolExecutor(max_workers=args.workers) as pool:
            rows = list(
                pool.map(
                    lambda d: sweep_one(
                        d, spec, seed=args.seed, cli_examples=small, flavours=flavours, cli_clean=clean
                    ),
                    sorted(DEFECTS),
                )
            )
        print_sweep(rows, flavours)
        print()
        superset(spec, merged, args)
    print(f"total benchmark time: {time.monotonic() - began:.0f} s")
    return 0


def superset(spec: Path, merged: dict[str, Any], args: argparse.Namespace) -> None:
    print(
        f"== Superset check (plain schemathesis run with the mock's config, all checks, phases {PHASES},"
        f" --max-examples {SUPERSET_EXAMPLES}; the suite as plain pytest runs it; seed {args.seed}) =="
    )
    labels = operation_ids(merged)
    with ThreadPoolExecutor(max_workers=args.workers) as pool:
        rows = list(
            pool.map(
                lambda d: superset_one(d, spec, seed=args.seed, labels=labels),
                [None, *sorted(args.defects or DEFECTS)],
            )
        )
    print_superset(rows)


def print_sweep(rows: list[DefectRow], flavours: list[CliFlavour]) -> None:
    mark = {True: "yes", False: "-"}
    header = f"{'defect':<38} {'req':<6} {'suite':<6} {'names req':<10} {'suite fuzz':<11}"
    header += "".join(f" {'st ' + f.name:<15}" for f in flavours)
    print(header)
    for row in rows:
        line = (
            f"{row.name:<38} {row.requirement:<6} {mark[row.suite_fails]:<6}"
            f" {mark[row.suite_names_requirement]:<10} {mark[row.fuzz_catches]:<11}"
        )
        line += "".join(f" {mark[row.cli_catches[f.name]]:<15}" for f in flavours)
        print(line + row.note)
    total = len(rows)
    print(
        f"caught: suite {sum(r.suite_fails for r in rows)}/{total}"
        f" (names the defect's requirement {sum(r.suite_names_requirement for r in rows)}/{total});"
        f" suite generated tests alone {sum(r.fuzz_catches for r in rows)}/{total};"
        + ";".join(f" schemathesis {f.name} {sum(r.cli_catches[f.name] for r in rows)}/{total}" for f in flavours)
    )
    print(
        f"mean wall time per defect row: suite (whole, smoke) {sum(r.suite_s for r in rows) / total:.1f} s,"
        f" schemathesis ({len(flavours)} runs) {sum(r.cli_s for r in rows) / total:.1f} s"
    )


if __name__ == "__main__":
    raise SystemExit(main())
