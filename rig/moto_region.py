"""One emulated AWS region for the regionpilot rig.

Runs moto in-process on 127.0.0.1 and fills the gaps regionpilot needs by registering
the missing operations on moto's own backends (no emulator written from scratch):

* Auto Scaling instances on AWS's clock. moto launches instances the moment the capacity
  changes, runs nothing on them, and accepts a desired capacity above MaxSize. An overlay
  per group keeps moto's instance ids and adds what the application's recovery depends on:
  each instance is `booting` (RIG_BOOT_SECONDS, default "60-90", drawn per instance), then
  `warming` (RIG_WARMUP_SECONDS, default 60, the template's REFRESH_WARMUP_SECONDS), then
  `in_service`, or `terminated`. At the end of boot it reads the application parameter
  (RIG_APP_PARAMETER, default /regionpilot-test/active-region) from its own region's SSM,
  as the application's boot script does; that is the value it serves. The group's first
  instances (CreateAutoScalingGroup) are the application already deployed: in service at
  once with the value of that moment. Instances added by a capacity change boot; scale-in
  terminates the newest first. SetDesiredCapacity / UpdateAutoScalingGroup outside
  MinSize..MaxSize fail with AWS's ValidationError (moto accepts them).
  DescribeAutoScalingGroups reports a booting instance as Pending, otherwise InService
  (DescribeAutoScalingInstances keeps moto's InService).

* Auto Scaling instance refresh: StartInstanceRefresh, DescribeInstanceRefreshes,
  CancelInstanceRefresh, RollbackInstanceRefresh (moto 5.2 answers HTTP 500). As AWS does,
  a refresh replaces the instances there at its start in batches of
  max(1, N - ceil(N * MinHealthyPercentage / 100)) (default 90): a batch terminates its old
  instances (those holding an old value first, then the oldest), launches replacements
  that boot, read the parameter and warm for Preferences.InstanceWarmup (default
  RIG_WARMUP_SECONDS); the next batch starts when they are all in service. Status:
  InProgress -> Successful, with PercentageComplete and InstancesToUpdate following the
  replacements in service. One active refresh per group (a second start fails with
  InstanceRefreshInProgress); Cancel moves it to Cancelled and starts no further batch
  (instances already launched keep booting); Rollback answers RollbackSuccessful at once.

* SSM Run Command. moto answers SendCommand with Success at once, runs nothing, and has no
  ListCommandInvocations (HTTP 500). Here a command sent to an Auto Scaling group's tag
  (tag:aws:autoscaling:groupName) or to instance ids reaches the modelled instances SSM
  knows: an instance registers as a managed node RIG_SSM_REGISTER_SECONDS (default "5-15",
  drawn per instance) after the end of its boot, when its agent has started, not at the
  instant it reads the parameter. Naming an instance SSM does not know yet by id fails
  with InvalidInstanceId, as AWS does. The command runs in waves, as SSM runs it: at most
  MaxConcurrency targets at a time (a count, or a share of the targets rounded up; SSM's
  default 50), the next starting as one ends, Pending until then; once more than MaxErrors
  targets (a count, or a share rounded down; default 0) have failed or timed out, the
  targets not yet started get no command and are reported Cancelled (the rounding and the
  Cancelled status are assumptions: AWS documents that it stops sending, not how it
  reports the rest). Each invocation is InProgress for RIG_RUN_COMMAND_SECONDS (default
  "2-5", drawn per instance and command), then Success, and the instance then holds the
  parameter's value of that moment (the reload re-reads it). One that would run past
  Parameters.executionTimeout (default 3600) or TimeoutSeconds ends TimedOut there (AWS
  applies TimeoutSeconds to delivery only; delivery is instant here). ListCommandInvocations,
  GetCommandInvocation and ListCommands report these states and counts. Per-instance
  failures for the next command to a group, through the control port:
      POST /instances/faults {"group": "app-asg", "fail": 1, "hang": 1}
  the first `fail` targeted instances (oldest first) end Failed, the next `hang` never
  finish (TimedOut at the execution timeout); their value is unchanged. fail=0, hang=0
  clears.

* Reading the model: GET /instances on the control port ->
      {"groups": {"app-asg": {"desired", "min", "max", "instances": [{"id", "state",
       "value", "launched_at", "in_service_at", "terminated_at"}]}}, "time_scale",
       "boot_seconds": [lo, hi], "warmup_seconds", "run_command_seconds": [lo, hi], ...}
  (times in epoch seconds; the modelled durations unscaled). A frozen region cannot answer.
  A group keeps its newest 100 terminated instances; older ones are forgotten, here and in
  EC2 (DescribeInstances, with their network interfaces and tags): AWS forgets a terminated
  instance after about an hour; moto never does, and scans them all on every launch,
  termination and tag lookup.

  Time is wall-clock time, advanced lazily (states are computed from timestamps on every
  request). Every modelled AWS duration, including the caller's InstanceWarmup and
  execution timeout, is divided by RIG_TIME_SCALE (default 1) so tests can run a
  recovery in seconds. Not modelled: health checks, AZ balancing, lifecycle hooks,
  warm pools, Terminating states, command cancellation by the caller.

* Global Tables replication: writes (PutItem, UpdateItem, DeleteItem) to the tables named
  with --replicate are shipped to every peer region after a per-destination lag, in order,
  and applied there last-writer-wins, as DynamoDB global tables do. Replication towards a
  peer can be paused and resumed (AWS FIS pause-replication) and its lag changed at run
  time through the region's control port:
      POST /replication  {"to": "us-west-2", "lag_seconds": 2.5, "paused": false}
      GET  /replication  -> per destination: lag, paused, queued writes
  A frozen region ships nothing until thawed; a killed region's queue is lost with it.
  Transactions are not replicated (regionpilot's replicated tables do not use them).

* Faults: POST /faults {"rules": [{"operation": "PutParameter", "error":
  "ThrottlingException", "count": 3}, {"operation": "*", "latency_ms": 800}]} answers
  matching requests with that AWS error (in the service's own JSON or XML protocol) or
  delays them, for `count` requests (-1: until replaced). {"rules": []} clears them.
  With "applied": true the request is carried out first, as AWS sometimes does before
  failing it: its answer is then replaced by the error ({"operation": "PutItem",
  "applied": true, "error": "InternalServerError", "status": 500, "count": 1}), or, with
  "hold_ms" and no error, held that long before it is sent (past the caller's timeout).
  moto never does either by itself. The SDK's retry of such a request is a new request:
  it meets the rule again only while `count` lasts.

* Multi-Region strong consistency (MRSC) global tables, opt-in: nothing changes unless
  RIG_MRSC_TABLES names tables. RIG_MRSC_REGIONS lists the regions holding a replica
  (required with RIG_MRSC_TABLES; the first also names the store's backend),
  RIG_MRSC_WITNESS optionally a witness region (only reported), RIG_MRSC_STORE the store's
  URL (the harness starts it: this file with --mrsc-store), RIG_MRSC_CONFLICT_MS the time a
  write is in flight (default 10).
  What is modelled, as AWS documents MRSC:
  - One authoritative copy. The tables live in one store process; each MRSC region's
    endpoint forwards every DynamoDB request naming one of them (items, queries, scans,
    batches, DescribeTable, continuous backups, CreateTable ...) to it, so the table
    survives the loss (freeze, kill) of any region process, and a write acknowledged
    through one region is seen at once by a strongly consistent read through any other
    (the store serialises items; reads are linearizable). DescribeTable reports
    MultiRegionConsistency STRONG, the replicas (and witness), and the answering
    region's ARN. Eventually consistent reads are served from the store too, so they are
    fresh while the region is connected (AWS allows them to be stale; the rig does not
    model replication lag here).
  - Write conflicts. A write (PutItem, UpdateItem, DeleteItem, BatchWriteItem) is applied
    at once and acknowledged RIG_MRSC_CONFLICT_MS later (the synchronous cross-region
    round trip); a write to the same item arriving through another region while one is in
    flight gets ReplicatedWriteConflictException (HTTP 400, retryable) and is not
    applied. Writes through one region never conflict with each other; a condition that
    fails is ConditionalCheckFailedException as before and puts nothing in flight. The
    window is a network round trip and is not divided by RIG_TIME_SCALE.
  - Isolation: a region cut off from the majority, through its control port:
        POST /mrsc {"isolated": true}   (false reconnects; GET /mrsc reports the state)
    Its writes, strongly consistent reads and table changes answer at once with
    InternalServerError (HTTP 500). AWS documents that an isolated replica cannot serve
    them but, as far as we could find, not the exact error: the code is an assumption,
    which {"error": CODE, "status": N} in the same POST overrides. Its eventually
    consistent reads keep answering, stale: from a copy of the tables taken when it was
    cut off (writes through the other regions meanwhile are not in it). Describe* and
    List* operations are still forwarded. Reconnecting drops the copy.
  - AWS refuses on an MRSC table: transactions (TransactWriteItems, TransactGetItems)
    and TTL (UpdateTimeToLive) answer ValidationException (message assumed).
  Not modelled: the majority itself (freezing or killing two regions does not cut the
  third off: isolate it explicitly; the store never fails), replication lag of eventually
  consistent reads in a connected region, the witness as a process, a region outside
  RIG_MRSC_REGIONS (it keeps its own tables, as a region without a replica would answer
  ResourceNotFoundException), ListTables and tag operations (answered by the region's own
  moto), ARNs in TableName, a request naming an MRSC table and another table
  (ValidationException from the rig), which writer wins a conflict (always the first
  here), per-item errors inside a batch (a conflict fails the whole batch).

Each region is its own process so the tests can freeze it (SIGSTOP), thaw it (SIGCONT)
or kill it, exactly as a regional outage looks to a client: connections that hang, or
connections refused.

Usage: python rig/moto_region.py --region us-east-1 --port 5101
"""

