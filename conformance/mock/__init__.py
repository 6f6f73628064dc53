"""The bundled mock of the Raff VM-backups API, with planted defects and fault modes."""

from conformance.mock.app import create_app
from conformance.mock.defects import DEFECTS, Defect
from conformance.mock.faults import FAULTS
from conformance.mock.server import MockServer

__all__ = ["DEFECTS", "FAULTS", "Defect", "MockServer", "create_app"]
