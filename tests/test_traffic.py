"""``raff-conformance traffic``: a HAR capture judged with no request sent, and only for what it proves.

Captures are the plain client session of ``tests/captures.py`` against the mock (clean or with a
planted defect), then edited the way real captures differ: entries that overlap in time, bodies a
recorder left out or cut, credentials a browser strips, other sites' traffic, another client's
writes, the file stored out of order or cut short.
"""

from __future__ import annotations

import copy
import json
import socket
from pathlib import Path
from typing import Any

import pytest

from conformance import cli
from conformance.report.model import validate_results
from conformance.traffic import judge_capture
from tests.captures import CANARY_KEY, har_entries, record_session

CANARY_COOKIE = "sessionid=CANARYcookie5Jx8Qw2Lp"
CANARY_BEARER = "Bearer CANARYbearer3Vn7Rt1Zk"
CANARY_QUERY = "CANARYquery9Hs4Md6"


@pytest.fixture(scope="module")
def recorded(tmp_path_factory: pytest.TempPathFactory) -> dict[str, list[dict[str, Any]]]:
    """The session's entries, clean and with the defects these tests plant, recorded once."""
    out = tmp_path_factory.mktemp("captures")
    entries = {}
    for name in ("clean", "closed_points_hidden", "reset_returns_200"):
        path = out / f"{name}.har"
        record_session(path, defects=() if name == "clean" else (name,))
        entries[name] = har_entries(path)
    return entries


def write_har(path: Path, entries: list[dict[str, Any]]) -> Path:
    path.write_text(json.dumps({"log": {"version": "1.2", "creator": {"name": "test", "version": "1"},
                                        "entries": entries}}))
    return path


def verdicts(results: dict[str, Any]) -> dict[str, str]:
    return {row["id"]: row["verdict"] for row in results["requirements"]}


def violated(results: dict[str, Any]) -> set[str]:
    return {req for req, verdict in verdicts(results).items() if verdict == "violation"}


def _index(entries: list[dict[str, Any]], method: str, url_part: str, after: int = -1) -> int:
    return next(i for i, e in enumerate(entries)
                if i > after and e["request"]["method"] == method and url_part in e["request"]["url"])


def _reset_and_next_listing(entries: list[dict[str, Any]]) -> tuple[int, int]:
    reset = _index(entries, "POST", "/reset-chain")
    return reset, _index(entries, "GET", "/api/v1/backups?", reset)


def test_traffic__clean_capture_passes_and_shows_its_coverage(recorded, tmp_path: Path) -> None:
    results = judge_capture(write_har(tmp_path / "c.har", recorded["clean"]))
    assert not violated(results), [f["message"] for f in results["findings"] if f["classification"] == "violation"]
    assert results["run"]["exit_status"] == 0
    assert results["target"]["kind"] == "capture"
    assert validate_results(json.loads(json.dumps(results))) == []  # what the report reads, as it reads it
    observed = {op["operation_id"]: op["observed"] for op in results["coverage"]["operations"]}
    assert observed["resetBackupChain"] == {"202": 1}
    assert observed["deleteBackupChain"] == {"200": 1}
    covered = {req for req, verdict in verdicts(results).items() if verdict == "pass"}
    assert {"RC-01", "RC-06", "RC-07", "RC-08", "RC-09", "RC-14", "RC-15", "RC-17", "RC-18"} <= covered
    # What a plain session never sends (a reset without a key, of another account's VM) is not covered.
    assert verdicts(results)["RC-12"] == verdicts(results)["RC-13"] == "not_covered"


def test_traffic__the_mocks_real_stack_habits_pass(tmp_path: Path) -> None:
    """Compression, a router's plain 404s and the rest of a real stack's habits are no breach."""
    record_session(tmp_path / "real.har", real_stack=True)
    results = judge_capture(tmp_path / "real.har")
    assert not violated(results), [f["message"] for f in results["findings"] if f["classification"] == "violation"]