from __future__ import annotations

import argparse
import collections
import datetime as dt
import http
import io
import json
import math
import os
import random
import re
import time
import urllib.error
import urllib.parse
import urllib.request
import zlib
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
import signal
import sys
import threading
import uuid

import moto.backends
from moto.autoscaling.exceptions import AutoscalingClientError, ValidationError
from moto.autoscaling.models import AutoScalingBackend, FakeAutoScalingGroup, autoscaling_backends
from moto.autoscaling.responses import AutoScalingResponse
from moto.core.responses import ActionResult
from moto.dynamodb.models import DynamoDBBackend, dynamodb_backends
from moto.dynamodb.responses import DynamoResult
from moto.iam.models import get_account_id_from
from moto.moto_server.werkzeug_app import DomainDispatcherApplication, MotoRequestHandler, create_backend_app
from moto.ssm.exceptions import SSMException
from moto.ssm.models import Command, SimpleSystemManagerBackend, ssm_backends
from moto.ssm.responses import SimpleSystemManagerResponse
from werkzeug.serving import make_server
from werkzeug.test import Client

# moto's server looks each request's Host up among its service packages by listing its own
# directory (a listdir and a stat per entry, twice for a Host such as 127.0.0.1:PORT), under
# its dispatcher's one lock: a third of the CPU of a GetItem. They never change here.
_MOTO_MODULES = frozenset(moto.backends.list_of_moto_modules())
moto.backends.list_of_moto_modules = lambda: _MOTO_MODULES

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


