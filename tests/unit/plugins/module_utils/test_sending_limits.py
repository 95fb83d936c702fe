"""The sending limits (R12.6) and the automatic suspension they trigger (R8.2b): the rule, the hourly
window, the policy protocol and its failure mode (docs/limits.md)."""

import io

import pytest

from ansible_collections.sonla.mail.plugins.module_utils import _sending_limits
from ansible_collections.sonla.mail.plugins.module_utils._sending_limits import ACCEPT, Counter, Limits, decide

LIMITS = Limits(max_messages_per_hour=4, max_recipients_per_message=3, suspend_after_limit_refusals=3)
USER = "guilv.chiengmung@sonla.gov.vn"
MINUTE = 29_000_000  # some minute of 2025


def test_defaults_are_the_regulation_tables():
    assert Limits() == Limits(300, 500, 20)


@pytest.mark.parametrize(("recipients", "sent", "refused", "action", "counted", "suspend"), [
    (3, 3, 0, ACCEPT, "sent", False),  # the 4th message of the hour, to 3 people: both limits met, not passed
    (4, 0, 0, "452 4.5.3", "refused", False),  # one recipient too many
    (1, 4, 0, "450 4.7.1", "refused", False),  # the 5th message of the hour
    (1, 4, 1, "450 4.7.1", "refused", False),  # the 2nd refusal
    (1, 4, 2, "450 4.7.1", "refused", True),  # the 3rd refusal within the hour: suspended as compromised (R8.2b)
    (9, 0, 5, "452 4.5.3", "refused", True),  # a recipients refusal counts the same
])
def test_decide(recipients, sent, refused, action, counted, suspend):
    decision = decide(LIMITS, recipients, sent, refused)
    assert decision.action.startswith(action)
    assert (decision.counted, decision.suspend) == (counted, suspend)
    if counted == "refused":
        assert decision.refusals == refused + 1


def test_replies_give_the_reason_in_vietnamese_and_english_with_the_numbers():
    recipients = decide(LIMITS, 7, 0, 0).action
    assert "Qua nhieu nguoi nhan: 7, toi da 3" in recipients and "Too many recipients: 7, at most 3" in recipients
    hourly = decide(LIMITS, 1, 4, 0).action
    assert "Da gui 4 thu trong mot gio" in hourly and "limit of 4 messages per hour" in hourly
    assert all(reply.isascii() and "R12.6" in reply for reply in (recipients, hourly))


def test_automatic_suspension_can_be_switched_off():
    off = Limits(4, 3, 0)
    assert not decide(off, 1, 4, 10_000).suspend
    assert decide(off, 1, 4, 10_000).action.startswith("450 ")


@pytest.mark.parametrize(("policy", "message"), [
    ({"max_messages_per_hour": 0}, "'max_messages_per_hour' must be 1-100000 (R12.6), got 0"),
    ({"max_recipients_per_message": 1001}, "'max_recipients_per_message' must be 1-1000 (R12.6), got 1001"),
    ({"suspend_after_limit_refusals": -1}, "'suspend_after_limit_refusals' must be 0-10000 (R8.2b), got -1"),
    ({"max_messages_per_hour": "many"}, "'max_messages_per_hour' must be a whole number"),
])
def test_limits_out_of_bounds_are_refused_naming_key_and_rule(policy, message):
    with pytest.raises(ValueError, match=message.replace("(", r"\(").replace(")", r"\)")):
        Limits.from_policy(policy)


def test_limits_from_the_policy_ignore_other_keys():
    assert Limits.from_policy({"max_messages_per_hour": 7, "default_quota_mb": 5}) == Limits(7, 500, 20)


@pytest.fixture
def counter(tmp_path):
    counter = Counter.local(str(tmp_path / "limits.sqlite"))
    yield counter
    counter.connection.close()


def test_the_hour_is_a_sliding_window_of_sixty_minutes(counter):
    for offset in range(4):
        assert counter.decide(LIMITS, USER, 1, MINUTE + offset).action == ACCEPT
    assert counter.decide(LIMITS, USER, 1, MINUTE + 59).action.startswith("450 ")  # the 1st is 59 minutes old
    assert counter.decide(LIMITS, USER, 1, MINUTE + 60).action == ACCEPT  # the 1st has left the window
    assert counter.decide(LIMITS, USER, 1, MINUTE + 60).action.startswith("450 ")
    # Another user has an hour of their own.
    assert counter.decide(LIMITS, "other@sonla.gov.vn", 1, MINUTE + 60).action == ACCEPT


