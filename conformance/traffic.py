"""Judging recorded traffic: a HAR 1.2 capture held to the contract, the properties and the
requirements, with no request sent (``raff-conformance traffic CAPTURE.har``).

Each entry becomes an ``Exchange`` and goes, in the order the capture proves, through the judge a
live run uses (``conformance.judge``) and the requirement checks for captures
(``conformance.capture_checks``). What the capture cannot prove is not judged:

- **Order.** Entries are sorted by ``startedDateTime`` (HAR lets a writer store them in any order).
  Two exchanges whose times overlap, one of them a write, have no known order: a violation that
  depends on order and whose evidence spans such an exchange is inconclusive, naming the pair.
- **Missing parts.** A response body absent (no ``content.text``), cut (``content.size`` larger than
  the text, a ``comment`` on the content) or a request body absent leaves the exchange judged on its
  status alone; a violation that needs the missing part is inconclusive.
- **Stripped credentials.** Browsers export HAR without ``Authorization``, ``Cookie`` and often the
  API key: a request whose key is not in the capture is never a breach for lacking one.
- **Other traffic.** Paths the contract does not speak about are counted and listed, not judged.
  Writes the capture's main client did not make (another client in the capture, or a backup that
  appeared or vanished with no captured request behind it) make the verdicts they touch
  inconclusive, as in a live run on a shared VM.

The capture is read as a stream (``ijson``): memory grows with what the judge must remember of the
backups, not with the number of entries. Keys, cookies and Authorization values are kept only on
the in-memory request (to tell two keys apart) and redacted from every output.
"""

from __future__ import annotations

import base64
import heapq
import time
from bisect import bisect_left
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import IO, Any
from urllib.parse import parse_qs, parse_qsl, urlsplit

import httpx
import ijson

from conformance import __version__
from conformance.capture_checks import CHECKED, CaptureChecks
from conformance.checks import Finding
from conformance.contract import Contract, load_contract
from conformance.exchange import SAFE_METHODS, SECRET_HEADERS, Exchange, clean_headers, parse_body
from conformance.judge import Judge, instant, server_date
from conformance.results import (
    contract_info,
    coverage,
    excuse_foreign_writes,
    fold_records,
    requirement_rows,
    run_verdict,
)
from conformance.settings import REDACTED
from conformance.state import ForeignWrite, finding_dict

# How many entries may wait to be put in order: a writer that stores entries by their end, or by
# connection, is out of order by about as many entries as were in flight at once.
REORDER_WINDOW = 2048
# Properties whose breach one exchange shows by itself, whatever came before it.
ORDER_FREE = frozenset({"P-CONTRACT", "P-SUCCESS", "P-IDENTITY", "P-FILTERS", "P-REQUEST", "P-KIND",
                        "capture RC-01", "capture RC-14", "capture RC-23"})
# created_at against the capture's own times: clocks differ, and Date has a resolution of a second.
CLOCK_SLACK = timedelta(seconds=60)
CAPTURE_NODEID = "raff-conformance::capture::"  # + the requirement: its checks and properties on the capture
# The operations whose 2xx answers show backups (their records are what the foreign-write watch reads).
BACKUP_ANSWERS = frozenset({"createBackup", "getBackup", "restoreBackup", "listBackups"})
STRIPPED_KEY = "(not in the capture)"


@dataclass
class SentRequest:
    """The request's fields as captured, secrets included, for telling keys apart; never written out.
    (What the judge reads of ``Exchange.raw_request``: a whole httpx.Request per entry costs a third
    of the judging time of a big capture.)"""

    headers: httpx.Headers
    extensions: dict[str, Any] = field(default_factory=dict)


class CaptureError(Exception):
    """The file is not a HAR capture this command can read (said in one line)."""


