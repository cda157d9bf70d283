"""Lambda Invoke and GetFunction for named hook functions, with scripted behaviour.

moto keeps Lambda functions but runs one only in Docker, which the rig does not use; and
a hook is the user's code, which regionpilot only calls. So the rig answers for the
functions a test or the drill names (POST /lambda/functions on the control port), as
Lambda's REST API does:

    POST /2015-03-31/functions/{name}/invocations   (RequestResponse)
    GET  /2015-03-31/functions/{name}

`name` may be a name, name:qualifier, or a function ARN, as Lambda takes it. Each call of a
scripted function takes the next behaviour of its script (the last one repeats):

    {"succeed": {"delay": 2, "answer": {...}}}   answer after `delay` AWS seconds
    {"error": {"type": "CacheDown", "message": "..."}}
        a function error: 200 with X-Amz-Function-Error: Unhandled and the runtime's
        {"errorType", "errorMessage"} body
    {"hang": true}    no answer for 15 minutes (Lambda's longest timeout)
    {"smoke": {"canaries": {"us-west-2": "http://127.0.0.1:<control port>"}, "within": 600}}
        a smoke test of the payload's `to` region: it reads that region's /instances
        (the application's canary: what its instances serve) every AWS second and
        succeeds once one in service serves `to`; after `within` AWS seconds it answers
        a function error saying what it saw

Every invocation is recorded with its payload, and when it ends with its answer
(`answered_at`, `ok`, `answer`), even when the caller stopped waiting (GET /lambda/calls). Names no script knows
fall through to moto (ResourceNotFoundException for a function that does not exist).
Delays are AWS seconds, divided by RIG_TIME_SCALE."""

from __future__ import annotations

import json
import re
import threading
import time
import urllib.parse
import urllib.request

from .instances import _scaled

_PATH = re.compile(r"^/2015-03-31/functions/([^/]+)(/invocations)?/?$")
# Lambda's longest timeout: a hung hook never answers sooner.
HANG_SECONDS = 900.0

_scripts: dict[str, list[dict]] = {}
_calls: list[dict] = []
_guard = threading.Lock()


def _function_name(raw: str) -> str:
    """The function's name from a name, name:qualifier or ARN."""
    name = urllib.parse.unquote(raw)
    if name.startswith("arn:"):
        name = name.split(":")[6] if name.count(":") >= 6 else name
    return name.split(":", 1)[0]


def _set_functions(body: dict) -> dict:
    """POST /lambda/functions {"functions": {"name": [behaviour, ...]}}; `reset` clears
    the scripts and the recorded calls first."""
    with _guard:
        if body.get("reset"):
            _scripts.clear()
            _calls.clear()
        for name, behaviours in body.get("functions", {}).items():
            if not behaviours:
                raise ValueError(f"{name}: a script needs at least one behaviour")
            _scripts[name] = list(behaviours)
        return {"functions": sorted(_scripts)}


def _calls_report() -> list[dict]:
    with _guard:
        return list(_calls)


def _next(name: str) -> dict:
    script = _scripts[name]
    return script.pop(0) if len(script) > 1 else script[0]


def _smoke(payload: dict, spec: dict) -> tuple[bool, dict]:
    to = payload.get("to")
    url = spec["canaries"].get(to)
    if url is None:
        return False, {"errorType": "NoCanary", "errorMessage": f"no canary known for {to}"}
    give_up = time.time() + _scaled(float(spec.get("within", 0)))
    while True:
        with urllib.request.urlopen(f"{url}/instances", timeout=5) as answer:
            report = json.load(answer)
        instances = [i for g in report["groups"].values() for i in g["instances"]]
        serving = [i for i in instances if i["state"] == "in_service" and i["value"] == to]
        if serving:
            return True, {"ok": True, "region": to, "serving": len(serving)}
        if time.time() >= give_up:
            seen = sorted({f"{i['state']}:{i['value']}" for i in instances})
            return False, {"errorType": "SmokeTestFailed",
                           "errorMessage": f"no instance in {to} serves {to} (seen: {', '.join(seen) or 'none'})"}
        time.sleep(_scaled(1.0))


class LambdaHooks:
    """WSGI middleware in front of moto: answers Invoke and GetFunction for scripted
    functions, passes everything else on."""

    def __init__(self, app, region: str) -> None:
        self.app = app
        self.region = region

    def __call__(self, environ, start_response):
        match = _PATH.match(environ.get("PATH_INFO", ""))
        if match is None:
            return self.app(environ, start_response)
        name = _function_name(match.group(1))
        with _guard:
            known = name in _scripts
        if not known:
            return self.app(environ, start_response)
        if match.group(2) is None:
            return self._get_function(name, start_response)
        length = int(environ.get("CONTENT_LENGTH") or 0)
        raw = environ["wsgi.input"].read(length) if length else b""
        try:
            payload = json.loads(raw or b"null")
        except ValueError:
            payload = None
        call = {"function": name, "payload": payload, "at": time.time()}
        with _guard:
            _calls.append(call)
            behaviour = _next(name)

        def answered(status, headers, *rest):
            call["ok"] = not any(h == "X-Amz-Function-Error" for h, _ in headers)
            return start_response(status, headers, *rest)

        reply = self._behave(behaviour, payload, answered)
        call["answered_at"] = time.time()
        call["answer"] = json.loads(b"".join(reply))
        return reply

    def _get_function(self, name: str, start_response):
        arn = f"arn:aws:lambda:{self.region}:123456789012:function:{name}"
        body = {"Configuration": {"FunctionName": name, "FunctionArn": arn,
                                  "Runtime": "provided.al2023", "State": "Active"}}
        return _reply(start_response, 200, body)

    def _behave(self, behaviour: dict, payload, start_response):
        if "hang" in behaviour:
            time.sleep(_scaled(HANG_SECONDS))
            return _reply(start_response, 200, {"late": True})
        if "succeed" in behaviour:
            spec = behaviour["succeed"] or {}
            time.sleep(_scaled(float(spec.get("delay", 0))))
            return _reply(start_response, 200, spec.get("answer", {"ok": True}))
        if "error" in behaviour:
            spec = behaviour["error"]
            return _reply(start_response, 200,
                          {"errorType": spec.get("type", "Error"),
                           "errorMessage": spec.get("message", "the hook failed")},
                          function_error=True)
        if "smoke" in behaviour:
            try:
                ok, body = _smoke(payload or {}, behaviour["smoke"])
            except Exception as error:  # the canary did not answer: the smoke test fails
                ok, body = False, {"errorType": "CanaryUnreachable", "errorMessage": repr(error)}
            return _reply(start_response, 200, body, function_error=not ok)
        return _reply(start_response, 200,
                      {"errorType": "RigScriptError", "errorMessage": f"unknown behaviour {behaviour}"},
                      function_error=True)


def _reply(start_response, status: int, body: object, function_error: bool = False):
    data = json.dumps(body).encode()
    headers = [("Content-Type", "application/json"), ("Content-Length", str(len(data))),
               ("X-Amz-Executed-Version", "$LATEST")]
    if function_error:
        headers.append(("X-Amz-Function-Error", "Unhandled"))
    start_response(f"{status} OK", headers)
    return [data]
