"""The pytest11 entry point: the suite's options in every pytest run, the suite only in its own.

An installed package's entry point loads before pytest reads any ``conftest.py``, so the
options parse however pytest is called: from the checkout, from another directory, or with a
path that lies outside the checkout (``--baseline /elsewhere/accepted.yaml``). Anything more
than options waits for ``pytest_configure`` and happens only in a run of this suite (see
``in_suite``): other projects that share the virtualenv see a group of options and nothing else.

The root ``conftest.py`` loads this module too, for a checkout used without installing it.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest

from conformance.mock.clock import TIME_MODES
from conformance.settings import OPTIONS

PACKAGE = Path(__file__).resolve().parent
# Set in the environment of a pytest this module started again with its arguments rewritten.
REEXEC_MARK = "RAFF_CONFORMANCE_REEXEC"
# What an in-process pytest (one that cannot be started again) should have written instead.
MISPARSED = pytest.StashKey[str]()


def pytest_addoption(parser: pytest.Parser, pluginmanager: pytest.PytestPluginManager) -> None:
    add_options(parser)
    parser.addini("raff_conformance", type="bool", default=False, help="this project runs the raff-conformance suite")
    config = pluginmanager.get_plugin("pytestconfig")
    if config is not None:
        _reparse_if_values_moved_rootdir(config, parser)


def pytest_configure(config: pytest.Config) -> None:
    if MISPARSED in config.stash:
        raise pytest.UsageError(
            f"raff-conformance: an option's path was taken for a test path; write it as {config.stash[MISPARSED]}"
        )
    if not in_suite(config):
        return
    for name in ("conformance.plugin", "conformance.fixtures", "conformance.heap"):
        if config.pluginmanager.get_plugin(name) is None:
            config.pluginmanager.import_plugin(name)  # pytest_configure is historic: theirs runs now


def in_suite(config: pytest.Config) -> bool:
    """A run of this suite: its ini says so, or it was pointed at the suite's own tests."""
    if config.getini("raff_conformance"):
        return True
    for arg in config.args:
        path = arg.split("::", 1)[0]
        if path.startswith("conformance.tests") or PACKAGE in (Path(path).resolve(), *Path(path).resolve().parents):
            return True
    return False


def add_options(parser: pytest.Parser) -> None:
    """The suite's command-line options (settings, mock choices, selection, comparison)."""
    group = parser.getgroup("raff", "raff-conformance")
    for name, option in OPTIONS.items():
        if option.kind == "bool":
            group.addoption(
                option.flag,
                action="store_const",
                const=True,
                default=None,
                dest=f"raff_{name}",
                help=f"{option.help} (env {option.env})",
            )
        else:
            group.addoption(option.flag, default=None, dest=f"raff_{name}", help=f"{option.help} (env {option.env})")
    group.addoption(
        "--mock-defect",
        action="append",
        default=[],
        metavar="NAME",
        help="start the bundled mock with this planted defect (repeatable; self-tests)",
    )
    group.addoption(
        "--mock-fault",
        action="append",
        default=[],
        metavar="NAME",
        help="start the bundled mock with this fault mode (repeatable; self-tests)",
    )
    group.addoption(
        "--mock-real-stack",
        action="store_true",
        default=False,
        help="start the bundled mock with real stacks' habits (router 404s, header spellings; self-tests)",
    )
    group.addoption(
        "--mock-time",
        choices=TIME_MODES,
        default="requests",
        help="the bundled mock's time: 'requests' (the default: a backup is ready three requests after its "
        "create, so nothing waits on the clock) or 'wall' seconds (--backup-delay of a mock started by hand)",
    )
    group.addoption(
        "--req",
        action="append",
        default=[],
        metavar="ID",
        help="run only the tests of this requirement (repeatable, e.g. --req RC-06)",
    )
    group.addoption(
        "--compare",
        default=None,
        metavar="RESULTS_JSON",
        help="compare this run with an earlier results.json (new / fixed / unchanged findings)",
    )
    group.addoption(
        "--baseline",
        default=None,
        metavar="FILE",
        help="accepted findings (reason, ticket, expiry): shown as known, not failing until expiry",
    )


def _reparse_if_values_moved_rootdir(config: pytest.Config, parser: pytest.Parser) -> None:
    """Start pytest again when an option's path value was taken for a test path.

    pytest finds its rootdir and ini file before it knows plugins' options, so in
    ``--baseline /elsewhere/accepted.yaml`` the path counts as a test path, the rootdir moves to
    /elsewhere and this project's ini (testpaths, markers) is never read. Written as
    ``--baseline=/elsewhere/accepted.yaml`` it is one token and harmless. Where that changes
    the rootdir or ini, the same command starts again in that spelling, once; a pytest called
    in-process (not from the command line) cannot be restarted and is told how to spell it.
    """
    try:
        from _pytest.config.findpaths import determine_setup
    except ImportError:  # a pytest without it: nothing to compare with, leave the run alone
        return
    args = list(config.invocation_params.args)
    joined = _join_values(args, _value_flags(parser))
    if joined == args:
        return
    namespace = parser.parse_known_args(joined)
    rootpath, inipath, *_ = determine_setup(
        inifile=namespace.inifilename,
        override_ini=namespace.override_ini,
        args=namespace.file_or_dir,
        rootdir_cmd_arg=namespace.rootdir or None,
        invocation_dir=config.invocation_params.dir,
    )
    if (rootpath, inipath) == (config.rootpath, config.inipath):
        return
    if os.environ.get(REEXEC_MARK) or not started_from_command_line(config):
        config.stash[MISPARSED] = " ".join(a for a in joined if a not in args)
        return
    sys.stdout.flush()
    sys.stderr.flush()
    env = {**os.environ, REEXEC_MARK: "1"}
    os.execve(sys.executable, [sys.executable, "-m", "pytest", *joined], env)


def started_from_command_line(config: pytest.Config) -> bool:
    """This process is the run: ``pytest`` / ``python -m pytest`` with these arguments, not ``pytest.main()``
    inside a program that goes on afterwards (which can be neither started again nor have its heap frozen)."""
    return list(sys.argv[1:]) == list(config.invocation_params.args)


def _value_flags(parser: pytest.Parser) -> set[str]:
    """This suite's long options that take a value."""
    group = parser.getgroup("raff")
    return {
        name
        for option in group.options
        if option.attrs().get("nargs") != 0  # store_true / store_const flags take no value
        for name in option.names()
        if name.startswith("--")
    }


def _join_values(args: list[str], flags: set[str]) -> list[str]:
    """``--flag value`` as ``--flag=value`` for the given flags (up to a lone ``--``)."""
    joined: list[str] = []
    index = 0
    while index < len(args):
        arg = args[index]
        if arg == "--":
            joined += args[index:]
            break
        if arg in flags and index + 1 < len(args):
            joined.append(f"{arg}={args[index + 1]}")
            index += 2
            continue
        joined.append(arg)
        index += 1
    return joined