_item_lock = threading.RLock()


def _serialised(method):
    def locked(*args, **kwargs):
        with _item_lock:
            return method(*args, **kwargs)

    locked.__name__ = method.__name__
    locked.__doc__ = method.__doc__
    return locked


for _name in ("get_item", "query", "scan", "transact_write_items"):
    setattr(DynamoDBBackend, _name, _serialised(getattr(DynamoDBBackend, _name)))


# moto writes every DynamoDB answer through botocore's model, attribute by attribute: a
# few milliseconds for one nested item (regionpilot's control state), and 45 % of a
# region's CPU in the race test. The answers of the item operations are DynamoDB's wire
# JSON already (moto's DynamoResult converted them), so they are written as they are;
# everything else (errors, table descriptions with timestamps) keeps moto's serializer.
_ITEM_OPERATIONS = frozenset({"GetItem", "BatchGetItem", "Query", "Scan", "PutItem",
                              "UpdateItem", "DeleteItem", "BatchWriteItem"})
_moto_dynamo_execute = DynamoResult.execute_result


def _dynamo_execute(self: DynamoResult, context):
    result = self.result
    if context.operation_model.name not in _ITEM_OPERATIONS or not isinstance(result, dict):
        return _moto_dynamo_execute(self, context)
    body = json.dumps({k: v for k, v in result.items() if v is not None})
    return 200, {"Content-Type": "application/x-amz-json-1.0"}, body


DynamoResult.execute_result = _dynamo_execute


# ----- Global Tables replication -----

_replicated_tables: set[str] = set()
_applying = threading.local()
# (account, region, table, key json) -> wall-clock ms of the newest write applied here
_item_clock: dict[tuple, int] = {}


def _now_ms() -> int:
    return int(time.time() * 1000)


def _key_of(backend: DynamoDBBackend, table_name: str, attrs: dict) -> dict:
    table = backend.get_table(table_name)
    key = {table.hash_key_attr: attrs[table.hash_key_attr]}
    if table.range_key_attr:
        key[table.range_key_attr] = attrs[table.range_key_attr]
    return key


def _clock_key(backend, table_name, key) -> tuple:
    return (backend.account_id, backend.region_name, table_name, json.dumps(key, sort_keys=True))


class Outbound:
    """Writes waiting to be shipped to one peer region, in order."""

    def __init__(self, region: str, control_url: str, lag: float) -> None:
        self.region = region
        self.url = control_url
        self.lag = lag
        self.paused = False
        self.queue: collections.deque = collections.deque()
        self.cond = threading.Condition()
        threading.Thread(target=self._ship, daemon=True).start()

    def push(self, message: dict) -> None:
        with self.cond:
            self.queue.append(message)
            self.cond.notify()

    def _ship(self) -> None:
        while True:
            with self.cond:
                while not self.queue or self.paused:
                    self.cond.wait(0.2)
                message = self.queue[0]
                due = message["at"] / 1000 + self.lag
            delay = due - time.time()
            if delay > 0:
                time.sleep(min(delay, 0.2))
                continue
            body = json.dumps(message).encode()
            request = urllib.request.Request(self.url + "/replicate", data=body, method="POST")
            try:
                urllib.request.urlopen(request, timeout=2).read()
            except Exception:  # peer down or frozen: keep the write, try again
                time.sleep(0.5)
                continue
            with self.cond:
                if self.queue and self.queue[0] is message:
                    self.queue.popleft()


_outbound: dict[str, Outbound] = {}


def _replicate(backend, table_name: str, op: str, attrs: dict) -> None:
    if table_name not in _replicated_tables or getattr(_applying, "active", False):
        return
    at = _now_ms()
    key = _key_of(backend, table_name, attrs)
    _item_clock[_clock_key(backend, table_name, key)] = at
    message = {"account": backend.account_id, "table": table_name, "op": op, "at": at,
               "item": attrs if op == "put" else None, "key": key}
    for peer in _outbound.values():
        peer.push(message)


def _replicating_put(original):
    def put_item(self, table_name, item_attrs, *args, **kwargs):
        with _item_lock:
            item = original(self, table_name, item_attrs, *args, **kwargs)
            _replicate(self, table_name, "put", item.to_json()["Attributes"])
            return item
    return put_item


def _replicating_update(original):
    def update_item(self, table_name, key, *args, **kwargs):
        with _item_lock:
            item = original(self, table_name, key, *args, **kwargs)
            _replicate(self, table_name, "put", item.to_json()["Attributes"])
            return item
    return update_item


def _replicating_delete(original):
    def delete_item(self, table_name, key, *args, **kwargs):
        with _item_lock:
            item = original(self, table_name, key, *args, **kwargs)
            _replicate(self, table_name, "delete", key)
            return item
    return delete_item


