"""Does every rule have a test that fails without it? Delete each rule in a copy of the code and run its tests.

`make rule-check` (not part of `make test`: it runs the named tests once per rule, a few minutes). For each rule
below, the committed code (`git archive HEAD`) is unpacked into a temporary folder, the rule's lines are replaced by
what the code would be without the rule, and the tests named for it run there. A rule is **caught** when those tests
fail with the rule deleted; the script first checks that the snippet is really in the code (a renamed rule fails the
check loudly instead of passing unnoticed) and that the same tests pass on the untouched copy.
"""

from __future__ import annotations

import subprocess
import sys
import tarfile
import tempfile
from dataclasses import dataclass
from io import BytesIO
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
LAYER = "layers/common/iptelefon"
UNIT = "tests/unit"


@dataclass(frozen=True)
class Rule:
    name: str
    path: str
    code: str  # the rule as it stands in the file (exactly once)
    without: str  # the code without the rule
    tests: tuple[str, ...]  # pytest node ids or files expected to catch its deletion


RULES: tuple[Rule, ...] = (
    Rule(
        "a disabled employee makes no card call, even with a short number",
        f"{LAYER}/usecases/calls.py",
        """        if employee.call_method == "disabled":
            raise CallsDisabled(f"employee {employee.id} does not make calls from the client card")
""",
        "",
        (f"{UNIT}/test_calls.py::test_card_call_method_disabled_is_403_even_with_a_short_number",),
    ),
    Rule(
        "toll-fraud guard: only the project's own and allowed countries",
        f"{LAYER}/domain/toll_fraud.py",
        "    if region not in regions:\n",
        "    if False:\n",
        (f"{UNIT}/test_calls.py::test_kazakhstan_is_not_russia_though_both_are_plus_7",),
    ),
    Rule(
        "toll-fraud guard: only the kinds of line the project allows",
        f"{LAYER}/domain/toll_fraud.py",
        '    if kind not in allowed and not (kind == "fixed_line_or_mobile" and allowed & {"fixed_line", "mobile"}):\n',
        "    if False:\n",
        (f"{UNIT}/test_calls.py::test_lines_other_than_fixed_and_mobile_are_refused_before_the_pbx",),
    ),
    Rule(
        "rate limit: at most N calls to one phone an hour",
        f"{LAYER}/domain/rate_limits.py",
        """    if wait:
        raise RateLimited(
            f"too many calls to this client phone""",
        """    if False:
        raise RateLimited(
            f"too many calls to this client phone""",
        (f"{UNIT}/test_calls.py::test_the_phone_limit_refuses_the_call_above_it_until_the_hour_ends",),
    ),
    Rule(
        "rate limit: a call the project limit refuses gives the phone's slot back",
        f"{LAYER}/domain/rate_limits.py",
        "        counters.uncount(project.id, per_phone, window_seconds=PHONE_WINDOW_SECONDS, now=now)\n",
        "",
        (f"{UNIT}/test_calls.py::test_a_call_refused_by_the_project_limit_does_not_use_up_the_phone_limit",),
    ),
    Rule(
        "matching: the project's telephony clients first",
        f"{LAYER}/data/client_items.py",
        'RANK_TELEPHONY = "1"\n',
        'RANK_TELEPHONY = "2"\n',
        ("tests/integration/test_webhook.py::test_telephony_client_wins_over_an_older_variable_match",),
    ),
    Rule(
        "creation: a WhatsApp client when the project has a messenger, else telephony-only",
        f"{LAYER}/usecases/webhook.py",
        '    channel: Channel = "whatsapp" if project.has_messenger else "telephony"\n',
        '    channel: Channel = "telephony"\n',
        (f"{UNIT}/test_webhook_usecase.py::test_a_new_phone_of_a_project_with_a_messenger_creates_a_whatsapp_client",),
    ),
    Rule(
        "a replayed webhook is not recorded twice",
        f"{LAYER}/data/call_records.py",
        'put(record, only_if="attribute_not_exists(pk)", label=CALL_RECORDED)',
        "put(record, label=CALL_RECORDED)",
        ("tests/integration/test_webhook.py::test_replay_answers_duplicate_and_changes_nothing",),
    ),
    Rule(
        "an unreadable webhook is kept for the project before its 4xx",
        f"{LAYER}/usecases/webhook.py",
        """        deps.calls.keep_rejected(
            project.id, request, error_code=error.code, message=error.message, status=error.status_code
        )
""",
        "",
        (f"{UNIT}/test_webhook_usecase.py::test_an_unreadable_request_is_kept_before_its_4xx",),
    ),
    Rule(
        "an operator token calls as its own employee only",
        f"{LAYER}/usecases/calls.py",
        """        if request.employee_id not in (None, caller.employee_id):
            raise Forbidden("an operator token calls as its own employee only")
""",
        "",
        (f"{UNIT}/test_calls.py::test_an_operator_calls_as_its_own_employee_only",),
    ),
    Rule(
        "a revoked token is refused",
        f"{LAYER}/usecases/auth.py",
        "    if record is None or record.revoked:\n",
        "    if record is None:\n",
        (f"{UNIT}/test_admin.py::test_a_revoked_token_and_a_deleted_employees_token_are_unauthorized",),
    ),
    Rule(
        "a live event (cmd=event) is never a completion",
        f"{LAYER}/usecases/webhook.py",
        "            if is_live_event(fields)\n",
        "            if False\n",
        (f"{UNIT}/test_live_events.py::test_an_event_is_never_a_completion",),
    ),
    Rule(
        "a live call answered never goes back to ringing",
        f"{LAYER}/domain/live_calls.py",
        '    if current.state == "ended" or current.state == "answered":',
        '    if current.state == "ended":',
        (f"{UNIT}/test_live_events.py::test_ringing_after_accepted_does_not_go_back",),
    ),
    Rule(
        "in a ZEON history the call-status decides, not the duration",
        f"{LAYER}/domain/call_aliases.py",
        '    if sent is not None and by_alias.first((KIND_FIELD,), _parse_kind) == "history":\n',
        "    if False:\n",
        (f"{UNIT}/test_zeon_dialect.py::test_in_a_history_the_call_status_decides_whatever_the_duration",),
    ),
    Rule(
        "a call start the PBX did not confirm is unknown, never a success",
        f"{LAYER}/adapters/pbx.py",
        "        if not reply.confirmed:\n",
        "        if False:\n",
        (f"{UNIT}/test_pbx_client.py::test_a_call_start_reply_nobody_can_read_is_unreadable_after_one_request",),
    ),
    Rule(
        "the stored PBX secret never follows a server_url to another origin",
        f"{LAYER}/usecases/admin.py",
        "        and pbx_address.origin(server_url) != pbx_address.origin(stored.server_url)\n",
        "        and False\n",
        (f"{UNIT}/test_admin.py::test_a_server_url_on_another_host_needs_the_secret_in_the_same_request",),
    ),
    Rule(
        "PBX requests go to public addresses only",
        f"{LAYER}/domain/pbx_address.py",
        "    return ip.is_global and not (ip.is_multicast or ip.is_reserved or ip.is_unspecified)\n",
        "    return True\n",
        (
            "tests/integration/test_pbx_address_guard.py::test_a_local_stage_still_refuses_private_and_link_local_addresses",
        ),
    ),
    Rule(
        "a card call dials one of the client's phones",
        f"{LAYER}/usecases/calls.py",
        "        if phone not in client_phones(project, client):\n",
        "        if False:\n",
        (f"{UNIT}/test_calls.py::test_card_call_to_a_number_that_is_not_the_clients_is_refused",),
    ),
    Rule(
        "an operator sees the live calls at its own extension only",
        f"{LAYER}/usecases/reads.py",
        "    return live_calls(deps, caller.project, extension=employee.short_number)\n",
        "    return live_calls(deps, caller.project)\n",
        (f"{UNIT}/test_incoming_card.py::test_an_operator_sees_the_calls_at_its_extension_admin_and_bot_see_all",),
    ),
    Rule(
        "the incoming-call card: a known client without an earlier call is new",
        f"{LAYER}/domain/live_calls.py",
        "        is_new=created or not lines,\n",
        "        is_new=created,\n",
        (f"{UNIT}/test_incoming_card.py::test_a_known_client_without_an_earlier_call_is_new",),
    ),
    Rule(
        "an answered call closes its client's callback task",
        f"{LAYER}/domain/callbacks.py",
        '    if call.status == "answered" and open_task is not None and at >= open_task.opened_at:\n',
        "    if False:\n",
        (f"{UNIT}/test_callbacks_and_stats.py::test_a_missed_call_opens_one_task_and_a_later_answered_call_closes_it",),
    ),
    Rule(
        "a missed call while a task is open adds to it, never a second task",
        f"{LAYER}/domain/callbacks.py",
        "        if open_task is not None:\n            return AddMissed(open_task, call.call_key, at)\n",
        "",
        (f"{UNIT}/test_callbacks_and_stats.py::test_a_missed_call_opens_one_task_and_a_later_answered_call_closes_it",),
    ),
    Rule(
        "the missed-call text reaches a client at most once a day",
        f"{LAYER}/data/call_effects.py",
        'only_if="attribute_not_exists(pk) OR sent_at < :cutoff",',
        'only_if="attribute_not_exists(pk) OR sent_at < :cutoff OR sent_at >= :cutoff",',
        (
            "tests/integration/test_missed_calls.py::test_the_missed_call_text_goes_with_the_task_and_its_event_once_a_day",
        ),
    ),
    Rule(
        "recordings: a download stops as soon as more than the cap arrived",
        f"{LAYER}/adapters/recording_download.py",
        "            if self.size > self.max_bytes:",
        "            if False:",
        (f"{UNIT}/test_recording_rules.py::test_the_download_stops_as_soon_as_more_than_the_cap_arrived",),
    ),
    Rule(
        "recordings: what is not audio is never archived",
        f"{LAYER}/domain/recordings.py",
        """    raise RecordingRefused(f"not audio ({media or 'no content type'})")""",
        '    return "mp3"',
        (f"{UNIT}/test_recording_rules.py::test_what_is_not_audio_is_refused_with_its_type",),
    ),
    Rule(
        "recordings: a console-only project's link leads to the console, never to the recording",
        f"{LAYER}/usecases/recordings.py",
        '    if project.recording_access == "console":',
        "    if False:",
        (f"{UNIT}/test_recording_rules.py::test_the_stable_link_leads_by_state_and_access_mode",),
    ),
    Rule(
        "recordings: a recording id is random",
        f"{LAYER}/domain/recordings.py",
        "    return secrets.token_urlsafe(RECORDING_ID_BYTES)",
        '    return "r" * 24',
        (f"{UNIT}/test_recording_rules.py::test_a_recording_id_is_random_long_and_url_safe",),
    ),
    Rule(
        "call events: the signature covers the event id and the timestamp, not the body alone",
        f"{LAYER}/domain/call_events.py",
        '    mac = hmac.new(key, f"{message_id}.{timestamp}.{body}".encode(), hashlib.sha256).digest()',
        "    mac = hmac.new(key, body.encode(), hashlib.sha256).digest()",
        (f"{UNIT}/test_call_event_rules.py::test_a_signature_verifies_with_the_standardwebhooks_package",),
    ),
    Rule(
        "call events: 410 stops the deliveries and disables the endpoint",
        f"{LAYER}/domain/call_events.py",
        '    if status == 410:\n        return "gone"',
        '    if False:\n        return "gone"',
        ("tests/integration/test_call_events.py::test_410_stops_and_disables_the_endpoint",),
    ),
    Rule(
        "call events: a message that meets another taker's lease comes back, it does not drop the delivery",
        f"{LAYER}/domain/call_events.py",
        "    return max(float(lease), now) if lease is not None else None",
        "    return None",
        (
            "tests/integration/test_call_events.py::"
            "test_a_message_that_meets_another_takers_lease_comes_back_when_it_runs_out",
        ),
    ),
    Rule(
        "call events: the SDK's retry of a landed claim finds the claim its own",
        f"{LAYER}/data/call_events.py",
        '"(lease_until < :now OR claim_token = :token)))"',
        '"(lease_until < :now)))"',
        (
            "tests/integration/test_call_events.py::"
            "test_a_claim_whose_answer_was_lost_is_still_the_takers_when_the_sdk_sends_it_again",
        ),
    ),
    Rule(
        "storage: a transaction retried after a 500 keeps its ClientRequestToken",
        f"{LAYER}/data/gateway.py",
        '        if "ClientRequestToken" in args and retry not in MAY_HAVE_LANDED:',
        '        if "ClientRequestToken" in args:',
        (
            "tests/faults/test_dynamodb_answers.py::"
            "test_a_call_written_though_dynamodb_answered_500_is_not_written_again_as_a_new_one",
        ),
    ),
    Rule(
        "rate limit: the SDK's repeat of a count is counted once, never refused",
        f"{LAYER}/data/rate_counters.py",
        '            if counted.get("last_token") != token:',
        "            if True:",
        ("tests/integration/test_call_storage.py::test_a_count_the_sdk_sent_twice_counts_once_and_is_not_refused",),
    ),
    Rule(
        "call events: a rotated-out secret signs only during its grace period",
        f"{LAYER}/usecases/call_events.py",
        '    if stored.get("previous") and float(stored.get("previous_valid_until", 0)) > deps.clock():',
        '    if stored.get("previous"):',
        (
            f"{UNIT}/test_call_event_rules.py::test_a_rotated_out_secret_signs_until_its_grace_period_ends_and_not_after",
        ),
    ),
    Rule(
        "call events: a later event of a call waits for an earlier pending one",
        f"{LAYER}/usecases/call_events.py",
        "    if earlier_pending:",
        "    if False:",
        ("tests/integration/test_call_events.py::test_a_later_event_of_the_call_waits_for_an_earlier_pending_one",),
    ),
)


