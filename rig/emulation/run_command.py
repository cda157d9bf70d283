"""SSM Run Command on the modelled instances: SSM registration, waves bounded by
MaxConcurrency and MaxErrors, per-instance timings, failures and hangs.

See rig/README.md."""

from __future__ import annotations

import math
import time
import threading
from moto.core.responses import ActionResult
from moto.ssm.exceptions import SSMException
from moto.ssm.models import Command, SimpleSystemManagerBackend
from moto.ssm.responses import SimpleSystemManagerResponse

from .instances import (
    ASG_TAG,
    DEFAULT_EXECUTION_TIMEOUT,
    Instance,
    RUN_COMMAND_SECONDS,
    _draw,
    _groups,
    _lock,
    _scaled,
)


# ----- SSM Run Command on the modelled instances -----

_STATUS_DETAILS = {"Pending": "Pending", "InProgress": "In Progress", "Success": "Success",
                   "Failed": "Failed", "TimedOut": "Execution Timed Out",
                   "Cancelled": "Cancelled"}
# command id -> that command's invocations
_invocations: dict[str, list["Invocation"]] = {}
# group name -> {"fail": n, "hang": n} for the next command that targets the group
_instance_faults: dict[str, dict[str, int]] = {}


class Invocation:
    """One instance's part in a command: Pending until its turn (`start`), InProgress, then
    its outcome at `end`; or Cancelled at `end` without starting, once the command's
    errors passed MaxErrors."""

    def __init__(self, instance: Instance, start: float, end: float, outcome: str,
                 limit: float) -> None:
        self.instance = instance
        self.start = start
        self.end = end
        self.outcome = outcome
        self.limit = limit

    def status(self, now: float) -> str:
        if self.outcome == "Cancelled":
            return "Pending" if now < self.end else "Cancelled"
        if now < self.start:
            return "Pending"
        end, outcome = self.end, self.outcome
        gone = self.instance.terminated_at
        if outcome == "Success" and gone is not None and gone < end:
            # The agent went with the instance: nothing reports back before the timeout.
            end, outcome = self.start + self.limit, "TimedOut"
        return "InProgress" if now < end else outcome


class InvalidInstanceId(SSMException):
    def __init__(self, message: str) -> None:
        super().__init__("InvalidInstanceId", message)


class InvalidInstanceIdError(Exception):
    def __init__(self, ids: list[str]) -> None:
        super().__init__(f"Instances {sorted(ids)} not in a valid state for account")
        self.ids = ids


def _share(text: str | None, of: int, default: str) -> float:
    """A rate control as SSM reads it: a count ("10") or a share of the targets ("50%")."""
    text = (text or default).strip()
    if text.endswith("%"):
        return of * float(text[:-1]) / 100
    return float(text)


def _schedule(instances: list[Instance], fail: int, hang: int, now: float, limit: float,
              max_concurrency: str | None, max_errors: str | None) -> list[Invocation]:
    """Runs a command as SSM does: at most MaxConcurrency targets at a time (a target starts
    when a running one ends), and once more than MaxErrors have failed or timed out, the
    targets not started are not sent the command and are reported Cancelled. Shares round
    up for concurrency (at least 1) and down for errors: an assumption, AWS does not say."""
    count = len(instances)
    slots = max(1, math.ceil(_share(max_concurrency, count, "50")))
    allowed = math.floor(_share(max_errors, count, "0"))
    free = [now] * min(slots, max(count, 1))
    error_times: list[float] = []
    invocations = []
    for n, instance in enumerate(instances):
        free.sort()
        start = free[0]
        errors = sorted(error_times)
        stop = errors[allowed] if len(errors) > allowed else None
        if stop is not None and stop <= start:
            invocations.append(Invocation(instance, stop, stop, "Cancelled", limit))
            continue
        took = _draw(RUN_COMMAND_SECONDS)
        if n < fail:
            outcome, end = "Failed", start + min(took, limit)
        elif n < fail + hang or took > limit:
            outcome, end = "TimedOut", start + limit
        else:
            outcome, end = "Success", start + took
            # The reload re-reads the parameter as the command ends.
            instance.reads.append([end, False, None])
        if outcome != "Success":
            error_times.append(end)
        free[0] = end
        invocations.append(Invocation(instance, start, end, outcome, limit))
    return invocations


def _targets(account: str, region: str, targets: list[dict], instance_ids: list[str],
             now: float) -> dict[str, list[Instance]] | None:
    """The modelled instances a command reaches, by group, oldest first: only those done
    booting (a booting instance has not registered with SSM yet). None when the command
    names no Auto Scaling group or modelled instance (moto's answer stands)."""
    names: set[str] = set()
    ids = set(instance_ids)
    for target in targets:
        if target.get("Key") == ASG_TAG:
            names.update(target.get("Values") or [])
        elif target.get("Key") == "InstanceIds":
            ids.update(target.get("Values") or [])
    chosen: dict[str, list[Instance]] = {}
    known = False
    unregistered = []
    for (acc, reg, name), overlay in _groups.items():
        if (acc, reg) != (account, region):
            continue
        for instance in overlay.values():
            if name in names or instance.id in ids:
                known = True
                if instance.registered(now):
                    chosen.setdefault(name, []).append(instance)
                elif instance.id in ids:
                    unregistered.append(instance.id)
    if unregistered:
        # As SSM: a node that is not (yet) managed cannot be named.
        raise InvalidInstanceIdError(unregistered)
    if not known and not names:
        return None
    return chosen


_moto_send_command = SimpleSystemManagerBackend.send_command
_moto_target_ids = Command._get_instance_ids_from_targets
_by_rig = threading.local()  # set while _send_command resolves a command's targets itself


