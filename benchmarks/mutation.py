"""Mutation testing of the bundled mock: how many defects nobody planted does the default run catch?

Mutants come from Cosmic Ray's operators (``pip install cosmic-ray``; measured with 8.7.0) applied to
``conformance/mock/world.py`` and ``conformance/mock/app.py``. Each mutant is tested with the suite's
default run against the embedded mock on request time, in a copy of the checkout (never the
checkout itself), one mutant at a time, under ``nice -n 10``::

    python -m pytest -q -x -p no:cacheprovider --mock-time=requests --report-dir <tmp> \\
        --hypothesis-seed=20260514            # pinned so that 'before' and 'after' draw the same cases

First the cheaper ``-m "not fuzz"`` selection of the same command; only a mutant that survives it
gets the full command. A mutant is **killed** when the run exits non-zero (1 violation, 6
inconclusive, 4 preflight refused, 2/3 pytest errors, e.g. a mock that no longer imports: each exit
code is counted), **timeout** when a run outlives its limit (reported apart from the killed), and
**survived** when both runs exit 0. The clean copy must exit 0 first, or nothing is measured.

The sample is fixed and stored, so 'before' and 'after' test the same mutants. It is drawn (seeded)
line by line: N distinct source lines, uniformly among all lines of the two files that Cosmic Ray can
mutate, then one of that line's mutants at random. Each mutant is stored as file, line, operator,
the enclosing definition and the diff (removed and added line); on a newer checkout it is found again
by operator and diff, nearest to its old line, so it survives code moving; a mutant whose line no
longer exists is listed as "gone", and one that is no valid Python (Cosmic Ray makes a few) as
"incompetent"; neither is counted.

Run it with a Python that has cosmic-ray (e.g. ``python3 -m venv /work/mutation/venv &&
/work/mutation/venv/bin/pip install cosmic-ray``); the tests run with ``--python`` (a venv with the
checkout's ``.[test]`` installed; the copy is put first on PYTHONPATH and checked to be the one
imported)::

    # draw a sample (once) and measure a checkout
    python benchmarks/mutation.py --checkout /work/mutation/before --python /work/mutation/venv-before/bin/python \\
        --make-sample --size 80 --seed 20260514 --sample benchmarks/mutation-sample.txt \\
        --out benchmarks/mutation-before.txt

    # later: the same sample on a newer checkout, keeping the readings of mutants that still survive
    python benchmarks/mutation.py --checkout . --python .venv/bin/python \\
        --sample benchmarks/mutation-sample.txt --out benchmarks/mutation-after.txt \\
        --readings-from benchmarks/mutation-before.txt

Other options: ``--only M03,M17`` (some mutants), ``--resume`` (keep results already in the work
directory), ``--no-subset`` (always the full command), ``--hypothesis-seed none`` (unpinned),
``--workdir DIR``. Every mutant is also marked "executed" or "not executed" by the clean run (a line
tracer over the two files during the clean full run) and whether its line is a planted-defect or
fault switch (``self.defects`` / ``self.faults``), so survivors are easy to read. The report lists
every survivor with its diff and a ``reading:`` line to fill in (equivalent, or blind spot: which
documented fact it breaks and which kind of property would catch it); ``--readings-from`` carries
readings over from an earlier report for mutants with the same id and diff.
"""

from __future__ import annotations

import argparse
import difflib
import json
import os
import random
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

FILES = ("conformance/mock/world.py", "conformance/mock/app.py")
HYPOTHESIS_SEED = "20260514"
IGNORED = shutil.ignore_patterns(".git", ".venv", ".tox", ".tools", "reports", "__pycache__", "node_modules", "*.pyc")

TRACER = r'''
"""pytest plugin: records which lines of the mutated files run (set from import, threads too)."""
import json, os, sys, threading
_TARGETS = set(json.loads(os.environ["MUTATION_TRACE_FILES"]))
_HIT = {}
def _local(frame, event, arg):
    if event == "line":
        _HIT.setdefault(frame.f_code.co_filename, set()).add(frame.f_lineno)
    return _local
def _global(frame, event, arg):
    if frame.f_code.co_filename in _TARGETS:
        _HIT.setdefault(frame.f_code.co_filename, set()).add(frame.f_lineno)
        return _local
    return None
sys.settrace(_global)
threading.settrace(_global)
def pytest_unconfigure(config):
    with open(os.environ["MUTATION_TRACE_OUT"], "w") as out:
        json.dump({k: sorted(v) for k, v in _HIT.items()}, out)
'''


