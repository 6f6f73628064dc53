"""The judge: every exchange of the run held to the properties of ``specs/properties.yaml``.

Tests assert on the steps they chose; the judge looks at everything else too. ``RaffState.observe``
hands it every exchange of the process (the client's and Schemathesis'), and it keeps a small model
of what this run did - the backups it created with what it sent, every field it has seen of them,
which it deleted, which VM it reset last - and holds each answer to what that model says must be so.

Each property compares only what the contract or the docs fix, and judges an answer only against
what this run itself did, and only while nothing it did since could have changed that answer (a
create can prune, a delete removes): a server we did not write that keeps the docs keeps them all.
A breach is a violation ``Finding`` of the property's requirement, once per property, backup and
field; evidence the judge lacks is no finding.
"""

from __future__ import annotations

import json
import re
import threading
from collections import Counter
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from email.utils import parsedate_to_datetime
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, unquote, urlsplit

import jsonschema

from conformance.checks import ConformanceFailure, Finding, conforms, json_value, note, status_code_conformance
from conformance.contract import SPECS_DIR, Contract, read_yaml
from conformance.exchange import Exchange, header_value, media_type
from conformance.settings import FAKE_KEY_PREFIX

PROPERTIES_PATH = SPECS_DIR / "properties.yaml"
# Fields no operation of the contract changes once a backup exists.
FIXED_FIELDS = ("id", "account_id", "project_id", "product_vm", "name", "region", "created_by", "created_at")
# The order a backup's status may move in; "restoring" goes back to "ready" (and "failed" ends it).
# "failed" has no rank: whether a backup whose restore failed shows "ready" again, no doc says.
STATUS_RANK = {"pending": 0, "creating": 1, "ready": 2, "restoring": 2}
IN_FLIGHT_RANKS = (STATUS_RANK["pending"], STATUS_RANK["creating"])  # last seen still being captured
# How many backups the judge remembers: a long capture (or run) creates and deletes thousands; the
# oldest, deleted ones first, are forgotten beyond this (what it says of them afterwards is nothing).
KNOWN_LIMIT = 1024
# How far created_at may stray from the Date headers around it: Date has a resolution of one second,
# servers cache it (uvicorn refreshes it once a second, later under load), and the clock that stamps a
# record may be another machine's. A minute still catches what this property is for: a time zone taken
# for UTC, seconds taken for milliseconds, a restore that restamps the point.
DATE_SLACK = timedelta(seconds=60)


@dataclass(frozen=True)
class Property:
    id: str
    statement: str
    source: str
    requirement: str


def load_properties(path: Path = PROPERTIES_PATH) -> dict[str, Property]:
    raw = read_yaml(path.read_text(encoding="utf-8"))["properties"]
    return {
        pid: Property(pid, " ".join(entry["statement"].split()), entry["source"], entry["requirement"])
        for pid, entry in raw.items()
    }


@dataclass
class Known:
    """What the run knows of one backup it created."""

    id: str
    vm: str
    project: str | None
    name: str | None  # as sent; None when the create sent no name
    created: Exchange
    seen: dict[str, Any] = field(default_factory=dict)  # each field as first shown (fixed ones)
    increment: Any = None  # the first non-null increment_id shown
    rank: int = -1  # the furthest status seen
    ready_size: Any = None  # storage_size as first seen once ready
    baseline: bool = False  # the first create on its VM after an accepted reset
    # The requirement a baseline that is not one breaks: RC-22's where the reset before it closed a series
    # of only one of the run's points (its baseline), RC-08's otherwise.
    baseline_requirement: str | None = None
    epoch: int = 0  # how many resets of its VM had been accepted when it was created
    deleted_by: Exchange | None = None  # the delete that answered 200 for it, once there was one
    key: int | None = None  # which key created it (a hash of the key as sent)


