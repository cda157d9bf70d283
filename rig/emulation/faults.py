"""Injected faults: AWS errors in each service's protocol, latency, and requests applied
and then failed or held.

See rig/README.md."""

from __future__ import annotations

import io
import json
import time
import urllib.error
import urllib.parse
import urllib.request
import threading
import uuid

from .instances import _lock
from .autoscaling import _advance_all


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