# ---- mutants ------------------------------------------------------------------------------------


@dataclass
class Mutant:
    id: str
    file: str
    line: int
    operator: str
    occurrence: int
    definition: str | None
    removed: list[str]
    added: list[str]


@dataclass
class Result:
    id: str
    outcome: str  # killed | survived | timeout | gone | incompetent
    stage: str = ""  # subset | full | clean-fails
    exit_code: int | None = None
    seconds: float = 0.0
    verdict: str = ""
    line: int | None = None  # where it was applied in this checkout
    executed: bool | None = None
    switch: bool = False
    extra: dict = field(default_factory=dict)


def _cosmic_ray():
    try:
        import cosmic_ray.plugins as plugins
        from cosmic_ray.ast import ast_nodes, get_ast
        from cosmic_ray.mutating import mutate_code
    except ImportError:
        sys.exit("cosmic-ray is not importable: run this script with a Python that has `pip install cosmic-ray`")
    return plugins, ast_nodes, get_ast, mutate_code


def _operators():
    plugins, *_ = _cosmic_ray()
    return {
        name: plugins.get_operator(name)
        for name in plugins.operator_names()
        if not plugins.get_operator(name).arguments()
    }


def positions(source: str) -> list[tuple[str, int, int, str | None]]:
    """Every (operator, occurrence, line, definition) Cosmic Ray can mutate in ``source``."""
    _, ast_nodes, get_ast, _ = _cosmic_ray()
    from cosmic_ray.ast.ast_query import ASTQuery

    tree = get_ast(source)
    nodes = list(ast_nodes(tree))
    found = []
    for name, operator_class in sorted(_operators().items()):
        operator = operator_class()
        occurrence = 0
        for node in nodes:
            for start, _end in operator.mutation_positions(node):
                found.append((name, occurrence, start[0], ASTQuery(node).get_definition_name()))
                occurrence += 1
    return found


def mutate(source: str, operator: str, occurrence: int) -> str | None:
    *_, mutate_code = _cosmic_ray()
    return mutate_code(source, _operators()[operator](), occurrence)


def diff_lines(original: str, mutated: str) -> tuple[list[str], list[str]]:
    removed, added = [], []
    for line in difflib.unified_diff(original.split("\n"), mutated.split("\n"), lineterm="", n=0):
        if line.startswith(("---", "+++", "@@")):
            continue
        (removed if line.startswith("-") else added).append(line[1:].strip())
    return removed, added


def make_sample(checkout: Path, size: int, seed: int) -> list[Mutant]:
    rng = random.Random(seed)
    by_line: dict[tuple[str, int], list[tuple[str, int, str | None]]] = {}
    sources = {}
    for rel in FILES:
        sources[rel] = (checkout / rel).read_text(encoding="utf-8")
        for operator, occurrence, line, definition in positions(sources[rel]):
            by_line.setdefault((rel, line), []).append((operator, occurrence, definition))
    chosen = sorted(rng.sample(sorted(by_line), min(size, len(by_line))), key=lambda k: (FILES.index(k[0]), k[1]))
    sample = []
    for rel, line in chosen:
        candidates = by_line[(rel, line)]
        rng.shuffle(candidates)
        for operator, occurrence, definition in candidates:  # the first that changes the code
            mutated = mutate(sources[rel], operator, occurrence)
            if mutated is None or mutated == sources[rel]:
                continue
            removed, added = diff_lines(sources[rel], mutated)
            sample.append(Mutant("", rel, line, operator, occurrence, definition, removed, added))
            break
    for number, mutant in enumerate(sample, 1):
        mutant.id = f"M{number:02d}"
    return sample


def locate(mutant: Mutant, source: str, cache: dict) -> tuple[str, int] | None:
    """The mutant in this source: (mutated source, line), matched by operator and diff, nearest line."""
    key = (mutant.file, mutant.operator)
    if key not in cache:
        cache[key] = [(o, line) for name, o, line, _ in positions(source) if name == mutant.operator]
    lines = source.split("\n")
    first_removed = mutant.removed[0] if mutant.removed else None
    options = []
    for occurrence, line in cache[key]:
        if (
            first_removed is not None
            and lines[line - 1].strip() != first_removed
            and first_removed not in [text.strip() for text in lines[max(0, line - 3) : line + 2]]
        ):
            continue
        options.append((abs(line - mutant.line), occurrence, line))
    for _distance, occurrence, line in sorted(options):
        mutated = mutate(source, mutant.operator, occurrence)
        if mutated is not None and diff_lines(source, mutated) == (mutant.removed, mutant.added):
            return mutated, line
    return None


