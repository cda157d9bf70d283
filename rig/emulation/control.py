"""The region's control port: the tests' and the drill's handle on what the rig models.

See rig/README.md."""

from __future__ import annotations

import json
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
import threading

from .instances import _lock
from .autoscaling import _instances_report
from .run_command import _instance_faults
from .replication import _apply, _outbound
from .faults import _faults, _faults_lock
from .mrsc import _mrsc_status, _set_isolated
from .ecs import _fail_next, _tasks_report
from .lambda_invoke import _calls_report, _set_functions


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
            elif self.path == "/ecs/tasks":
                self._reply(200, _tasks_report(region))
            elif self.path == "/lambda/calls":
                self._reply(200, _calls_report())
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
                elif self.path == "/ecs/fail":
                    self._reply(200, _fail_next(region, body))
                elif self.path == "/lambda/functions":
                    self._reply(200, _set_functions(body))
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