def test_traffic__a_planted_defect_is_caught_under_its_requirement(recorded, tmp_path: Path) -> None:
    results = judge_capture(write_har(tmp_path / "c.har", recorded["closed_points_hidden"]))
    assert violated(results) == {"RC-06"}
    assert results["run"]["exit_status"] == 1
    finding = next(f for f in results["findings"] if f["classification"] == "violation")
    # The evidence: the listing before the reset, the reset, the listing after it.
    assert [e["request"]["method"] for e in finding["exchanges"]] == ["GET", "POST", "GET"]


def test_traffic__sends_no_request(recorded, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys) -> None:
    har = write_har(tmp_path / "c.har", recorded["closed_points_hidden"])

    def refuse(*args: Any, **kwargs: Any) -> None:
        raise AssertionError(f"the capture judge opened a connection: {args[:2]}")

    monkeypatch.setattr(socket.socket, "connect", refuse)
    monkeypatch.setattr(socket.socket, "connect_ex", refuse)
    monkeypatch.setattr(socket, "create_connection", refuse)
    monkeypatch.setattr(socket, "getaddrinfo", refuse)
    code = cli.main(["traffic", str(har), "--report-dir", str(tmp_path / "out")])
    assert code == 1, capsys.readouterr().out
    assert {p.name for p in (tmp_path / "out").iterdir()} == {"report.html", "junit.xml", "results.json"}


def test_traffic__secrets_in_the_capture_reach_no_output(recorded, tmp_path: Path, capsys) -> None:
    entries = copy.deepcopy(recorded["closed_points_hidden"])
    for entry in entries:
        request, response = entry["request"], entry["response"]
        request["headers"] += [{"name": "Cookie", "value": CANARY_COOKIE},
                               {"name": "Authorization", "value": CANARY_BEARER}]
        request["cookies"] = [{"name": "sessionid", "value": CANARY_COOKIE.split("=")[1]}]
        request["url"] += ("&" if "?" in request["url"] else "?") + f"api_key={CANARY_QUERY}"
        request["queryString"] = [*request.get("queryString", []), {"name": "api_key", "value": CANARY_QUERY}]
        response["headers"].append({"name": "Set-Cookie", "value": f"{CANARY_COOKIE}; HttpOnly"})
    har = write_har(tmp_path / "c.har", entries)
    code = cli.main(["traffic", str(har), "--report-dir", str(tmp_path / "out")])
    printed = capsys.readouterr()
    assert code == 1  # the defect is still caught: evidence is shown, with its secrets redacted
    outputs = {p.name: p.read_text() for p in (tmp_path / "out").iterdir()}
    outputs["terminal"] = printed.out + printed.err
    assert "closed" in outputs["report.html"] or "RC-06" in outputs["report.html"]
    for canary in (CANARY_KEY, CANARY_COOKIE.split("=")[1], CANARY_BEARER.split()[1], CANARY_QUERY):
        leaked = [name for name, text in outputs.items() if canary in text]
        assert not leaked, f"{canary} printed in {leaked}"


def test_traffic__overlapping_exchanges_leave_order_dependent_verdicts_inconclusive(recorded, tmp_path: Path) -> None:
    entries = copy.deepcopy(recorded["closed_points_hidden"])
    reset, _ = _reset_and_next_listing(entries)
    # The reset's answer came only after the listing right after it had started: their order is unknown.
    entries[reset]["time"] = 10_000
    results = judge_capture(write_har(tmp_path / "c.har", entries))
    assert verdicts(results)["RC-06"] == "inconclusive"
    assert "RC-06" not in violated(results)
    blocked = next(f for f in results["findings"] if f["requirement"] == "RC-06")
    assert "overlaps" in blocked["message"] and "unknown" in blocked["message"]
    assert results["capture"]["overlapping_pairs"] >= 1
    assert results["run"]["exit_status"] == 6