def read_sample(path: Path) -> tuple[dict, list[Mutant]]:
    header, mutants = {}, []
    for raw in path.read_text(encoding="utf-8").splitlines():
        if not raw.strip() or raw.startswith("#"):
            continue
        data = json.loads(raw)
        if "sample" in data:
            header = data["sample"]
        else:
            mutants.append(Mutant(**data))
    return header, mutants


def write_sample(path: Path, header: dict, mutants: list[Mutant]) -> None:
    lines = [
        "# Mutation sample for benchmarks/mutation.py (JSON lines: a header, then one mutant a line).",
        "# Regenerate only on purpose: 'before' and 'after' must test the same mutants.",
        json.dumps({"sample": header}),
        *(json.dumps(asdict(m), ensure_ascii=False) for m in mutants),
    ]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")


# ---- running ------------------------------------------------------------------------------------


def pytest_command(python: str, report_dir: Path, subset: bool, hypothesis_seed: str | None) -> list[str]:
    command = ["nice", "-n", "10", python, "-m", "pytest", "-q", "-x", "-p", "no:cacheprovider", "--mock-time=requests"]
    command += ["--report-dir", str(report_dir)]
    if hypothesis_seed:
        command.append(f"--hypothesis-seed={hypothesis_seed}")
    if subset:
        command += ["-m", "not fuzz"]
    return command


def run(command: list[str], cwd: Path, env: dict, timeout: float) -> tuple[int | None, float, str]:
    """(exit code or None on timeout, seconds, the output's last lines)."""
    started = time.monotonic()
    with tempfile.TemporaryFile("w+") as out:
        process = subprocess.Popen(
            command, cwd=cwd, env=env, stdout=out, stderr=subprocess.STDOUT, start_new_session=True
        )
        try:
            code: int | None = process.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()
            code = None
        out.seek(0)
        tail = out.read()[-4000:]
    return code, time.monotonic() - started, tail


def verdict_line(tail: str) -> str:
    for line in reversed(tail.splitlines()):
        if line.startswith("verdict:") or "Error" in line or line.startswith("FAILED") or line.startswith("E "):
            return line.strip()[:160]
    return (tail.strip().splitlines() or [""])[-1][:160]


def compiles(source: str) -> bool:
    try:
        compile(source, "<mutant>", "exec")
    except SyntaxError:
        return False
    return True


def is_switch(text: str) -> bool:
    return "self.defects" in text or "self.faults" in text or "in self.defects" in text


# ---- report -------------------------------------------------------------------------------------


def parse_readings(path: Path) -> dict[str, tuple[str, str]]:
    """id -> (diff signature, reading) from an earlier report's survivor blocks."""
    readings: dict[str, tuple[str, str]] = {}
    current, diff = None, []
    for line in path.read_text(encoding="utf-8").splitlines():
        head = re.match(r"^(M\d+) ", line)
        if head:
            current, diff = head.group(1), []
        elif current and line.startswith(("    - ", "    + ")):
            diff.append(line.strip())
        elif current and line.startswith("    reading: "):
            text = line[len("    reading: ") :].strip()
            if not text.startswith("(to judge"):
                readings[current] = ("\n".join(diff), text.removesuffix(" [from an earlier report]"))
            current = None
    return readings