@dataclass(eq=False)
class Captured(Exchange):
    """An exchange of a capture, with where it stands in it."""

    seq: int = 0  # position in the capture's order (by start)
    started: float = 0.0  # epoch seconds
    ended: float = 0.0
    client: str = ""  # who sent it, as far as the capture tells: key (hashed) and User-Agent
    entry: int = 0  # its index in the file's entries (what a reader finds it by)


@dataclass
class CaptureStats:
    entries: int = 0
    judged: int = 0
    outside: Counter[str] = field(default_factory=Counter)  # "METHOD host/path" -> count
    unreadable: Counter[str] = field(default_factory=Counter)  # why an entry could not be read -> count
    no_response: int = 0
    unknown_parts: Counter[str] = field(default_factory=Counter)
    stripped_keys: int = 0
    overlapping: int = 0
    late: int = 0
    clients: Counter[str] = field(default_factory=Counter)
    origins: Counter[str] = field(default_factory=Counter)  # scheme://host of the judged exchanges
    first: float | None = None
    last: float | None = None
    cut: list[str] = field(default_factory=list)  # why the file ends before its entries do


# -- reading ------------------------------------------------------------------------------------


def read_entries(stream: IO[bytes], cut: list[str] | None = None) -> Iterator[dict[str, Any]]:
    """The entries of a HAR file, one at a time (the file is never held whole).

    A file that ends early (a recorder that was killed) gives the entries before the cut; with ``cut``
    given, why it ends is appended there instead of raised, once at least one entry was read.
    """
    read = 0
    try:
        for entry in ijson.items(stream, "log.entries.item", use_float=True):
            read += 1
            yield entry
    except ijson.JSONError as error:
        if cut is None or read == 0:
            raise CaptureError(f"not a readable HAR file: {str(error).splitlines()[0]}") from error
        cut.append(f"the file ends early, after {read} entries ({str(error).splitlines()[0]})")


def _instant(text: Any) -> float | None:
    moment = instant(text)
    return moment.timestamp() if moment is not None else None


def _pairs(items: Any) -> list[tuple[str, str]]:
    """HAR name/value pairs; HTTP/2 pseudo-headers (``:authority``) are not fields of the request."""
    return [
        (str(item["name"]), str(item.get("value", "")))
        for item in items or []
        if isinstance(item, dict) and isinstance(item.get("name"), str) and not item["name"].startswith(":")
    ]


def to_exchange(entry: dict[str, Any], index: int, operation_of: Any) -> Captured | str:
    """One HAR entry as an Exchange, or why it cannot be one (a reason shown in the report)."""
    request, response = entry.get("request"), entry.get("response")
    if not isinstance(request, dict) or not isinstance(request.get("url"), str) or not request.get("method"):
        return "no request method and URL"
    started = _instant(entry.get("startedDateTime"))
    if started is None:
        return "no startedDateTime with a time zone"
    method, url = str(request["method"]).upper(), request["url"]
    headers = _pairs(request.get("headers"))
    unknown: list[str] = []
    post = request.get("postData")
    request_bytes = b""
    if isinstance(post, dict) and isinstance(post.get("text"), str):
        request_bytes = post["text"].encode("utf-8")
    elif method not in SAFE_METHODS and (request.get("bodySize") or 0) != 0:
        unknown.append("request body")  # sent (or not said), but not in the capture
    names = {name.lower() for name, _ in headers}
    stripped = "x-api-key" not in names
    raw_headers = headers if not stripped else [*headers, ("X-API-Key", STRIPPED_KEY)]
    content_type = next((v for n, v in headers if n.lower() == "content-type"), None)
    if isinstance(post, dict) and not content_type and post.get("mimeType"):
        content_type = str(post["mimeType"])
        raw_headers.append(("Content-Type", content_type))
    try:
        raw = SentRequest(httpx.Headers(raw_headers))
    except (ValueError, TypeError) as error:
        return f"request headers that cannot be read ({type(error).__name__})"
    elapsed = entry.get("time")
    elapsed_s = float(elapsed) / 1000 if isinstance(elapsed, (int, float)) and elapsed >= 0 else 0.0
    status = response.get("status") if isinstance(response, dict) else None
    response_headers = _pairs(response.get("headers")) if isinstance(response, dict) else []
    exchange = Captured(
        operation_id=operation_of(method, url),
        method=method,
        url=url,
        request_headers=clean_headers(dict(headers)),
        request_body=parse_body(request_bytes, content_type),
        status=status if isinstance(status, int) and status > 0 else None,
        response_headers=clean_headers(_joined(response_headers)),
        elapsed_s=round(elapsed_s, 4),
        error=None if isinstance(status, int) and status > 0 else "no response in the capture",
        raw_request=raw,  # type: ignore[arg-type]
        started=started,
        ended=started + elapsed_s,
        client=f"{hash(raw.headers.get('x-api-key'))}|{raw.headers.get('user-agent', '')}",
        entry=index,
    )
    if exchange.status is not None:
        body, why = _response_body(entry, response, exchange)
        exchange.response_body = body
        if why:
            unknown.append("response body")
            exchange.response_body = None
            exchange.unknown_why = why  # type: ignore[attr-defined]
    exchange.unknown = tuple(unknown)
    exchange.seen_at = started  # type: ignore[attr-defined]  # the foreign-write rule's clock, as a live run's
    exchange.stripped_key = stripped  # type: ignore[attr-defined]
    return exchange


