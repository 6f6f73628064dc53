"""Loads the conformance pytest plugin and its fixtures for every run from the repository root."""

pytest_plugins = ["conformance.plugin", "conformance.fixtures"]