def test_refusals_are_counted_within_the_hour_and_forgotten_on_suspension(counter):
    decisions = [counter.decide(LIMITS, USER, 9, MINUTE + offset) for offset in (0, 1, 2)]
    assert [d.suspend for d in decisions] == [False, False, True]
    assert not counter.decide(LIMITS, USER, 9, MINUTE + 62).suspend  # the first two are out of the hour
    counter.forget(USER)
    assert [counter.decide(LIMITS, USER, 9, MINUTE + 63).refusals] == [1]


def test_refused_messages_do_not_use_up_the_hour(counter):
    for _ in range(5):
        counter.decide(LIMITS, USER, 9, MINUTE)
    assert counter.decide(LIMITS, USER, 1, MINUTE).action == ACCEPT


def test_old_buckets_of_every_user_are_dropped(counter):
    counter.decide(LIMITS, "a@sonla.gov.vn", 1, MINUTE)
    counter.decide(LIMITS, "b@sonla.gov.vn", 1, MINUTE + 30)
    counter.forget_before(MINUTE + 60)
    rows = counter.connection.execute("SELECT address FROM sending_usage").fetchall()
    assert rows == [("b@sonla.gov.vn",)]


def request(**attributes):
    base = {"request": "smtpd_access_policy", "protocol_state": "END-OF-MESSAGE", "sasl_username": USER,
            "recipient_count": "1"}
    return {**base, **attributes}


class Recorder:
    def __init__(self, counter, suspended=(), clock=MINUTE * 60.0):
        self.suspended = set(suspended)
        self.suspensions = []
        self.service = _sending_limits.Service(LIMITS, counter, self.suspended.__contains__, self.suspend,
                                               lambda: clock)

    def suspend(self, address, refusals):
        self.suspensions.append((address, refusals))
        self.suspended.add(address)
        return True


@pytest.mark.parametrize("attributes", [
    {"sasl_username": ""},  # port 25, unauthenticated: not this service's business
    {"protocol_state": "RCPT"},  # wired at the wrong stage: no recipient count there
])
def test_the_service_lets_through_what_is_not_its_business(counter, attributes):
    service = Recorder(counter).service
    for _ in range(10):
        assert service.handle(request(recipient_count="50", **attributes)) == (ACCEPT, None)


def test_the_service_suspends_after_answering_and_then_refuses_the_session(counter):
    recorder = Recorder(counter)
    answers = [recorder.service.handle(request(sasl_username=USER.upper(), recipient_count="9")) for _ in range(3)]
    assert [after is None for _, after in answers] == [True, True, False]
    assert recorder.suspensions == []  # not before Postfix has its answer
    answers[2][1]()
    assert recorder.suspensions == [(USER, 3)]
    assert counter.connection.execute("SELECT count(*) FROM sending_usage").fetchone() == (0,)  # forgotten
    action, after = recorder.service.handle(request())
    assert action == _sending_limits.SUSPENDED and after is None


def wire(*requests):
    return io.BytesIO(b"".join(b"".join(f"{k}={v}\n".encode() for k, v in r.items()) + b"\n" for r in requests))


def test_serve_speaks_the_policy_protocol_and_runs_the_work_after_the_answer():
    writer = io.BytesIO()
    done = []

    def handle(request):
        return f"450 4.7.1 {request['sasl_username']}", lambda: done.append(writer.getvalue())

    _sending_limits.serve(wire(request(), request(sasl_username="x@y")), writer, handle, pytest.fail)
    assert writer.getvalue() == f"action=450 4.7.1 {USER}\n\naction=450 4.7.1 x@y\n\n".encode()
    assert done[0] == f"action=450 4.7.1 {USER}\n\n".encode()


def test_a_fault_lets_the_message_through_and_is_logged():
    """Fail safe for mail: an error inside a decision never refuses or loses a message (docs/limits.md)."""
    writer = io.BytesIO()
    errors = []

    def broken(request):
        raise OSError("database is locked")

    _sending_limits.serve(wire(request()), writer, broken, errors.append)
    assert writer.getvalue() == b"action=DUNNO\n\n"
    assert errors == ["sending limits: OSError: database is locked; answered DUNNO"]


def test_a_fault_after_the_answer_is_logged_and_the_connection_goes_on():
    writer = io.BytesIO()
    errors = []

    def fails_after(request):
        return ACCEPT, lambda: 1 / 0

    _sending_limits.serve(wire(request(), request()), writer, fails_after, errors.append)
    assert writer.getvalue() == b"action=DUNNO\n\naction=DUNNO\n\n"
    assert errors == ["sending limits: after the answer: ZeroDivisionError: division by zero"] * 2


def test_a_request_cut_off_before_its_empty_line_is_not_answered():
    assert _sending_limits.read_request(io.BytesIO(b"request=smtpd_access_policy\nsasl_username=a")) is None
