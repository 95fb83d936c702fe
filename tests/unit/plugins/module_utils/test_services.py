"""sonla.mail.services' plan (issue 19): each service started and enabled, or stopped and disabled, as asked, in the
order given; a service already so needs nothing."""

import pytest

from ansible_collections.sonla.mail.plugins.module_utils._services import (
    DISABLE,
    ENABLE,
    START,
    STOP,
    State,
    plan,
    wanted,
)

RUNNING = State(running=True, enabled=True)
DOWN = State(running=False, enabled=False)


def test_services_already_as_asked_need_nothing():
    result = plan(wanted(["valkey-server", "rspamd"], ["clamav-freshclam"]),
                  {"valkey-server": RUNNING, "rspamd": RUNNING, "clamav-freshclam": DOWN})
    assert result.steps == []
    assert result.unchanged == ["valkey-server", "rspamd", "clamav-freshclam"]


def test_each_service_is_started_and_enabled_before_the_next_one():
    result = plan(wanted(["valkey-server", "rspamd"], []), {"valkey-server": DOWN, "rspamd": DOWN})
    assert result.steps == [(START, "valkey-server"), (ENABLE, "valkey-server"), (START, "rspamd"), (ENABLE, "rspamd")]
    assert result.names(START) == ["valkey-server", "rspamd"]


def test_only_the_missing_half_is_done():
    result = plan(wanted(["nginx", "cron"], []), {"nginx": State(running=True, enabled=False),
                                                  "cron": State(running=False, enabled=True)})
    assert result.steps == [(ENABLE, "nginx"), (START, "cron")]
    assert result.unchanged == []


def test_a_stopped_service_is_stopped_and_disabled():
    result = plan(wanted([], ["clamav-freshclam"]), {"clamav-freshclam": RUNNING})
    assert result.steps == [(STOP, "clamav-freshclam"), (DISABLE, "clamav-freshclam")]


def test_a_service_named_twice_is_handled_once():
    assert wanted(["cron", "nginx", "cron"], []) == {"cron": True, "nginx": True}


def test_a_service_both_started_and_stopped_is_refused():
    with pytest.raises(ValueError, match="both started and stopped: cron"):
        wanted(["cron", "nginx"], ["cron"])