def _joined(pairs: list[tuple[str, str]]) -> dict[str, str]:
    """Header fields by name; a repeated field is one comma-joined value (RFC 9110 §5.3)."""
    joined: dict[str, str] = {}
    lower: dict[str, str] = {}
    for name, value in pairs:
        if name.lower() in lower:
            first = lower[name.lower()]
            joined[first] = f"{joined[first]}, {value}"
        else:
            lower[name.lower()] = name
            joined[name] = value
    return joined


def _response_body(entry: dict[str, Any], response: dict[str, Any], exchange: Exchange) -> tuple[Any, str | None]:
    """The response body, or why the capture does not hold it whole."""
    content = response.get("content") if isinstance(response.get("content"), dict) else {}
    size = content.get("size")
    text = content.get("text")
    if text is None:
        if size == 0 or exchange.status in (204, 304):
            return None, None
        return None, "the capture holds no response body (HAR content.text absent)"
    if content.get("comment"):
        return None, f"the capture's content carries a comment ({str(content['comment'])[:80]!r}): not taken as whole"
    for where in (entry, response):
        comment = str(where.get("comment") or "")
        if "truncat" in comment.lower():
            return None, f"the capture says the entry is truncated ({comment[:80]!r})"
    if content.get("encoding") == "base64":
        try:
            data = base64.b64decode(str(text), validate=True)
        except ValueError:
            return None, "the capture's base64 body does not decode"
    else:
        data = str(text).encode("utf-8")
    if isinstance(size, (int, float)) and size >= 0 and int(size) != len(data):
        return None, f"the capture's body is cut: content.size {int(size)}, its text holds {len(data)} bytes"
    content_type = exchange.response_header("content-type") or content.get("mimeType")
    return parse_body(data, content_type), None


# -- judging ------------------------------------------------------------------------------------


