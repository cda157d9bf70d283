"""Auto Scaling on AWS's clock: instances that boot and warm, capacity bounds, and instance
refresh in batches (moto launches at once and has no refresh).

See rig/README.md."""

from __future__ import annotations

import datetime as dt
import math
import time
import uuid
from moto.autoscaling.exceptions import AutoscalingClientError, ValidationError
from moto.autoscaling.models import AutoScalingBackend, FakeAutoScalingGroup, autoscaling_backends
from moto.autoscaling.responses import AutoScalingResponse
from moto.core.responses import ActionResult

from .instances import (
    ACTIVE_STATES,
    APP_PARAMETER,
    BOOT_SECONDS,
    Instance,
    KEEP_TERMINATED,
    RUN_COMMAND_SECONDS,
    SSM_REGISTER_SECONDS,
    TIME_SCALE,
    WARMUP_SECONDS,
    _draw,
    _groups,
    _lock,
    _parameter_at,
    _refreshes,
    _scaled,
    _utc,
)


def _group_key(group: FakeAutoScalingGroup) -> tuple | None:
    backend = getattr(group, "autoscaling_backend", None)
    name = getattr(group, "name", None)
    if backend is None or name is None:
        return None
    return (backend.account_id, backend.region_name, name)


def _sync(group: FakeAutoScalingGroup, at: float | None = None,
          warmup: float | None = None) -> list[str]:
    """Brings the overlay in line with moto's instance ids after a capacity change: ids
    moto dropped are terminated, new ids are booting. Returns the new ids."""
    overlay = _groups.get(_group_key(group))
    if overlay is None:
        return []
    at = time.time() if at is None else at
    live = [state.instance.id for state in group.instance_states]
    for instance in overlay.values():
        if instance.terminated_at is None and instance.id not in live:
            instance.terminated_at = at
    gone = [i for i in overlay.values() if i.terminated_at is not None]
    forgotten = sorted(gone, key=lambda i: i.terminated_at)[: max(0, len(gone) - KEEP_TERMINATED)]
    for instance in forgotten:
        del overlay[instance.id]
    if forgotten:
        _forget_in_ec2(group.autoscaling_backend.ec2_backend, {i.id for i in forgotten})
    launched = []
    for instance_id in live:
        if instance_id not in overlay:
            overlay[instance_id] = Instance(
                _group_key(group), instance_id, at, _draw(BOOT_SECONDS),
                _scaled(WARMUP_SECONDS) if warmup is None else warmup)
            launched.append(instance_id)
    return launched


def _forget_in_ec2(ec2_backend, instance_ids: set[str]) -> None:
    """Removes these instances from moto's EC2 if it has terminated them (one only detached
    from its group still runs), with their tags and network interfaces (moto keeps those,
    and their subnet addresses, after termination; AWS deletes an instance's own); an
    emptied reservation goes too."""
    for reservation_id, reservation in list(ec2_backend.reservations.items()):
        dropped = [i for i in reservation.instances
                   if i.id in instance_ids and i.state_code == 48]  # 48: terminated
        if not dropped:
            continue
        for instance in dropped:
            ec2_backend.tags.pop(instance.id, None)
            for nic in list(instance.nics.values()):
                if nic.id in ec2_backend.enis:
                    nic.delete()  # frees its address in the subnet too
        gone = {i.id for i in dropped}
        reservation.instances = [i for i in reservation.instances if i.id not in gone]
        if not reservation.instances:
            del ec2_backend.reservations[reservation_id]


_moto_group_set_desired = FakeAutoScalingGroup.set_desired_capacity


def _group_set_desired(self: FakeAutoScalingGroup, new_capacity: int | None) -> None:
    with _lock:
        overlay = _groups.get(_group_key(self))
        if overlay is not None:
            # moto scales in by removing the first unprotected instances of its list:
            # put the newest first so scale-in terminates the newest.
            order = {instance_id: i for i, instance_id in enumerate(overlay)}
            self.instance_states.sort(key=lambda s: -order.get(s.instance.id, len(order)))
        _moto_group_set_desired(self, new_capacity)
        _sync(self)


FakeAutoScalingGroup.set_desired_capacity = _group_set_desired

_moto_create_group = AutoScalingBackend.create_auto_scaling_group
_moto_delete_group = AutoScalingBackend.delete_auto_scaling_group


