"""The variant matrix: every operation of the contract, every kind of input a client may send.

``derive`` reads the operations from the loaded contract (their path id slot, X-Project-ID
header, request body, query parameters, method) and, for each, lists the kinds of input the RFCs
and the contract say a client may send, with what a conforming server must do with each:

- spelling:   what the RFCs call the same request (UUID case, header-name case, media-type
              parameters, query order, percent-encoding) - the same answer, for a write the same effect;
- ids:        an id of another kind or scope, unknown or malformed, in every id slot - the
              documented 404 or 400, nothing changed;
- headers:    X-Project-ID, X-API-Key, Content-Type absent, malformed or repeated;
- bodies:     none, ``{}``, unknown members, wrong types, not JSON, another media type, oversized;
- repetition: the same write twice in a row and twice at once;
- listing:    the query edges (limit, offset, vm_id), with and without X-Project-ID.

Each cell is data: an operation, a kind, a variant and a ``Recipe`` (how the request differs
from the plain one and what it names). ``MatrixRunner`` sends the cells after the recorded
scenario, on what the run already has (the VM, its settled backups, made-up ids), so that no
cell costs a backup unless the budget allows it; a cell it cannot send says why. It judges
nothing: every exchange goes through the client to the judge (``specs/properties.yaml``), which
is the one place that judges. The runner only records which exchanges each cell sent.
"""

from __future__ import annotations

import json
import threading
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field, replace
from typing import Any
from urllib.parse import quote, urlsplit

import httpx

from conformance.client import RaffClient
from conformance.contract import Contract
from conformance.exchange import Exchange
from conformance.factory import BackupFactory
from conformance.scenario import ScenarioRecord
from conformance.settings import WRONG_KEY, Settings

KINDS: dict[str, str] = {
    "spelling": "spellings the RFCs call equal",
    "ids": "ids of another kind or scope, unknown, malformed",
    "headers": "X-Project-ID, X-API-Key, Content-Type absent, malformed, repeated",
    "bodies": "none, {}, unknown members, wrong types, not JSON, another media type, oversized",
    "repetition": "the same write twice in a row and twice at once",
    "listing": "query edges (limit, offset, vm_id) with and without X-Project-ID",
}
# The operation this suite exists for first, then the contract's order.
FIRST = "resetBackupChain"
# A body well past any request this API takes, yet under the 1 MiB most front ends accept, so the
# application itself answers it: the name is far over its maxLength (400), never a 413 from a proxy.
OVERSIZED_BYTES = 200 * 1024
NOT_A_UUID = "not-a-uuid"
DELETES = ("deleteBackup", "deleteBackupChain")
# Create cells the scenario's own creates already are (scenario.ScenarioRunner.spellings): on a
# target whose budget the scenario spends, the cell is tried by that create, not by a new one.
FOLDED = {
    ("createBackup", "media type with charset=utf-8"): "A3",
    ("createBackup", "media type Application/JSON"): "A4",
    ("createBackup", "header names in lower case"): "A6",
}

SOURCES = {
    "uuid-case": "RFC 9562 §4 (hex digits case-insensitive on input)",
    "percent": "RFC 3986 §2.3, §6.2.2.2 (a percent-encoded unreserved character is that character)",
    "header-case": "RFC 9110 §5.1 (field names are case-insensitive)",
    "media-type": "RFC 9110 §8.3.1 (media type case-insensitive, parameters allowed)",
    "query-order": "contract: query parameters are named, not positional",
    "repeated": "RFC 9110 §5.3 (a field line repeated: a recipient may combine, or refuse)",
    "contract": "raff-backups.openapi.yaml (documented statuses, parameters, request body)",
    "docs-scope": "docs: projects and scoping (X-Project-ID scopes every write)",
}


@dataclass(frozen=True)
class Recipe:
    """How a cell's request differs from the plain one; every field's default is the plain request."""

    subject: str = "own"  # what the path id (or body vm_id) names: own, vm, backup, unknown, malformed, ...
    id_spelling: str = ""  # "upper" or "percent": the same id in another spelling
    project: str = "own"  # own, absent, malformed, upper, unknown, other, repeated
    key: str = "own"  # own, absent, wrong, other_account, repeated
    header_names: str = ""  # "lower": header names in lower case
    body: str = "plain"  # plain, none, empty_object, unknown_member, wrong_types, wrong_type_name, not_json, ...
    content_type: str = ""  # a Content-Type other than the plain one ("Application/JSON", with charset, absent)
    query: tuple[tuple[str, str], ...] | None = None  # listBackups' query, in the order sent
    times: int = 1
    at_once: bool = False
    before: str = ""  # "plain": the same request in its plain spelling right before; "found": a getBackup
    # "plain": the same request in its plain spelling right after. A spelled write that was refused changed
    # nothing, so the plain one after it meets the same state: taken there, the refusal was the spelling's.
    after: str = ""