DynamoDBBackend.put_item = _replicating_put(DynamoDBBackend.put_item)
DynamoDBBackend.update_item = _replicating_update(DynamoDBBackend.update_item)
DynamoDBBackend.delete_item = _replicating_delete(DynamoDBBackend.delete_item)


def _apply(region: str, message: dict) -> None:
    backend = dynamodb_backends[message["account"]][region]
    table = message["table"]
    clock = _clock_key(backend, table, message["key"])
    with _item_lock:
        if _item_clock.get(clock, 0) > message["at"]:
            return  # a newer write already landed here: last writer wins
        _applying.active = True
        try:
            if message["op"] == "put":
                backend.put_item(table, message["item"])
            else:
                backend.delete_item(table, message["key"])
            _item_clock[clock] = message["at"]
        finally:
            _applying.active = False


# Fault injection, set through the control port (POST /faults): each rule matches an
# operation ("PutParameter", "GetItem", "StartInstanceRefresh", or "*") and either delays
# it (latency_ms) or answers it with an AWS error in the service's own protocol, for the
# next `count` matching requests (-1: until cleared).
_faults: list[dict] = []
_faults_lock = threading.Lock()


def _operation(environ: dict) -> tuple[str, str, bytes]:
    """(protocol, operation, body) of a request: JSON protocols name the operation in
    X-Amz-Target, the query protocol (Auto Scaling) in the form's Action."""
    length = int(environ.get("CONTENT_LENGTH") or 0)
    body = environ["wsgi.input"].read(length) if length else b""
    target = environ.get("HTTP_X_AMZ_TARGET", "")
    if target:
        return "json", target.rsplit(".", 1)[-1], body
    form = urllib.parse.parse_qs(body.decode(errors="replace"))
    return "query", (form.get("Action") or [""])[0], body


def _matching_fault(operation: str) -> dict | None:
    with _faults_lock:
        for rule in _faults:
            if rule["operation"] in ("*", operation) and rule["count"] != 0:
                if rule["count"] > 0:
                    rule["count"] -= 1
                return dict(rule)
    return None


class FaultInjector:
    def __init__(self, app) -> None:
        self.app = app

    def _serve(self, environ, start_response):
        if environ.get("HTTP_X_AMZ_TARGET", "").startswith("DynamoDB"):
            return self.app(environ, start_response)  # never touches the instance model
        # Any other request sees the instance model moved along to now, and runs alone
        # with it (moto's backends are not thread-safe).
        with _lock:
            _advance_all()
            return self.app(environ, start_response)

    def __call__(self, environ, start_response):
        protocol, operation, body = _operation(environ)
        environ["wsgi.input"] = io.BytesIO(body)
        rule = _matching_fault(operation)
        if rule and rule.get("latency_ms"):
            time.sleep(rule["latency_ms"] / 1000)
        if rule and rule.get("applied"):
            # As AWS can: the request takes effect, and its answer is an error or comes
            # after the caller has given up. Whatever the service answered is dropped.
            captured: list = []
            answer = b"".join(self._serve(environ, lambda status, headers, *_: captured.append((status, headers))))
            if rule.get("hold_ms"):
                time.sleep(rule["hold_ms"] / 1000)
            if not rule.get("error"):
                status, headers = captured[0]
                start_response(status, headers)
                return [answer]
        elif not rule or not rule.get("error"):
            return self._serve(environ, start_response)
        code, message, status = rule["error"], rule.get("message", "injected by the rig"), rule.get("status", 400)
        if protocol == "json":
            payload = json.dumps({"__type": code, "message": message}).encode()
            content_type = "application/x-amz-json-1.1"
        else:
            payload = (
                "<ErrorResponse><Error><Type>Sender</Type>"
                f"<Code>{code}</Code><Message>{message}</Message></Error>"
                f"<RequestId>{uuid.uuid4()}</RequestId></ErrorResponse>"
            ).encode()
            content_type = "text/xml"
        start_response(
            f"{status} Injected",
            [("Content-Type", content_type), ("Content-Length", str(len(payload))),
             ("x-amzn-RequestId", str(uuid.uuid4()))],
        )
        return [payload]


# ----- Multi-Region strong consistency (MRSC) global tables -----
#
# Opt-in through RIG_MRSC_TABLES (see the module docstring). Three roles: the store (one
# process, --mrsc-store) holds the tables and decides write conflicts; a region listed in
# RIG_MRSC_REGIONS forwards its requests for those tables there (MrscRouter), unless it is
# cut off; any other region is untouched.


def _names(variable: str) -> list[str]:
    return [n.strip() for n in os.environ.get(variable, "").split(",") if n.strip()]


MRSC_TABLES = frozenset(_names("RIG_MRSC_TABLES"))
MRSC_REGIONS = _names("RIG_MRSC_REGIONS")
MRSC_WITNESS = os.environ.get("RIG_MRSC_WITNESS", "").strip()
MRSC_STORE = os.environ.get("RIG_MRSC_STORE", "").strip().rstrip("/")
try:
    MRSC_CONFLICT_SECONDS = float(os.environ.get("RIG_MRSC_CONFLICT_MS", "10")) / 1000
except ValueError:
    raise SystemExit("RIG_MRSC_CONFLICT_MS: expected milliseconds") from None