@dataclass
class CaptureJudge:
    """Feeds a capture's exchanges, in order, to the judge and the requirement checks."""

    contract: Contract
    judge: Judge = field(init=False)
    checks: CaptureChecks = field(init=False)
    stats: CaptureStats = field(default_factory=CaptureStats)
    observed: Counter[tuple[str, int]] = field(default_factory=Counter)
    uncertain: set[int] = field(default_factory=set)  # reads that overlap a write, writes that overlap a write
    late: set[int] = field(default_factory=set)  # entries stored further out of order than the window
    pairs: dict[int, int] = field(default_factory=dict)  # an uncertain exchange -> one it overlaps
    # per operation and status: how many answers came without their body, and the first of them
    bodiless: dict[tuple[str, int], tuple[int, Captured]] = field(default_factory=dict)
    writes: int = 0
    _active: list[Captured] = field(default_factory=list)  # emitted, and not yet ended
    _last_start: float = float("-inf")
    _seq: int = 0
    # writes by clients other than the capture's main one, and backups that appeared or vanished
    # per client: its writes as (entry, started, method, path, status, vm) - small, never the exchanges
    _client_writes: dict[str, list[tuple[int, float, str, str, int, str]]] = field(default_factory=dict)
    _own: set[str] = field(default_factory=set)
    _seen_vm: dict[str, str] = field(default_factory=dict)  # backup id -> vm
    _foreign: dict[tuple[str, str], dict[str, Any]] = field(default_factory=dict)
    _present: dict[str, dict[str, float]] = field(default_factory=dict)  # vm -> backup -> last seen at
    _deleted: set[str] = field(default_factory=set)
    _began: datetime | None = None

    def __post_init__(self) -> None:
        self.judge = Judge(self.contract, judge_scope=False)
        self.checks = CaptureChecks(self.contract)

    def operation_of(self, method: str, url: str) -> str | None:
        operation = self.contract.route(method, urlsplit(url).path)
        return operation.operation_id if operation else None

    def judge_file(self, path: Path) -> None:
        with path.open("rb") as stream:
            self.judge_stream(stream)

    def judge_stream(self, stream: IO[bytes]) -> None:
        waiting: list[tuple[float, int, Captured]] = []
        for index, entry in enumerate(read_entries(stream, self.stats.cut)):
            self.stats.entries += 1
            exchange = to_exchange(entry, index, self.operation_of) if isinstance(entry, dict) else "not an object"
            if isinstance(exchange, str):
                self.stats.unreadable[exchange] += 1
                continue
            heapq.heappush(waiting, (exchange.started, index, exchange))
            if len(waiting) > REORDER_WINDOW:
                self._emit(heapq.heappop(waiting)[2])
        while waiting:
            self._emit(heapq.heappop(waiting)[2])

    def _emit(self, exchange: Captured) -> None:
        """The next exchange in start order: mark what it overlaps, then judge it."""
        exchange.seq = self._seq
        self._seq += 1
        if exchange.started < self._last_start:
            # Further out of order than the window: where it stood among the others is unknown.
            self.stats.late += 1
            self.late.add(exchange.seq)
        self._last_start = max(self._last_start, exchange.started)
        write = exchange.method not in SAFE_METHODS
        self._active = [other for other in self._active if other.ended > exchange.started]
        for other in self._active:
            other_write = other.method not in SAFE_METHODS
            if not write and not other_write:
                continue  # two reads: either order shows the same state
            # A read that overlaps a write may show the state before it or after it; two writes that
            # overlap may have been carried out in either order. A write beside a read is itself in
            # order with everything else: only verdicts that read that read are in doubt.
            for doubtful, partner in ((exchange, other), (other, exchange)):
                if doubtful.method in SAFE_METHODS or partner.method not in SAFE_METHODS:
                    self.uncertain.add(doubtful.seq)
                    self.pairs.setdefault(doubtful.seq, partner.seq)
            if other_write and not write:
                exchange.overlapping_writes = (*getattr(exchange, "overlapping_writes", ()), other.seq)
            self.stats.overlapping += 1
        self._active.append(exchange)
        if len(self._active) > 64:  # a capture with no end times: bound what is compared
            self._active.pop(0)
        self.stats.first = exchange.started if self.stats.first is None else min(self.stats.first, exchange.started)
        self.stats.last = max(self.stats.last or exchange.ended, exchange.ended)
        self._see(exchange, write)

    def _see(self, exchange: Captured, write: bool) -> None:
        if exchange.operation_id is None:
            if self.contract.declared_methods(urlsplit(exchange.url).path):
                self.stats.judged += 1
                self.checks.undeclared_method(exchange)
                self._count(exchange)
                return
            parts = urlsplit(exchange.url)
            self.stats.outside[f"{exchange.method} {parts.netloc}{parts.path}"] += 1
            return
        if exchange.status is None:
            self.stats.no_response += 1
            return
        self.stats.judged += 1
        self.stats.clients[exchange.client] += 1
        parts = urlsplit(exchange.url)
        self.stats.origins[f"{parts.scheme}://{parts.netloc}"] += 1
        for part in exchange.unknown:
            self.stats.unknown_parts[part] += 1
        if "response body" in exchange.unknown:
            n, example = self.bodiless.get((exchange.operation_id, exchange.status), (0, exchange))
            self.bodiless[(exchange.operation_id, exchange.status)] = (n + 1, example)
        if getattr(exchange, "stripped_key", False):
            self.stats.stripped_keys += 1
        if write:
            self.writes += 1
            self._client_writes.setdefault(exchange.client, []).append((
                exchange.entry, exchange.started, exchange.method, urlsplit(exchange.url).path, exchange.status,
                _vm_named(exchange, self._seen_vm)))
        exchange.writes_seen = self.writes
        if self._began is None and (date := server_date(exchange)) is not None:
            self._began = date
        self._count(exchange)
        self.judge.see(exchange)
        self.checks.see(exchange)
        self._watch(exchange)

    def _count(self, exchange: Captured) -> None:
        if exchange.operation_id and exchange.status is not None:
            self.observed[(exchange.operation_id, exchange.status)] += 1

    def _watch(self, exchange: Captured) -> None:
        """Backups that appeared or vanished with no request of the capture behind them."""
        body = exchange.response_body
        status = exchange.status or 0
        if exchange.operation_id in ("deleteBackup", "deleteBackupChain"):
            self._deleted.add(_path_id(exchange.url))
            self._present.clear()  # a series delete removes points it does not name: start again
            return
        if not 200 <= status < 300 or not isinstance(body, dict) or exchange.operation_id not in BACKUP_ANSWERS:
            return  # (getVM's answer is a VM, not a backup)
        data = body.get("data")
        if exchange.operation_id == "createBackup" and isinstance(data, dict) and isinstance(data.get("id"), str):
            self._own.add(data["id"].lower())
        for record in data if isinstance(data, list) else [data] if isinstance(data, dict) else []:
            if not isinstance(record, dict) or not isinstance(record.get("id"), str):
                continue
            backup, vm = record["id"].lower(), str(record.get("product_vm") or "").lower()
            self._seen_vm[backup] = vm
            self._present.setdefault(vm, {})[backup] = exchange.started
            created = instant(record.get("created_at"))
            if backup in self._own or created is None or self._began is None or created < self._began - CLOCK_SLACK:
                continue
            self._foreign.setdefault((backup, "appeared"), _foreign_write(
                backup, vm, "appeared", record, exchange.summary(), exchange.started,
                f"backup {backup} ({record.get('name')!r}, created_at {record.get('created_at')}) on VM {vm} "
                f"appeared with no create in the capture (first shown by entry {exchange.entry}, {exchange.summary()})",
                window_from=min(exchange.started, created.timestamp()) - CLOCK_SLACK.total_seconds(),
            ))
        if exchange.operation_id == "listBackups" and isinstance(data, list) and _whole(body, data, exchange.url):
            wanted = _query_vm(exchange.url)
            listed = {str(r.get("id")).lower() for r in data if isinstance(r, dict)}
            for vm, backups in self._present.items():
                if wanted and vm != wanted:
                    continue
                for backup, last in list(backups.items()):
                    if backup in listed or backup in self._deleted or backup in self._own:
                        continue  # the capture's own backups vanishing is the server's doing (RC-06, RC-24)
                    del backups[backup]
                    self._foreign.setdefault((backup, "vanished"), _foreign_write(
                        backup, vm, "vanished", {}, exchange.summary(), exchange.started,
                        f"backup {backup} on VM {vm} vanished with no delete in the capture (first missing in "
                        f"entry {exchange.entry}, {exchange.summary()})", window_from=last,
                    ))

    # -- verdicts ---------------------------------------------------------------------------------

    def main_client(self) -> str | None:
        return self.stats.clients.most_common(1)[0][0] if self.stats.clients else None

    def foreign_writes(self) -> list[dict[str, Any]]:
        main = self.main_client()
        others = [
            _foreign_write(
                _path_id(path), vm, "another client", {}, f"{method} {path} -> {status}", started,
                f"{method} {path} -> {status} (entry {entry}) was sent by another client of the capture "
                "(another key or User-Agent)", window_from=started,
            )
            for client, writes in self._client_writes.items()
            if client != main
            for entry, started, method, path, status, vm in writes
        ]
        return [*self._foreign.values(), *others]

    def findings(self) -> list[Finding]:
        """Every finding, with the ones the capture cannot prove made inconclusive, and one inconclusive
        finding per operation and status whose answers the capture holds without their body."""
        order = sorted(self.late)
        out = [
            Finding("inconclusive", "RC-14", operation, "capture body",
                    f"{operation} {status}: {n} answer(s) whose body the capture does not hold",
                    f"{getattr(example, 'unknown_why', 'no body')}; entry {example.entry} ({example.summary()}) "
                    f"and {n - 1} more: the contract on their bodies, and every property that reads them, is not "
                    "judged there.",
                    "low", [example], blocked_by="capture")
            for (operation, status), (n, example) in sorted(self.bodiless.items())
        ]
        for finding in [*self.judge.findings, *self.checks.findings]:
            if finding.classification == "violation":
                why = self._unproven(finding, order)
                if why:
                    finding = Finding("inconclusive", finding.requirement, finding.operation, finding.check,
                                      f"not judged, the capture cannot prove it: {finding.title}",
                                      f"{why}. What the check would have said: {finding.message}", "low",
                                      finding.exchanges, blocked_by="capture")
            out.append(finding)
        return out

    def _unproven(self, finding: Finding, order: list[int]) -> str | None:
        captured = [e for e in finding.exchanges if isinstance(e, Captured)]
        for exchange in captured:
            if exchange.unknown and finding.check != "P-CONTRACT":
                return f"entry {exchange.entry} ({exchange.summary()}) lacks its {' and '.join(exchange.unknown)}"
        order_free = finding.check in ORDER_FREE or (finding.check == "P-TOTALS" and len(captured) == 1)
        if order_free or not captured:
            return None
        for exchange in captured:
            if exchange.seq in self.uncertain:
                partner = self.pairs.get(exchange.seq)
                return (f"exchange #{exchange.seq} of the capture (entry {exchange.entry}, {exchange.summary()}) "
                        f"overlaps #{partner} in time, one of them a write: which came first, which this verdict "
                        "depends on, is unknown")
        low, high = min(e.seq for e in captured), max(e.seq for e in captured)
        at = bisect_left(order, low)
        if at < len(order) and order[at] <= high:
            return (f"exchange #{order[at]} stands further out of order in the file than can be put right, "
                    f"within the evidence (#{low}..#{high}): where it stood, which this verdict depends on, is unknown")
        return None


