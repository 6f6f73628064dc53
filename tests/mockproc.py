"""Self-tests' access to the mock as a separate process (it must outlive a pytest run)."""

from conformance.mock.process import ROOT, mock_process

__all__ = ["ROOT", "mock_process"]
