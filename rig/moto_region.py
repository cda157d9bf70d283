"""One emulated AWS region for the regionpilot rig.

Runs moto in-process on 127.0.0.1 and fills the gaps regionpilot needs by registering
the missing operations on moto's own backends (no emulator written from scratch):

* Auto Scaling instance refresh: StartInstanceRefresh, DescribeInstanceRefreshes,
  CancelInstanceRefresh, RollbackInstanceRefresh. moto 5.2 answers these with HTTP 500.
  The emulation keeps AWS's rules that regionpilot relies on: one active refresh per
  group (a second start fails with InstanceRefreshInProgress), a cancel moves an active
  refresh to Cancelled, and a refresh becomes Successful after RIG_REFRESH_SECONDS.

Each region is its own process so the tests can freeze it (SIGSTOP), thaw it (SIGCONT)
or kill it, exactly as a regional outage looks to a client: connections that hang, or
connections refused.

Usage: python rig/moto_region.py --region us-east-1 --port 5101
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import signal
import sys
import threading
import uuid

from moto.autoscaling.exceptions import AutoscalingClientError, ValidationError
from moto.autoscaling.models import autoscaling_backends
from moto.autoscaling.responses import AutoScalingResponse
from moto.core.responses import ActionResult
from moto.dynamodb.models import DynamoDBBackend
from moto.moto_server.threaded_moto_server import ThreadedMotoServer

ACTIVE_STATES = ("Pending", "InProgress", "Cancelling", "RollbackInProgress")
REFRESH_SECONDS = float(os.environ.get("RIG_REFRESH_SECONDS", "5"))

_lock = threading.Lock()
# (account, region, group) -> list of refresh dicts, newest first
_refreshes: dict[tuple[str, str, str], list[dict]] = {}


class InstanceRefreshInProgress(AutoscalingClientError):
    code = "InstanceRefreshInProgress"


class ActiveInstanceRefreshNotFound(AutoscalingClientError):
    code = "ActiveInstanceRefreshNotFound"


def _now() -> dt.datetime:
    return dt.datetime.now(dt.timezone.utc)


def _advance(refresh: dict) -> None:
    """Moves a refresh along by wall-clock time, as AWS does in the background."""
    if refresh["Status"] in ("Pending", "InProgress"):
        elapsed = (_now() - refresh["StartTime"]).total_seconds()
        if elapsed >= REFRESH_SECONDS:
            refresh["Status"] = "Successful"
            refresh["PercentageComplete"] = 100
            refresh["InstancesToUpdate"] = 0
            refresh["EndTime"] = refresh["StartTime"] + dt.timedelta(seconds=REFRESH_SECONDS)
            refresh["StatusReason"] = "Instance refresh completed"
        else:
            refresh["Status"] = "InProgress"
            refresh["PercentageComplete"] = int(100 * elapsed / REFRESH_SECONDS)


def _group_refreshes(resp: AutoScalingResponse, group: str) -> list[dict]:
    backend = autoscaling_backends[resp.current_account][resp.region]
    if group not in backend.autoscaling_groups:
        raise ValidationError(f"AutoScalingGroup name not found - {group}")
    key = (resp.current_account, resp.region, group)
    refreshes = _refreshes.setdefault(key, [])
    for refresh in refreshes:
        _advance(refresh)
    return refreshes


def start_instance_refresh(self: AutoScalingResponse) -> ActionResult:
    params = self._get_params()
    group = params.get("AutoScalingGroupName")
    with _lock:
        refreshes = _group_refreshes(self, group)
        if any(r["Status"] in ACTIVE_STATES for r in refreshes):
            raise InstanceRefreshInProgress(
                f"An Instance Refresh is already in progress and blocks the execution of this Instance Refresh."
            )
        backend = autoscaling_backends[self.current_account][self.region]
        instances = len(backend.autoscaling_groups[group].instance_states)
        refresh = {
            "InstanceRefreshId": str(uuid.uuid4()),
            "AutoScalingGroupName": group,
            "Status": "Pending",
            "StatusReason": "Waiting for instances to be replaced",
            "StartTime": _now(),
            "PercentageComplete": 0,
            "InstancesToUpdate": instances,
            "Preferences": params.get("Preferences") or {},
            "Strategy": params.get("Strategy") or "Rolling",
        }
        refreshes.insert(0, refresh)
        return ActionResult({"InstanceRefreshId": refresh["InstanceRefreshId"]})


def describe_instance_refreshes(self: AutoScalingResponse) -> ActionResult:
    params = self._get_params()
    group = params.get("AutoScalingGroupName")
    wanted = set(params.get("InstanceRefreshIds") or [])
    with _lock:
        refreshes = _group_refreshes(self, group)
        chosen = [r for r in refreshes if not wanted or r["InstanceRefreshId"] in wanted]
        return ActionResult({"InstanceRefreshes": [dict(r) for r in chosen]})


def _stop_active(self: AutoScalingResponse, new_status: str) -> ActionResult:
    group = self._get_params().get("AutoScalingGroupName")
    with _lock:
        refreshes = _group_refreshes(self, group)
        for refresh in refreshes:
            if refresh["Status"] in ACTIVE_STATES:
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
    start_instance_refresh,
    describe_instance_refreshes,
    cancel_instance_refresh,
    rollback_instance_refresh,
):
    setattr(AutoScalingResponse, _op.__name__, _op)


_item_lock = threading.RLock()


def _serialised(method):
    def locked(*args, **kwargs):
        with _item_lock:
            return method(*args, **kwargs)

    locked.__name__ = method.__name__
    locked.__doc__ = method.__doc__
    return locked


for _name in (
    "put_item",
    "update_item",
    "delete_item",
    "transact_write_items",
    "get_item",
    "query",
    "scan",
):
    setattr(DynamoDBBackend, _name, _serialised(getattr(DynamoDBBackend, _name)))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--region", required=True)
    parser.add_argument("--port", type=int, required=True)
    args = parser.parse_args()

    server = ThreadedMotoServer(ip_address="127.0.0.1", port=args.port, verbose=False)
    server.start()
    print(f"rig: {args.region} listening on http://127.0.0.1:{args.port}", flush=True)

    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    stop.wait()
    server.stop()
    sys.exit(0)


if __name__ == "__main__":
    main()
