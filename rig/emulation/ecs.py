"""ECS services on AWS's clock: tasks that take time to start, deployments that replace
them in batches bounded by minimumHealthyPercent and maximumPercent, rolloutState moving
from IN_PROGRESS to COMPLETED (or FAILED, by the circuit breaker, when the rig is told to
fail a service's deployment), and each task holding the parameter value it started with.

moto keeps services and a single deployment, sets the running count the moment the desired
count changes, only renames the deployment on forceNewDeployment, and says COMPLETED as
soon as running >= desired. See rig/README.md."""

from __future__ import annotations

import itertools
import math
import os
import time
from dataclasses import dataclass, field

from moto.ecs.models import EC2ContainerServiceBackend

from .instances import _draw, _lock, _parameter_at, _seconds_range, _utc

# Image pull and container start, from the task's launch until it runs (and reads its
# parameters and secrets: ECS resolves `valueFrom` when the task starts).
TASK_START_SECONDS = _seconds_range("RIG_ECS_TASK_START_SECONDS", "20-40")
# From running until the load balancer's health checks pass and the task counts as healthy:
# the service's health check grace period at most. The rollout moves on by healthy tasks.
HEALTHY_SECONDS = _seconds_range("RIG_ECS_HEALTHY_SECONDS", "15")
# The deployment configuration the rig applies to every service (moto does not keep one):
# ECS's defaults for a rolling update.
MIN_HEALTHY_PERCENT = int(os.environ.get("RIG_ECS_MIN_HEALTHY_PERCENT", "100"))
MAX_PERCENT = int(os.environ.get("RIG_ECS_MAX_PERCENT", "200"))
if not 0 <= MIN_HEALTHY_PERCENT <= 100 or MAX_PERCENT <= MIN_HEALTHY_PERCENT:
    raise SystemExit("RIG_ECS_MIN_HEALTHY_PERCENT must be 0-100 and below RIG_ECS_MAX_PERCENT")
CIRCUIT_BREAKER_REASON = "ECS deployment circuit breaker: tasks failed to start."

_ids = itertools.count(1)


@dataclass
class Task:
    id: str
    deployment: str
    launched: float
    running_at: float
    healthy_at: float
    # A task of a failing deployment stops (fails) when it would have run.
    fails: bool = False
    stopped_at: float | None = None

    def alive(self, t: float) -> bool:
        return self.stopped_at is None or self.stopped_at > t

    def healthy(self, t: float) -> bool:
        return self.alive(t) and not self.fails and self.healthy_at <= t


@dataclass
class Deployment:
    id: str
    created: float
    status: str = "PRIMARY"  # PRIMARY, ACTIVE, INACTIVE
    rollout: str = "IN_PROGRESS"  # IN_PROGRESS, COMPLETED, FAILED
    reason: str = ""
    fails: bool = False
    failed_tasks: int = 0
    updated: float = 0.0


@dataclass
class Service:
    account: str
    region: str
    desired: int
    deployments: list[Deployment] = field(default_factory=list)
    tasks: list[Task] = field(default_factory=list)
    # Simulated up to this moment: events are applied in order as requests arrive.
    clock: float = 0.0
    # The next deployment fails (the circuit breaker), as `POST /ecs/fail` asked.
    fail_next: bool = False


# (account, region, cluster, service name) -> Service
_services: dict[tuple[str, str, str, str], Service] = {}


def _task(svc: Service, deployment: Deployment, at: float) -> Task:
    running = at + _draw(TASK_START_SECONDS)
    return Task(id=f"task-{next(_ids)}", deployment=deployment.id, launched=at, running_at=running,
                healthy_at=running + _draw(HEALTHY_SECONDS), fails=deployment.fails)


def _primary(svc: Service) -> Deployment:
    return next(d for d in svc.deployments if d.status == "PRIMARY")