def _create_group(self: AutoScalingBackend, *args, **kwargs) -> FakeAutoScalingGroup:
    """The group's first instances are the application already deployed: in service at
    once, holding the parameter's value at this moment."""
    with _lock:
        group = _moto_create_group(self, *args, **kwargs)
        key = (self.account_id, self.region_name, group.name)
        now = time.time()
        _groups[key] = {s.instance.id: Instance(key, s.instance.id, now, 0.0, 0.0, 0.0)
                        for s in group.instance_states}
        _refreshes.pop(key, None)
        return group


def _delete_group(self: AutoScalingBackend, group_name: str) -> None:
    with _lock:
        _moto_delete_group(self, group_name)
        _groups.pop((self.account_id, self.region_name, group_name), None)
        _refreshes.pop((self.account_id, self.region_name, group_name), None)


AutoScalingBackend.create_auto_scaling_group = _create_group
AutoScalingBackend.delete_auto_scaling_group = _delete_group


def _group_or_fail(resp: AutoScalingResponse, name: str) -> FakeAutoScalingGroup:
    group = autoscaling_backends[resp.current_account][resp.region].autoscaling_groups.get(name)
    if group is None:
        raise ValidationError(f"AutoScalingGroup name not found - {name}")
    return group


_moto_set_desired = AutoScalingResponse.set_desired_capacity
_moto_update_group = AutoScalingResponse.update_auto_scaling_group
_moto_describe_groups = AutoScalingResponse.describe_auto_scaling_groups


def set_desired_capacity(self: AutoScalingResponse) -> ActionResult:
    # moto 5.2 accepts any desired capacity; AWS refuses one outside MinSize..MaxSize.
    group = _group_or_fail(self, self._get_param("AutoScalingGroupName"))
    desired = self._get_int_param("DesiredCapacity")
    if desired is not None and desired > group.max_size:
        raise ValidationError(f"New SetDesiredCapacity value {desired} is above max value "
                              f"{group.max_size} for the AutoScalingGroup.")
    if desired is not None and desired < group.min_size:
        raise ValidationError(f"New SetDesiredCapacity value {desired} is below min value "
                              f"{group.min_size} for the AutoScalingGroup.")
    with _lock:
        return _moto_set_desired(self)


def update_auto_scaling_group(self: AutoScalingResponse) -> ActionResult:
    # moto 5.2 accepts a DesiredCapacity outside the (new) MinSize..MaxSize; AWS does not.
    group = _group_or_fail(self, self._get_param("AutoScalingGroupName"))
    desired = self._get_int_param("DesiredCapacity")
    low = self._get_int_param("MinSize")
    high = self._get_int_param("MaxSize")
    low = group.min_size if low is None else low
    high = group.max_size if high is None else high
    if low > high:
        raise ValidationError(f"Max bound, {high}, must be greater than or equal to min bound, {low}")
    if desired is not None and not low <= desired <= high:
        raise ValidationError(f"Desired capacity:{desired} must be between the specified min "
                              f"size:{low} and max size:{high}")
    with _lock:
        return _moto_update_group(self)


class _View:
    """A moto object with some attributes answered differently (for the serializer)."""

    def __init__(self, wrapped, **overrides) -> None:
        self.__dict__.update(overrides)
        self._wrapped = wrapped

    def __getattr__(self, name):
        return getattr(self._wrapped, name)


def describe_auto_scaling_groups(self: AutoScalingResponse) -> ActionResult:
    """moto's answer, with each instance's LifecycleState from the model: Pending while it
    boots, InService once booted (moto's own state stays InService: it counts those)."""
    with _lock:
        result = _moto_describe_groups(self)
        now = time.time()
        views = []
        for group in result.result["AutoScalingGroups"]:
            overlay = _groups.get(_group_key(group)) or {}
            instances = []
            for state in group.instance_states:
                modelled = overlay.get(state.instance.id)
                lifecycle = state.lifecycle_state
                if modelled is not None and modelled.state(now) == "booting":
                    lifecycle = "Pending"
                instances.append(_View(state, lifecycle_state=lifecycle))
            views.append(_View(group, instances=instances))
        result.result["AutoScalingGroups"] = views
        return result


class InstanceRefreshInProgress(AutoscalingClientError):
    code = "InstanceRefreshInProgress"


class ActiveInstanceRefreshNotFound(AutoscalingClientError):
    code = "ActiveInstanceRefreshNotFound"