@dataclass
class Judge:
    contract: Contract
    properties: dict[str, Property] = field(default_factory=load_properties)
    judged: Counter[str] = field(default_factory=Counter)
    findings: list[Finding] = field(default_factory=list)
    _known: dict[str, Known] = field(default_factory=dict)
    _reset_pending: set[str] = field(default_factory=set)  # VMs whose next create must be a baseline
    _epochs: Counter[str] = field(default_factory=Counter)  # per VM: the accepted resets so far
    _one_point_reset: set[str] = field(default_factory=set)  # VMs whose last accepted reset closed one point
    # Per VM: whether a baseline after a reset of a longer series was seen to be one (True) or not (False).
    # A one-point reset's baseline that is not one is RC-22's only where the VM's other resets work.
    _baselines_work: dict[str, bool] = field(default_factory=dict)
    # backup id -> (changes count when listed, the key (hashed) and project it was listed under, the listing)
    _listed: dict[str, tuple[int, int | None, str | None, Exchange]] = field(default_factory=dict)
    _removals: int = 0  # requests sent that could remove a backup (deletes, creates that may prune)
    # P-FOUND: the removals plus the accepted resets. The docs say a reset removes nothing; a server
    # whose reset does breaks the reset's own rules (RC-06, RC-22), judged by the listings around it,
    # and a getBackup after it is judged against the next listing, not one taken before the reset.
    _changes: int = 0
    _reported: set[tuple[str, str, str]] = field(default_factory=set)
    # P-EQUIVALENT: the last answer to each canonical read, with the write count it was sent at
    _reads: dict[tuple[Any, ...], tuple[int, Exchange, Any]] = field(default_factory=dict)
    _accepted_creates: dict[tuple[Any, ...], Exchange] = field(default_factory=dict)
    _previous: Exchange | None = None  # the exchange seen just before the current one
    # P-EQUIVALENT for writes: per resource named in a path (kind, id, key, project), the last answer
    # that found it (2xx, or 409: there but busy), with the removal count it was sent at
    _found_at: dict[tuple[Any, ...], tuple[int, Exchange, str]] = field(default_factory=dict)
    # P-TOTALS: per listing (query but offset, key, write count), each backup's offset and page
    _paged: dict[tuple[Any, ...], dict[str, tuple[int, Exchange, int]]] = field(default_factory=dict)
    # P-STABLE for backups the run did not create: the fields of each as first seen ready
    _others: dict[str, dict[str, tuple[Any, Exchange]]] = field(default_factory=dict)
    # the whole listing (ids in order) per filter, key and write count: what each page must slice
    _whole: dict[tuple[Any, ...], tuple[list[str], Exchange]] = field(default_factory=dict)
    # P-SCOPE needs to know which keys are of other accounts: a live run does (it holds the other
    # account's key); a capture does not (two keys of one account rightly see the same backups).
    judge_scope: bool = True
    _state: int = -1  # the write count the books above were last pruned at
    _lock: threading.Lock = field(default_factory=threading.Lock)

    # -- entry point ---------------------------------------------------------------------------

    def see(self, exchange: Exchange, *, generated: bool = False) -> None:
        """Judge one exchange and learn from it. ``generated``: Schemathesis sent it and its own
        checks hold it to the contract already."""
        if exchange.operation_id is None or exchange.status is None:
            return
        with self._lock:
            self._forget_other_states(exchange.writes_seen)
            params = self._path_params(exchange)
            if params is None:
                return  # a path that does not route to the operation: nothing the contract speaks about
            if not generated:
                self._contract(exchange)
            body = json_value(exchange.response_body)
            operation, status = exchange.operation_id, exchange.status
            if not generated and exchange.method.upper() in WRITE_METHODS and 200 <= status < 300:
                self._carried_out(exchange, params)
            if "id" in params and not generated and exchange.method.upper() in WRITE_METHODS:
                self._taken_after_refused(exchange, params["id"])
            if "id" in params and not generated:
                # Before the removal count moves for this very request (a delete is itself a removal).
                self._equivalent_write(exchange, params["id"])
            if not generated and exchange.method.upper() in WRITE_METHODS:
                self._kind(exchange, params.get("id", ""))
            if operation == "createBackup" and 200 <= status < 300:
                self._created(exchange, body)
            if operation in ("createBackup", "deleteBackup", "deleteBackupChain"):
                self._removals += 1
                self._changes += 1
            if operation == "resetBackupChain" and 200 <= status < 300:
                vm = params.get("id", "").lower()
                self._changes += 1
                in_flight = any(
                    k.vm == vm and k.deleted_by is None and k.rank in IN_FLIGHT_RANKS for k in self._known.values()
                )
                epoch = self._epochs[vm]
                closed = [k for k in self._known.values() if k.vm == vm and k.deleted_by is None and k.epoch == epoch]
                self._epochs[vm] += 1
                self._one_point_reset.discard(vm)
                if len(closed) == 1:
                    self._one_point_reset.add(vm)  # the series it closed held only the run's baseline (RC-22)
                if not in_flight:
                    # A reset while a backup of the VM is in flight is RC-21's own case, judged by its test
                    # with what the server showed of that backup; charged here too it would count twice.
                    self._reset_pending.add(vm)
                # A baseline is judged until the next accepted reset of its VM: what that reset does to
                # it is the reset's finding (RC-06, P-STABLE), not a baseline that never was.
                for known in self._known.values():
                    if known.vm == vm:
                        known.baseline = False
            if operation in ("getBackup", "restoreBackup", "getVM") and 200 <= status < 300:
                self._identity(exchange, body, params.get("id", ""))
            if operation == "getBackup" and status in (200, 404):
                self._found(exchange, params.get("id", "").lower())
            if operation == "listBackups" and status == 200 and isinstance(body, dict):
                self._listing(exchange, body)
            if exchange.method.upper() == "GET" and not generated:
                self._equivalent_read(exchange, body)
            if operation == "createBackup" and not generated:
                self._equivalent_create(exchange)
            self._success_flag(exchange, body)
            for record in _records(operation, status, body):
                self._scope(exchange, record)
                self._view(exchange, record)
            if operation in ("deleteBackup", "deleteBackupChain") and status == 200:
                self._deleted(params.get("id", "").lower(), exchange)
            self._previous = exchange

    def _forget_other_states(self, writes: int) -> None:
        """Listings and reads are compared only within one state (the same write count): once a write
        moved it on, what was kept of the state before can never be compared again."""
        if writes == self._state:
            return
        self._state = writes
        for book in (self._paged, self._whole):
            for key in [k for k in book if k[-1] != writes]:
                del book[key]
        for key in [k for k, v in self._reads.items() if v[0] != writes]:
            del self._reads[key]
        for key in [k for k, v in self._found_at.items() if v[0] != self._removals]:
            del self._found_at[key]
        for key in [k for k, v in self._listed.items() if v[0] != self._changes]:
            del self._listed[key]  # P-FOUND judges only while nothing could have removed it since

    # -- properties ----------------------------------------------------------------------------

    def _contract(self, exchange: Exchange) -> None:
        if exchange.status == 404 and json_value(exchange.response_body) is None:
            return  # a router's plain 404 for a path it does not route: not the operation's answer
        self.judged["P-CONTRACT"] += 1
        if exchange.unknown:
            # Part of it is not in the evidence (a capture without the body): its status alone is judged.
            try:
                status_code_conformance(self.contract, exchange, self.properties["P-CONTRACT"].requirement)
            except ConformanceFailure as failure:
                key = f"{exchange.operation_id} {exchange.status} {failure.finding.title}"
                self._report("P-CONTRACT", key, failure.finding.title, failure.finding.message, [exchange])
            return
        try:
            conforms(self.contract, exchange, self.properties["P-CONTRACT"].requirement)
        except ConformanceFailure as failure:
            key = f"{exchange.operation_id} {exchange.status} {failure.finding.title}"
            why = _refused_content(exchange)
            if why is not None and failure.finding.check == "status_code_conformance":
                # The contract lists no such status, but HTTP gives it for exactly this request's content:
                # a note for a reviewer, never a violation (a gateway in front of the API may answer it).
                if (pid_key := ("P-CONTRACT", key, "rfc")) not in self._reported:
                    self._reported.add(pid_key)
                    self.findings.append(
                        note(self.properties["P-CONTRACT"].requirement, exchange,
                             f"{exchange.operation_id} answered {exchange.status}, an HTTP "
                             "refusal the contract does not list", f"{why}; {failure.finding.message}",
                             check="P-CONTRACT")
                    )
                return
            self._report("P-CONTRACT", key, failure.finding.title, failure.finding.message, [exchange])

    def _created(self, exchange: Exchange, body: Any) -> None:
        data = body.get("data") if isinstance(body, dict) else None
        sent = exchange.request_body if isinstance(exchange.request_body, dict) else {}
        backup_id = data.get("id") if isinstance(data, dict) else None
        vm = sent.get("vm_id")
        if not isinstance(backup_id, str) or not isinstance(vm, str):
            return
        name = sent.get("name") if isinstance(sent.get("name"), str) else None
        known = Known(backup_id.lower(), vm.lower(), _project(exchange), name, exchange, key=_key(exchange))
        known.epoch = self._epochs[known.vm]
        if known.vm in self._reset_pending:
            known.baseline = True
            known.baseline_requirement = "RC-22" if known.vm in self._one_point_reset else None
        self._reset_pending.discard(known.vm)
        self._known[known.id] = known
        if len(self._known) > KNOWN_LIMIT:
            oldest = next((k for k, v in self._known.items() if v.deleted_by is not None), next(iter(self._known)))
            del self._known[oldest]

    def _identity(self, exchange: Exchange, body: Any, path_id: str) -> None:
        data = body.get("data") if isinstance(body, dict) else None
        if not isinstance(data, dict) or "id" not in data:
            return
        self.judged["P-IDENTITY"] += 1
        if str(data["id"]).lower() != _unreserved(unquote(path_id)).lower():
            self._report(
                "P-IDENTITY",
                f"{exchange.operation_id} {path_id}",
                f"{exchange.operation_id} of one resource describes another",
                f"{exchange.method} {exchange.url} answered {exchange.status} describing {data['id']}, "
                f"not {path_id}, the one its path names.",
                [exchange],
            )

    def _success_flag(self, exchange: Exchange, body: Any) -> None:
        if not isinstance(body, dict) or not isinstance(body.get("success"), bool) or exchange.status is None:
            return
        self.judged["P-SUCCESS"] += 1
        if body["success"] != (200 <= exchange.status < 300):
            self._report(
                "P-SUCCESS",
                f"{exchange.operation_id} {exchange.status} {body['success']}",
                f"{exchange.operation_id} answers {exchange.status} with success {str(body['success']).lower()}",
                f"{brief(exchange)} says success {str(body['success']).lower()}.",
                [exchange],
            )

    def _scope(self, exchange: Exchange, record: dict[str, Any]) -> None:
        """An answer to another key shows none of the backups this run created with its own."""
        known = self._known.get(str(record.get("id", "")).lower())
        if not self.judge_scope or known is None or known.key is None:
            return  # a capture cannot tell which keys are another account's
        if _key(exchange) is None or _made_up_key(exchange):
            return  # an answer to no key or a made-up one is a 401 by rule: RC-13's (P-REQUEST), not a scope
        self.judged["P-SCOPE"] += 1
        if _key(exchange) != known.key:
            self._report(
                "P-SCOPE",
                f"{known.id} other key",
                "another key sees a backup of this run",
                f"backup {known.id} was created with the run's key; {brief(exchange)}, sent with another key, "
                "shows it.",
                [known.created, exchange],
            )

    def _view(self, exchange: Exchange, record: dict[str, Any]) -> None:
        """One answer's view of one backup, against what the run sent and saw of it before."""
        backup_id = record.get("id")
        known = self._known.get(str(backup_id).lower()) if backup_id is not None else None
        if known is None:
            self._other_view(exchange, record)
            return
        trail = [known.created, exchange] if exchange is not known.created else [exchange]
        self.judged["P-ROUND-TRIP"] += 1
        sent = {"name": known.name, "product_vm": known.vm, "project_id": known.project}
        for name, value in sent.items():
            if value is None or name not in record:
                continue
            shown = record[name]
            same = shown == value if name == "name" else str(shown).lower() == value.lower()
            if not same:
                self._report(
                    "P-ROUND-TRIP",
                    f"{known.id} {name}",
                    f"{name} does not read back as sent",
                    f"backup {known.id} was created with {name} {value!r}; {brief(exchange)} shows {shown!r}.",
                    trail,
                )
        self.judged["P-STABLE"] += 1
        for name in FIXED_FIELDS:
            if name not in record:
                continue
            if name not in known.seen:
                known.seen[name] = (record[name], exchange)
            elif not _same(name, record[name], known.seen[name][0]):
                first, where = known.seen[name]
                self._changed(known, name, first, record[name], where, exchange)
        increment = record.get("increment_id")
        if increment is not None:
            if known.increment is None:
                known.increment = (increment, exchange)
            elif increment != known.increment[0]:
                self._changed(known, "increment_id", known.increment[0], increment, known.increment[1], exchange)
            if known.baseline:
                self.judged["P-BASELINE"] += 1
                if known.baseline_requirement is None:
                    self._baselines_work[known.vm] = self._baselines_work.get(known.vm, True) and increment == 0
                if increment != 0:
                    self._report(
                        "P-BASELINE",
                        f"{known.id} baseline",
                        "the first backup after a reset is not a baseline",
                        f"backup {known.id} was the first this run created on VM {known.vm} after a reset of it "
                        f"was accepted, so it starts a new series at increment_id 0; {brief(exchange)} shows "
                        f"increment_id {increment!r}.",
                        trail,
                        requirement=known.baseline_requirement if self._baselines_work.get(known.vm) else None,
                    )
        status = record.get("status")
        rank = STATUS_RANK.get(status) if isinstance(status, str) else None
        if rank is not None:
            if rank < known.rank:
                self._report(
                    "P-STABLE",
                    f"{known.id} status",
                    "a backup's status went back",
                    f"backup {known.id} had been seen further on; {brief(exchange)} shows status {status!r}.",
                    trail,
                )
            if status == "ready" and known.rank < STATUS_RANK["ready"]:
                self._timestamps(known, record, exchange)
            known.rank = max(known.rank, rank)
        if status == "ready" and "storage_size" in record:
            if known.ready_size is None:
                known.ready_size = (record["storage_size"], exchange)
            elif record["storage_size"] != known.ready_size[0]:
                first, where = known.ready_size
                self._changed(known, "storage_size", first, record["storage_size"], where, exchange)

    def _other_view(self, exchange: Exchange, record: dict[str, Any]) -> None:
        """A backup the run did not create (a legacy one, another VM's): once seen ready, every view
        that shows it ready shows the same fixed fields and increment_id (null included)."""
        if record.get("status") != "ready" or not isinstance(record.get("id"), str):
            return
        seen = self._others.setdefault(record["id"].lower(), {})
        self.judged["P-STABLE"] += 1
        for name in (*FIXED_FIELDS, "increment_id"):
            if name not in record:
                continue
            if name not in seen:
                seen[name] = (record[name], exchange)
            elif not _same(name, record[name], seen[name][0]):
                before, first = seen[name]
                self._report(
                    "P-STABLE",
                    f"{record['id']} {name}",
                    f"a backup's {name} differs between views",
                    f"backup {record['id']}: {name} {before!r} in {brief(first)}, then {record[name]!r} in "
                    f"{brief(exchange)}, both showing it ready.",
                    [first, exchange],
                )

    def _changed(self, known: Known, name: str, before: Any, after: Any, first: Exchange, now: Exchange) -> None:
        self._report(
            "P-STABLE",
            f"{known.id} {name}",
            f"a backup's {name} changed without an operation that changes it",
            f"backup {known.id}: {name} {before!r} in {brief(first)}, then {after!r} in {brief(now)}.",
            [first, now],
        )

    def _timestamps(self, known: Known, record: dict[str, Any], exchange: Exchange) -> None:
        created_at = instant(record.get("created_at"))
        made = server_date(known.created)
        shown_ready = server_date(exchange)
        if created_at is None or made is None or shown_ready is None:
            return
        self.judged["P-TIMESTAMPS"] += 1
        if not made - DATE_SLACK <= created_at <= shown_ready + DATE_SLACK:
            self._report(
                "P-TIMESTAMPS",
                f"{known.id} created_at",
                "created_at disagrees with the server's own clock",
                f"backup {known.id} has created_at {record.get('created_at')}; the server's Date said "
                f"{known.created.response_header('date')} when it accepted the create and "
                f"{exchange.response_header('date')} when it first showed it ready.",
                [known.created, exchange],
            )

    def _listing(self, exchange: Exchange, body: dict[str, Any]) -> None:
        data, total = body.get("data"), body.get("total")
        if not isinstance(data, list):
            return
        key = _key(exchange)
        for record in data:
            if isinstance(record, dict) and isinstance(record.get("id"), str):
                project = record.get("project_id")
                project = project.lower() if isinstance(project, str) else _project(exchange)
                self._listed[record["id"].lower()] = (self._changes, key, project, exchange)
        query = parse_qs(urlsplit(exchange.url).query)
        limit, offset = _int(query.get("limit"), 50), _int(query.get("offset"), 0)
        self._filters(exchange, data, query)
        if limit is not None and offset is not None and limit >= 0 and offset >= 0:
            self._repeats(exchange, data, query, offset)
        if not isinstance(total, int) or limit is None or offset is None or limit < 0 or offset < 0:
            return
        self.judged["P-TOTALS"] += 1
        shown = len(data)
        if shown > limit:
            self._report(
                "P-TOTALS",
                f"page {exchange.url}",
                "a listing page holds more than its limit",
                f"{brief(exchange)} asked for at most {limit} backup(s) and got {shown}.",
                [exchange],
            )
            return
        if shown == 0 and limit == 0:
            return  # an empty page by request: it says nothing of where the end is
        if shown == 0:
            wrong, expected = total > offset, f"at most {offset} (the page is empty, so offset is at or past the end)"
        elif shown < limit:
            wrong, expected = total != offset + shown, f"exactly {offset + shown} (the page is not full)"
        else:
            wrong, expected = total < offset + shown, f"at least {offset + shown}"
        if wrong:
            self._report(
                "P-TOTALS",
                f"total {exchange.url}",
                "a listing's total is not the number of matching backups",
                f"{brief(exchange)} (offset {offset}, limit {limit}) lists {shown} backup(s) and total {total}; "
                f"it should be {expected}.",
                [exchange],
            )

    def _filters(self, exchange: Exchange, data: list[Any], query: dict[str, list[str]]) -> None:
        """Every backup of a listing matches its filters: vm_id as product_vm, X-Project-ID as project_id."""
        wanted = {"product_vm": (query.get("vm_id") or [None])[-1], "project_id": _project(exchange)}
        wanted = {name: value.lower() for name, value in wanted.items() if isinstance(value, str) and _is_uuid(value)}
        if not wanted:
            return
        self.judged["P-FILTERS"] += 1
        for record in data:
            if not isinstance(record, dict):
                continue
            for name, value in wanted.items():
                shown = record.get(name)
                if isinstance(shown, str) and shown.lower() != value:
                    self._report(
                        "P-FILTERS",
                        f"{_canonical(exchange)} {name}",
                        f"a listing shows a backup its filter excludes ({name})",
                        f"{brief(exchange)} asked for {name} {value}, and lists backup {record.get('id')} "
                        f"with {name} {shown}.",
                        [exchange],
                    )

    def _repeats(self, exchange: Exchange, data: list[Any], query: dict[str, list[str]], offset: int) -> None:
        """Pages of one listing, in one state, never show a backup twice (at two offsets), and each
        page holds the backups of its slice of the whole listing taken in that state."""
        rest = tuple(sorted((k, tuple(v)) for k, v in query.items() if k != "offset"))
        key = (rest, _key(exchange), _project(exchange), exchange.writes_seen)
        self._slice(exchange, data, query, offset)
        seen = self._paged.setdefault(key, {})
        self.judged["P-TOTALS"] += 1
        for position, record in enumerate(data):
            backup_id = str(record.get("id", "")).lower() if isinstance(record, dict) else ""
            if not backup_id:
                continue
            where = offset + position
            # Two reads of the same page are not two pages: a backup that moved within it moved with the
            # server's own work (a backup became ready, a job ran), which no read of ours could change.
            if (
                backup_id in seen
                and seen[backup_id][0] != where
                and seen[backup_id][1] is not exchange
                and seen[backup_id][2] != offset
            ):
                first = seen[backup_id][1]
                self._report(
                    "P-TOTALS",
                    f"repeat {rest}",
                    "two pages of one listing show the same backup",
                    f"backup {backup_id} is on {brief(first)} and again on {brief(exchange)}, "
                    "with nothing written between: pages split the listing without repeats.",
                    [first, exchange],
                )
            seen.setdefault(backup_id, (where, exchange, offset))

    def _slice(self, exchange: Exchange, data: list[Any], query: dict[str, list[str]], offset: int) -> None:
        ids = [str(r.get("id", "")).lower() for r in data if isinstance(r, dict)]
        body = json_value(exchange.response_body)
        total = body.get("total") if isinstance(body, dict) else None
        limit = _int(query.get("limit"), 50)
        filters = tuple(sorted((k, tuple(v)) for k, v in query.items() if k not in ("offset", "limit")))
        key = (filters, _key(exchange), _project(exchange), exchange.writes_seen)
        if offset == 0 and isinstance(total, int) and len(ids) == total:
            self._whole[key] = (ids, exchange)  # the whole listing, in this state
            return
        whole = self._whole.get(key)
        if whole is None or limit is None or limit <= 0:
            return
        expected = set(whole[0][offset : offset + limit])
        if set(ids) != expected:
            self._report(
                "P-TOTALS",
                f"slice {filters}",
                "a page is not its slice of the listing",
                f"{brief(exchange)} lists {len(ids)} backup(s) that are not positions {offset}..{offset + limit - 1} "
                f"of {brief(whole[1])}, taken with nothing written between: "
                f"{sorted(set(ids) - expected) or '-'} shown instead of {sorted(expected - set(ids)) or '-'}.",
                [whole[1], exchange],
            )

    def _equivalent_read(self, exchange: Exchange, body: Any) -> None:
        """Two reads that name the same thing, sent with nothing written between, answer alike."""
        key = _canonical(exchange)
        now = (exchange.writes_seen, exchange, _comparable(exchange.status, body))
        before = self._reads.get(key)
        self._reads[key] = now
        # Only back-to-back reads: nothing of ours was written between them, and hardly anyone else's.
        if before is None or before[0] != now[0] or before[1] is not self._previous:
            return
        self.judged["P-EQUIVALENT"] += 1
        if before[2] != now[2] and _spelled(before[1]) != _spelled(exchange):
            self._report(
                "P-EQUIVALENT",
                f"read {exchange.operation_id} {_spelled(before[1])} {_spelled(exchange)}",
                f"{exchange.operation_id}: the same request in another spelling gets another answer",
                f"{brief(before[1])} and {brief(exchange)} differ only in spelling "
                f"({_spelled(before[1])} vs {_spelled(exchange)}) and nothing was written between them, "
                "but their answers differ.",
                [before[1], exchange],
            )

    def _equivalent_create(self, exchange: Exchange) -> None:
        """A create refused (400) though the same create, spelled otherwise, was accepted."""
        sent = exchange.request_body if isinstance(exchange.request_body, dict) else None
        if sent is None or exchange.status is None:
            return
        key = (
            str(sent.get("vm_id", "")).lower(),
            _project(exchange),
            header_value(exchange.request_headers, "x-api-key"),
            tuple(sorted((k, type(v).__name__) for k, v in sent.items())),
        )
        if 200 <= exchange.status < 300:
            self._accepted_creates.setdefault(key, exchange)
            return
        accepted = self._accepted_creates.get(key)
        if exchange.status != 400 or accepted is None or _spelled(accepted) == _spelled(exchange):
            return
        self.judged["P-EQUIVALENT"] += 1
        self._report(
            "P-EQUIVALENT",
            f"create {_spelled(exchange)}",
            "createBackup refuses a request it accepted in another spelling",
            f"{brief(accepted)} was accepted; {brief(exchange)} differs from it only in spelling "
            f"({_spelled(accepted)} vs {_spelled(exchange)}) and in the name's value, and was refused.",
            [accepted, exchange],
        )

    def _equivalent_write(self, exchange: Exchange, path_id: str) -> None:
        """A write that names, in another spelling, a resource an answer just found, with nothing
        removed since, does not answer 404 (RFC 9562 §4, RFC 9110 §5.1, RFC 3986 §6.2.2.2)."""
        operation, status = exchange.operation_id, exchange.status
        if status is None:
            return
        slot = "vm" if operation in ("getVM", "resetBackupChain") else "backup"
        project = None if operation == "getVM" else _project(exchange)
        key = (slot, _unreserved(unquote(path_id)).lower(), _key(exchange), project)
        if key[2] is None:
            return  # the key as sent is unknown (Schemathesis' traffic): two keys could look alike
        found = self._found_at.get(key)
        spelling = _id_spelled(exchange, path_id)
        if 200 <= status < 300 or status == 409:
            self._found_at[key] = (self._removals, exchange, spelling)
        if exchange.method.upper() == "GET" or found is None or found[0] != self._removals:
            return  # reads are P-EQUIVALENT's read rule; a removal since may have taken it
        if _repeated_fields(exchange) or found[2] == spelling or "%" in path_id:
            # A repeated field line may be refused (RFC 9110 §5.3); the same spelling is P-FOUND's; a
            # percent-encoded id is the same URI (RFC 3986 §2.3), yet producers should not make one and
            # common routers match the raw path: a 404 there is no breach we can prove.
            return
        self.judged["P-EQUIVALENT"] += 1
        if status != 404:
            return  # any other refusal may be the state's doing (a second reset, a closed point): see below
        self._report(
            "P-EQUIVALENT",
            f"write {operation} {spelling}",
            f"{operation}: the same id in another spelling is not found",
            f"{brief(found[1])} found {slot} {key[1]}; {brief(exchange)} names it in another spelling "
            f"({found[2]} vs {spelling}), nothing that could remove it was sent between, and it answered 404.",
            [found[1], exchange],
        )

    def _taken_after_refused(self, exchange: Exchange, path_id: str) -> None:
        """A write taken right after the same write in another spelling was refused as malformed,
        unauthenticated or naming nothing: the refusal changed nothing, so both met the same state, and
        requests the RFCs call the same got different answers (P-EQUIVALENT)."""
        previous, status = self._previous, exchange.status
        if previous is None or status is None or not 200 <= status < 300 or previous.status not in SPELLING_REFUSALS:
            return
        if previous.operation_id != exchange.operation_id or previous.raw_request is None:
            return
        earlier = self._path_params(previous) or {}
        same = _unreserved(unquote(earlier.get("id", ""))).lower() == _unreserved(unquote(path_id)).lower()
        if not same or _key(previous) is None or _key(previous) != _key(exchange):
            return
        if _project(previous) != _project(exchange) or _repeated_fields(previous) or "%" in earlier.get("id", ""):
            return
        if previous.request_body != exchange.request_body:
            return
        spelled, plain = _id_spelled(previous, earlier.get("id", "")), _id_spelled(exchange, path_id)
        if spelled == plain:
            return
        named = _unreserved(unquote(path_id)).lower()
        if exchange.operation_id == "resetBackupChain":
            other_kind = named in self._known  # a backup's id as the VM
        else:
            other_kind = any(k.vm == named for k in self._known.values())  # a VM's id as the backup
        if other_kind:
            return  # an id of another kind, taken: that is P-KIND's breach, counted there once
        self.judged["P-EQUIVALENT"] += 1
        self._report(
            "P-EQUIVALENT",
            f"write {exchange.operation_id} {spelled}",
            f"{exchange.operation_id}: the same write in another spelling is refused ({previous.status})",
            f"{brief(previous)} ({spelled}) was refused, which changed nothing; right after it {brief(exchange)} "
            f"({plain}) was taken in the same state.",
            [previous, exchange],
        )

    def _carried_out(self, exchange: Exchange, params: dict[str, str]) -> None:
        """A write the contract says must be refused was carried out (P-REQUEST): it broke the request
        schema (a required parameter absent, a parameter or the JSON body not matching its schema) or
        came without a key, or with one of the suite's made-up keys, yet answered 2xx."""
        operation = exchange.operation_id or ""
        self.judged["P-REQUEST"] += 1
        broken = _request_breach(self.contract, exchange, params)
        if broken is None:
            return
        what, slot = broken
        requirement = _REFUSAL_REQUIREMENT.get((operation, slot)) or _REFUSAL_REQUIREMENT.get(("*", slot), "RC-25")
        self._report(
            "P-REQUEST",
            f"{operation} {what}",
            f"{operation} carried out a request the contract refuses",
            f"{brief(exchange)}: {what}; a request that breaks the contract's request schema, or has no valid "
            "key, is refused with a 4xx and never carried out.",
            [exchange],
            requirement=requirement,
        )

    def _kind(self, exchange: Exchange, path_id: str) -> None:
        """A write that names, where one kind of id goes, an id this run knows as another kind (P-KIND):
        a backup of this run as a reset's VM or a create's vm_id, one of the VMs this run backed up as
        the backup of a restore, delete or series delete. An id of another kind names nothing."""
        operation, status = exchange.operation_id or "", exchange.status
        if status is None:
            return
        named = _unreserved(unquote(path_id)).lower()
        if operation == "createBackup":
            sent = exchange.request_body if isinstance(exchange.request_body, dict) else {}
            named = str(sent.get("vm_id", "")).lower()
        if operation in ("resetBackupChain", "createBackup"):
            known = self._known.get(named)
            if known is None:
                return
            what = f"backup {known.id}, which this run created on VM {known.vm}"
            evidence = [known.created, exchange]
        elif operation in ("deleteBackup", "deleteBackupChain", "restoreBackup"):
            backed_up = next((k for k in self._known.values() if k.vm == named), None)
            if backed_up is None:
                return
            what = f"VM {named}, of which this run created backup {backed_up.id}"
            evidence = [backed_up.created, exchange]
        else:
            return
        self.judged["P-KIND"] += 1
        # Taken (2xx), or refused for the state of the resource it took the id for (409: "busy"): either
        # way the server found something by an id that names nothing of that kind.
        if 200 <= status < 300 or (status == 409 and operation != "createBackup"):
            slot = "the VM" if operation in ("resetBackupChain", "createBackup") else "the backup"
            self._report(
                "P-KIND",
                f"{operation} {named}",
                f"{operation} took an id of another kind as {slot}",
                f"{brief(exchange)} names, as {slot}, {what}: no such resource has that id, yet it answered "
                f"{status}{' (taken)' if status < 300 else ' (found, but busy)'}.",
                evidence,
                # A reset of what is no VM is RC-02's (an unknown VM UUID answers 404); the other writes
                # break P-IDENTITY's rule that an id of another kind names nothing (RC-17).
                requirement=None if operation == "resetBackupChain" else "RC-17",
            )

    def _found(self, exchange: Exchange, backup_id: str) -> None:
        """getBackup of a backup the run listed (found) or deleted (gone)."""
        if exchange.status == 200:
            self._after_delete(exchange, backup_id)
        listed = self._listed.get(backup_id)
        known = self._known.get(backup_id)
        if listed is None or (known is not None and known.deleted_by is not None):
            return
        changes, key, project, listing = listed
        if known is not None and known.key != key:
            return  # the run's backup listed to another key: that listing is P-SCOPE's finding, a 404 here is right
        same_scope = key is not None and key == _key(exchange) and project == _project(exchange)
        if changes != self._changes or not same_scope:
            return  # it may be gone since, or this request asked in another scope (a 404 is right there)
        self.judged["P-FOUND"] += 1
        if exchange.status == 200:
            return
        self._report(
            "P-FOUND",
            f"{backup_id} 404",
            "a listed backup is not found by getBackup",
            f"a listing showed backup {backup_id}, and no request that could remove a backup (nor a reset) was "
            "sent since; "
            f"{brief(exchange)}.",
            [listing, exchange],
        )

    def _after_delete(self, exchange: Exchange, backup_id: str) -> None:
        known = self._known.get(backup_id)
        if known is None or known.deleted_by is None:
            return
        self.judged["P-FOUND"] += 1
        deleted_with = known.deleted_by.operation_id
        self._report(
            "P-FOUND",
            f"{backup_id} after delete",
            "a deleted backup is still found",
            f"{deleted_with} of {backup_id} answered 200; {brief(exchange)} still finds it.",
            [known.deleted_by, exchange],
            # "answers 404 right after a delete's 200" is RC-24's statement, word for word, for both deletes
            # (whether the series delete removed the rest of its series is RC-15's, judged on the listings).
            requirement=LIFETIME_REQUIREMENT,
        )

    def _deleted(self, backup_id: str, exchange: Exchange) -> None:
        known = self._known.get(backup_id)
        if known is not None:
            known.deleted_by = exchange
        self._listed.pop(backup_id, None)

    # -- bookkeeping ---------------------------------------------------------------------------

    def _path_params(self, exchange: Exchange) -> dict[str, str] | None:
        if exchange.operation_id is None:
            return None
        match = self.contract.operation(exchange.operation_id).pattern.fullmatch(urlsplit(exchange.url).path)
        if match is None or not all(_one_segment(value) for value in match.groupdict().values()):
            return None
        return match.groupdict()

    def _report(
        self, pid: str, key: str, title: str, message: str, exchanges: list[Exchange], requirement: str | None = None
    ) -> None:
        """A violation of property ``pid``, under its requirement unless the breach is another's own rule."""
        if (pid, key, title) in self._reported:
            return
        self._reported.add((pid, key, title))
        prop = self.properties[pid]
        self.findings.append(
            Finding(
                "violation",
                requirement or prop.requirement,
                exchanges[-1].operation_id,
                pid,
                f"{pid}: {title}",
                f"{message} {pid}: {prop.statement}",
                "high",
                list(exchanges),
            )
        )

    def stats(self) -> dict[str, dict[str, int]]:
        """Per property: exchanges judged and violations found (for the report)."""
        found = Counter(f.check for f in self.findings)
        return {pid: {"judged": self.judged[pid], "violations": found[pid]} for pid in self.properties}


