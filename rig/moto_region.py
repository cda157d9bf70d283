"""One emulated AWS region for the regionpilot rig.

Runs moto in-process on 127.0.0.1 and fills the gaps regionpilot needs by registering
the missing operations on moto's own backends (no emulator written from scratch):

* Auto Scaling instance refresh: StartInstanceRefresh, DescribeInstanceRefreshes,
  CancelInstanceRefresh, RollbackInstanceRefresh. moto 5.2 answers these with HTTP 500.
  The emulation keeps AWS's rules that regionpilot relies on: one active refresh per
  group (a second start fails with InstanceRefreshInProgress), a cancel moves an active
  refresh to Cancelled, and a refresh becomes Successful after RIG_REFRESH_SECONDS.

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

Each region is its own process so the tests can freeze it (SIGSTOP), thaw it (SIGCONT)
or kill it, exactly as a regional outage looks to a client: connections that hang, or
connections refused.

Usage: python rig/moto_region.py --region us-east-1 --port 5101
"""

from __future__ import annotations

import argparse
import collections
import datetime as dt
import io
import json
import os
import time
import urllib.parse
import urllib.request
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
import signal
import sys
import threading
import uuid

from moto.autoscaling.exceptions import AutoscalingClientError, ValidationError
from moto.autoscaling.models import autoscaling_backends
from moto.autoscaling.responses import AutoScalingResponse
from moto.core.responses import ActionResult
from moto.dynamodb.models import DynamoDBBackend, dynamodb_backends
from moto.moto_server.werkzeug_app import DomainDispatcherApplication, MotoRequestHandler, create_backend_app
from werkzeug.serving import make_server

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


for _name in ("get_item", "query", "scan", "transact_write_items"):
    setattr(DynamoDBBackend, _name, _serialised(getattr(DynamoDBBackend, _name)))


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

    def __call__(self, environ, start_response):
        protocol, operation, body = _operation(environ)
        environ["wsgi.input"] = io.BytesIO(body)
        rule = _matching_fault(operation)
        if rule and rule.get("latency_ms"):
            time.sleep(rule["latency_ms"] / 1000)
        if not rule or not rule.get("error"):
            return self.app(environ, start_response)
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
                             "status": int(r.get("status", 400)), "latency_ms": int(r.get("latency_ms", 0))}
                            for r in body.get("rules", [])
                        ]
                    self._reply(200, {"rules": len(_faults)})
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
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--region", required=True)
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--control-port", type=int, default=0, help="rig control (replication) port")
    parser.add_argument("--peers", default="", help="region=control-url pairs to replicate to")
    parser.add_argument("--replicate", default="", help="comma-separated replicated table names")
    parser.add_argument("--lag", type=float, default=0.2, help="initial replication lag, seconds")
    args = parser.parse_args()

    _replicated_tables.update(t for t in args.replicate.split(",") if t)
    for pair in filter(None, args.peers.split(",")):
        peer, url = pair.split("=", 1)
        _outbound[peer] = Outbound(peer, url, args.lag)
    if args.control_port:
        _control_server(args.region, args.control_port)

    app = FaultInjector(DomainDispatcherApplication(create_backend_app))
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