def test_traffic__overlap_leaves_a_breach_one_answer_shows(recorded, tmp_path: Path) -> None:
    entries = copy.deepcopy(recorded["reset_returns_200"])
    reset, _ = _reset_and_next_listing(entries)
    entries[reset]["time"] = 10_000
    results = judge_capture(write_har(tmp_path / "c.har", entries))
    # A 200 where the contract says 202 is the answer's own breach, whatever came before it.
    assert violated(results) == {"RC-01", "RC-14"}


def test_traffic__entries_stored_out_of_order_are_put_in_order(recorded, tmp_path: Path) -> None:
    results = judge_capture(write_har(tmp_path / "c.har", list(reversed(recorded["closed_points_hidden"]))))
    assert violated(results) == {"RC-06"}
    assert results["capture"]["out_of_order"] == 0


@pytest.mark.parametrize("cut", ["absent", "size", "comment"])
def test_traffic__a_missing_or_cut_body_leaves_what_needs_it_inconclusive(recorded, tmp_path: Path, cut: str) -> None:
    entries = copy.deepcopy(recorded["closed_points_hidden"])
    _, listing = _reset_and_next_listing(entries)
    content = entries[listing]["response"]["content"]
    if cut == "absent":
        del content["text"]
    elif cut == "size":
        content["text"] = content["text"][: len(content["text"]) // 2]  # a recorder's limit
    else:
        content["comment"] = "body truncated at 1 KiB"
    results = judge_capture(write_har(tmp_path / "c.har", entries))
    assert "RC-06" not in violated(results)  # its evidence is that listing
    assert not violated(results)
    assert verdicts(results)["RC-14"] == "inconclusive"
    assert results["capture"]["unknown_parts"] == {"response body": 1}
    assert results["run"]["exit_status"] == 6


def test_traffic__credentials_a_browser_strips_are_not_breaches(recorded, tmp_path: Path) -> None:
    entries = copy.deepcopy(recorded["clean"])
    for entry in entries:
        entry["request"]["headers"] = [h for h in entry["request"]["headers"]
                                       if h["name"].lower() not in ("x-api-key", "authorization", "cookie")]
    results = judge_capture(write_har(tmp_path / "c.har", entries))
    # Creates answered 202 with no key in the capture: stripped, not sent without one.
    assert not violated(results), [f["message"] for f in results["findings"] if f["classification"] == "violation"]
    assert results["capture"]["stripped_keys"] == len(entries)


def test_traffic__paths_outside_the_contract_are_counted_not_judged(recorded, tmp_path: Path) -> None:
    entries = copy.deepcopy(recorded["clean"])
    extra = copy.deepcopy(entries[0])
    extra["request"]["url"] = "https://cdn.example.com/app.js"
    extra["response"]["status"] = 500  # judged, this would be a violation
    listing = copy.deepcopy(entries[1])
    listing["request"]["url"] = listing["request"]["url"].split("/api/")[0] + "/api/v1/vms"
    results = judge_capture(write_har(tmp_path / "c.har", [extra, listing, *entries]))
    assert not violated(results)
    outside = {row["request"]: row["count"] for row in results["capture"]["outside_contract"]}
    assert outside.get("GET cdn.example.com/app.js") == 1
    assert any(key.endswith("/api/v1/vms") for key in outside)
    assert results["capture"]["outside_contract_total"] == 2


def test_traffic__another_clients_write_makes_what_it_touches_inconclusive(recorded, tmp_path: Path) -> None:
    entries = copy.deepcopy(recorded["closed_points_hidden"])
    create = copy.deepcopy(entries[_index(entries, "POST", "/api/v1/backups")])
    for header in create["request"]["headers"]:
        if header["name"].lower() == "x-api-key":
            header["value"] = "raff_pub_anotherCLIENTkey000000000000"
    create["request"]["headers"].append({"name": "User-Agent", "value": "backup-schedule/2.1"})
    results = judge_capture(write_har(tmp_path / "c.har", [*entries[:2], create, *entries[2:]]))
    assert verdicts(results)["RC-06"] == "inconclusive"
    blocked = next(f for f in results["findings"] if f["requirement"] == "RC-06")
    assert "another client" in blocked["message"]
    assert results["capture"]["clients"] == 2
    assert validate_results(json.loads(json.dumps(results))) == []
    # The one write by someone else, and nothing the session's own reads show (getVM's answer is no backup).
    assert [w["kind"] for w in results["sharing"]["foreign_writes"]] == ["another client"]
    # Only what the write touches: the reset's own answer (RC-01) is judged as ever.
    assert verdicts(results)["RC-01"] == "pass"


def test_traffic__a_backup_that_appears_with_no_create_makes_its_vm_inconclusive(recorded, tmp_path: Path) -> None:
    entries = copy.deepcopy(recorded["closed_points_hidden"])
    reset, _ = _reset_and_next_listing(entries)
    # A schedule's backup, created meanwhile, shows up in the VM's whole listing right before the reset.
    page = entries[max(i for i in range(reset) if entries[i]["request"]["url"].endswith(
        entries[reset]["request"]["url"].split("/vms/")[1].split("/")[0]))]
    data = json.loads(page["response"]["content"]["text"])
    ghost = dict(data["data"][0], id="0000dead-0000-4000-8000-00000000beef", name="daily-schedule")
    data["data"].append(ghost)
    data["total"] = len(data["data"])
    text = json.dumps(data)
    page["response"]["content"].update(text=text, size=len(text.encode()))
    results = judge_capture(write_har(tmp_path / "c.har", entries))
    assert verdicts(results)["RC-06"] == "inconclusive"
    assert any("appeared with no create" in w["description"] for w in results["sharing"]["foreign_writes"])


def test_traffic__a_file_cut_short_is_judged_up_to_the_cut(recorded, tmp_path: Path) -> None:
    har = write_har(tmp_path / "c.har", recorded["closed_points_hidden"])
    text = har.read_text()
    har.write_text(text[: int(len(text) * 0.9)])
    results = judge_capture(har)
    assert results["capture"]["cut"] and "ends early" in results["capture"]["cut"]
    assert violated(results) == {"RC-06"}


@pytest.mark.parametrize("content", [None, "not json", '{"log": {"entries": []}}'])
def test_traffic__a_file_that_is_no_capture_is_wrong_settings(tmp_path: Path, content: str | None, capsys) -> None:
    path = tmp_path / "c.har"
    if content is not None:
        path.write_text(content)
    assert cli.main(["traffic", str(path), "--report-dir", str(tmp_path / "out")]) == 4
    line = capsys.readouterr().err.strip()
    assert line.startswith("raff-conformance traffic: CAPTURE") and "\n" not in line


@pytest.mark.parametrize(("status", "allow", "verdict"), [
    (405, "GET, DELETE", "pass"),
    (200, None, "violation"),  # carried out
    (405, None, "violation"),  # RFC 9110 §15.5.6: a 405 MUST carry Allow
    (405, "GET, PUT, DELETE", "violation"),  # lists a method the path does not declare
])
def test_traffic__a_method_the_path_does_not_declare(recorded, tmp_path: Path, status: int, allow: str | None,
                                                     verdict: str) -> None:
    entries = copy.deepcopy(recorded["clean"])
    get = copy.deepcopy(entries[_index(entries, "GET", "/api/v1/backups/")])
    get["request"]["method"] = "PUT"
    get["response"]["status"] = status
    get["response"]["headers"] = [h for h in get["response"]["headers"] if h["name"].lower() != "allow"]
    if allow is not None:
        get["response"]["headers"].append({"name": "Allow", "value": allow})
    results = judge_capture(write_har(tmp_path / "c.har", [*entries, get]))
    assert verdicts(results)["RC-23"] == verdict
    assert violated(results) == ({"RC-23"} if verdict == "violation" else set())