def report(args, header: dict, mutants: list[Mutant], results: dict[str, Result], meta: dict) -> str:
    from importlib.metadata import version

    counted = [
        results[m.id] for m in mutants if m.id in results and results[m.id].outcome not in ("gone", "incompetent")
    ]
    incompetent = [m.id for m in mutants if m.id in results and results[m.id].outcome == "incompetent"]
    killed = [r for r in counted if r.outcome == "killed"]
    survived = [r for r in counted if r.outcome == "survived"]
    timeouts = [r for r in counted if r.outcome == "timeout"]
    gone = [m.id for m in mutants if m.id in results and results[m.id].outcome == "gone"]
    readings = parse_readings(Path(args.readings_from)) if args.readings_from else {}

    def rate(part, whole):
        return f"{len(part)}/{len(whole)} = {100 * len(part) / len(whole):.1f} %" if whole else "n/a"

    by_code: dict[str, int] = {}
    for r in killed:
        by_code[str(r.exit_code)] = by_code.get(str(r.exit_code), 0) + 1
    plain = [r for r in counted if not r.switch]
    executed = [r for r in counted if r.executed]
    out = [
        "Mutation testing of the bundled mock (benchmarks/mutation.py)",
        "",
        f"tool: cosmic-ray {version('cosmic-ray')} (operators without arguments: {len(_operators())}),"
        " run by benchmarks/mutation.py",
        f"checkout: {meta['checkout']}  ({meta.get('revision', 'no git revision')})",
        f"python: {meta['python']}",
        f"files mutated: {', '.join(FILES)}",
        f"sample: {args.sample} ({len(mutants)} mutants; drawn with seed {header.get('seed')} from "
        f"{header.get('lines')} mutable lines / {header.get('mutants')} mutants"
        f" of {header.get('checkout_revision', '?')}: "
        "one random mutant on each of N distinct lines)",
        "test command, per mutant, in a copy of the checkout, nice -n 10, one job at a time:",
        "  subset: " + " ".join(meta["subset_command"]),
        "  full:   " + " ".join(meta["full_command"]) + "   (only if the subset survived)",
        f"clean copy: subset exit {meta['clean_subset'][0]} in {meta['clean_subset'][1]:.1f} s, "
        f"full exit {meta['clean_full'][0]} in {meta['clean_full'][1]:.1f} s (line tracer on)",
        f"timeouts: subset {meta['timeouts'][0]:.0f} s, full {meta['timeouts'][1]:.0f} s",
        "killed = a run exits non-zero (1 violation, 6 inconclusive, 4 refused at preflight, 2/3 pytest error);"
        " timeout = a run outlived its limit (counted apart); survived = both runs exit 0.",
        f"wall time of the mutant runs: {meta.get('wall', 0) / 60:.1f} min",
        "",
        f"killed:   {len(killed)}   (by exit code: {', '.join(f'{k}: {v}' for k, v in sorted(by_code.items())) or '-'};"
        f" by the subset: {sum(r.stage == 'subset' for r in killed)},"
        f" by the full run: {sum(r.stage == 'full' for r in killed)})",
        f"survived: {len(survived)}",
        f"timeout:  {len(timeouts)}",
        f"gone:     {len(gone)}  (line no longer in this checkout; not counted) {' '.join(gone)}",
        f"incompetent: {len(incompetent)}  (the mutant is no valid Python, so no test ran; not counted)"
        f" {' '.join(incompetent)}",
        f"kill rate (killed / counted): {rate(killed, counted)};"
        f"  with timeouts as killed: {rate(killed + timeouts, counted)}",
        "kill rate on lines the clean run executes (timeouts as killed):"
        f" {rate([r for r in executed if r.outcome != 'survived'], executed)}",
        "kill rate leaving out planted-defect/fault switch lines (timeouts as killed):"
        f" {rate([r for r in plain if r.outcome != 'survived'], plain)}",
        "",
        "All mutants (id, file:line, operator, outcome, stage, exit code, seconds,"
        " whether the clean run executed the line"
        " (the line, not necessarily the mutated expression), planted-defect/fault switch line):",
    ]
    for m in mutants:
        r = results.get(m.id)
        if r is None:
            out.append(f"  {m.id} {m.file}:{m.line} {m.operator}  (not run)")
            continue
        where = f"{m.file}:{r.line or m.line}"
        flags = ("executed" if r.executed else "not-executed" if r.executed is False else "") + (
            " switch" if r.switch else ""
        )
        out.append(
            f"  {m.id} {where:<32} {m.operator.removeprefix('core/'):<38} {r.outcome:<8} {r.stage:<6}"
            f" {'-' if r.exit_code is None else r.exit_code:>3} {r.seconds:6.1f}s {flags}"
        )
    out += ["", "Surviving mutants (the diff, then the reading):", ""]
    for m in mutants:
        r = results.get(m.id)
        if r is None or r.outcome != "survived":
            continue
        flags = ("executed" if r.executed else "NOT executed by the clean run") + (
            ", planted-defect switch" if r.switch else ""
        )
        out.append(f"{m.id} {m.file}:{r.line or m.line}  {m.operator}  in {m.definition or '<module>'}  ({flags})")
        out += [f"    - {text}" for text in m.removed] + [f"    + {text}" for text in m.added]
        signature = "\n".join([f"- {t}" for t in m.removed] + [f"+ {t}" for t in m.added])
        earlier = readings.get(m.id)
        if earlier and earlier[0] == signature:
            out.append(
                f"    reading: {earlier[1]}" + ("" if args.readings_from == args.out else " [from an earlier report]")
            )
        else:
            out.append("    reading: (to judge)")
        out.append("")
    if timeouts:
        out += ["Timeouts:", *(f"  {r.id}: {r.verdict}" for r in timeouts), ""]
    return "\n".join(out) + "\n"