def _now() -> dt.datetime:
    return dt.datetime.now(dt.timezone.utc)


def _start_batch(refresh: dict, at: float) -> bool:
    """Terminates the next batch of old instances and launches their replacements (booting
    from `at`); False when no old instance is left."""
    account, region, name = refresh["_key"]
    backend = autoscaling_backends[account][region]
    group = backend.autoscaling_groups.get(name)
    if group is None:
        return False
    live = {state.instance.id for state in group.instance_states}
    remaining = [i for i in refresh["_old"] if i in live]
    if not remaining:
        return False
    chosen = remaining[: refresh["_batch_size"]]
    backend.ec2_backend.terminate_instances(chosen)
    group.instance_states = [s for s in group.instance_states if s.instance.id not in chosen]
    group.replace_autoscaling_group_instances(len(chosen), group.get_propagated_tags())
    launched = _sync(group, at=at, warmup=refresh["_warmup"])
    refresh["_batches"].append({"start": at, "replaced": chosen, "launched": launched})
    return True


def _batch_end(batch: dict, overlay: dict[str, Instance], now: float) -> float | None:
    """When the batch's replacements were all in service (or gone); None if not yet."""
    end = batch["start"]
    for instance_id in batch["launched"]:
        instance = overlay.get(instance_id)
        if instance is None:  # terminated long ago and forgotten
            continue
        done = instance.in_service_at
        if instance.terminated_at is not None and instance.terminated_at < done:
            done = instance.terminated_at
        if done > now:
            return None
        end = max(end, done)
    return end


def _advance(refresh: dict, now: float) -> None:
    """Moves a refresh along by wall-clock time, batch after batch, as AWS does in the
    background; a batch that ended in the past starts the next one at that moment. A
    refresh that has ended is final: every request walks them all, so it returns at once."""
    if refresh["Status"] not in ("Pending", "InProgress"):
        return
    overlay = _groups.get(refresh["_key"])
    if overlay is None:
        return
    while refresh["Status"] in ("Pending", "InProgress"):
        if refresh["_batches"]:
            end = _batch_end(refresh["_batches"][-1], overlay, now)
            if end is None:
                break
        else:
            end = refresh["_start"]
        if not _start_batch(refresh, end):
            refresh["Status"] = "Successful"
            refresh["StatusReason"] = "Instance refresh completed"
            refresh["EndTime"] = _utc(end)
            refresh["PercentageComplete"] = 100
            refresh["InstancesToUpdate"] = 0
            return
        refresh["Status"] = "InProgress"
        refresh["StatusReason"] = (f"Replacing batch {len(refresh['_batches'])} of "
                                   f"{refresh['_batch_count']}")
    if refresh["Status"] == "InProgress":
        total = len(refresh["_old"])
        done = sum(1 for b in refresh["_batches"] for i in b["launched"]
                   if i in overlay and overlay[i].state(now) == "in_service")
        refresh["PercentageComplete"] = min(100, int(100 * done / total)) if total else 100
        refresh["InstancesToUpdate"] = max(0, total - done)


def _advance_all() -> None:
    """Brings every refresh and every instance's parameter reads up to now."""
    now = time.time()
    for refreshes in _refreshes.values():
        for refresh in refreshes:
            _advance(refresh, now)
    for overlay in _groups.values():
        for instance in overlay.values():
            if instance.terminated_at is None or not all(read[1] for read in instance.reads):
                instance.value(now)  # a terminated instance's reads, once resolved, are final


def _group_refreshes(resp: AutoScalingResponse, group: str) -> list[dict]:
    _group_or_fail(resp, group)
    key = (resp.current_account, resp.region, group)
    refreshes = _refreshes.setdefault(key, [])
    now = time.time()
    for refresh in refreshes:
        _advance(refresh, now)
    return refreshes


def _public(refresh: dict) -> dict:
    return {k: v for k, v in refresh.items() if not k.startswith("_")}