@dataclass(frozen=True)
class Cell:
    operation: str
    kind: str
    variant: str
    expect: str  # what a conforming server must do, in plain words
    source: str
    recipe: Recipe
    costs: str  # read, reset, restore, refused (a write a conforming server refuses), delete, create


@dataclass
class Outcome:
    cell: Cell
    tried: bool = False
    reason: str = ""  # why not tried
    exchanges: list[Exchange] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        return {
            "operation": self.cell.operation,
            "kind": self.cell.kind,
            "variant": self.cell.variant,
            "expect": self.cell.expect,
            "tried": self.tried,
            "reason": self.reason,
            "requests": [_short(e) for e in self.exchanges],
        }


# -- the matrix, from the contract ------------------------------------------------------------------


def derive(contract: Contract) -> list[Cell]:
    """Every cell of the matrix, reset-chain's first, from the operations the contract declares."""
    operations = sorted(contract.operations(), key=lambda op: op.operation_id != FIRST)
    cells: list[Cell] = []
    for op in operations:
        cells.extend(_cells(contract, op.operation_id, op.method.upper(), op.path, op.definition))
    return cells


def _cells(contract: Contract, op: str, method: str, path: str, definition: dict[str, Any]) -> Iterator[Cell]:
    params = [contract.resolve(p) for p in definition.get("parameters", [])]
    project = next((p for p in params if p["in"] == "header" and p["name"].lower() == "x-project-id"), None)
    query = [p["name"] for p in params if p["in"] == "query"]
    slot = _slot(path)
    body = definition.get("requestBody")
    write = method not in ("GET", "HEAD")
    statuses = sorted(contract.documented_statuses(op))
    documented = f"a documented status ({', '.join(statuses)}), never a 5xx"
    refused = "404" if slot else "400 or 404"
    cost = {"resetBackupChain": "reset", "restoreBackup": "restore", "createBackup": "create"}.get(
        op, "delete" if method == "DELETE" else "read"
    )

    def cell(kind: str, variant: str, expect: str, source: str, recipe: Recipe, costs: str = "") -> Cell:
        return Cell(op, kind, variant, expect, source, recipe, costs or (cost if cost != "delete" else "refused"))

    same = "the same effect as the plain spelling (not refused where it was taken)" if write else (
        "the same answer as the plain spelling sent right before it"
    )
    # -- spelling
    # Before a spelled write: the plain read that finds its subject (a delete or restore must not be
    # repeated in its plain spelling first), or the plain request itself (reads, resets).
    before = "found" if slot == "backup" and write else "plain"
    after = "plain" if slot == "vm" and write else ""  # a reset: cheap to send again (RC-10)
    if slot:
        yield cell("spelling", "path id in upper case", same, SOURCES["uuid-case"],
                   Recipe(id_spelling="upper", before=before, after=after), cost)
        # RFC 3986 §2.3 calls it the same URI but tells producers not to make one, and common routers
        # match the raw path: a documented answer is asked, not the same one (the judge compares none).
        yield cell("spelling", "path id percent-encoded", f"{documented} (RFC 3986 §2.3: no equality judged)",
                   SOURCES["percent"], Recipe(id_spelling="percent", before=before), cost)
    if project is not None and body is None:
        yield cell("spelling", "X-Project-ID in upper case", same, SOURCES["uuid-case"],
                   Recipe(project="upper", before=before, after=after), cost)
    if body is None:
        yield cell("spelling", "header names in lower case", same, SOURCES["header-case"],
                   Recipe(header_names="lower", before=before, after=after), cost)
    if body is not None:
        yield cell("spelling", "media type Application/JSON", same, SOURCES["media-type"],
                   Recipe(content_type="Application/JSON"), "create")
        yield cell("spelling", "media type with charset=utf-8", same, SOURCES["media-type"],
                   Recipe(content_type="application/json; charset=utf-8"), "create")
        yield cell("spelling", "vm_id in upper case", same, SOURCES["uuid-case"], Recipe(id_spelling="upper"), "create")
        yield cell("spelling", "X-Project-ID in upper case", same, SOURCES["uuid-case"], Recipe(project="upper"),
                   "create")
        yield cell("spelling", "header names in lower case", same, SOURCES["header-case"],
                   Recipe(header_names="lower"), "create")
    if "vm_id" in query:
        yield cell("spelling", "vm_id in upper case", same, SOURCES["uuid-case"],
                   Recipe(id_spelling="upper", query=(("vm_id", "{vm}"), ("limit", "1000")), before="plain"))
        yield cell("spelling", "query in another order", same, SOURCES["query-order"],
                   Recipe(query=(("limit", "1000"), ("vm_id", "{vm}")), before="plain"))
        yield cell("spelling", "query value percent-encoded", same, SOURCES["percent"],
                   Recipe(id_spelling="percent", query=(("vm_id", "{vm}"), ("limit", "1000")), before="plain"))
    # -- ids of another kind or scope, in every id slot
    slots = [slot] if slot else (["vm"] if body is not None or "vm_id" in query else [])
    for kind_of_slot in slots:
        other = "backup" if kind_of_slot == "vm" else "vm"
        if "vm_id" in query:
            expect = "200 listing nothing of it (the filter holds), or 400"
        else:
            expect = f"{refused}, nothing changed"
        listing = (("vm_id", "{vm}"), ("limit", "1000")) if "vm_id" in query else None
        yield cell("ids", f"a {other}'s id in the {kind_of_slot} slot", expect, SOURCES["contract"],
                   Recipe(subject=other, query=listing))
        yield cell("ids", "an unknown UUID", expect, SOURCES["contract"], Recipe(subject="unknown", query=listing))
        yield cell("ids", "not a UUID", "400 or 404, nothing changed", SOURCES["contract"],
                   Recipe(subject="malformed", query=listing))
        if kind_of_slot == "vm":
            scoped = "getVM names no project: any documented answer" if project is None else expect
            yield cell("ids", "a VM of another project", scoped, SOURCES["docs-scope"],
                       Recipe(subject="other_project_vm", query=listing))
            yield cell("ids", "a VM of another account", expect, SOURCES["contract"],
                       Recipe(subject="other_account_vm", query=listing))
    if slot:
        yield cell("ids", "another account's key on the run's own", "401 or 404, nothing changed", SOURCES["contract"],
                   Recipe(key="other_account"))
    if project is not None and (slot or body is not None):
        yield cell("ids", "X-Project-ID of another project of the account", "404 (400), nothing changed",
                   SOURCES["docs-scope"], Recipe(project="other"))
    # -- headers
    if project is not None:
        absent = "400, nothing changed" if project.get("required") else "200 over every project of the key"
        yield cell("headers", "X-Project-ID absent", absent, SOURCES["contract"], Recipe(project="absent"))
        yield cell("headers", "X-Project-ID not a UUID", "400, nothing changed", SOURCES["contract"],
                   Recipe(project="malformed"))
        yield cell("headers", "X-Project-ID of no project", "400 or 404, nothing changed", SOURCES["contract"],
                   Recipe(project="unknown"))
        yield cell("headers", "X-Project-ID repeated", documented, SOURCES["repeated"], Recipe(project="repeated"))
    yield cell("headers", "X-API-Key absent", "401, nothing changed", SOURCES["contract"], Recipe(key="absent"))
    yield cell("headers", "X-API-Key wrong", "401, nothing changed", SOURCES["contract"], Recipe(key="wrong"))
    yield cell("headers", "X-API-Key repeated", documented, SOURCES["repeated"], Recipe(key="repeated"))
    if body is not None:
        yield cell("headers", "Content-Type absent", documented, SOURCES["media-type"], Recipe(content_type="-"))
    # -- bodies
    if write:
        takes = "a body the operation does not take: " if body is None else ""
        refusal = f"{takes}{documented}; nothing changed beyond what that answer means"
        variants = [
            ("none", "no body"), ("empty_object", "{}"), ("unknown_member", "an unknown member"),
            ("wrong_types", "members of the wrong type"), ("not_json", "not JSON"),
            ("other_media", "another media type (text/plain)"), ("oversized", "oversized (200 KiB)"),
        ]
        if body is not None:
            variants.insert(4, ("wrong_type_name", "name of the wrong type (vm_id valid)"))
        for name, variant in variants:
            costs = "create" if body is not None and name == "unknown_member" else ""
            expect = refusal if body is None or name != "unknown_member" else f"{documented} (taken or refused)"
            yield cell("bodies", variant, expect, SOURCES["contract"], Recipe(body=name), costs)
    # -- repetition and concurrency
    if write:
        again = {
            "resetBackupChain": "202 both times (RC-10: a second reset is harmless)",
            "restoreBackup": "202, then 202 or 409 (in progress); never a 5xx",
            "createBackup": "202 both times: two backups",
        }.get(op, "200, then 404: the state a serial order gives")
        yield cell("repetition", "twice in a row", again, SOURCES["contract"], Recipe(times=2), cost)
        yield cell("repetition", "twice at once", again + " (in either order)", SOURCES["contract"],
                   Recipe(times=2, at_once=True), cost)
    # -- listings
    if query:
        edges: list[tuple[str, tuple[tuple[str, str], ...], str]] = [
            ("limit 0", (("vm_id", "{vm}"), ("limit", "0")), "200 with no backup, or 400"),
            ("limit 1", (("vm_id", "{vm}"), ("limit", "1")), "200 with at most one backup"),
            ("limit -1", (("vm_id", "{vm}"), ("limit", "-1")), "400, or 200 with a documented page"),
            ("limit not an integer", (("vm_id", "{vm}"), ("limit", "ten")), "400"),
            ("limit huge", (("vm_id", "{vm}"), ("limit", "1000000")), "200 with every backup, or 400"),
            ("offset past the end", (("vm_id", "{vm}"), ("offset", "100000")), "200 with no backup, total kept"),
            ("offset -1", (("vm_id", "{vm}"), ("offset", "-1")), "400, or 200 with a documented page"),
            ("offset not an integer", (("vm_id", "{vm}"), ("offset", "x")), "400"),
            ("vm_id empty", (("vm_id", ""),), "400, or 200 as if unfiltered"),
            ("no filter", (("limit", "1000"),), "200: every backup of the scope"),
        ]
        for variant, pairs, expect in edges:
            yield cell("listing", variant, expect, SOURCES["contract"], Recipe(query=pairs))
            yield cell("listing", f"{variant}, no X-Project-ID", expect, SOURCES["contract"],
                       Recipe(query=pairs, project="absent"))