if MRSC_CONFLICT_SECONDS < 0:
    raise SystemExit("RIG_MRSC_CONFLICT_MS: must not be negative")
# The region whose moto backend holds the tables in the store (its ARNs are rewritten).
MRSC_STORE_REGION = MRSC_REGIONS[0] if MRSC_REGIONS else ""
MRSC_ORIGIN_HEADER = "X-Rig-Mrsc-Region"
DYNAMODB_ERROR_PREFIX = "com.amazonaws.dynamodb.v20120810#"

_MRSC_WRITES = frozenset({"PutItem", "UpdateItem", "DeleteItem", "BatchWriteItem"})
_MRSC_READS = frozenset({"GetItem", "Query", "Scan", "BatchGetItem"})
_MRSC_REFUSED = {
    "TransactWriteItems": "Transactions are not supported on multi-Region strongly consistent tables",
    "TransactGetItems": "Transactions are not supported on multi-Region strongly consistent tables",
    "UpdateTimeToLive": "Time to Live is not supported on multi-Region strongly consistent tables",
}
_SCOPE = re.compile(r"(Credential=[^/,\s]+/\d{8}/)[^/]+(/dynamodb/)")

# A region's side: cut off or not, the override of the error it then answers, and what
# its local copy holds.
_mrsc_lock = threading.Lock()
_mrsc_state: dict = {"isolated": False, "error": "InternalServerError", "status": 500,
                     "copy": {}, "since": None}
# The store's side: (table, key json) -> (origin region, monotonic time its ack is due).
_in_flight: dict[str, tuple[str, float]] = {}
_mrsc_counts = {"writes": 0, "conflicts": 0}


def _dynamodb_error(start_response, status: int, code: str, message: str) -> list[bytes]:
    """An error as DynamoDB's JSON protocol answers it."""
    payload = json.dumps({"__type": DYNAMODB_ERROR_PREFIX + code, "message": message}).encode()
    start_response(f"{status} {http.HTTPStatus(status).phrase}", [
        ("Content-Type", "application/x-amz-json-1.0"), ("Content-Length", str(len(payload))),
        ("x-amzn-RequestId", str(uuid.uuid4())), ("x-amz-crc32", str(zlib.crc32(payload)))])
    return [payload]


def _table_name(value) -> str | None:
    if not isinstance(value, str):
        return None
    return value.split(":table/", 1)[1].split("/", 1)[0] if ":table/" in value else value


def _request_tables(request: dict) -> set[str]:
    """Every table a DynamoDB request names: TableName, a batch's RequestItems, a
    transaction's items."""
    names = {_table_name(request.get("TableName"))}
    names.update(_table_name(n) for n in (request.get("RequestItems") or {}))
    for entry in request.get("TransactItems") or []:
        for part in (entry.values() if isinstance(entry, dict) else []):
            if isinstance(part, dict):
                names.add(_table_name(part.get("TableName")))
    names.discard(None)
    return names


def _mrsc_kind(operation: str, request: dict) -> str:
    """write, strong (read), eventual (read) or describe."""
    if operation in _MRSC_WRITES:
        return "write"
    if operation in _MRSC_READS:
        if operation == "BatchGetItem":
            strong = any(isinstance(v, dict) and v.get("ConsistentRead") is True
                         for v in (request.get("RequestItems") or {}).values())
        else:
            strong = request.get("ConsistentRead") is True
        return "strong" if strong else "eventual"
    if operation.startswith(("Describe", "List")):
        return "describe"
    return "write"  # CreateTable, UpdateTable, UpdateContinuousBackups...: table changes


def _signed_as(region: str) -> dict[str, str]:
    """Headers moto routes to DynamoDB in `region` (it checks no signature)."""
    return {"Authorization": f"AWS4-HMAC-SHA256 Credential=rig/20250101/{region}/dynamodb/"
                             "aws4_request, SignedHeaders=host, Signature=0",
            "Content-Type": "application/x-amz-json-1.0"}