def unpack_head(into: Path) -> None:
    git = ["git", "archive", "HEAD"]  # the developer's git, from PATH
    archive = subprocess.run(git, cwd=ROOT, capture_output=True, check=True).stdout
    with tarfile.open(fileobj=BytesIO(archive)) as tar:
        tar.extractall(into, filter="data")


def run_tests(copy: Path, tests: tuple[str, ...]) -> subprocess.CompletedProcess[str]:
    # The copy's own pyproject.toml puts the copy's layer and functions first on sys.path.
    command = [sys.executable, "-m", "pytest", "-q", "-x", "-p", "no:cacheprovider", "--no-header", *tests]
    return subprocess.run(command, cwd=copy, capture_output=True, text=True, check=False)


def check(rule: Rule, base: Path) -> tuple[bool, str]:
    """(caught, what to say) for one rule, in a fresh copy."""
    with tempfile.TemporaryDirectory(dir=base) as folder:
        copy = Path(folder)
        unpack_head(copy)
        source = copy / rule.path
        text = source.read_text(encoding="utf-8")
        if text.count(rule.code) != 1:
            return False, f"the rule's code is not exactly once in {rule.path}: update RULES"
        untouched = run_tests(copy, rule.tests)
        if untouched.returncode != 0:
            return False, "its tests fail on the untouched code:\n" + untouched.stdout[-2000:]
        source.write_text(text.replace(rule.code, rule.without), encoding="utf-8")
        deleted = run_tests(copy, rule.tests)
        failed = [line for line in deleted.stdout.splitlines() if line.startswith(("FAILED", "ERROR"))]
        if deleted.returncode == 0:
            return False, "NOT CAUGHT: its tests pass without the rule"
        return True, "caught by " + ("; ".join(failed) or deleted.stdout.strip().splitlines()[-1])


def main() -> int:
    missed = 0
    with tempfile.TemporaryDirectory(prefix="rule-check-") as base:
        for number, rule in enumerate(RULES, 1):
            caught, said = check(rule, Path(base))
            missed += not caught
            print(f"{number:2}. {rule.name}: {said}", flush=True)
    print(f"{len(RULES) - missed} of {len(RULES)} rules caught")
    return 1 if missed or not RULES else 0


if __name__ == "__main__":
    sys.exit(main())