LIFETIME_REQUIREMENT = "RC-24"  # a backup exists from its create to its delete
UNRESERVED = frozenset("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-._~")
UNRESERVED_ESCAPE = re.compile(r"%([0-9A-Fa-f]{2})")
UUID_TEXT = re.compile(r"[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}")
# Fields of a record that may move by themselves while a backup is in progress (no write needed).
MOVING_FIELDS = ("status", "storage_size", "price_per_hour", "increment_id", "expire_date")  # P-STABLE judges them


WRITE_METHODS = frozenset({"POST", "PUT", "PATCH", "DELETE"})
# Answers that say the request itself is wrong (malformed, unauthenticated, forbidden, naming nothing):
# none is right for a request the RFCs call the same as one that was just taken.
SPELLING_REFUSALS = frozenset({400, 401, 403, 404, 422})
# Which requirement states the refusal P-REQUEST judges: reset-chain has one per input; a key is RC-13's
# on every operation (as Schemathesis' ignored_auth, fuzz_checks.requirement_for); the rest is RC-25's.
_REFUSAL_REQUIREMENT = {
    ("resetBackupChain", "X-Project-ID absent"): "RC-03",
    ("resetBackupChain", "X-Project-ID"): "RC-04",
    ("resetBackupChain", "path id"): "RC-05",
    ("*", "key"): "RC-13",
}
_SCHEMA_CHECKER = jsonschema.FormatChecker()  # uuid, date-time, ... as the contract's formats name them