class MrscRouter:
    """In a region holding an MRSC replica: requests naming an MRSC table go to the store,
    or, when the region is cut off, fail (writes, strong reads) or read the local copy
    (eventual reads). Every other request is the region's own, as before."""

    def __init__(self, app, region: str) -> None:
        self.app = app
        self.region = region
        self.local = Client(app)

    def __call__(self, environ, start_response):
        target = environ.get("HTTP_X_AMZ_TARGET", "")
        if not target.startswith("DynamoDB"):
            return self.app(environ, start_response)
        operation = target.rsplit(".", 1)[-1]
        length = int(environ.get("CONTENT_LENGTH") or 0)
        body = environ["wsgi.input"].read(length) if length else b""
        environ["wsgi.input"] = io.BytesIO(body)
        try:
            request = json.loads(body or b"{}")
        except ValueError:
            return self.app(environ, start_response)
        if not isinstance(request, dict):
            return self.app(environ, start_response)
        tables = _request_tables(request)
        if not tables & MRSC_TABLES:
            return self.app(environ, start_response)
        if tables - MRSC_TABLES:
            return _dynamodb_error(start_response, 400, "ValidationException",
                                   "rig: one request naming an MRSC table and another table "
                                   "is not emulated")
        if operation in _MRSC_REFUSED:
            return _dynamodb_error(start_response, 400, "ValidationException",
                                   _MRSC_REFUSED[operation])
        kind = _mrsc_kind(operation, request)
        with _mrsc_lock:  # waits while the local copy is being taken
            isolated, code, status = (_mrsc_state["isolated"], _mrsc_state["error"],
                                      _mrsc_state["status"])
        if isolated and kind == "eventual":
            return self.app(environ, start_response)  # the copy taken when cut off
        if isolated and kind != "describe":
            return _dynamodb_error(start_response, status, code,
                                   f"rig: {self.region} is cut off from the other replicas of "
                                   "this multi-Region strongly consistent table")
        return self._forward(environ, operation, body, start_response)

    def _forward(self, environ, operation: str, body: bytes, start_response):
        headers = {MRSC_ORIGIN_HEADER: self.region}
        for key, value in environ.items():
            if key.startswith("HTTP_") and key not in (
                    "HTTP_HOST", "HTTP_CONNECTION", "HTTP_CONTENT_LENGTH", "HTTP_EXPECT",
                    "HTTP_TRANSFER_ENCODING", "HTTP_X_RIG_MRSC_REGION"):
                headers[key[5:].replace("_", "-")] = value
        if environ.get("CONTENT_TYPE"):
            headers["Content-Type"] = environ["CONTENT_TYPE"]
        path = environ.get("PATH_INFO") or "/"
        forwarded = urllib.request.Request(MRSC_STORE + path, data=body, headers=headers,
                                           method="POST")
        try:
            with urllib.request.urlopen(forwarded, timeout=10) as reply:
                status, reply_headers, payload = reply.status, reply.headers, reply.read()
        except urllib.error.HTTPError as error:
            status, reply_headers, payload = error.code, error.headers, error.read()
        except OSError as error:
            return _dynamodb_error(start_response, 500, "InternalServerError",
                                   f"rig: the MRSC store does not answer: {error}")
        if status == 200 and operation == "DescribeTable":
            payload = self._described(payload)
        if self.region != MRSC_STORE_REGION and operation not in _MRSC_WRITES | _MRSC_READS:
            # A table description: this replica's ARNs (item data is left as written).
            payload = payload.replace(f":dynamodb:{MRSC_STORE_REGION}:".encode(),
                                      f":dynamodb:{self.region}:".encode())
        kept = [(k, v) for k, v in reply_headers.items() if k.lower() in (
            "content-type", "x-amzn-requestid")]
        kept += [("Content-Length", str(len(payload))), ("x-amz-crc32", str(zlib.crc32(payload)))]
        start_response(f"{status} {http.HTTPStatus(status).phrase}", kept)
        return [payload]

    @staticmethod
    def _described(payload: bytes) -> bytes:
        """DescribeTable as a replica of an MRSC global table answers it."""
        try:
            answer = json.loads(payload)
            table = answer["Table"]
        except (ValueError, KeyError, TypeError):
            return payload
        table["MultiRegionConsistency"] = "STRONG"
        table["GlobalTableVersion"] = "2019.11.21"
        table["Replicas"] = [{"RegionName": r, "ReplicaStatus": "ACTIVE"} for r in MRSC_REGIONS]
        if MRSC_WITNESS:
            table["GlobalTableWitnesses"] = [{"RegionName": MRSC_WITNESS, "WitnessStatus": "ACTIVE"}]
        return json.dumps(answer).encode()

    # --- the local copy an isolated region reads eventually consistent ---

    def _call_store(self, operation: str, request: dict) -> dict:
        call = urllib.request.Request(
            MRSC_STORE + "/", data=json.dumps(request).encode(), method="POST",
            headers={**_signed_as(self.region),
                     "X-Amz-Target": f"DynamoDB_20120810.{operation}"})
        with urllib.request.urlopen(call, timeout=10) as reply:
            return json.loads(reply.read())

    def _call_local(self, operation: str, request: dict) -> tuple[int, dict]:
        reply = self.local.post("/", data=json.dumps(request), headers={
            **_signed_as(self.region), "X-Amz-Target": f"DynamoDB_20120810.{operation}"})
        return reply.status_code, json.loads(reply.get_data() or b"{}")

    def take_copy(self) -> dict:
        """Copies every MRSC table from the store into this region's own moto, as the
        replica stands at the moment it is cut off. Returns {table: items or error}."""
        copied = {}
        for name in sorted(MRSC_TABLES):
            try:
                table = self._call_store("DescribeTable", {"TableName": name})["Table"]
            except urllib.error.HTTPError as error:
                copied[name] = f"not copied: HTTP {error.code}"  # no such table yet
                continue
            except OSError as error:
                copied[name] = f"not copied: {error}"
                continue
            self._call_local("DeleteTable", {"TableName": name})
            create = {"TableName": name, "KeySchema": table["KeySchema"],
                      "AttributeDefinitions": table["AttributeDefinitions"],
                      "BillingMode": "PAY_PER_REQUEST"}
            indexes = [{"IndexName": i["IndexName"], "KeySchema": i["KeySchema"],
                        "Projection": i["Projection"]}
                       for i in table.get("GlobalSecondaryIndexes") or []]
            if indexes:
                create["GlobalSecondaryIndexes"] = indexes
            status, answer = self._call_local("CreateTable", create)
            if status != 200:
                copied[name] = f"not copied: {answer}"
                continue
            count, start = 0, None
            while True:
                scan = {"TableName": name, "ConsistentRead": True}
                if start:
                    scan["ExclusiveStartKey"] = start
                page = self._call_store("Scan", scan)
                for item in page.get("Items") or []:
                    self._call_local("PutItem", {"TableName": name, "Item": item})
                    count += 1
                start = page.get("LastEvaluatedKey")
                if not start:
                    break
            copied[name] = count
        return copied

    def drop_copy(self) -> None:
        for name in MRSC_TABLES:
            self._call_local("DeleteTable", {"TableName": name})