def _act(svc: Service, t: float) -> None:
    """What the deployment controller does at moment `t`: stop what is no longer needed,
    start what the bounds allow, judge the rollout."""
    primary = _primary(svc)
    n = svc.desired
    alive = [k for k in svc.tasks if k.alive(t)]
    new = [k for k in alive if k.deployment == primary.id]
    old = [k for k in alive if k.deployment != primary.id]
    # Failed tasks stop when they would have run; the circuit breaker counts them.
    for k in new:
        if k.fails and k.running_at <= t:
            k.stopped_at = k.running_at
            primary.failed_tasks += 1
    new = [k for k in new if k.alive(t)]
    threshold = min(max(math.ceil(n / 2), 3), 200)
    if primary.rollout == "IN_PROGRESS" and primary.fails and primary.failed_tasks >= threshold:
        # FAILED, rolled back: the previous deployment is primary again and keeps its tasks.
        primary.rollout, primary.reason, primary.status, primary.updated = (
            "FAILED", CIRCUIT_BREAKER_REASON, "INACTIVE", t)
        for k in new:
            k.stopped_at = t
        previous = next((d for d in reversed(svc.deployments) if d.status == "ACTIVE"), None)
        if previous is not None:
            previous.status = "PRIMARY"
            _act(svc, t)
        return
    healthy_new = [k for k in new if k.healthy(t)]
    if len(new) > n:  # the desired count went down: the newest go first
        for k in sorted(new, key=lambda k: k.launched)[n:]:
            k.stopped_at = t
        new = new[:n]
    # Old tasks are stopped once new ones stand in for them, and early as far as
    # minimumHealthyPercent allows when the bound leaves no room to start more.
    min_healthy = math.ceil(n * MIN_HEALTHY_PERCENT / 100)
    cap = math.floor(n * MAX_PERCENT / 100)
    keep = min(len(old), max(0, n - len(healthy_new)))
    to_start = n - len(new)
    room = cap - (len(new) + keep)
    if room < to_start:
        spare = max(0, keep - max(0, min_healthy - len(healthy_new)))
        keep -= min(spare, to_start - max(room, 0))
        room = cap - (len(new) + keep)
    for k in sorted(old, key=lambda k: k.launched)[: len(old) - keep]:
        k.stopped_at = t
    for _ in range(max(0, min(to_start, room))):
        svc.tasks.append(_task(svc, primary, t))
    alive_old = [k for k in svc.tasks if k.alive(t) and k.deployment != primary.id]
    healthy_new = [k for k in svc.tasks if k.deployment == primary.id and k.healthy(t)]
    if primary.rollout == "IN_PROGRESS" and len(healthy_new) >= n and not alive_old:
        primary.rollout, primary.reason, primary.updated = (
            "COMPLETED", f"ECS deployment {primary.id} completed.", t)
    for d in svc.deployments:
        if d.status == "ACTIVE" and not any(k.alive(t) for k in svc.tasks if k.deployment == d.id):
            d.status = "INACTIVE"


def _advance(svc: Service, now: float) -> None:
    """Applies every event up to `now` in order, as ECS would have in the background."""
    while True:
        _act(svc, svc.clock)
        upcoming = [x for k in svc.tasks if k.alive(svc.clock)
                    for x in (k.running_at, k.healthy_at) if svc.clock < x <= now]
        if not upcoming:
            break
        svc.clock = min(upcoming)
    svc.clock = max(svc.clock, now)
    _act(svc, svc.clock)
    # Forget what no longer matters, so a long drill stays cheap.
    svc.tasks = [k for k in svc.tasks if k.alive(now) or now - (k.stopped_at or now) < 600]


def _counts(svc: Service, deployment: Deployment | None, t: float) -> tuple[int, int]:
    tasks = [k for k in svc.tasks if k.alive(t) and (deployment is None or k.deployment == deployment.id)]
    running = sum(1 for k in tasks if k.running_at <= t)
    return running, len(tasks) - running


def _sync(svc: Service, moto_service) -> None:
    """Writes the modelled state into moto's service, which moto then answers with."""
    t = svc.clock
    moto_service.desired_count = svc.desired
    moto_service.running_count, moto_service.pending_count = _counts(svc, None, t)
    shown = []
    for d in sorted((d for d in svc.deployments if d.status != "INACTIVE" or d.rollout == "FAILED"),
                    key=lambda d: (d.status != "PRIMARY", -d.created)):
        running, pending = _counts(svc, d, t)
        shown.append({
            "id": d.id,
            "status": d.status,
            "desiredCount": svc.desired if d.status == "PRIMARY" else running + pending,
            "runningCount": running,
            "pendingCount": pending,
            "failedTasks": d.failed_tasks,
            "rolloutState": d.rollout,
            "rolloutStateReason": d.reason or f"ECS deployment {d.id} in progress.",
            "createdAt": _utc(d.created),
            "updatedAt": _utc(d.updated or d.created),
            "taskDefinition": moto_service.task_definition,
            "launchType": moto_service.launch_type,
        })
    moto_service.deployments = shown[:10]