def _request_breach(contract: Contract, exchange: Exchange, params: dict[str, str]) -> tuple[str, str] | None:
    """What of this request the contract refuses, and which slot it is in; None when it keeps the
    contract as far as a server could tell. Judged only where the reading is unambiguous: a repeated
    header (RFC 9110 §5.3 lets a server take or refuse it) and a body not labelled JSON (a server may
    parse it leniently) are left alone."""
    raw = exchange.raw_request
    if raw is not None:
        keys = raw.headers.get_list("x-api-key")
        if not keys:
            return "no X-API-Key", "key"
        if len(keys) == 1 and keys[0].startswith(FAKE_KEY_PREFIX):
            return "an X-API-Key never issued", "key"
    definition = contract.operation(exchange.operation_id or "").definition
    query = parse_qs(urlsplit(exchange.url).query, keep_blank_values=True)
    for parameter in (contract.resolve(p) for p in definition.get("parameters", [])):
        name, where, schema = parameter.get("name", ""), parameter.get("in"), parameter.get("schema", {})
        if where == "header":
            value = header_value(exchange.request_headers, name)
            slot = name
        elif where == "path":
            value, slot = unquote(params.get(name, "")) or None, "path id"
        elif where == "query":
            values = query.get(name)
            if values is not None and len(values) != 1:
                continue
            value, slot = (values[0] if values else None), name
            if value is not None and schema.get("type") == "integer":
                try:
                    value = int(value)  # a query value is text; its schema speaks of the number
                except ValueError:
                    return f"{name} {value!r} is not an integer", slot
        else:
            continue
        if value is None:
            if parameter.get("required"):
                return f"the required {where} parameter {name} is absent", f"{slot} absent"
            continue
        if isinstance(value, str) and "," in value and where == "header":
            continue
        error = jsonschema.exceptions.best_match(
            jsonschema.Draft4Validator(schema, format_checker=_SCHEMA_CHECKER).iter_errors(value)
        )
        if error is not None:
            return f"{where} parameter {name} {value!r}: {error.message}", slot
    body_spec = contract.resolve(definition.get("requestBody") or {})
    schema = ((body_spec.get("content") or {}).get("application/json") or {}).get("schema")
    if schema is None:
        return None
    sent_type = media_type(header_value(exchange.request_headers, "content-type"))
    body = exchange.request_body
    if body is None:
        return ("the required JSON body is absent", "body") if body_spec.get("required") else None
    if sent_type != "application/json":
        return None
    if isinstance(body, str):
        try:
            body = json.loads(body)
        except ValueError:
            return "the body labelled application/json is not JSON", "body"
    error = jsonschema.exceptions.best_match(
        jsonschema.Draft4Validator(contract.resolve_deep(schema), format_checker=_SCHEMA_CHECKER).iter_errors(body)
    )
    if error is not None:
        where = "/".join(str(part) for part in error.absolute_path) or "(root)"
        return f"the JSON body at {where}: {error.message}", "body"
    return None


