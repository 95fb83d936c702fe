# Copyright: Sơn La IT center
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""What ``sonla.mail.services`` does to each service, decided from what the server reports (issue 19).

A role keeps its daemons running and started at boot with one task, in one module run on the server, instead of a
``service`` task per daemon (each one a module run even when everything already runs).
"""

from __future__ import annotations

from dataclasses import dataclass, field

START, STOP, ENABLE, DISABLE = "start", "stop", "enable", "disable"


@dataclass(frozen=True)
class State:
    """What the server reports of one service."""

    running: bool
    enabled: bool  # started at boot


@dataclass
class ServicePlan:
    """The steps in the order given (each service started before the next one); ``unchanged`` needs none."""

    steps: list[tuple[str, str]] = field(default_factory=list)  # (action, service name)
    unchanged: list[str] = field(default_factory=list)

    def names(self, action: str) -> list[str]:
        return [name for step, name in self.steps if step == action]


def wanted(started: list[str], stopped: list[str]) -> dict[str, bool]:
    """Each service once, in the order given, with whether it should run (and start at boot).

    ValueError names a service asked to be both started and stopped."""
    both = sorted(set(started) & set(stopped))
    if both:
        raise ValueError(f"asked to be both started and stopped: {', '.join(both)}")
    return {**dict.fromkeys(started, True), **dict.fromkeys(stopped, False)}


def plan(want: dict[str, bool], states: dict[str, State]) -> ServicePlan:
    """The steps that bring each service of ``want`` (name: should run) from its state in ``states`` to the wanted
    one: a service that should run is started and enabled at boot, one that should not is stopped and disabled."""
    result = ServicePlan()
    for name, run in want.items():
        state = states[name]
        steps = [(action, name) for action, due in ((START if run else STOP, state.running != run),
                                                    (ENABLE if run else DISABLE, state.enabled != run)) if due]
        result.steps.extend(steps)
        if not steps:
            result.unchanged.append(name)
    return result
