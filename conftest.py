"""Loads the suite's pytest entry point for a checkout that is used without being installed.

Installed (``pip install -e .``), the same module is a pytest11 entry point already and this
line finds it registered; either way the plugin and its fixtures join only runs of this suite.
"""

pytest_plugins = ["conformance.entry_point"]
