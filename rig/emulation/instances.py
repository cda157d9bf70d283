"""The time model every emulated service shares: AWS's timings (scaled by RIG_TIME_SCALE),
the rig's lock, and each Auto Scaling instance's boot, warmup and parameter value.

See rig/README.md."""

from __future__ import annotations

import datetime as dt
import os
import random
import threading
from moto.ssm.models import ssm_backends


# ----- Auto Scaling instances, instance refresh and Run Command on a time model -----
#
# moto keeps an Auto Scaling group's instances in `group.instance_states` and launches or
# terminates them the moment the capacity changes. The overlay below keeps, per group, the
# same instance ids with what moto does not model: when each instance was launched, when it
# finishes booting and warming, and which parameter value it holds. Time is never ticked:
# every state is computed from timestamps when asked (each request to the region, the
# control port), as AWS would have moved it along in the background.


def _seconds_range(name: str, default: str) -> tuple[float, float]:
    text = os.environ.get(name, default).strip()
    low, _, high = text.partition("-")
    try:
        lo = float(low)
        hi = float(high) if high else lo
    except ValueError:
        raise SystemExit(f"{name}={text!r}: expected SECONDS or LOW-HIGH") from None
    if lo < 0 or hi < lo:
        raise SystemExit(f"{name}={text!r}: expected SECONDS or LOW-HIGH")
    return lo, hi


TIME_SCALE = float(os.environ.get("RIG_TIME_SCALE", "1"))
if TIME_SCALE <= 0:
    raise SystemExit(f"RIG_TIME_SCALE={TIME_SCALE}: must be positive")
BOOT_SECONDS = _seconds_range("RIG_BOOT_SECONDS", "60-90")
WARMUP_SECONDS = _seconds_range("RIG_WARMUP_SECONDS", "60")[0]
RUN_COMMAND_SECONDS = _seconds_range("RIG_RUN_COMMAND_SECONDS", "2-5")
# From the end of boot (the parameter read) until the SSM agent has registered the instance
# as a managed node: only then does a command reach it.
SSM_REGISTER_SECONDS = _seconds_range("RIG_SSM_REGISTER_SECONDS", "5-15")
APP_PARAMETER = os.environ.get("RIG_APP_PARAMETER", "/regionpilot-test/active-region")
ASG_TAG = "tag:aws:autoscaling:groupName"
# AWS-RunShellScript's executionTimeout when the caller sends none.
DEFAULT_EXECUTION_TIMEOUT = 3600.0
ACTIVE_STATES = ("Pending", "InProgress", "Cancelling", "RollbackInProgress")

# Guards the overlay, the refreshes and the commands; requests to Auto Scaling, SSM and EC2
# run under it (see FaultInjector), so moto's group lists never change under a reader.
_lock = threading.RLock()


def _scaled(seconds: float) -> float:
    return seconds / TIME_SCALE


def _draw(bounds: tuple[float, float]) -> float:
    return _scaled(random.uniform(*bounds))


def _epoch(moment: dt.datetime) -> float:
    if moment.tzinfo is None:  # moto stores naive UTC
        moment = moment.replace(tzinfo=dt.timezone.utc)
    return moment.timestamp()


def _utc(epoch: float) -> dt.datetime:
    return dt.datetime.fromtimestamp(epoch, dt.timezone.utc)


def _parameter_at(account: str, region: str, moment: float) -> str | None:
    """The application parameter's value in this region at `moment`, from SSM's history
    (so a read computed late still sees the value of its own moment)."""
    versions = dict.get(ssm_backends[account][region]._parameters, APP_PARAMETER) or []
    value = None
    for version in versions:
        if _epoch(version.last_modified_date) <= moment:
            value = version.value
    return value


class Instance:
    """One Auto Scaling instance as AWS would run it: booting, then warming, then in
    service; it reads the parameter at the end of boot and at each successful reload."""

    def __init__(self, key: tuple, instance_id: str, launched_at: float, boot: float,
                 warmup: float, register: float | None = None) -> None:
        self.key = key  # (account, region, group)
        self.id = instance_id
        self.launched_at = launched_at
        self.boot = boot  # scaled seconds
        self.warmup = warmup  # scaled seconds
        # Scaled seconds after boot until SSM knows the instance (its agent has started).
        self.register = _draw(SSM_REGISTER_SECONDS) if register is None else register
        self.terminated_at: float | None = None
        # [moment, resolved, value]: every moment the instance reads the parameter.
        self.reads: list[list] = [[launched_at + boot, False, None]]

    @property
    def in_service_at(self) -> float:
        return self.launched_at + self.boot + self.warmup

    def registered(self, now: float) -> bool:
        """A managed node of SSM: a command can reach it."""
        return (self.terminated_at is None or now < self.terminated_at) and \
            now >= self.launched_at + self.boot + self.register

    def state(self, now: float) -> str:
        if self.terminated_at is not None and now >= self.terminated_at:
            return "terminated"
        if now < self.launched_at + self.boot:
            return "booting"
        if now < self.in_service_at:
            return "warming"
        return "in_service"

    def value(self, now: float) -> str | None:
        limit = now if self.terminated_at is None else min(now, self.terminated_at)
        latest = None
        for read in self.reads:
            if read[0] <= limit:
                if not read[1]:
                    read[2] = _parameter_at(self.key[0], self.key[1], read[0])
                    read[1] = True
                if latest is None or read[0] >= latest[0]:
                    latest = read
        if latest is not None and len(self.reads) > 1:
            # Each Run Command reload adds a read: keep only the one in effect and those
            # still to come (none once the instance is gone), so the list walked on every
            # request stays short. Callers ask under _lock with the time taken there: `now`
            # only moves forward.
            gone = self.terminated_at is not None and now >= self.terminated_at
            self.reads = [r for r in self.reads if r is latest or (r[0] > limit and not gone)]
        return None if latest is None else latest[2]

    def report(self, now: float) -> dict:
        state = self.state(now)
        reached = self.terminated_at is None or self.terminated_at > self.in_service_at
        return {"id": self.id, "state": state, "value": self.value(now),
                "launched_at": self.launched_at,
                "in_service_at": self.in_service_at if reached else None,
                "terminated_at": self.terminated_at}


# Terminated instances kept per group for GET /instances (a long benchmark replaces
# thousands); older ones are forgotten, in moto's EC2 as well (as AWS forgets them an hour
# after termination): moto keeps every instance it ever ran and scans them all on each
# launch, termination and tag lookup, which made every refresh slower than the last.
KEEP_TERMINATED = 100
# (account, region, group) -> {instance id: Instance}, in launch order
_groups: dict[tuple, dict[str, Instance]] = {}
# (account, region, group) -> list of refresh dicts, newest first
_refreshes: dict[tuple[str, str, str], list[dict]] = {}