def _slot(path: str) -> str:
    """What a path's id names, read from the segment before it: /vms/{id} a VM, /backups/{id} a backup."""
    segments = path.strip("/").split("/")
    if "{id}" not in segments:
        return ""
    return "vm" if segments[segments.index("{id}") - 1] == "vms" else "backup"


# -- sending it ---------------------------------------------------------------------------------------


@dataclass
class Subjects:
    """What the cells may name: the run's own resources and made-up ids; None where there is none."""

    vm: str
    backup: str | None  # a settled backup of the run (reads; its series deleted last)
    restorable: str | None  # the backup the restore cells restore: on the second VM where there is one
    leaves: list[str]  # backups of the run that may be deleted one by one (newest first)
    other_project: str | None
    other_project_vm: str | None
    other_account_vm: str | None
    other_account_key: str | None


class MatrixRunner:
    """Sends the matrix's cells where they cost nothing, in an order that keeps each cell's subject
    in place: reads, resets, restores, refused writes, creates the budget allows, then deletes of
    the run's own backups. It asserts nothing; the judge sees every exchange."""

    def __init__(
        self, settings: Settings, client: RaffClient, factory: BackupFactory, record: ScenarioRecord, cells: list[Cell]
    ) -> None:
        self.settings = settings
        self.client = client
        self.factory = factory
        self.record = record
        self.cells = cells
        self.subjects = self._subjects()
        self.gone: dict[str, str] = {}  # backup id -> the cell that deleted it
        self.restored = False  # a restore was accepted: wait for the backup before the next phase
        # Variants a request of which got no answer in time: each further one would wait out
        # RAFF_REQUEST_TIMEOUT again (a server that never answers a body it cannot parse, say).
        self.silent: dict[tuple[str, str], str] = {}

    def _subjects(self) -> Subjects:
        ids, settings = self.record.ids, self.settings
        scope = self.record.steps.get("scope_other_project_vm")
        data = scope.response_body.get("data") if scope is not None and isinstance(scope.response_body, dict) else None
        other = data.get("project_id") if isinstance(data, dict) else None
        if not isinstance(other, str) or other.lower() == (settings.project_id or "").lower():
            other = None
        return Subjects(
            vm=self.record.vm_id,
            backup=ids.get("A6"),
            # B1 where there is one: its restores can run while a backup of VM A is in flight (run_beside).
            restorable=ids.get("B1") or ids.get("A6"),
            leaves=[ids[label] for label in ("B2", "B1") if label in ids],
            other_project=other,
            other_project_vm=settings.other_project_vm_id,
            other_account_vm=settings.other_account_vm_id,
            other_account_key=settings.other_account_api_key,
        )

    def run_early(self) -> list[Outcome]:
        """The creates a conforming server refuses, sent before the recorded scenario spends the budget.

        On a live target the scenario may spend every backup RAFF_MAX_BACKUPS allows; after it, a create
        that a broken server wrongly takes would be one backup too many, so those cells could not be
        tried at all. Before it they cost nothing on a conforming server; one wrongly taken counts in
        the budget (the scenario then lacks a backup and says so), and the next is not sent once the
        budget has no room. They name the VM only: its series starts at the scenario's first reset."""
        early = [Outcome(cell) for cell in self.cells if _refused_create(cell)]
        for outcome in early:
            self._send(outcome.cell, outcome)
        return early

    def run(self, early: list[Outcome] | None = None) -> list[Outcome]:
        """Every cell; ``early`` holds what ``run_early`` and ``run_beside`` already tried (kept, not
        sent again)."""
        return self._run(PHASES, early)

    def run_beside(self) -> list[Outcome]:
        """The cells that may go while the scenario's last backup (A7) is in flight, so that its wait is
        spent on them: those whose answer nothing of VM A can change (``_beside``). The rest goes after
        the scenario (``run``)."""
        return [o for o in self._run(("read", "restore", "refused"), None, beside=True) if o.tried]

    def _beside(self, cell: Cell) -> bool:
        """Whether a cell may go while a backup of VM A is in flight. When that backup settles the server
        may act on the VM (a broken one prunes closed series, say), so a cell that compares answers about
        VM A's backups across that moment could blame a spelling for it. Only these go: the restores of
        the second VM's backup (B1; its "found" read and the wait for it too) and cells that name no
        resource of the run (an unknown, malformed or other project's or account's id). Never a create
        (a wrongly taken one would join A7's series) nor a reset (it would close A7's series)."""
        if cell.operation in ("createBackup", "resetBackupChain"):
            return False
        if cell.recipe.subject in ("unknown", "malformed", "other_project_vm", "other_account_vm"):
            return True
        on_second_vm = self.subjects.restorable is not None and self.subjects.restorable != self.subjects.backup
        return cell.operation == "restoreBackup" and cell.recipe.subject == "own" and on_second_vm

    def _run(self, phases: tuple[str, ...], early: list[Outcome] | None, *, beside: bool = False) -> list[Outcome]:
        outcomes = {id(cell): Outcome(cell) for cell in self.cells}
        done = {(o.cell.operation, o.cell.kind, o.cell.variant): o for o in early or [] if o.tried}
        for cell in self.cells:
            if (cell.operation, cell.kind, cell.variant) in done:
                outcomes[id(cell)] = replace(done[(cell.operation, cell.kind, cell.variant)], cell=cell)
        for phase in phases:
            for cell in self.cells:
                if beside and not self._beside(cell):
                    continue
                if _phase(cell) == phase and not outcomes[id(cell)].tried:
                    self._send(cell, outcomes[id(cell)])
            if phase == "restore" and self.restored and self.subjects.restorable is not None:
                # One wait for all the restores (in flight together, the later ones may answer 409):
                # the cells after it need the backup settled again.
                self.restored = False
                self.factory.wait_ready(self.subjects.restorable)
        return [outcomes[id(cell)] for cell in self.cells]

    # -- one cell

    def _send(self, cell: Cell, outcome: Outcome) -> None:
        why = self._why_not(cell)
        if why and (cell.operation, cell.variant) in FOLDED:
            self._folded(cell, outcome, why)
            return
        silent = self.silent.get((cell.kind, cell.variant))
        if not why and silent:
            why = f"not sent: {silent}; another would wait as long"
        if why:
            outcome.reason = why
            return
        subject = self._subject(cell)
        if subject is None:
            outcome.reason = self._missing(cell)
            return
        recipe = cell.recipe
        try:
            if recipe.before:
                plain = replace(recipe, id_spelling="", project="own", header_names="", before="")
                if recipe.before == "found":
                    outcome.exchanges.append(self._exchange("getBackup", "GET", "/api/v1/backups/{id}", plain, subject))
                else:
                    outcome.exchanges.append(self._request(cell, plain, subject))
            if recipe.at_once:
                outcome.exchanges.extend(self._at_once(cell, recipe, subject))
            else:
                for _ in range(recipe.times):
                    outcome.exchanges.append(self._request(cell, recipe, subject))
            if recipe.after == "plain":
                plain = replace(recipe, id_spelling="", project="own", header_names="", before="", after="")
                outcome.exchanges.append(self._request(cell, plain, subject))
        except httpx.HTTPError as error:
            outcome.reason = f"no answer ({type(error).__name__}: {error})"
            if isinstance(error, httpx.TimeoutException):
                quiet = f"{cell.operation}'s cell of this variant got no answer in time"
                self.silent[(cell.kind, cell.variant)] = quiet
            return
        outcome.tried = True
        self._after(cell, outcome, subject)

    def _after(self, cell: Cell, outcome: Outcome, subject: str) -> None:
        """Learn what a write did to the run's own backups; read a deleted one back (P-FOUND judges it)."""
        deleted = any(e.method == "DELETE" and e.status == 200 for e in outcome.exchanges)
        if cell.operation == "createBackup":
            for exchange in outcome.exchanges:
                backup_id = _data_id(exchange)
                if backup_id and exchange.status is not None and 200 <= exchange.status < 300:
                    self.factory.ledger.record(backup_id)
        if cell.operation in ("deleteBackup", "deleteBackupChain") and deleted and _is_uuid(subject):
            self.gone[subject.lower()] = f"{cell.operation} {cell.variant}"
            self.factory.ledger.forget(subject)
            if cell.operation == "deleteBackupChain":
                for leaf in self.subjects.leaves:  # a wrongly wide chain delete: read them, the judge decides
                    self.gone.setdefault(leaf.lower(), f"{cell.operation} {cell.variant} (its series)")
            plain = Recipe()
            outcome.exchanges.append(self._exchange("getBackup", "GET", "/api/v1/backups/{id}", plain, subject))
        if cell.operation == "restoreBackup" and any(e.status == 202 for e in outcome.exchanges):
            self.restored = True

    def _folded(self, cell: Cell, outcome: Outcome, why: str) -> None:
        """A create cell the budget cannot pay for, tried by one of the scenario's own creates."""
        label = FOLDED[(cell.operation, cell.variant)]
        created = self.record.steps.get(f"create_{label}")
        if created is None:
            outcome.reason = f"{why}; the scenario's create {label}, which it is folded into, was not sent"
            return
        outcome.tried = True
        outcome.reason = f"folded into the scenario's create {label}"
        outcome.exchanges.append(created)

    def _at_once(self, cell: Cell, recipe: Recipe, subject: str) -> list[Exchange]:
        barrier = threading.Barrier(recipe.times)
        answers: list[Exchange | BaseException] = []
        lock = threading.Lock()

        def one() -> None:
            barrier.wait(timeout=30)
            try:
                result: Exchange | BaseException = self._request(cell, recipe, subject)
            except httpx.HTTPError as error:
                result = error
            with lock:
                answers.append(result)

        threads = [threading.Thread(target=one, name=f"matrix-{cell.operation}") for _ in range(recipe.times)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        for answer in answers:
            if isinstance(answer, BaseException):
                raise answer
        return [a for a in answers if isinstance(a, Exchange)]

    def _request(self, cell: Cell, recipe: Recipe, subject: str) -> Exchange:
        op = self.client_operation(cell.operation)
        return self._exchange(cell.operation, op[0], op[1], recipe, subject)

    @staticmethod
    def client_operation(operation_id: str) -> tuple[str, str]:
        return {
            "listBackups": ("GET", "/api/v1/backups"),
            "createBackup": ("POST", "/api/v1/backups"),
            "getBackup": ("GET", "/api/v1/backups/{id}"),
            "deleteBackup": ("DELETE", "/api/v1/backups/{id}"),
            "restoreBackup": ("POST", "/api/v1/backups/{id}/restore"),
            "deleteBackupChain": ("DELETE", "/api/v1/backups/{id}/chain"),
            "getVM": ("GET", "/api/v1/vms/{id}"),
            "resetBackupChain": ("POST", "/api/v1/vms/{id}/backups/reset-chain"),
        }[operation_id]

    def _exchange(self, operation_id: str, method: str, template: str, recipe: Recipe, subject: str) -> Exchange:
        """Send one request written as the recipe says; the client hands it to the judge."""
        spelled = _spell(subject, recipe.id_spelling)
        path = template.replace("{id}", spelled)
        headers = self._headers(recipe, method, operation_id)
        kwargs: dict[str, Any] = {}
        if recipe.query is not None:
            kwargs["params"] = [(k, v.replace("{vm}", spelled)) for k, v in recipe.query]
        if method == "POST" or recipe.body != "plain":
            content, content_type = self._body(operation_id, recipe, spelled)
            if content is not None:
                kwargs["content"] = content
            if content_type:
                headers.append(("content-type" if recipe.header_names == "lower" else "Content-Type", content_type))
        response = self.client.request(operation_id, method, path, api_key=None, project_id=None, headers=headers,
                                       **kwargs)
        return Exchange.from_httpx(response, operation_id)

    def _headers(self, recipe: Recipe, method: str, operation_id: str) -> list[tuple[str, str]]:
        settings, subjects = self.settings, self.subjects
        own_key, own_project = settings.api_key or "", settings.project_id or ""
        lower = recipe.header_names == "lower"
        key_name, project_name = ("x-api-key", "x-project-id") if lower else ("X-API-Key", "X-Project-ID")
        pairs: list[tuple[str, str]] = []
        key = {"own": own_key, "absent": None, "wrong": WRONG_KEY, "other_account": subjects.other_account_key,
               "repeated": own_key}[recipe.key]
        if key is not None:
            pairs.append((key_name, key))
            if recipe.key == "repeated":
                pairs.append((key_name, key))
        if operation_id == "getVM" and recipe.project == "own":
            return pairs  # getVM takes no X-Project-ID (the client's show_vm sends none either)
        project = {
            "own": own_project, "absent": None, "malformed": NOT_A_UUID, "upper": own_project.upper(),
            "unknown": str(uuid.uuid4()), "other": subjects.other_project, "repeated": own_project,
        }[recipe.project]
        if project is not None:
            pairs.append((project_name, project))
            if recipe.project == "repeated":
                pairs.append((project_name, project))
        return pairs

    def _body(self, operation_id: str, recipe: Recipe, vm: str) -> tuple[bytes | None, str]:
        json_type = recipe.content_type if recipe.content_type not in ("", "-") else "application/json"
        if recipe.content_type == "-":
            json_type = ""
        name = f"{self.settings.run_prefix}-{uuid.uuid4().hex[:8]}"
        plain = {"vm_id": vm, "name": name} if operation_id == "createBackup" else None

        encoded = {
            "plain": (json.dumps(plain).encode() if plain is not None else None, json_type if plain else ""),
            "none": (None, ""),
            "empty_object": (b"{}", "application/json"),
            "unknown_member": (json.dumps({**(plain or {}), "x_raff_unknown": True}).encode(), "application/json"),
            # One member of the wrong type at a time: a server that checks one member and not the other
            # must meet each alone (the other member valid), or the checked one hides the unchecked.
            "wrong_types": (json.dumps({"vm_id": 12345, "name": name}).encode(), "application/json"),
            "wrong_type_name": (json.dumps({"vm_id": vm, "name": 12345}).encode(), "application/json"),
            "not_json": (b"{not json", "application/json"),
            "other_media": (json.dumps(plain or {}).encode(), "text/plain"),
            "oversized": (json.dumps({**(plain or {}), "name": "x" * OVERSIZED_BYTES}).encode(), "application/json"),
        }
        return encoded[recipe.body]

    # -- where a cell goes

    def _why_not(self, cell: Cell) -> str:
        settings, subjects = self.settings, self.subjects
        if cell.costs == "restore" and not settings.restores_allowed:
            return "restores are off (RAFF_ALLOW_RESTORE)"
        if (cell.costs == "create" or _phase(cell) == "create") and not _refused_create(cell):
            remaining = self.factory.remaining()
            if remaining is not None:
                spent = settings.max_backups - remaining
                return f"budget: {spent} of {settings.max_backups} backups spent by the scenario; a create costs one"
        if cell.operation == "createBackup" and self.factory.remaining() == 0:
            # A create a conforming server refuses costs nothing, but one a broken server takes is a backup:
            # past the budget (RAFF_MAX_BACKUPS on a live target) it is not sent.
            return (f"budget: all {settings.max_backups} backups are spent, and a wrongly accepted create "
                    "would be one more")
        needs = {
            "other_project_vm": (subjects.other_project_vm, "RAFF_OTHER_PROJECT_VM_ID is not set"),
            "other_account_vm": (subjects.other_account_vm, "RAFF_OTHER_ACCOUNT_VM_ID is not set"),
        }
        if cell.recipe.subject in needs and not needs[cell.recipe.subject][0]:
            return needs[cell.recipe.subject][1]
        if cell.recipe.subject in needs and _phase(cell) != "read" and not settings.is_mock:
            # A server that wrongly took it would touch a VM the run does not own: on a live target
            # that write is sent once, by test_reset_chain_negative (RC-11, RC-12), not again here.
            return "a write naming a VM the run does not own is sent once, by test_reset_chain_negative"
        if cell.recipe.subject == "vm" and cell.operation in DELETES and not settings.is_mock:
            # A server that took a VM's id for a series could delete backups the run did not create.
            return "a delete naming the VM is not sent to a live target: it could remove backups the run does not own"
        if cell.recipe.key == "other_account" and not subjects.other_account_key:
            return "RAFF_OTHER_ACCOUNT_API_KEY is not set"
        if cell.recipe.project == "other" and not subjects.other_project:
            return "no other project of the account is known (RAFF_OTHER_PROJECT_VM_ID)"
        return ""

    def _subject(self, cell: Cell) -> str | None:
        """The id the cell's request names (in the path, the body's vm_id or the query's)."""
        subjects, recipe = self.subjects, cell.recipe
        fixed = {
            "unknown": str(uuid.uuid4()),
            "malformed": NOT_A_UUID,
            "other_project_vm": subjects.other_project_vm,
            "other_account_vm": subjects.other_account_vm,
            "vm": subjects.vm,
            "backup": subjects.backup,
        }
        if recipe.subject in fixed:
            return fixed[recipe.subject]
        if _slot(self.client_operation(cell.operation)[1]) == "backup":
            return self._own_backup(cell)
        return subjects.vm

    def _own_backup(self, cell: Cell) -> str | None:
        """The run's own backup a cell of a backup operation names, or None."""
        subjects = self.subjects
        alive = [b for b in subjects.leaves if b.lower() not in self.gone]
        deleting = cell.operation in ("deleteBackup", "deleteBackupChain") and _phase(cell) == "delete"
        if deleting and cell.kind == "spelling" and cell.recipe.id_spelling != "upper":
            return None  # an accepted delete needs a backup of its own; the upper-case cell has it
        if cell.operation == "deleteBackup" and _phase(cell) == "delete":
            if cell.kind == "repetition" and not cell.recipe.at_once:
                # twice in a row: the backup the spelling cell deleted, or the next leaf
                done = [b for b in subjects.leaves if self.gone.get(b.lower(), "").startswith("deleteBackup")]
                return done[0] if done else (alive[0] if alive else None)
            return alive[0] if alive else None
        if cell.operation == "deleteBackupChain" and _phase(cell) == "delete":
            if subjects.backup is None:
                return None
            if cell.kind == "repetition" and cell.recipe.at_once:
                return None  # one closed series of the run is left at most: the sequential cells use it
            return subjects.backup
        # A header or body cell a conforming server may still take: never on a backup the run reads later.
        may_take = cell.kind == "bodies" or "repeated" in (cell.recipe.project, cell.recipe.key)
        if may_take and _phase(cell) != "delete" and cell.operation in ("deleteBackup", "deleteBackupChain",
                                                                         "restoreBackup"):
            return str(uuid.uuid4())
        if cell.operation == "restoreBackup":
            restorable = subjects.restorable
            return None if restorable is None or restorable.lower() in self.gone else restorable
        if subjects.backup is not None and subjects.backup.lower() in self.gone:
            return None
        return subjects.backup

    def _missing(self, cell: Cell) -> str:
        if cell.kind == "spelling" and cell.operation in ("deleteBackup", "deleteBackupChain"):
            return ("an accepted delete needs a backup of its own: the run's deletable backups serve the "
                    "upper-case and repetition cells")
        if cell.operation in ("deleteBackup",) and not self.subjects.leaves:
            return "no backup of the run can be deleted alone (RAFF_SECOND_VM_ID's backups)"
        if cell.operation == "deleteBackupChain" and cell.recipe.at_once:
            return "one closed series of the run is left; the sequential cells use it"
        if cell.operation == "deleteBackup":
            return "every backup of the run that may be deleted alone is gone already"
        if self.subjects.backup is None:
            return "the scenario has no settled backup (A6) for it"
        return f"its backup is gone ({self.gone.get(self.subjects.backup.lower(), '')})"


# What makes a create one the contract refuses, whatever else the request says: a conforming server
# answers it 4xx and creates nothing, so it costs no backup (a body in another media type, an unknown
# member or no Content-Type may be taken leniently, and is not counted here).
REFUSED_CREATE = {
    "body": {"none", "empty_object", "wrong_types", "wrong_type_name", "not_json", "oversized"},
    "project": {"absent", "malformed", "unknown", "other"},
    "key": {"absent", "wrong", "other_account"},
    "subject": {"unknown", "malformed", "backup", "other_project_vm", "other_account_vm"},
}


def _refused_create(cell: Cell) -> bool:
    """A create cell whose request the contract refuses (see REFUSED_CREATE), sent once, never twice."""
    recipe = cell.recipe
    return (
        cell.operation == "createBackup"
        and recipe.times == 1
        and any(getattr(recipe, name) in values for name, values in REFUSED_CREATE.items())
    )


PHASES = ("read", "reset", "restore", "refused", "create", "delete")


def _phase(cell: Cell) -> str:
    """When a cell goes: reads first, then what changes nothing a later cell needs, deletes last."""
    if cell.costs == "create":
        return "create"
    if cell.costs == "read" or cell.operation in ("listBackups", "getBackup", "getVM"):
        return "read"
    if cell.operation == "resetBackupChain":
        return "reset"
    if cell.operation == "restoreBackup" and cell.costs == "restore":
        return "restore"
    if cell.operation == "createBackup":
        return "refused"
    if cell.operation in ("deleteBackup", "deleteBackupChain") and cell.costs == "delete":
        return "delete"
    return "refused"


def _spell(value: str, how: str) -> str:
    if how == "upper":
        return value.upper()
    if how == "percent" and value:
        return "".join(f"%{ord(ch):02X}" if i == 0 else ch for i, ch in enumerate(value))
    return value


def _is_uuid(value: str) -> bool:
    try:
        uuid.UUID(value)
    except ValueError:
        return False
    return True


def _data_id(exchange: Exchange) -> str | None:
    body = exchange.response_body
    data = body.get("data") if isinstance(body, dict) else None
    value = data.get("id") if isinstance(data, dict) else None
    return value if isinstance(value, str) else None


def _short(exchange: Exchange) -> str:
    parts = urlsplit(exchange.url)
    query = f"?{parts.query}" if parts.query else ""
    return f"{exchange.method} {quote(parts.path, safe='/%')}{query} -> {exchange.error or exchange.status}"
