"""raff-conformance: contract and conformance tests for the Raff VM backups API."""

__version__ = "0.1.0"