def _refused_content(exchange: Exchange) -> str | None:
    """Why HTTP itself allows this refusal of the request's content, or None: 413 for content larger
    than the server is willing to take (RFC 9110 §15.5.14), 415 for content in a media type it does not
    take (§15.5.16). Only where the request sent content, and for 415 not in JSON."""
    if exchange.request_body is None:
        return None
    sent_type = media_type(header_value(exchange.request_headers, "content-type"))
    if exchange.status == 413:
        return "RFC 9110 §15.5.14 gives 413 to content larger than the server is willing to process"
    if exchange.status == 415 and sent_type != "application/json":
        return f"RFC 9110 §15.5.16 gives 415 to content in a media type it does not take ({sent_type or 'none'})"
    return None


def _lower_uuids(text: str) -> str:
    return UUID_TEXT.sub(lambda m: m.group(0).lower(), text)


def _unreserved(text: str) -> str:
    """Percent-encoded unreserved characters decoded (RFC 3986 §2.3, §6.2.2.2: the same URI)."""
    return UNRESERVED_ESCAPE.sub(lambda m: chr(int(m.group(1), 16)) if chr(int(m.group(1), 16)) in UNRESERVED
                                 else m.group(0), text)


def _repeated_fields(exchange: Exchange) -> bool:
    """Whether the request as sent repeated a field line (two X-Project-ID lines, say)."""
    if exchange.raw_request is None:
        return False
    names = [name.lower() for name, _ in exchange.raw_request.headers.multi_items()]
    return len(names) != len(set(names))