_router: MrscRouter | None = None


def _set_isolated(body: dict) -> dict:
    """POST /mrsc on a region's control port."""
    if _router is None:
        raise ValueError("this region holds no MRSC replica (RIG_MRSC_TABLES, RIG_MRSC_REGIONS)")
    with _mrsc_lock:
        isolated = bool(body.get("isolated", _mrsc_state["isolated"]))
        _mrsc_state["error"] = str(body.get("error", _mrsc_state["error"]))
        _mrsc_state["status"] = int(body.get("status", _mrsc_state["status"]))
        if isolated and not _mrsc_state["isolated"]:
            _mrsc_state.update(isolated=True, since=time.time())
            _mrsc_state["copy"] = _router.take_copy()
        elif not isolated and _mrsc_state["isolated"]:
            _mrsc_state.update(isolated=False, since=None, copy={})
            _router.drop_copy()
    return _mrsc_status()


def _mrsc_status() -> dict:
    base = {"tables": sorted(MRSC_TABLES), "regions": MRSC_REGIONS, "witness": MRSC_WITNESS or None,
            "conflict_ms": MRSC_CONFLICT_SECONDS * 1000}
    if _router is not None:
        with _mrsc_lock:
            return {**base, "role": "replica", "store": MRSC_STORE, **_mrsc_state}
    if _store_front:
        return {**base, "role": "store", **_mrsc_counts}
    return {**base, "role": None}


def _item_key(backend: DynamoDBBackend, table_name: str, attrs: dict) -> str | None:
    try:
        key = _key_of(backend, table_name, attrs)
    except Exception:  # no such table, or no key in the request: moto answers it
        return None
    return json.dumps([table_name, key], sort_keys=True)


def _written_keys(backend: DynamoDBBackend, operation: str, request: dict) -> list[str]:
    """The items a write request changes, as (table, key) identities."""
    table = _table_name(request.get("TableName"))
    if operation == "PutItem":
        keys = [_item_key(backend, table, request.get("Item") or {})]
    elif operation in ("UpdateItem", "DeleteItem"):
        keys = [_item_key(backend, table, request.get("Key") or {})]
    else:  # BatchWriteItem
        keys = []
        for name, writes in (request.get("RequestItems") or {}).items():
            for write in writes or []:
                put, delete = write.get("PutRequest"), write.get("DeleteRequest")
                attrs = (put or {}).get("Item") or (delete or {}).get("Key") or {}
                keys.append(_item_key(backend, _table_name(name), attrs))
    return [k for k in keys if k is not None]


_store_front = False


class MrscStore:
    """The one store of the MRSC tables. Requests arrive from the regions' routers, tagged
    with their region; all of them use one moto backend (MRSC_STORE_REGION). A write is
    applied at once and acknowledged MRSC_CONFLICT_SECONDS later (in flight meanwhile); a
    write to an item that another region's write has in flight is refused with
    ReplicatedWriteConflictException and not applied."""

    def __init__(self, app) -> None:
        self.app = app

    def __call__(self, environ, start_response):
        auth = environ.get("HTTP_AUTHORIZATION", "")
        environ["HTTP_AUTHORIZATION"] = _SCOPE.sub(rf"\g<1>{MRSC_STORE_REGION}\g<2>", auth)
        origin = environ.get("HTTP_X_RIG_MRSC_REGION", "")
        operation = environ.get("HTTP_X_AMZ_TARGET", "").rsplit(".", 1)[-1]
        if operation not in _MRSC_WRITES or not origin:
            return self.app(environ, start_response)
        length = int(environ.get("CONTENT_LENGTH") or 0)
        body = environ["wsgi.input"].read(length) if length else b""
        environ["wsgi.input"] = io.BytesIO(body)
        try:
            request = json.loads(body or b"{}")
            access_key = auth.split("Credential=", 1)[1].split("/", 1)[0] if "Credential=" in auth else ""
            backend = dynamodb_backends[get_account_id_from(access_key)][MRSC_STORE_REGION]
            keys = _written_keys(backend, operation, request) if isinstance(request, dict) else []
        except (ValueError, IndexError):
            keys = []
        answered: dict[str, str] = {}

        def capture(status, headers, *exc_info):
            answered["status"] = status
            return start_response(status, headers, *exc_info)

        with _item_lock:
            now = time.monotonic()
            for key in keys:
                other = _in_flight.get(key)
                if other and other[0] != origin and now < other[1]:
                    _mrsc_counts["conflicts"] += 1
                    return _dynamodb_error(
                        start_response, 400, "ReplicatedWriteConflictException",
                        "The request was rejected because one or more items in the request are "
                        "being modified by a request in another Region.")
            chunks = list(self.app(environ, capture))
            if answered.get("status", "").startswith("200"):
                _mrsc_counts["writes"] += 1
                due = time.monotonic() + MRSC_CONFLICT_SECONDS
                if len(_in_flight) > 10000:  # forget writes long acknowledged
                    for stale in [k for k, (_, d) in _in_flight.items() if d < now]:
                        del _in_flight[stale]
                for key in keys:
                    _in_flight[key] = (origin, due)
        if answered.get("status", "").startswith("200") and MRSC_CONFLICT_SECONDS:
            time.sleep(MRSC_CONFLICT_SECONDS)  # the synchronous replication's round trip
        return chunks