def start_instance_refresh(self: AutoScalingResponse) -> ActionResult:
    params = self._get_params()
    group = params.get("AutoScalingGroupName")
    with _lock:
        refreshes = _group_refreshes(self, group)
        if any(r["Status"] in ACTIVE_STATES for r in refreshes):
            raise InstanceRefreshInProgress(
                "An Instance Refresh is already in progress and blocks the execution of this Instance Refresh."
            )
        key = (self.current_account, self.region, group)
        model = autoscaling_backends[self.current_account][self.region].autoscaling_groups[group]
        overlay = _groups.get(key, {})
        now = time.time()
        current = _parameter_at(self.current_account, self.region, now)
        # Only the instances there now are replaced; those holding an old value go first,
        # then the oldest.
        old = sorted((s.instance.id for s in model.instance_states),
                     key=lambda i: (overlay[i].value(now) == current, overlay[i].launched_at)
                     if i in overlay else (False, 0.0))
        preferences = params.get("Preferences") or {}
        min_healthy = float(preferences.get("MinHealthyPercentage", 90))
        warmup = preferences.get("InstanceWarmup")
        warmup = float(WARMUP_SECONDS if warmup is None else warmup)
        batch = max(1, len(old) - math.ceil(len(old) * min_healthy / 100))
        refresh = {
            "InstanceRefreshId": str(uuid.uuid4()),
            "AutoScalingGroupName": group,
            "Status": "Pending",
            "StatusReason": "Waiting for instances to be replaced",
            "StartTime": _utc(now),
            "PercentageComplete": 0,
            "InstancesToUpdate": len(old),
            "Preferences": preferences,
            "Strategy": params.get("Strategy") or "Rolling",
            "_key": key,
            "_start": now,
            "_old": old,
            "_batch_size": batch,
            "_batch_count": math.ceil(len(old) / batch) if old else 0,
            "_warmup": _scaled(warmup),
            "_batches": [],
        }
        refreshes.insert(0, refresh)
        _advance(refresh, now)
        return ActionResult({"InstanceRefreshId": refresh["InstanceRefreshId"]})


def describe_instance_refreshes(self: AutoScalingResponse) -> ActionResult:
    params = self._get_params()
    group = params.get("AutoScalingGroupName")
    wanted = set(params.get("InstanceRefreshIds") or [])
    with _lock:
        refreshes = _group_refreshes(self, group)
        chosen = [r for r in refreshes if not wanted or r["InstanceRefreshId"] in wanted]
        limit = int(params.get("MaxRecords") or 50)  # AWS's page size (no NextToken here)
        return ActionResult({"InstanceRefreshes": [_public(r) for r in chosen[:limit]]})


def _stop_active(self: AutoScalingResponse, new_status: str) -> ActionResult:
    group = self._get_params().get("AutoScalingGroupName")
    with _lock:
        refreshes = _group_refreshes(self, group)
        for refresh in refreshes:
            if refresh["Status"] in ACTIVE_STATES:
                # No further batch starts; instances already launched keep booting.
                refresh["Status"] = new_status
                refresh["EndTime"] = _now()
                refresh["StatusReason"] = f"Instance refresh {new_status.lower()} on request"
                return ActionResult({"InstanceRefreshId": refresh["InstanceRefreshId"]})
        raise ActiveInstanceRefreshNotFound("No in progress or pending Instance Refresh found")


def cancel_instance_refresh(self: AutoScalingResponse) -> ActionResult:
    return _stop_active(self, "Cancelled")


def rollback_instance_refresh(self: AutoScalingResponse) -> ActionResult:
    return _stop_active(self, "RollbackSuccessful")


for _op in (
    set_desired_capacity,
    update_auto_scaling_group,
    describe_auto_scaling_groups,
    start_instance_refresh,
    describe_instance_refreshes,
    cancel_instance_refresh,
    rollback_instance_refresh,
):
    setattr(AutoScalingResponse, _op.__name__, _op)


def _instances_report(region: str) -> dict:
    with _lock:
        _advance_all()
        now = time.time()
        groups = {}
        for (account, reg, name), overlay in _groups.items():
            if reg != region:
                continue
            group = autoscaling_backends[account][reg].autoscaling_groups.get(name)
            if group is None:
                continue
            groups[name] = {"desired": group.desired_capacity, "min": group.min_size,
                            "max": group.max_size,
                            "instances": [i.report(now) for i in overlay.values()]}
        return {"groups": groups, "time_scale": TIME_SCALE, "boot_seconds": list(BOOT_SECONDS),
                "warmup_seconds": WARMUP_SECONDS, "run_command_seconds": list(RUN_COMMAND_SECONDS),
                "ssm_register_seconds": list(SSM_REGISTER_SECONDS),
                "parameter": APP_PARAMETER, "now": now}