def _key(backend, cluster_name: str, service_name: str) -> tuple[str, str, str, str]:
    return (backend.account_id, backend.region_name, cluster_name, service_name)


def _model(backend, moto_service) -> Service:
    key = _key(backend, moto_service.cluster_name, moto_service.name)
    svc = _services.get(key)
    if svc is None:
        # A service the rig has not seen starting: its tasks are taken as running since
        # its creation (the rig's setup is not what a drill measures).
        now = time.time()
        svc = Service(account=backend.account_id, region=backend.region_name,
                      desired=moto_service.desired_count or 0, clock=now)
        first = Deployment(id=f"ecs-svc/{next(_ids):012d}", created=now, rollout="COMPLETED",
                           updated=now)
        svc.deployments.append(first)
        svc.tasks = [Task(id=f"task-{next(_ids)}", deployment=first.id, launched=now, running_at=now,
                          healthy_at=now) for _ in range(svc.desired)]
        _services[key] = svc
    return svc


_original_describe = EC2ContainerServiceBackend.describe_services
_original_update = EC2ContainerServiceBackend.update_service


def _describe_services(self, cluster_str, service_names_or_arns):
    with _lock:
        services, failures = _original_describe(self, cluster_str, service_names_or_arns)
        now = time.time()
        for moto_service in services:
            svc = _model(self, moto_service)
            _advance(svc, now)
            _sync(svc, moto_service)
        return services, failures


def _update_service(self, service_properties):
    with _lock:
        cluster = service_properties.get("cluster", "default").split("/")[-1]
        name = service_properties.get("service", "").split("/")[-1]
        desired = service_properties.get("desired_count")
        force = service_properties.get("force_new_deployment", False)
        existing = self.services.get(f"{cluster}:{name}")
        svc = _model(self, existing) if existing is not None else None
        now = time.time()
        if svc is not None:
            _advance(svc, now)
        moto_service = _original_update(self, service_properties)  # raises when missing
        if svc is None:
            svc = _model(self, moto_service)
        if desired is not None:
            svc.desired = int(desired)
        if force:
            for d in svc.deployments:
                if d.status == "PRIMARY":
                    d.status = "ACTIVE"
            svc.deployments.append(Deployment(id=f"ecs-svc/{next(_ids):012d}", created=now,
                                              updated=now, fails=svc.fail_next))
            svc.fail_next = False
        _advance(svc, now)
        _sync(svc, moto_service)
        return moto_service


EC2ContainerServiceBackend.describe_services = _describe_services
EC2ContainerServiceBackend.update_service = _update_service


def _fail_next(region: str, body: dict) -> dict:
    """`POST /ecs/fail {"service": "cluster/name", "fail": true}`: that service's next
    deployment fails its tasks until the circuit breaker stops it."""
    cluster, _, name = body["service"].partition("/")
    fail = bool(body.get("fail", True))
    with _lock:
        for (account, svc_region, c, n), svc in _services.items():
            if (svc_region, c, n) == (region, cluster, name):
                svc.fail_next = fail
                return {"service": body["service"], "fail_next": fail}
        # Not seen yet: remember it for when it is.
        from moto.ecs.models import ecs_backends
        for account, regions in ecs_backends.items():
            backend = regions[region]
            moto_service = backend.services.get(f"{cluster}:{name}")
            if moto_service is not None:
                _model(backend, moto_service).fail_next = fail
                return {"service": body["service"], "fail_next": fail}
    raise KeyError(f"no service {body['service']} in {region}")


def _tasks_report(region: str) -> dict:
    """`GET /ecs/tasks`: every modelled task of the region's services, with the parameter
    value it holds (read when it started), for the drill and the tests."""
    now = time.time()
    report = {}
    with _lock:
        for (account, svc_region, cluster, name), svc in _services.items():
            if svc_region != region:
                continue
            _advance(svc, now)
            report[f"{cluster}/{name}"] = {
                "desired": svc.desired,
                "deployments": [{"id": d.id, "status": d.status, "rollout": d.rollout,
                                 "failed_tasks": d.failed_tasks} for d in svc.deployments],
                "tasks": [{
                    "id": k.id,
                    "deployment": k.deployment,
                    "running": k.running_at <= now and k.alive(now) and not k.fails,
                    "healthy": k.healthy(now),
                    "value": (_parameter_at(account, region, k.running_at)
                              if k.running_at <= now else None),
                    "age_seconds": round(now - k.launched, 3),
                } for k in svc.tasks if k.alive(now)],
            }
    return report