def _canonical(exchange: Exchange) -> tuple[Any, ...]:
    """A read as the RFCs see it: UUIDs in any case (RFC 9562 §4), header names in any case
    (RFC 9110 §5.1), query parameters in any order and form-decoded. Two reads with one key name
    the same thing. A path with a percent-encoded unreserved character is kept apart: RFC 3986 §2.3
    calls it the same URI but tells producers not to make one, and common routers match the raw path."""
    parts = urlsplit(exchange.url)
    path = _lower_uuids(parts.path)
    query = tuple(sorted((k, _lower_uuids(v)) for k, vs in
                         parse_qs(parts.query, keep_blank_values=True).items() for v in vs))
    # The key as sent (the recorded one is redacted, so two different keys would look alike).
    sent = exchange.raw_request.headers if exchange.raw_request is not None else exchange.request_headers
    headers = tuple(sorted(
        (name.lower(), value.lower() if name.lower() == "x-project-id" else hash(value))
        for name, value in dict(sent).items()
        if name.lower() in ("x-api-key", "x-project-id")
    ))
    return (exchange.method.upper(), path, query, headers)


def _spelled(exchange: Exchange) -> str:
    """How a request was spelled, apart from what it names: the raw path and query, header names,
    the X-Project-ID value and Content-Type as sent."""
    parts = urlsplit(exchange.url)
    names = ",".join(sorted(name for name in exchange.request_headers if name.lower() in ("x-api-key", "x-project-id")))
    project = header_value(exchange.request_headers, "x-project-id") or ""
    content_type = header_value(exchange.request_headers, "content-type") or ""
    body = exchange.request_body if isinstance(exchange.request_body, dict) else {}
    return f"{parts.path}?{parts.query} [{names}] {project} {content_type} {body.get('vm_id', '')}".strip()