def _foreign_write(backup: str, vm: str, kind: str, record: dict[str, Any], shown_by: str, seen_at: float,
                   description: str, *, window_from: float) -> dict[str, Any]:
    """A write the capture's client did not make, as results.json holds a live run's (state.ForeignWrite),
    told in the capture's words."""
    write = ForeignWrite(backup, vm, kind, record.get("name"), record.get("created_at"), shown_by, seen_at,
                         window_from)
    return {**write.to_dict(), "description": description}


def _path_id(url: str) -> str:
    parts = urlsplit(url).path.split("/")
    return parts[4].lower() if len(parts) > 4 else ""


def _vm_named(exchange: Captured, seen_vm: dict[str, str]) -> str:
    path = urlsplit(exchange.url).path
    if "/vms/" in path:
        return _path_id(exchange.url)
    body = exchange.request_body if isinstance(exchange.request_body, dict) else {}
    if isinstance(body.get("vm_id"), str):
        return body["vm_id"].lower()
    return seen_vm.get(_path_id(exchange.url), "")


def _query_vm(url: str) -> str | None:
    value = (parse_qs(urlsplit(url).query).get("vm_id") or [None])[-1]
    return value.lower() if value else None


def _whole(body: dict[str, Any], data: list[Any], url: str) -> bool:
    query = parse_qs(urlsplit(url).query)
    total = body.get("total")
    return (query.get("offset") or ["0"])[-1] == "0" and isinstance(total, int) and total == len(data)


