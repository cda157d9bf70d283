"""An Amazon ARC cluster's data plane, for the rig (moto emulates no Route 53 ARC).

A cluster answers on five regional endpoints, each its own HTTP server here on
127.0.0.1, all over one set of routing controls. It speaks the awsJson1_0 protocol
of `ToggleCustomerAPI` as `aws-sdk-route53recoverycluster` sends it:
GetRoutingControlState, UpdateRoutingControlState, UpdateRoutingControlStates and
ListRoutingControls. Only the routing controls it was started with exist (any other
ARN is a ResourceNotFoundException, as in ARC); a state other than On or Off is a
ValidationException. Signatures are not checked.

What it models beyond the API, and says so:
- An endpoint can be *down*: it accepts the connection and never answers (the
  caller's timeout decides), as an unreachable regional endpoint does.
- Every state change is recorded with its time and endpoint, for the drill's
  Route 53 RECOVERY_CONTROL health checks and for tests.

Control port (JSON): GET /state -> {"controls": {arn: "On"|"Off"}, "changes": [...],
"down": [region]}; POST /down {"endpoint": region, "down": bool}; POST /set
{arn: "On"|"Off"} (a person's change in the console, recorded as endpoint "console").

Usage: arc_cluster.py --endpoints us-east-1=PORT,... --control-port PORT
       --controls arn=On,arn=Off,...
"""

from __future__ import annotations

import argparse
import json
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

LOCK = threading.Lock()
CONTROLS: dict[str, str] = {}
CHANGES: list[dict] = []
DOWN: set[str] = set()
#: How long a down endpoint holds a request before dropping it: longer than any
#: caller's timeout.
HOLD_SECONDS = 30.0


def _name(arn: str) -> str:
    return arn.rsplit("/", 1)[-1]


def _panel(arn: str) -> str:
    return arn.split("/routingcontrol/", 1)[0]


class ArcError(Exception):
    def __init__(self, status: int, code: str, message: str, **extra):
        super().__init__(message)
        self.status, self.code, self.message, self.extra = status, code, message, extra


def _known(arn: str) -> None:
    if arn not in CONTROLS:
        raise ArcError(404, "ResourceNotFoundException",
                       f"Routing control {arn} not found",
                       resourceId=arn, resourceType="RoutingControl")


def _state(value) -> str:
    if value not in ("On", "Off"):
        raise ArcError(400, "ValidationException",
                       f"RoutingControlState must be On or Off, not {value!r}",
                       reason="fieldValidationFailed")
    return value


def _set(entries: list[tuple[str, str]], endpoint: str) -> None:
    """All or nothing, as ARC's batch update."""
    with LOCK:
        for arn, state in entries:
            _known(arn)
            _state(state)
        now = time.time()
        for arn, state in entries:
            if CONTROLS[arn] != state:
                CHANGES.append({"at": now, "endpoint": endpoint, "arn": arn, "state": state})
            CONTROLS[arn] = state


def _call(operation: str, body: dict, endpoint: str) -> dict:
    if operation == "GetRoutingControlState":
        arn = body.get("RoutingControlArn", "")
        with LOCK:
            _known(arn)
            return {"RoutingControlArn": arn, "RoutingControlState": CONTROLS[arn],
                    "RoutingControlName": _name(arn)}
    if operation == "UpdateRoutingControlState":
        _set([(body.get("RoutingControlArn", ""), body.get("RoutingControlState"))], endpoint)
        return {}
    if operation == "UpdateRoutingControlStates":
        entries = body.get("UpdateRoutingControlStateEntries") or []
        if not entries:
            raise ArcError(400, "ValidationException", "UpdateRoutingControlStateEntries is empty",
                           reason="fieldValidationFailed")
        _set([(e.get("RoutingControlArn", ""), e.get("RoutingControlState")) for e in entries],
             endpoint)
        return {}
    if operation == "ListRoutingControls":
        with LOCK:
            return {"RoutingControls": [
                {"ControlPanelArn": _panel(arn), "ControlPanelName": _name(_panel(arn)),
                 "RoutingControlArn": arn, "RoutingControlName": _name(arn),
                 "RoutingControlState": state, "Owner": "123456789012"}
                for arn, state in sorted(CONTROLS.items())]}
    raise ArcError(400, "UnknownOperationException", f"unknown operation {operation!r}")


def data_plane(endpoint: str):
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, fmt, *args):  # one line per call, on stderr
            print(f"[{endpoint}] " + fmt % args, flush=True)

        def do_POST(self):
            length = int(self.headers.get("Content-Length") or 0)
            raw = self.rfile.read(length) if length else b""
            with LOCK:
                down = endpoint in DOWN
            if down:
                time.sleep(HOLD_SECONDS)
                self.close_connection = True
                return
            target = self.headers.get("X-Amz-Target", "")
            operation = target.split(".", 1)[1] if target.startswith("ToggleCustomerAPI.") else ""
            try:
                body = json.loads(raw or b"{}")
                if not isinstance(body, dict):
                    raise ArcError(400, "SerializationException", "the body is not a JSON object")
                status, answer = 200, _call(operation, body, endpoint)
            except json.JSONDecodeError as e:
                status, answer = 400, {"__type": "SerializationException", "message": str(e)}
            except ArcError as e:
                status, answer = e.status, {"__type": e.code, "message": e.message, **e.extra}
            data = json.dumps(answer).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/x-amz-json-1.0")
            self.send_header("Content-Length", str(len(data)))
            self.send_header("x-amzn-RequestId", f"arc-{time.time_ns()}")
            self.end_headers()
            self.wfile.write(data)

    return Handler


class Control(BaseHTTPRequestHandler):
    def log_message(self, fmt, *args):
        pass

    def _answer(self, status: int, answer: dict) -> None:
        data = json.dumps(answer).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def do_GET(self):
        if self.path != "/state":
            return self._answer(404, {"error": f"no {self.path}"})
        with LOCK:
            self._answer(200, {"controls": dict(CONTROLS), "changes": list(CHANGES),
                               "down": sorted(DOWN)})

    def do_POST(self):
        length = int(self.headers.get("Content-Length") or 0)
        try:
            body = json.loads(self.rfile.read(length) or b"{}")
            if self.path == "/down":
                with LOCK:
                    (DOWN.add if body["down"] else DOWN.discard)(body["endpoint"])
            elif self.path == "/set":
                _set(list(body.items()), "console")
            else:
                return self._answer(404, {"error": f"no {self.path}"})
        except (ArcError, KeyError, ValueError, TypeError) as e:
            return self._answer(400, {"error": str(e)})
        self._answer(200, {"ok": True})


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--endpoints", required=True, help="region=port,...")
    parser.add_argument("--control-port", type=int, required=True)
    parser.add_argument("--controls", default="", help="arn=On|Off,...")
    args = parser.parse_args()
    for entry in filter(None, args.controls.split(",")):
        arn, _, state = entry.rpartition("=")
        CONTROLS[arn] = _state(state)
    servers = []
    for entry in filter(None, args.endpoints.split(",")):
        region, _, port = entry.partition("=")
        server = ThreadingHTTPServer(("127.0.0.1", int(port)), data_plane(region))
        server.daemon_threads = True
        servers.append(server)
        threading.Thread(target=server.serve_forever, daemon=True).start()
    control = ThreadingHTTPServer(("127.0.0.1", args.control_port), Control)
    control.daemon_threads = True
    print(f"arc cluster: {len(servers)} endpoints, {len(CONTROLS)} routing controls", flush=True)
    control.serve_forever()


if __name__ == "__main__":
    main()