def _control_server(region: str, port: int) -> None:
    class Handler(BaseHTTPRequestHandler):
        def log_message(self, *args) -> None:  # keep the rig's log quiet
            pass

        def _reply(self, code: int, body: object) -> None:
            data = json.dumps(body).encode()
            self.send_response(code)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def _status(self) -> dict:
            return {peer: {"lag_seconds": o.lag, "paused": o.paused, "queued": len(o.queue)}
                    for peer, o in _outbound.items()}

        def do_GET(self) -> None:
            if self.path == "/instances":
                self._reply(200, _instances_report(region))
            elif self.path == "/mrsc":
                self._reply(200, _mrsc_status())
            else:
                self._reply(200, self._status())

        def do_POST(self) -> None:
            length = int(self.headers.get("Content-Length", "0"))
            try:
                body = json.loads(self.rfile.read(length) or b"{}")
                if self.path == "/replicate":
                    _apply(region, body)
                    self._reply(200, {"applied": True})
                elif self.path == "/faults":
                    with _faults_lock:
                        _faults[:] = [
                            {"operation": r.get("operation", "*"), "count": int(r.get("count", -1)),
                             "error": r.get("error"), "message": r.get("message", "injected by the rig"),
                             "status": int(r.get("status", 400)), "latency_ms": int(r.get("latency_ms", 0)),
                             "applied": bool(r.get("applied", False)), "hold_ms": int(r.get("hold_ms", 0))}
                            for r in body.get("rules", [])
                        ]
                    self._reply(200, {"rules": len(_faults)})
                elif self.path == "/instances/faults":
                    group = body["group"]
                    fault = {"fail": int(body.get("fail", 0)), "hang": int(body.get("hang", 0))}
                    with _lock:
                        if fault["fail"] or fault["hang"]:
                            _instance_faults[group] = fault
                        else:
                            _instance_faults.pop(group, None)
                    self._reply(200, {"group": group, **fault})
                elif self.path == "/mrsc":
                    self._reply(200, _set_isolated(body))
                elif self.path == "/replication":
                    peer = _outbound[body["to"]]
                    with peer.cond:
                        if "lag_seconds" in body:
                            peer.lag = float(body["lag_seconds"])
                        if "paused" in body:
                            peer.paused = bool(body["paused"])
                        peer.cond.notify()
                    self._reply(200, self._status())
                else:
                    self._reply(404, {"error": f"unknown path {self.path}"})
            except Exception as error:  # report, never crash the region
                self._reply(400, {"error": repr(error)})

    server = ThreadingHTTPServer(("127.0.0.1", port), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()


def main() -> None:
    global _router, _store_front
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--region", required=True)
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--control-port", type=int, default=0, help="rig control (replication) port")
    parser.add_argument("--peers", default="", help="region=control-url pairs to replicate to")
    parser.add_argument("--replicate", default="", help="comma-separated replicated table names")
    parser.add_argument("--lag", type=float, default=0.2, help="initial replication lag, seconds")
    parser.add_argument("--mrsc-store", action="store_true",
                        help="serve as the one store of the RIG_MRSC_TABLES, not as a region")
    args = parser.parse_args()

    _replicated_tables.update(t for t in args.replicate.split(",") if t)
    mrsc_member = bool(MRSC_TABLES) and args.region in MRSC_REGIONS and not args.mrsc_store
    if MRSC_TABLES and not MRSC_REGIONS:
        raise SystemExit("RIG_MRSC_TABLES needs RIG_MRSC_REGIONS (the regions holding a replica)")
    if mrsc_member and not MRSC_STORE:
        raise SystemExit("RIG_MRSC_TABLES needs RIG_MRSC_STORE (the store's URL) in an MRSC region")
    if mrsc_member and MRSC_TABLES & _replicated_tables:
        raise SystemExit(f"{sorted(MRSC_TABLES & _replicated_tables)}: a table is either "
                         "replicated (--replicate) or MRSC (RIG_MRSC_TABLES), not both")
    for pair in filter(None, args.peers.split(",")):
        peer, url = pair.split("=", 1)
        _outbound[peer] = Outbound(peer, url, args.lag)
    if args.control_port:
        _control_server(args.region, args.control_port)

    moto_app = DomainDispatcherApplication(create_backend_app)
    if args.mrsc_store:
        if not MRSC_TABLES:
            raise SystemExit("--mrsc-store needs RIG_MRSC_TABLES and RIG_MRSC_REGIONS")
        _store_front = True
        app = MrscStore(moto_app)
    elif mrsc_member:
        _router = MrscRouter(moto_app, args.region)
        app = FaultInjector(_router)
    else:
        app = FaultInjector(moto_app)
    server = make_server("127.0.0.1", args.port, app, threaded=True, request_handler=MotoRequestHandler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    print(f"rig: {args.region} listening on http://127.0.0.1:{args.port}", flush=True)

    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    stop.wait()
    server.shutdown()
    sys.exit(0)


if __name__ == "__main__":
    main()