def _target_ids(self: Command) -> list[str]:
    return [] if getattr(_by_rig, "active", False) else _moto_target_ids(self)


_moto_command_response = Command.response_object
_moto_get_invocation = SimpleSystemManagerBackend.get_command_invocation


def _send_command(self: SimpleSystemManagerBackend, *args, **kwargs) -> Command:
    with _lock:
        explicit = list(kwargs.get("instance_ids") or [])  # moto extends this list in place
        now = time.time()
        targets = kwargs.get("targets") or []
        try:
            targeted = _targets(self.account_id, self.region_name, targets, explicit, now)
        except InvalidInstanceIdError as e:
            raise InvalidInstanceId(str(e)) from None
        # For a group's tag the rig picks the instances itself (below): spare moto its own
        # resolution, a tag filter over every EC2 instance that looks each one's tags up
        # among all tags (quadratic in the instances launched).
        _by_rig.active = targeted is not None and bool(targets) and all(
            t.get("Key") == ASG_TAG for t in targets)
        try:
            command = _moto_send_command(self, *args, **kwargs)
        finally:
            _by_rig.active = False
        if targeted is None:
            return command
        parameters = kwargs.get("parameters") or {}
        limit = float((parameters.get("executionTimeout") or [DEFAULT_EXECUTION_TIMEOUT])[0])
        if kwargs.get("timeout_seconds"):
            # AWS applies TimeoutSeconds to delivery; delivery is instant here, so the rig
            # holds the whole run to it too (never later than AWS would end it).
            limit = min(limit, float(kwargs["timeout_seconds"]))
        limit = _scaled(limit)
        invocations = []
        for name, instances in targeted.items():
            fault = _instance_faults.pop(name, {})
            invocations += _schedule(
                sorted(instances, key=lambda i: i.launched_at), fault.get("fail", 0),
                fault.get("hang", 0), now, limit, kwargs.get("max_concurrency"),
                kwargs.get("max_errors"))
        _invocations[command.command_id] = invocations
        command.instance_ids = [i.instance.id for i in invocations]
        command.target_count = len(invocations)
        command.invocations = [command.invocation_response(i, "aws:runShellScript")
                               for i in command.instance_ids]
        return command


def _command_response(self: Command) -> dict:
    out = _moto_command_response(self)
    invocations = _invocations.get(self.command_id)
    if invocations is None:
        return out
    now = time.time()
    statuses = [i.status(now) for i in invocations]
    done = [s for s in statuses if s not in ("Pending", "InProgress")]
    failed, timed_out = statuses.count("Failed"), statuses.count("TimedOut")
    if len(done) < len(statuses):
        status = "InProgress"
    elif failed or "Cancelled" in statuses:
        status = "Failed"
    elif timed_out:
        status = "TimedOut"
    else:
        status = "Success"
    out.update(Status=status, StatusDetails=_STATUS_DETAILS[status], TargetCount=len(statuses),
               CompletedCount=len(done), ErrorCount=failed + timed_out, DeliveryTimedOutCount=0)
    return out


def _get_command_invocation(self: SimpleSystemManagerBackend, command_id: str,
                            instance_id: str, plugin_name: str | None) -> dict:
    with _lock:
        out = dict(_moto_get_invocation(self, command_id, instance_id, plugin_name))
        for invocation in _invocations.get(command_id, []):
            if invocation.instance.id == instance_id:
                status = invocation.status(time.time())
                out.update(Status=status, StatusDetails=_STATUS_DETAILS[status],
                           ResponseCode={"Success": 0, "Failed": 1}.get(status, -1))
                if status == "InProgress":
                    out.update(ExecutionEndDateTime="", ExecutionElapsedTime="")
        return out


def list_command_invocations(self: SimpleSystemManagerResponse) -> ActionResult:
    """moto 5.2 answers ListCommandInvocations with HTTP 500; this lists the modelled
    invocations, MaxResults (default 50) a page (no plugin output: Details is ignored)."""
    command_id = self._get_param("CommandId")
    instance_id = self._get_param("InstanceId")
    page = int(self._get_param("MaxResults") or 50)
    start = int(self._get_param("NextToken") or 0)
    backend = self.ssm_backend
    with _lock:
        commands = [backend.get_command_by_id(command_id)] if command_id else backend._commands
        now = time.time()
        rows = []
        for command in commands:
            modelled = _invocations.get(command.command_id)
            if modelled is None:  # a command on no modelled instance: moto's own result
                pairs = [(i["InstanceId"], "Success") for i in command.invocations]
            else:
                pairs = [(i.instance.id, i.status(now)) for i in modelled]
            for target, status in pairs:
                if instance_id and target != instance_id:
                    continue
                rows.append({
                    "CommandId": command.command_id,
                    "InstanceId": target,
                    "InstanceName": "",
                    "Comment": command.comment,
                    "DocumentName": command.document_name,
                    "DocumentVersion": "$DEFAULT",
                    "RequestedDateTime": command.requested_date_time,
                    "Status": status,
                    "StatusDetails": _STATUS_DETAILS[status],
                    "StandardOutputUrl": "",
                    "StandardErrorUrl": "",
                    "CommandPlugins": [],
                    "ServiceRole": command.service_role_arn,
                })
        more = start + page < len(rows)
        return ActionResult({"CommandInvocations": rows[start:start + page],
                             "NextToken": str(start + page) if more else None})


SimpleSystemManagerBackend.send_command = _send_command
SimpleSystemManagerBackend.get_command_invocation = _get_command_invocation
Command.response_object = _command_response
Command._get_instance_ids_from_targets = _target_ids
SimpleSystemManagerResponse.list_command_invocations = list_command_invocations
