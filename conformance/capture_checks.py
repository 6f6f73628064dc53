"""Requirement checks over recorded traffic: what a capture of someone else's session shows of the
reset's rules (RC-01, RC-06, RC-07, RC-08, RC-09, RC-10, RC-15, RC-16, RC-23, RC-24, RC-31).

A live run proves these with the scenario it drives; a capture was driven by somebody else, so each
check waits for the shape of traffic that shows its rule and judges only that: a reset between two
listings of the same view with nothing else written between them shows RC-06 and RC-09; a series
delete between two such listings shows RC-15 or RC-31; a delete of a point that the listing right
before it shows later points depending on shows RC-16. Every expectation is read from what the
server itself showed right before the step (its listing, its increment_ids), never from what a
script meant to do. The judge (``conformance.judge``) holds the same exchanges to the properties;
this module adds the requirement statements no single property states.

It sees exchanges in the order the capture proves (``conformance.traffic`` sorts them and says which
overlap); a violation it finds through exchanges whose order is unknown is made inconclusive there.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qs, unquote, urlsplit

from conformance.checks import Finding, json_value
from conformance.contract import Contract
from conformance.exchange import SAFE_METHODS, Exchange, header_value
from conformance.judge import UUID_TEXT, brief

# The requirements these checks judge, and what each needs a capture to show.
CHECKED = {
    "RC-01": "a reset answered 2xx",
    "RC-06": "listings of one view right before and right after an accepted reset, nothing else written between",
    "RC-07": "a restore of a ready point of a closed series, nothing of its VM in flight",
    "RC-08": "two backups created one after the other after a reset, both with their increment_id shown",
    "RC-09": "listings of another VM right before and after a reset, or that VM's next backup after it",
    "RC-10": "two resets of one VM with no backup between",
    "RC-15": "listings right before and after a series delete of a closed series",
    "RC-16": "a delete of a point whose series, as listed right before, holds later points",
    "RC-23": "a method the contract does not declare for its path",
    "RC-24": "a getBackup right after the create that made it",
    "RC-31": "listings right before and after a series delete of the open series",
}


@dataclass
class _Listing:
    """A complete listing: every backup its query matches, by VM."""

    exchange: Exchange
    writes: int  # the capture's write count when it was taken
    by_vm: dict[str, dict[str, dict[str, Any]]]  # vm -> backup id -> record
    vm_filter: str | None


# How many backups the checks remember (the judge's KNOWN_LIMIT, for the same reason).
REMEMBERED = 1024


@dataclass(eq=False)
class _Create:
    id: str
    vm: str
    exchange: Exchange
    epoch: int  # accepted resets of its VM before it
    first_after_reset: bool
    other_resets: int  # accepted resets of other VMs before it
    increment: Any = None
    increment_seen: Exchange | None = None
    previous: _Create | None = None  # the VM's create before it


@dataclass
class CaptureChecks:
    contract: Contract
    findings: list[Finding] = field(default_factory=list)
    judged: Counter[str] = field(default_factory=Counter)
    _writes: int = 0
    _listings: dict[tuple[Any, ...], _Listing] = field(default_factory=dict)  # per view: the last complete one
    _before: dict[tuple[Any, ...], _Listing] = field(default_factory=dict)  # per view: the one before the last write
    _last_write: Exchange | None = None
    _history: list[tuple[Exchange, dict[tuple[Any, ...], _Listing]]] = field(default_factory=list)  # last 2 writes
    _epochs: Counter[str] = field(default_factory=Counter)
    _other_resets: int = 0
    _last_reset: dict[str, tuple[Exchange, int]] = field(default_factory=dict)  # vm -> (reset, creates since)
    _creates: dict[str, _Create] = field(default_factory=dict)
    # backup id -> the order the capture created it in, and the accepted resets of its VM before it
    _made: dict[str, tuple[int, int]] = field(default_factory=dict)
    _made_count: int = 0
    _by_vm: dict[str, list[_Create]] = field(default_factory=dict)
    _status: dict[str, str] = field(default_factory=dict)  # backup id -> status last shown
    _shown_at: dict[str, int] = field(default_factory=dict)  # backup id -> the write count when last shown
    _vm_of: dict[str, str] = field(default_factory=dict)  # backup id -> product_vm shown
    _restoring: set[str] = field(default_factory=set)  # VMs with a restore accepted and not seen done
    _deleted: set[str] = field(default_factory=set)
    # backup id -> a getBackup that answered 404 for it, the write count then, and its scope
    _missing: dict[str, tuple[Exchange, int, tuple[Any, ...]]] = field(default_factory=dict)
    _reported: set[tuple[str, str]] = field(default_factory=set)

    # -- entry points ---------------------------------------------------------------------------

    def undeclared_method(self, exchange: Exchange) -> None:
        """RC-23: a request with a method its path (one of the contract's) does not declare."""
        path = urlsplit(exchange.url).path
        declared = self.contract.declared_methods(path)
        if not declared or exchange.status is None or exchange.method.upper() in ("HEAD", "OPTIONS"):
            return  # HEAD follows GET, OPTIONS answers for the resource (RFC 9110 §9.3.2, §9.3.7)
        self.judged["RC-23"] += 1
        allow = header_value(exchange.response_headers, "allow")
        listed = {m.strip().upper() for m in (allow or "").split(",") if m.strip()}
        if 200 <= exchange.status < 300:
            why = f"it answered {exchange.status}: carried out"
        elif exchange.status == 405 and allow is None:
            why = "its 405 has no Allow header (RFC 9110 §15.5.6: a 405 MUST generate one)"
        elif exchange.status == 405 and listed - set(declared) - {"HEAD", "OPTIONS"}:
            why = f"its 405 lists {allow!r}; the path declares {', '.join(declared)}"
        else:
            return
        self._violation("RC-23", f"{exchange.method} {path}", f"{exchange.method} is not declared for its path",
                        f"{brief(exchange)}: the contract declares {', '.join(declared)} for this path, and {why}.",
                        [exchange])

    def see(self, exchange: Exchange) -> None:
        """One exchange the contract speaks about, in the capture's order."""
        operation, status = exchange.operation_id, exchange.status
        if operation is None or status is None:
            return
        params = self._params(exchange)
        body = json_value(exchange.response_body)
        write = exchange.method.upper() not in SAFE_METHODS
        if write:
            self._before = {view: listing for view, listing in self._listings.items() if listing.writes == self._writes}
            self._history = [*self._history[-1:], (exchange, self._before)]
            self._writes += 1
            self._last_write = exchange
        path_id = _id(params.get("id", ""))
        if status == 404 and not exchange.unknown and not exchange.is_json and UUID_TEXT.fullmatch(path_id or "0"):
            self._plain_not_found(exchange)
        if operation == "resetBackupChain":
            self._reset(exchange, path_id, body)
        elif operation == "createBackup" and 200 <= status < 300:
            self._created(exchange, body)
        elif operation == "getBackup":
            self._got(exchange, path_id)
        elif operation == "restoreBackup":
            self._restore(exchange, path_id)
        elif operation == "deleteBackup":
            self._delete(exchange, path_id)
        elif operation == "deleteBackupChain" and status == 200:
            self._deleted.add(path_id)
        if 200 <= status < 300 and isinstance(body, dict):
            data = body.get("data")
            for record in data if isinstance(data, list) else [data] if isinstance(data, dict) else []:
                if isinstance(record, dict):
                    self._record(exchange, record)
        if operation == "listBackups" and status == 200 and isinstance(body, dict):
            self._listing(exchange, body)

    # -- the steps ------------------------------------------------------------------------------

    def _plain_not_found(self, exchange: Exchange) -> None:
        """RC-14: the operation's own 404 (its path names a well-formed id, so it routed) is the
        contract's Error JSON. The judge leaves a plain 404 alone, as a router's answer for a path that
        does not route; here the path is the operation's, with a UUID where its id goes."""
        self.judged["RC-14"] += 1
        self._violation("RC-14", f"{exchange.operation_id} plain 404", f"{exchange.operation_id}'s 404 is not JSON",
                        f"{brief(exchange)} answered with {exchange.media_type or 'no media type'}; the contract's "
                        "404 for this operation is an Error JSON body.", [exchange])

    def _reset(self, exchange: Exchange, vm: str, body: Any) -> None:
        status = exchange.status or 0
        if not 200 <= status < 300:
            previous = self._last_reset.get(vm)
            if previous is not None and previous[1] == 0 and status in (400, 409) and not self._in_flight(vm):
                # RC-10: a second reset before any new backup is harmless (202).
                self.judged["RC-10"] += 1
                self._violation("RC-10", f"{vm} second reset", "a second reset before any new backup is refused",
                                f"{brief(previous[0])} was accepted; nothing of VM {vm} was created since and none of "
                                f"its backups is in flight, yet {brief(exchange)}.", [previous[0], exchange])
            return
        # RC-01: accepted means 202 with a SuccessResponse whose success is true.
        self.judged["RC-01"] += 1
        success = body.get("success") if isinstance(body, dict) else None
        if status != 202 or not exchange.is_json or success is not True:
            shown = f"a {exchange.media_type or 'body-less'} body" if not exchange.is_json else f"success {success!r}"
            self._violation("RC-01", f"{vm} reset answer", "an accepted reset is not 202 with success true",
                            f"{brief(exchange)} with {shown}: a reset the server takes answers 202 and a "
                            "SuccessResponse whose success is true.", [exchange])
        previous = self._last_reset.get(vm)
        if previous is not None and previous[1] == 0:
            self.judged["RC-10"] += 1
        self._epochs[vm] += 1
        self._other_resets += 1
        self._last_reset[vm] = (exchange, 0)

    def _created(self, exchange: Exchange, body: Any) -> None:
        data = body.get("data") if isinstance(body, dict) else None
        sent = exchange.request_body if isinstance(exchange.request_body, dict) else {}
        if not isinstance(data, dict) or not isinstance(data.get("id"), str) or not isinstance(sent.get("vm_id"), str):
            return
        vm = sent["vm_id"].lower()
        if data["id"].lower() in self._creates:
            return  # a second create answered with an earlier one's id: no new point to number
        last = self._last_reset.get(vm)
        first = last is not None and last[1] == 0  # the first backup asked for after the VM's last reset
        if last is not None:
            self._last_reset[vm] = (last[0], last[1] + 1)
        earlier = self._by_vm.setdefault(vm, [])
        others = self._other_resets - self._epochs[vm]
        create = _Create(data["id"].lower(), vm, exchange, self._epochs[vm], first, others)
        create.previous = earlier[-1] if earlier else None
        if create.previous is not None:
            create.previous.previous = None  # one step back is all the series check reads: no chain
        self._creates[create.id] = create
        self._made[create.id] = (self._made_count, create.epoch)
        self._made_count += 1
        earlier.append(create)
        del earlier[:-2]  # the series check looks one create back; in-flight checks at the newest
        for book in (self._creates, self._made, self._status, self._shown_at, self._vm_of):
            while len(book) > REMEMBERED:
                del book[next(iter(book))]
        self._status[create.id] = str(data.get("status"))

    def _got(self, exchange: Exchange, backup_id: str) -> None:
        """RC-24: a backup exists from its create on: getBackup right after the create finds it. Any other
        404 is remembered: a view in the same scope with nothing written since that shows the backup
        proves it was there (RC-17, as P-FOUND has it the other way round)."""
        create = self._creates.get(backup_id)
        if exchange.status == 404 and backup_id not in self._deleted:
            self._missing[backup_id] = (exchange, self._writes, _scope(exchange))
            while len(self._missing) > REMEMBERED:
                del self._missing[next(iter(self._missing))]
        if create is None or backup_id in self._deleted or exchange.status not in (200, 404):
            return
        if _scope(create.exchange) != _scope(exchange) or self._last_write is not create.exchange:
            return  # another key or project, or something was written since the create
        self.judged["RC-24"] += 1
        if exchange.status == 404:
            self._missing.pop(backup_id, None)  # RC-24's breach, counted once
            self._violation("RC-24", f"{backup_id} not found after create", "a backup just created is not found",
                            f"{brief(create.exchange)} announced backup {backup_id}; nothing was written since, and "
                            f"{brief(exchange)}.", [create.exchange, exchange])

    def _restore(self, exchange: Exchange, backup_id: str) -> None:
        """RC-07: a ready point of a closed series stays restorable (202)."""
        status = exchange.status or 0
        vm = self._vm_of.get(backup_id)
        if vm is None:
            return
        busy = self._in_flight(vm) or vm in self._restoring  # a backup or another restore of the VM in flight
        if 200 <= status < 300:
            self._restoring.add(vm)
        create = self._creates.get(backup_id)
        closed = create is not None and self._epochs[vm] > create.epoch
        if not closed or self._status.get(backup_id) != "ready" or backup_id in self._deleted:
            return
        shown_since = self._shown_at.get(backup_id) == self._writes - 1  # (the restore itself is a write)
        if status == 404 and not shown_since:
            return  # not shown since the last write: the server may have removed it by its own rules since
        if busy or create is None or _scope(create.exchange) != _scope(exchange):
            return
        if status in (401, 403, 429) or status >= 500:
            return  # not about the point (a key, a rate limit; a 5xx is the contract's, judged as such)
        self.judged["RC-07"] += 1
        if not 200 <= status < 300:
            reset = self._last_reset[vm][0]
            self._violation("RC-07", f"{backup_id} restore", "a point of a closed series is not restorable",
                            f"backup {backup_id} was created before {brief(reset)} and last shown ready; nothing of "
                            f"VM {vm} is in flight, yet {brief(exchange)}.", [create.exchange, reset, exchange])

    def _delete(self, exchange: Exchange, backup_id: str) -> None:
        """RC-16: a point that later points of its series depend on is not deleted by itself."""
        if exchange.status == 200:
            self._deleted.add(backup_id)
        vm = self._vm_of.get(backup_id)
        listing = self._fresh_before(vm) if vm else None
        if listing is None or exchange.status not in (200, 400, 409):
            return  # (a 404, 401 or 5xx says nothing of dependents; the contract judges those answers)
        series = _series_of(listing.by_vm.get(vm or "", {}), backup_id, self._made)
        if series is None:
            return
        this = listing.by_vm[vm or ""][backup_id]
        later = [r for r in series if _number(r.get("increment_id")) > _number(this.get("increment_id"))]
        if not later:
            return  # nothing depends on it: a plain delete, whatever it answers
        self.judged["RC-16"] += 1
        if exchange.status == 200:
            ids = ", ".join(str(r["id"]) for r in later[:3])
            self._violation("RC-16", f"{backup_id} delete", "a point later points depend on was deleted by itself",
                            f"{brief(listing.exchange)} showed backup {backup_id} (increment_id "
                            f"{this.get('increment_id')}) with later points of its series ({ids}), and nothing was "
                            f"written since; {brief(exchange)}: the delete must be refused with an error pointing "
                            "to the series delete.", [listing.exchange, exchange])

    def _record(self, exchange: Exchange, record: dict[str, Any]) -> None:
        backup_id = str(record.get("id", "")).lower()
        self._shown_at[backup_id] = self._writes
        missing = self._missing.pop(backup_id, None)
        if missing is not None and missing[1] == self._writes and missing[2] == _scope(exchange):
            self.judged["RC-17"] += 1
            self._violation("RC-17", f"{backup_id} not found, then shown",
                            "getBackup does not find a backup a view shows",
                            f"{brief(missing[0])}; with nothing written since, in the same key and project, "
                            f"{brief(exchange)} shows backup {backup_id}: it was there. Every view of one backup "
                            "agrees, and getBackup is one.", [missing[0], exchange])
        if isinstance(record.get("product_vm"), str):
            self._vm_of[backup_id] = record["product_vm"].lower()
        status = record.get("status")
        if isinstance(status, str):
            self._status[backup_id] = status
            if status == "ready" and exchange.operation_id == "getBackup":
                self._restoring.discard(self._vm_of.get(backup_id, ""))
        create = self._creates.get(backup_id)
        increment = record.get("increment_id")
        if create is not None and create.increment_seen is not None and "increment_id" in record:
            self._numbered(create, record, exchange)
        if create is None or create.increment_seen is not None or "increment_id" not in record:
            return
        if increment is None and status != "ready":
            return  # a server may number a point once it is captured
        create.increment, create.increment_seen = increment, exchange
        self._follows(create)

    def _numbered(self, create: _Create, record: dict[str, Any], exchange: Exchange) -> None:
        """RC-17: a point once shown with its increment_id is never shown ready without one. (A change of
        one number to another is the judge's P-STABLE; a missing number it leaves alone, since a server
        may number a point only once it is captured.)"""
        if not isinstance(create.increment, int) or record.get("status") != "ready":
            return
        self.judged["RC-17"] += 1
        if record.get("increment_id") is None and create.increment_seen is not None:
            self._violation("RC-17", f"{create.id} increment null", "a view drops a point's increment_id",
                            f"backup {create.id} has increment_id {create.increment} "
                            f"({brief(create.increment_seen)}); {brief(exchange)} shows it ready with increment_id "
                            "null. Every view of one backup gives the same increment_id.",
                            [create.increment_seen, exchange])

    def _follows(self, create: _Create) -> None:
        """RC-08's second half and RC-09: a backup after another of its series, with no reset of its VM
        between, is numbered one more - after the baseline of a reset (RC-08), and after a reset of
        another VM (RC-09: that reset changed nothing here)."""
        previous = create.previous
        if previous is None:
            return
        if previous.epoch != create.epoch or previous.increment_seen is None or create.increment_seen is None:
            return
        if not isinstance(previous.increment, int) or isinstance(previous.increment, bool):
            return
        if previous.first_after_reset and previous.increment == 0:
            requirement = "RC-08"
        elif create.other_resets > previous.other_resets:
            requirement = "RC-09"
        else:
            return
        self.judged[requirement] += 1
        if create.increment != previous.increment + 1:
            why = ("the backup after a reset's baseline has increment_id 1" if requirement == "RC-08" else
                   "a reset of another VM, accepted between them, must not touch this VM's series")
            self._violation(requirement, f"{create.id} follows", "a backup does not continue its series",
                            f"backup {previous.id} on VM {create.vm} has increment_id {previous.increment} "
                            f"({brief(previous.increment_seen)}); {create.id}, the next backup of the VM with no "
                            f"reset of it between, has {create.increment!r} ({brief(create.increment_seen)}): {why}.",
                            [previous.exchange, create.exchange, create.increment_seen])

    def _listing(self, exchange: Exchange, body: dict[str, Any]) -> None:
        data = body.get("data")
        query = parse_qs(urlsplit(exchange.url).query)
        if not isinstance(data, list) or not _complete(body, data, query):
            return
        vm_filter = (query.get("vm_id") or [None])[-1]
        vm_filter = vm_filter.lower() if vm_filter and UUID_TEXT.fullmatch(vm_filter) else None
        if vm_filter is None and query.get("vm_id"):
            return
        by_vm: dict[str, dict[str, dict[str, Any]]] = {}
        for record in data:
            if not isinstance(record, dict) or not isinstance(record.get("id"), str):
                continue
            if isinstance(record.get("product_vm"), str):
                by_vm.setdefault(record["product_vm"].lower(), {})[record["id"].lower()] = record
        if vm_filter:
            by_vm.setdefault(vm_filter, {})
        view = _view(exchange, query)
        listing = _Listing(exchange, self._writes, by_vm, vm_filter)
        self._listings[view] = listing
        before = self._before.get(view)
        write = self._last_write
        if before is None or write is None or before.writes != self._writes - 1:
            # The last write overlapped this listing in time (``overlapping_writes``, set by whoever knows
            # the times): the listing may have been answered before it, so it may be the one right after
            # the write before. Judged so, its verdict names the overlap and is not a violation.
            overlapped = getattr(exchange, "overlapping_writes", ())
            if len(self._history) < 2 or getattr(self._history[1][0], "seq", None) not in overlapped:
                return  # no listing of this view right before the last write
            write, earlier = self._history[0]
            before = earlier.get(view)
            if before is None or before.writes != self._writes - 2:
                return
        if write.operation_id == "resetBackupChain" and write.status is not None and 200 <= write.status < 300:
            self._across_reset(before, listing, write)
        elif write.operation_id == "deleteBackupChain" and write.status == 200:
            self._across_series_delete(before, listing, write)
        elif write.operation_id == "deleteBackup" and write.status in (400, 409):
            self._across_refused_delete(before, listing, write)

    def _across_reset(self, before: _Listing, after: _Listing, reset: Exchange) -> None:
        vm = _id(self._params(reset).get("id", ""))
        for other, points in before.by_vm.items():
            if other not in after.by_vm or (before.vm_filter is None and not points):
                continue
            requirement = "RC-06" if other == vm else "RC-09"
            if requirement == "RC-06" and before.vm_filter != vm:
                # The VM's own view says whether its points stay; an unfiltered listing that shows them
                # otherwise is two views disagreeing (RC-17), not the reset's doing.
                continue
            shown = after.by_vm[other]
            for backup_id, record in points.items():
                if record.get("status") != "ready":
                    continue  # a point in flight may move on by itself (RC-21 judges that case)
                self.judged[requirement] += 1
                now = shown.get(backup_id)
                changed = [n for n in ("increment_id", "status") if now is not None and now.get(n) != record.get(n)]
                if now is not None and not changed:
                    continue
                what = "is not listed" if now is None else ", ".join(
                    f"{n} {record.get(n)!r} -> {now.get(n)!r}" for n in changed)
                rule = ("restore points that existed before a reset stay listable with the same id, increment_id "
                        "and status" if requirement == "RC-06"
                        else f"a reset of VM {vm} leaves VM {other}'s series as it was")
                self._violation(requirement, f"{backup_id} across reset", "a point changed across a reset",
                                f"backup {backup_id} of VM {other} was listed ready by {brief(before.exchange)}; "
                                f"after {brief(reset)} and nothing else written, {brief(after.exchange)}: it {what}. "
                                f"{rule[0].upper()}{rule[1:]}.", [before.exchange, reset, after.exchange])

    def _across_series_delete(self, before: _Listing, after: _Listing, delete: Exchange) -> None:
        point, vm = self._deleted_point(before, after, delete)
        if vm is None:
            return
        series = _series_of(before.by_vm[vm], point, self._made)
        if series is None:
            return
        ids = {str(r["id"]).lower() for r in series}
        newest = _newest(before.by_vm[vm], self._made)
        open_series = str(newest["id"]).lower() in ids and self._still_open(vm, ids)
        if open_series is None:
            return  # whether the series was open or closed, the capture cannot tell
        requirement = "RC-31" if open_series else "RC-15"
        self.judged[requirement] += 1
        expected = {v: set(points) - ids if v == vm else set(points) for v, points in before.by_vm.items()}
        for other, wanted in expected.items():
            if other not in after.by_vm:
                continue
            got = set(after.by_vm[other])
            removed, kept = sorted(wanted - got), sorted((got - wanted) & ids)
            if not removed and not kept:
                continue
            what = "; ".join(filter(None, [f"removed {', '.join(removed)} too" if removed else "",
                                           f"kept {', '.join(kept)} of the series" if kept else ""]))
            self._violation(requirement, f"{point} series delete {other}",
                            "a series delete did not remove exactly its series",
                            f"{brief(before.exchange)} showed the {'open' if open_series else 'closed'} series of "
                            f"backup {point}: {', '.join(sorted(ids))}; after {brief(delete)} and nothing else "
                            f"written, {brief(after.exchange)} {what}.", [before.exchange, delete, after.exchange])

    def _across_refused_delete(self, before: _Listing, after: _Listing, delete: Exchange) -> None:
        """RC-16: a delete refused because later points depend on the point deletes nothing."""
        point, vm = self._deleted_point(before, after, delete)
        if vm is None:
            return
        gone = sorted(set(before.by_vm[vm]) - set(after.by_vm[vm]))
        self.judged["RC-16"] += 1
        if gone:
            self._violation("RC-16", f"{point} refused delete", "a refused delete deleted something",
                            f"{brief(before.exchange)} showed {', '.join(sorted(before.by_vm[vm]))}; "
                            f"{brief(delete)} refused the delete of {point}, and with nothing else written "
                            f"{brief(after.exchange)} no longer shows {', '.join(gone)}: a refused delete "
                            "deletes nothing.", [before.exchange, delete, after.exchange])

    # -- bookkeeping ------------------------------------------------------------------------------

    def _deleted_point(self, before: _Listing, after: _Listing, delete: Exchange) -> tuple[str, str | None]:
        """The point a delete names, and its VM where both listings show that VM (else None)."""
        point = _id(self._params(delete).get("id", ""))
        vm = next((v for v, points in before.by_vm.items() if point in points), None)
        return point, vm if vm is not None and vm in after.by_vm else None

    def _still_open(self, vm: str, ids: set[str]) -> bool | None:
        """Whether the series holding the VM's newest point is open: one of its points was created in the
        capture after the VM's last reset there (True); the capture saw a reset after it (False)."""
        creates = [self._creates[i] for i in ids if i in self._creates]
        if any(c.epoch < self._epochs[vm] for c in creates):
            return False
        if creates:
            return True
        return None

    def _fresh_before(self, vm: str | None) -> _Listing | None:
        """A complete listing holding the VM's backups, taken right before the current write."""
        return next((listing for listing in self._before.values() if vm in listing.by_vm), None)

    def _in_flight(self, vm: str) -> bool:
        return any(self._status.get(c.id) in ("pending", "creating") and c.id not in self._deleted
                   for c in self._by_vm.get(vm, []))

    def _params(self, exchange: Exchange) -> dict[str, str]:
        if exchange.operation_id is None:
            return {}
        match = self.contract.operation(exchange.operation_id).pattern.fullmatch(urlsplit(exchange.url).path)
        return match.groupdict() if match else {}

    def _violation(self, requirement: str, key: str, title: str, message: str, exchanges: list[Exchange]) -> None:
        if (requirement, key) in self._reported:
            return
        self._reported.add((requirement, key))
        self.findings.append(Finding("violation", requirement, exchanges[-1].operation_id, f"capture {requirement}",
                                     title, message, "high", list(exchanges)))


def _complete(body: dict[str, Any], data: list[Any], query: dict[str, list[str]]) -> bool:
    """The page is the whole listing: from its start, and holding all that total counts (or fewer than asked)."""
    if (query.get("offset") or ["0"])[-1] != "0":
        return False
    total = body.get("total")
    limit = (query.get("limit") or [None])[-1]
    if isinstance(total, int) and not isinstance(total, bool):
        return total == len(data)
    return limit is not None and limit.isdigit() and len(data) < int(limit)


def _view(exchange: Exchange, query: dict[str, list[str]]) -> tuple[Any, ...]:
    """What makes two listings comparable: the same filters, key and project (spelled alike)."""
    filters = tuple(sorted((k, tuple(v)) for k, v in query.items() if k not in ("offset", "limit")))
    return (filters, *_scope(exchange))


def _scope(exchange: Exchange) -> tuple[Any, ...]:
    sent = exchange.raw_request.headers if exchange.raw_request is not None else {}
    key = sent.get("x-api-key") if sent else None
    project = header_value(exchange.request_headers, "x-project-id")
    return (hash(key), (project or "").lower())


def _series_of(
    points: dict[str, dict[str, Any]], backup_id: str, made: dict[str, tuple[int, int]]
) -> list[dict[str, Any]] | None:
    """The series of a point: the VM's points in order of creation, a new series at each increment_id 0.

    The order is created_at's, and where two points share a created_at (it counts seconds), the order
    the capture created them in (``made``: backup id -> that order, and how many resets of its VM the
    capture saw accepted before it). None when it cannot be told: a point without a number or a time
    (a legacy one), a tie the capture did not see made, or numbers that disagree with the resets the
    capture saw (a series that runs across a reset, or restarts without one): that disagreement is the
    numbering's breach (RC-08), judged there, and leaves no series to judge a delete by."""
    if backup_id not in points:
        return None
    records = list(points.values())
    if any(not isinstance(r.get("created_at"), str) or not isinstance(r.get("increment_id"), int) for r in records):
        return None
    times = Counter(str(r["created_at"]) for r in records)
    if any(times[str(r["created_at"])] > 1 and str(r["id"]).lower() not in made for r in records):
        return None
    ordered = sorted(records, key=lambda r: (str(r["created_at"]), made.get(str(r["id"]).lower(), (-1, 0))[0]))
    series: list[list[dict[str, Any]]] = []
    for record in ordered:
        if record["increment_id"] == 0 or not series:
            series.append([])
        series[-1].append(record)
    last_epoch = None
    for run in series:
        epochs = {made[str(r["id"]).lower()][1] for r in run if str(r["id"]).lower() in made}
        if len(epochs) > 1 or (epochs and last_epoch is not None and epochs == {last_epoch}):
            return None
        last_epoch = next(iter(epochs), last_epoch)
    return next(s for s in series if any(str(r["id"]).lower() == backup_id for r in s))


def _newest(points: dict[str, dict[str, Any]], made: dict[str, tuple[int, int]]) -> dict[str, Any]:
    return max(points.values(), key=lambda r: (str(r.get("created_at") or ""), made.get(str(r["id"]).lower(), (-1, 0))))


def _number(value: Any) -> int:
    return value if isinstance(value, int) and not isinstance(value, bool) else -1


def _id(value: str) -> str:
    return unquote(value).lower()