def _id_spelled(exchange: Exchange, path_id: str) -> str:
    """How a request spelled the resource it names, whatever the operation: the path id as sent,
    the credential header names, and X-Project-ID as sent."""
    names = ",".join(sorted(name for name in exchange.request_headers if name.lower() in ("x-api-key", "x-project-id")))
    project = header_value(exchange.request_headers, "x-project-id") or ""
    return f"{path_id} [{names}] {project}".strip()


def _comparable(status: int | None, body: Any) -> Any:
    """What two answers to the same read must share: the status and, for a JSON answer, its data
    (a listing as a set by id, since its order is undocumented), leaving out what moves by itself."""
    if not isinstance(body, dict) or status is None or not 200 <= status < 300:
        return status

    def settled(record: Any) -> Any:
        if isinstance(record, dict):
            return {k: v for k, v in record.items() if k not in MOVING_FIELDS}
        return record

    def text(value: Any) -> str:  # UUIDs as the same UUID, whatever case the server echoes them in
        return _lower_uuids(repr(value))

    data = body.get("data")
    if isinstance(data, list):
        records = sorted((str(r.get("id")).lower(), text(settled(r))) for r in data if isinstance(r, dict))
        return (status, body.get("total"), tuple(records))
    return (status, text(settled(data)))


def _one_segment(value: str) -> bool:
    """A path parameter that stays one path segment (RFC 3986 §3.3, §5.2.4): not empty, not a dot
    segment, no slash once percent-decoded. Anything else may route elsewhere, or nowhere."""
    decoded = unquote(value)
    return decoded not in ("", ".", "..") and "/" not in decoded