# -- results ------------------------------------------------------------------------------------


def judge_capture(path: str | Path, *, contract: Contract | None = None) -> dict[str, Any]:
    """Judge a HAR capture; the results in the shape of results.json (``conformance/report/model.py``)."""
    began = time.time()
    capture = Path(path)
    contract = contract or load_contract()
    judge = CaptureJudge(contract)
    judge.judge_file(capture)
    return build_capture_results(judge, capture, began)


def build_capture_results(judge: CaptureJudge, capture: Path, began: float) -> dict[str, Any]:
    contract = judge.contract
    findings = judge.findings()
    stats = judge.judge.stats()
    # One record per requirement the capture exercised: what excuses or blocks one (a foreign write,
    # an overlap) then touches that requirement alone, not every other one judged beside it.
    exercised = (
        {judge.judge.properties[pid].requirement for pid, s in stats.items() if s["judged"]}
        | set(judge.checks.judged)
        | {f.requirement for f in findings if f.requirement}
    )
    records = [
        _record(f"{CAPTURE_NODEID}{requirement}", [requirement], [f for f in findings if f.requirement == requirement])
        for requirement in sorted(exercised)
    ]
    tests, finding_dicts = fold_records(records)
    foreign = judge.foreign_writes()
    excuse_foreign_writes(tests, finding_dicts, foreign, dict(judge._seen_vm))
    requirements = requirement_rows(contract, tests, finding_dicts)
    for row in requirements:
        if row["verdict"] == "not_covered":
            row["reason"] = _not_covered(row["id"])
    results: dict[str, Any] = {
        "schema_version": 1,
        "suite": {"name": "raff-conformance", "version": __version__},
        "target": {"base_url": _hosts(judge), "kind": "capture", "project_id": "", "vm_id": "", "api_key": REDACTED},
        "contract": contract_info(contract),
        "run": {
            "started_at": datetime.fromtimestamp(began).astimezone().isoformat(timespec="seconds"),
            "duration_s": round(time.time() - began, 3),
            "hypothesis_seed": None,
            "hypothesis_profile": "none",
            "strict_spec": False,
            "command": f"raff-conformance traffic {capture}",
            "exit_status": None,
            "interrupted": False,
        },
        "requirements": requirements,
        "tests": tests,
        "findings": finding_dicts,
        "coverage": coverage(contract, judge.observed),
        "property_based": {"operations": {}, "checks": [], "limitations": []},
        "properties": [
            {"id": p.id, "statement": p.statement, "source": p.source, "requirement": p.requirement,
             "judged": stats[p.id]["judged"], "violations": stats[p.id]["violations"]}
            for p in judge.judge.properties.values()
        ],
        "matrix": None,
        "live": {"backups_created": 0, "wait_seconds": 0.0, "leftovers": [], "requests_sent": 0,
                 "sweep_command": None, "kept": [], "left_in_mock": None},
        "sharing": {"run_token": "", "foreign_writes": foreign},
        "capture": _capture_section(judge, capture),
        "comparison": None,
        "baseline": None,
    }
    results["run"]["verdict"] = run_verdict(results)
    results["run"]["exit_status"] = exit_code(results)
    return results


