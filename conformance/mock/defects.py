"""Planted defects: switches that make the mock break one requirement on purpose.

The suite's self-tests run each conformance test against the mock with the matching defect
and expect it to fail; a defect that no test catches shows a hole in the suite. Each defect
names the one requirement (``specs/requirements.yaml``) it breaks.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass


@dataclass(frozen=True)
class Defect:
    name: str
    requirement: str
    description: str


_ALL = (
    # RC-01: a reset of an owned VM answers 202 with success true.
    Defect("reset_returns_200", "RC-01", "resetBackupChain answers 200 instead of the documented 202"),
    Defect("reset_success_false", "RC-01", "resetBackupChain answers 202 but with success: false"),
    Defect(
        "reset_answers_html",
        "RC-01",
        "resetBackupChain resets and answers 202, but with a text/html page instead of the SuccessResponse JSON",
    ),
    # RC-02: an unknown VM UUID answers 404.
    Defect("reset_unknown_vm_accepted", "RC-02", "a reset of a VM UUID that exists nowhere answers 202"),
    # RC-03 / RC-04: X-Project-ID is required and must be a UUID.
    Defect(
        "reset_ignores_missing_project",
        "RC-03",
        "a reset without X-Project-ID is accepted and resets the VM in whichever project holds it",
    ),
    Defect(
        "reset_accepts_non_uuid_project",
        "RC-04",
        "a reset whose X-Project-ID is not a UUID is accepted and resets the VM in whichever project holds it",
    ),
    # RC-05: a malformed path id never yields a 5xx.
    Defect("reset_non_uuid_id_crashes", "RC-05", "a reset whose path id is not a UUID answers 500"),
    # RC-06: closed points stay listable with the same id, increment_id and status.
    Defect(
        "closed_points_renumbered",
        "RC-06",
        "a reset shifts the increment_id of every point of the closed series by 1",
    ),
    Defect("closed_points_hidden", "RC-06", "listBackups leaves out the points of closed series"),
    Defect(
        "reset_deletes_closed_points",
        "RC-06",
        "an accepted reset deletes the ready points of the series it closes (the scope probes then meet a VM "
        "whose earlier points were gone before they ran)",
    ),
    # RC-07: closed points stay restorable.
    Defect("closed_points_not_restorable", "RC-07", "restoring a point of a closed series answers 409"),
    # RC-08: the first backup after a reset is a baseline (0), the next is 1.
    Defect(
        "numbering_continues_after_reset",
        "RC-08",
        "the first backup after a reset continues the old series' numbering instead of starting at 0",
    ),
    # RC-09: a reset touches only the named VM.
    Defect("reset_spills_to_other_vm", "RC-09", "a reset also closes the open series of every other VM of the project"),
    # RC-10: a second reset before a new backup is harmless.
    Defect("second_reset_rejected", "RC-10", "a second reset before any new backup answers 400"),
    # RC-11 / RC-12 / RC-13: scope, ownership and authentication.
    Defect(
        "reset_ignores_project_scope",
        "RC-11",
        "a reset of a VM of another project of the same account is accepted and resets it",
    ),
    Defect("reset_ignores_account", "RC-12", "a reset of a VM of another account is accepted and resets it"),
    Defect(
        "reset_ignores_auth",
        "RC-13",
        "resetBackupChain skips the API key check: no key or a wrong key resets the VM",
    ),
    Defect(
        "reset_wrong_key_accepted",
        "RC-13",
        "resetBackupChain only asks that a key be sent: a wrong key resets the VM (the scenario's refused reset "
        "is accepted between A4 and A5, so A5 starts a series of its own before the series deletes)",
    ),
    # RC-14: responses are JSON and match their documented schema.
    Defect("backup_storage_size_string", "RC-14", 'Backup bodies carry storage_size as a string such as "2048"'),
    Defect("error_body_not_json", "RC-14", "404 answers of getBackup and getVM are text/plain, not a JSON Error"),
    # RC-15: a chain delete removes exactly the named series.
    Defect(
        "chain_delete_spills_into_open_series",
        "RC-15",
        "deleting a closed series also deletes the points of the VM's open series",
    ),
    Defect(
        "chain_delete_removes_oldest_series",
        "RC-15",
        "deleteBackupChain deletes the VM's oldest series, whichever point it names",
    ),
    # RC-16: deleting a point with dependents is refused and deletes nothing.
    Defect(
        "delete_with_dependents_cascades",
        "RC-16",
        "deleting a point that later points depend on silently deletes its whole series (200)",
    ),
    Defect(
        "delete_with_dependents_deletes_point",
        "RC-16",
        "deleting a point that later points depend on deletes that point alone (200)",
    ),
    # RC-17: every view of a backup agrees.
    Defect(
        "unfiltered_listing_drops_increment",
        "RC-17",
        "listBackups without a vm_id filter shows the points of closed series with increment_id null",
    ),
    # RC-18: pages split the full listing, and total counts what matches.
    Defect("listing_offset_off_by_one", "RC-18", "listBackups with an offset above 0 skips one more backup"),
    Defect(
        "list_total_ignores_filter",
        "RC-18",
        "listBackups reports as total every backup of the account, whatever the vm_id or project filter",
    ),
    Defect(
        "list_total_is_page_size",
        "RC-18",
        "listBackups reports as total the number of backups on the page, not the number that match",
    ),
    Defect(
        "offset_past_end_crashes",
        "RC-14",
        "listBackups with an offset past the end of the listing answers 500 instead of an empty page",
    ),
    # RC-19: a project that is not the account's is refused.
    Defect(
        "reset_accepts_unknown_project",
        "RC-19",
        "a reset whose X-Project-ID is no project of the account resets the VM in its own project",
    ),
    # RC-20: listings keep their promises with and without X-Project-ID.
    Defect(
        "unscoped_listing_ignores_vm_filter",
        "RC-20",
        "listBackups without X-Project-ID ignores the vm_id filter and lists every backup of the key",
    ),
    Defect(
        "vm_filter_crosses_accounts",
        "RC-20",
        "listBackups with the vm_id of another account's VM lists that VM's backups",
    ),
    # RC-21: a reset while a backup is in flight.
    Defect(
        "reset_in_flight_ignored",
        "RC-21",
        "a reset while a backup of the VM is pending or creating answers 202 but does nothing",
    ),
    Defect(
        "closed_series_pruned_after_baseline",
        "RC-21",
        "once the first backup of a new series is ready, the VM's closed series are deleted",
    ),
    # RC-22: series shapes.
    Defect(
        "reset_drops_baseline_only_series",
        "RC-22",
        "a reset of a series that holds only its baseline deletes that baseline",
    ),
    Defect(
        "reset_skips_baseline_only_series",
        "RC-22",
        "a reset of a series that holds only its baseline answers 202 but leaves the series open: the next "
        "backup is numbered 1",
    ),
    # RC-23: undeclared methods are refused with 405 and a true Allow header.
    Defect(
        "undeclared_method_accepted",
        "RC-23",
        "PUT and PATCH, which no path declares, answer 200 with success: true",
    ),
    Defect(
        "allow_header_lists_undeclared_method",
        "RC-23",
        "405 answers list PUT in their Allow header, a method no path declares",
    ),
    # RC-24: a backup exists from its create to its delete.
    Defect(
        "deleted_backup_still_readable",
        "RC-24",
        "getBackup of a deleted backup answers 200 with its old body, once, before it answers 404",
    ),
    Defect(
        "restore_default_named_crashes",
        "RC-14",
        "restoreBackup of a backup created without a name answers 500 (the restore job is named after it)",
    ),
    Defect(
        "unissued_backup_id_crashes",
        "RC-14",
        "getBackup of a well-formed id that this server never issued answers 500 instead of 404 when the id "
        "starts with 8-f (the lookup of that half of the id space fails); ids it issued, deleted ones too, 404",
    ),
    # RC-25: a request is taken or refused by the shape its schema allows.
    Defect(
        "name_at_max_length_rejected",
        "RC-25",
        "createBackup refuses with 400 a name of exactly the schema's maxLength (an off-by-one)",
    ),
    Defect(
        "malformed_vm_filter_ignored",
        "RC-25",
        "listBackups with a vm_id that is not a UUID answers 200 and lists every backup of the project, instead of 400",
    ),
    Defect(
        "default_named_backup_not_found",
        "RC-24",
        "a backup created without a name (so with the default timestamped one) is accepted and listed, "
        "but getBackup, restoreBackup and both deletes answer 404 for it",
    ),
    # A verdict is never lost: defects whose first symptom blocks a later step, or that a replay made
    # after the state moved on would have excused.
    Defect(
        "closed_point_restore_refused",
        "RC-07",
        "restoring a point of a closed series answers 400 'restore point belongs to a closed series' "
        "(the scenario deletes that series later, so a replay at the end would meet a 404)",
    ),
    Defect(
        "closed_point_get_not_found",
        "RC-17",
        "getBackup answers 404 for a point of a closed series while every listing still shows it",
    ),
    Defect(
        "series_reopens_after_reset",
        "RC-08",
        "the first backup after a reset is announced as a baseline (increment_id 0), but its capture appends "
        "it to the closed series (increment_id continues it) and ends 'failed'",
    ),
    Defect(
        "backups_never_ready",
        "RC-08",
        "every backup stays 'pending' for ever; it breaks no documented rule (a backup may take long), so the "
        "run must end inconclusive (exit 6), never with a violation",
    ),
)

# Defects of no named case: each breaks a property every exchange is held to (specs/properties.yaml),
# one per family, so that the judge (conformance/judge.py) is seen to fail on each.
_PROPERTY_DEFECTS = (
    Defect(
        "non_ascii_name_mangled",
        "RC-26",
        "createBackup stores the name in a latin-1 column: characters outside it read back as '?' (round trip)",
    ),
    Defect(
        "listing_account_id_is_project_id",
        "RC-17",
        "listBackups shows each backup's project_id in its account_id field (views of one backup disagree)",
    ),
    Defect(
        "delete_answers_plain_text",
        "RC-14",
        "deleteBackup answers its 200 with a text/plain body instead of the SuccessResponse JSON "
        "(the contract on every answer, the cleanup's included)",
    ),
    Defect(
        "created_at_an_hour_ahead",
        "RC-27",
        "created_at is the server's local time (UTC+1) written with a Z: an hour after its own Date header "
        "(truthful values)",
    ),
    Defect(
        "vm_filter_case_sensitive",
        "RC-28",
        "listBackups compares the vm_id filter as sent: the VM's UUID in upper case lists nothing (equivalent inputs)",
    ),
    Defect(
        "unfiltered_listing_cancels_reset",
        "RC-08",
        "a listBackups without vm_id syncs the VM rows and writes back the series a pending reset closed: "
        "a read undoes a write (safe methods change nothing)",
    ),
    Defect(
        "restore_ignores_project_scope",
        "RC-29",
        "restoreBackup finds the backup in any project of the key's account, whatever X-Project-ID says (write scope)",
    ),
    # Blind spots the mutation testing of the mock showed (benchmarks/mutation-before.txt), as classes.
    Defect(
        "listing_shows_lower_accounts",
        "RC-20",
        "listBackups compares account ids with <= instead of ==: a key also sees the backups of every account "
        "whose id sorts before its own (another account's key sees this run's backups)",
    ),
    Defect(
        "get_vm_success_false",
        "RC-30",
        "getVM answers 200 with success: false (the envelope's flag says the opposite of the status)",
    ),
    Defect(
        "restore_in_flight_408",
        "RC-14",
        "restoring a backup that is not ready yet answers 408 instead of the documented 409",
    ),
    Defect(
        "reset_takes_effect_late",
        "RC-08",
        "resetBackupChain answers 202 but queues the reset for a second: a create right after it continues "
        "the old series (a documented effect holds from the moment the answer says it does)",
    ),
    # The variant matrix (conformance/matrix.py): one defect per kind of input, each on a write.
    Defect(
        "reset_upper_case_id_not_found",
        "RC-28",
        "resetBackupChain looks the VM up by the path id as sent: the VM's UUID in upper case answers 404 "
        "(spelling: RFC 9562 §4)",
    ),
    Defect(
        "reset_takes_backup_id",
        "RC-02",
        "resetBackupChain also takes the id of a backup and resets that backup's VM (ids: an id of another kind)",
    ),
    Defect(
        "delete_repeated_project_header_crashes",
        "RC-14",
        "deleteBackup answers 500 when X-Project-ID is sent twice (headers: a repeated field line)",
    ),
    Defect(
        "reset_unparsed_body_crashes",
        "RC-14",
        "resetBackupChain parses a body it does not take and answers 500 when it is not JSON (bodies)",
    ),
    Defect(
        "reset_at_once_crashes",
        "RC-14",
        "resetBackupChain answers 500 to a reset of a VM while another reset of it is being handled "
        "(repetition: twice at once)",
    ),
    # Caught only by the judge's P-KIND on a write other than a reset (an id of another kind names nothing).
    Defect(
        "restore_takes_vm_id",
        "RC-17",
        "restoreBackup takes a VM's id for that VM's newest backup and restores it (202) instead of 404",
    ),
    # Caught only by the judge's P-EQUIVALENT on a write refused as malformed (not only as not found).
    Defect(
        "reset_project_case_sensitive",
        "RC-28",
        "resetBackupChain refuses an X-Project-ID in upper case with 400, as if it were no UUID",
    ),
    # Caught only by the judge's P-REQUEST (a write the contract refuses is never carried out).
    Defect(
        "create_coerces_wrong_typed_name",
        "RC-25",
        "createBackup takes a name of another JSON type (a number, an array) and stores it as text "
        "instead of answering 400",
    ),
    # RC-31: a chain delete of the open series removes exactly that series.
    Defect(
        "open_chain_delete_spills_into_closed_series",
        "RC-31",
        "deleting the VM's open series also deletes the VM's closed series",
    ),
)

DEFECTS: dict[str, Defect] = {defect.name: defect for defect in (*_ALL, *_PROPERTY_DEFECTS)}


def check_defects(names: Iterable[str]) -> frozenset[str]:
    """The given defect names as a set; raises ValueError naming the valid ones on an unknown name."""
    chosen = frozenset(names)
    unknown = sorted(chosen - DEFECTS.keys())
    if unknown:
        raise ValueError(f"unknown defect(s) {', '.join(unknown)}; valid defects: {', '.join(sorted(DEFECTS))}")
    return chosen