# ---- main ---------------------------------------------------------------------------------------


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--checkout",
        default=str(Path(__file__).resolve().parents[1]),
        help="the tree to measure (copied, never changed)",
    )
    parser.add_argument(
        "--python", help="Python with the checkout's .[test] installed (default: CHECKOUT/.venv/bin/python)"
    )
    parser.add_argument("--sample", default="benchmarks/mutation-sample.txt")
    parser.add_argument("--make-sample", action="store_true", help="draw a new sample from the checkout into --sample")
    parser.add_argument("--size", type=int, default=80)
    parser.add_argument("--seed", type=int, default=20260514)
    parser.add_argument("--out", required=True)
    parser.add_argument("--workdir", help="scratch directory (default: a new temporary one)")
    parser.add_argument("--resume", action="store_true", help="keep results already recorded in --workdir")
    parser.add_argument("--only", help="comma-separated mutant ids")
    parser.add_argument("--no-subset", action="store_true", help="skip the -m 'not fuzz' pre-run")
    parser.add_argument("--hypothesis-seed", default=HYPOTHESIS_SEED, help="'none' leaves Hypothesis unpinned")
    parser.add_argument("--readings-from", help="an earlier report whose survivor readings are carried over")
    parser.add_argument("--revision", help="what the checkout is, when it is no git work tree (e.g. a git archive)")
    args = parser.parse_args()

    checkout = Path(args.checkout).resolve()
    python = args.python or str(checkout / ".venv" / "bin" / "python")
    hypothesis_seed = None if args.hypothesis_seed == "none" else args.hypothesis_seed
    sample_path = Path(args.sample)
    revision = subprocess.run(
        ["git", "-C", str(checkout), "rev-parse", "--short", "HEAD"], capture_output=True, text=True
    )
    rev = args.revision or (revision.stdout.strip() if revision.returncode == 0 else None)

    if args.make_sample:
        mutants = make_sample(checkout, args.size, args.seed)
        every = {rel: positions((checkout / rel).read_text(encoding="utf-8")) for rel in FILES}
        header = {
            "seed": args.seed,
            "size": len(mutants),
            "mutants": sum(len(v) for v in every.values()),
            "lines": sum(len({p[2] for p in v}) for v in every.values()),
            "checkout_revision": rev or str(checkout),
        }
        write_sample(sample_path, header, mutants)
        print(f"sample of {len(mutants)} mutants written to {sample_path}", flush=True)
    header, mutants = read_sample(sample_path)
    if args.only:
        wanted = set(args.only.split(","))
        mutants = [m for m in mutants if m.id in wanted]

    work = Path(args.workdir) if args.workdir else Path(tempfile.mkdtemp(prefix="raff-mutation-"))
    work.mkdir(parents=True, exist_ok=True)
    tree = work / "tree"
    if tree.exists() and not args.resume:
        shutil.rmtree(tree)
    if not tree.exists():
        shutil.copytree(checkout, tree, ignore=IGNORED, symlinks=True)
    (work / "plugin").mkdir(exist_ok=True)
    (work / "plugin" / "_mutation_trace.py").write_text(TRACER, encoding="utf-8")
    originals = {rel: (tree / rel).read_text(encoding="utf-8") for rel in FILES}
    for rel in FILES:  # a crash in an earlier run could have left a mutant in place
        (tree / rel).write_text((checkout / rel).read_text(encoding="utf-8"), encoding="utf-8")
        originals[rel] = (tree / rel).read_text(encoding="utf-8")

    env = {k: v for k, v in os.environ.items() if not k.startswith("RAFF_")}
    env.update(PYTHONPATH=str(tree), PYTHONDONTWRITEBYTECODE="1")
    probe = subprocess.run(
        [python, "-c", "import conformance; print(conformance.__file__)"],
        cwd=tree,
        env=env,
        capture_output=True,
        text=True,
    )
    if not probe.stdout.strip().startswith(str(tree)):
        sys.exit(
            f"{python} imports conformance from {probe.stdout.strip() or probe.stderr.strip()},"
            f" not from the copy {tree}"
        )

    report_dir = work / "report"
    subset_cmd = pytest_command(python, report_dir, True, hypothesis_seed)
    full_cmd = pytest_command(python, report_dir, False, hypothesis_seed)
    shown = lambda cmd: [("python" if part == python else "<tmp>" if part == str(report_dir) else part) for part in cmd]  # noqa: E731

    meta_path = work / "meta.json"
    if args.resume and meta_path.exists():
        meta = json.loads(meta_path.read_text())
        meta["revision"] = rev or meta.get("revision")
    else:
        print("clean copy: subset ...", flush=True)
        clean_subset = run(subset_cmd, tree, env, 600)
        print(f"  exit {clean_subset[0]} in {clean_subset[1]:.1f}s", flush=True)
        trace_env = dict(
            env,
            PYTHONPATH=f"{tree}{os.pathsep}{work / 'plugin'}",
            MUTATION_TRACE_FILES=json.dumps([str(tree / rel) for rel in FILES]),
            MUTATION_TRACE_OUT=str(work / "executed.json"),
        )
        print("clean copy: full run with the line tracer ...", flush=True)
        clean_full = run([*full_cmd[:6], "-p", "_mutation_trace", *full_cmd[6:]], tree, trace_env, 1200)
        print(f"  exit {clean_full[0]} in {clean_full[1]:.1f}s", flush=True)
        if clean_subset[0] != 0 or clean_full[0] != 0:
            sys.exit(
                f"the clean copy does not pass (exit {clean_subset[0]}, {clean_full[0]}):"
                f" nothing to measure\n{clean_full[2]}"
            )
        meta = {
            "checkout": str(checkout),
            "revision": rev,
            "python": python,
            "subset_command": shown(subset_cmd),
            "full_command": shown(full_cmd),
            "clean_subset": clean_subset[:2],
            "clean_full": clean_full[:2],
            "timeouts": [max(60.0, 6 * clean_subset[1]), max(150.0, 4 * clean_full[1])],
        }
        meta_path.write_text(json.dumps(meta))
    traced = json.loads((work / "executed.json").read_text()) if (work / "executed.json").exists() else {}
    executed = {rel: set(traced.get(str(tree / rel), [])) for rel in FILES}

    results_path = work / "results.jsonl"
    results: dict[str, Result] = {}
    if args.resume and results_path.exists():
        for raw in results_path.read_text().splitlines():
            data = json.loads(raw)
            results[data["id"]] = Result(**data)
    cache: dict = {}
    started = time.monotonic()
    for mutant in mutants:
        if mutant.id in results:
            continue
        source = originals[mutant.file]
        found = locate(mutant, source, cache)
        if found is None:
            result = Result(mutant.id, "gone")
        elif not compiles(found[0]):
            result = Result(mutant.id, "incompetent", line=found[1], verdict="the mutated file is no valid Python")
        else:
            mutated, line = found
            text = source.split("\n")[line - 1]
            result = Result(
                mutant.id, "survived", line=line, executed=line in executed[mutant.file], switch=is_switch(text)
            )
            (tree / mutant.file).write_text(mutated, encoding="utf-8")
            try:
                stages = [] if args.no_subset else [("subset", subset_cmd, meta["timeouts"][0])]
                stages.append(("full", full_cmd, meta["timeouts"][1]))
                for stage, command, limit in stages:
                    code, seconds, tail = run(command, tree, env, limit)
                    result.seconds += seconds
                    result.stage, result.exit_code, result.verdict = stage, code, verdict_line(tail)
                    if code is None:
                        result.outcome = "timeout"
                        break
                    if code != 0:
                        result.outcome = "killed"
                        break
            finally:
                (tree / mutant.file).write_text(source, encoding="utf-8")
        results[mutant.id] = result
        with results_path.open("a") as handle:
            handle.write(json.dumps(asdict(result)) + "\n")
        print(
            f"{mutant.id} {mutant.file}:{result.line or mutant.line} {mutant.operator}: {result.outcome}"
            f" ({result.stage}, exit {result.exit_code}, {result.seconds:.1f}s) {result.verdict}",
            flush=True,
        )
    meta["wall"] = meta.get("wall", 0) + time.monotonic() - started
    meta_path.write_text(json.dumps(meta))
    Path(args.out).write_text(report(args, header, mutants, results, meta), encoding="utf-8")
    print(f"report written to {args.out} (work directory {work})", flush=True)


if __name__ == "__main__":
    main()