def _record(nodeid: str, requirements: list[str], findings: list[Finding]) -> dict[str, Any]:
    dicts = [finding_dict(f) for f in findings]
    evidence = [e for f in dicts for e in f["exchanges"]][:25]
    violated = any(f["classification"] == "violation" for f in dicts)
    return {
        "nodeid": nodeid,
        "requirements": requirements,
        "when": "call",
        "outcome": "failed" if violated else "passed",
        "duration_s": 0.0,
        "message": "; ".join(f["title"] for f in dicts if f["classification"] == "violation") or None,
        "findings": dicts,
        "exchanges": evidence,
        "attached": len(evidence),
        "hypothesis_seed": None,
    }


def _not_covered(requirement: str) -> str:
    needs = CHECKED.get(requirement)
    return f"the capture holds no {needs}" if needs else "no exchange of the capture exercises it"


def _hosts(judge: CaptureJudge) -> str:
    """Where the judged traffic went: the busiest origin, and how many others there were."""
    if not judge.stats.origins:
        return "recorded traffic"
    (origin, _), *others = judge.stats.origins.most_common()
    return origin + (f" (+{len(others)} more)" if others else "")


def _capture_section(judge: CaptureJudge, capture: Path) -> dict[str, Any]:
    stats = judge.stats
    span = (stats.last - stats.first) if stats.first is not None and stats.last is not None else 0.0
    return {
        "file": capture.name,
        "entries": stats.entries,
        "judged": stats.judged,
        "writes": judge.writes,
        "span_s": round(span, 3),
        "unreadable": dict(stats.unreadable),
        "no_response": stats.no_response,
        "outside_contract": [{"request": k, "count": n} for k, n in stats.outside.most_common(50)],
        "outside_contract_total": sum(stats.outside.values()),
        "unknown_parts": dict(stats.unknown_parts),
        "stripped_keys": stats.stripped_keys,
        "overlapping_pairs": stats.overlapping,
        "out_of_order": stats.late,
        "clients": len(stats.clients),
        "cut": stats.cut[0] if stats.cut else None,
    }


