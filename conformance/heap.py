"""Keep the objects that live through a run out of the garbage collector's way.

A run builds about 100 000 long-lived objects before its first test (the plugins' modules,
the contract, the Schemathesis schema, the mock), and Hypothesis makes short-lived ones by the
million. Each full collection walks them all again, and so does the interpreter's final one at
exit: measured on the default run, about 0.3 s of collections during the tests and 0.3 s at
exit (``benchmarks/profile-latest.txt``, third round). ``gc.freeze()`` moves the objects that
exist into a generation the collector never visits; garbage made later is collected as before.

Only in a process that pytest's own command started: a program that calls ``pytest.main()``
keeps running afterwards, and what is frozen would stay in its memory for good.
"""

from __future__ import annotations

import gc

import pytest

from conformance.entry_point import started_from_command_line


@pytest.hookimpl(trylast=True)
def pytest_collection_finish(session: pytest.Session) -> None:
    # trylast: after the suite's own collection_finish has loaded the contract and started the mock.
    if started_from_command_line(session.config):
        gc.freeze()


@pytest.hookimpl(trylast=True)
def pytest_unconfigure(config: pytest.Config) -> None:
    # The interpreter's last collection at exit would walk everything the run made.
    if started_from_command_line(config):
        gc.freeze()