def _is_uuid(value: str) -> bool:
    return UUID_TEXT.fullmatch(value) is not None


def _same(name: str, a: Any, b: Any) -> bool:
    """Equal values; two date-times are equal when they name the same instant (RFC 3339 has many spellings)."""
    if name == "created_at" and instant(a) is not None and instant(b) is not None:
        return instant(a) == instant(b)
    return bool(a == b)


def brief(exchange: Exchange) -> str:
    """The request in short, without scheme and host: ``GET /api/v1/backups?vm_id=… -> 200``."""
    parts = urlsplit(exchange.url)
    query = f"?{parts.query}" if parts.query else ""
    return f"{exchange.method} {parts.path}{query} -> {exchange.error or exchange.status}"


def _records(operation: str, status: int, body: Any) -> list[dict[str, Any]]:
    """The backup records an answer shows: one for create/get/restore, a page's for a listing."""
    if not 200 <= status < 300 or not isinstance(body, dict):
        return []
    data = body.get("data")
    if operation in ("createBackup", "getBackup", "restoreBackup") and isinstance(data, dict):
        return [data]
    if operation == "listBackups" and isinstance(data, list):
        return [record for record in data if isinstance(record, dict)]
    return []


def _key(exchange: Exchange) -> int | None:
    """The X-API-Key as sent, hashed (the recorded one is redacted; two keys must not look alike)."""
    if exchange.raw_request is None:
        return None  # sent by Schemathesis: only the redacted key was kept
    # A repeated field line of one value is that value; of two values, no one key (RFC 9110 §5.3).
    values = set(exchange.raw_request.headers.get_list("x-api-key"))
    return hash(values.pop()) if len(values) == 1 else None


def _made_up_key(exchange: Exchange) -> bool:
    """The request carried one of the suite's own fake keys (never issued to any account)."""
    keys = exchange.raw_request.headers.get_list("x-api-key") if exchange.raw_request is not None else []
    return any(key.startswith(FAKE_KEY_PREFIX) for key in keys)


def _project(exchange: Exchange) -> str | None:
    value = header_value(exchange.request_headers, "x-project-id")
    return value.lower() if value else None


def server_date(exchange: Exchange) -> datetime | None:
    """The server's clock when it answered: the Date header, parsed (RFC 9110 §6.6.1)."""
    value = exchange.response_header("date")
    try:
        return parsedate_to_datetime(value) if value else None
    except (TypeError, ValueError):
        return None


def instant(value: Any) -> datetime | None:
    """An RFC 3339 date-time with its offset, parsed; None for anything else (a time without a zone)."""
    if not isinstance(value, str):
        return None
    try:
        parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None
    return parsed if parsed.tzinfo is not None else None


def _int(values: list[str] | None, default: int) -> int | None:
    if not values:
        return default
    try:
        return int(values[-1])
    except ValueError:
        return None