def _bare_value(part: str) -> str:
    """A credential's value alone: ``sessionid=v`` -> ``v``, ``Bearer v`` -> ``v``."""
    words = part.split("=", 1)[-1].split()
    return words[-1] if words else ""


def exit_code(results: dict[str, Any]) -> int:
    """The exit code of ``raff-conformance traffic``, as a live run's (README, Verdicts)."""
    return {"violation": 1, "inconclusive": 6, "empty": 6, "interrupted": 2}.get(results["run"]["verdict"], 0)


def secrets_of(path: Path) -> list[str]:
    """Every credential value the capture holds (keys, cookies, Authorization), to redact from output."""
    found: set[str] = set()
    with path.open("rb") as stream:
        for entry in read_entries(stream, []):
            request = entry.get("request") if isinstance(entry, dict) else None
            for part in (request, entry.get("response") if isinstance(entry, dict) else None):
                if not isinstance(part, dict):
                    continue
                for name, value in _pairs(part.get("headers")):
                    if name.lower() in SECRET_HEADERS | {"set-cookie"} and len(value.strip()) >= 4:
                        found.add(value.strip())
                        parts = [v.strip() for v in value.replace(";", ",").split(",")]
                        found.update(v for v in parts if len(v) >= 8)
                        found.update(v for v in map(_bare_value, parts) if len(v) >= 8)
                for cookie in part.get("cookies") or []:
                    if isinstance(cookie, dict) and len(str(cookie.get("value", ""))) >= 4:
                        found.add(str(cookie["value"]))
            query = _pairs(request.get("queryString")) if isinstance(request, dict) else []
            if isinstance(request, dict) and isinstance(request.get("url"), str):
                query += parse_qsl(urlsplit(request["url"]).query)
            for name, value in query:
                if any(word in name.lower() for word in ("key", "token", "secret", "auth", "password")) and value:
                    found.add(value)
    return sorted(found, key=len, reverse=True)
