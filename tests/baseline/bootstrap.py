"""A minimal custom-runtime loop for the Python baseline: polls the Lambda Runtime API
(AWS_LAMBDA_RUNTIME_API) exactly as regionpilot's Rust bootstraps do, so both run under the
same local Lambda service. Standard library only; lighter than AWS's own Python runtime
interface client, which favours the baseline in the comparison."""

import json
import os
import sys
import traceback
import urllib.request

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
API = "http://" + os.environ["AWS_LAMBDA_RUNTIME_API"] + "/2018-06-01/runtime"

import failover  # noqa: E402  (initialisation, as Lambda's init phase)


def post(path, body):
    request = urllib.request.Request(API + path, data=json.dumps(body).encode(), method="POST")
    urllib.request.urlopen(request).read()


while True:
    with urllib.request.urlopen(API + "/invocation/next") as response:
        request_id = response.headers["Lambda-Runtime-Aws-Request-Id"]
        event = json.loads(response.read())
    try:
        result = failover.handler(event, None)
        post(f"/invocation/{request_id}/response", result)
    except Exception as error:  # report, as Lambda does, and keep serving
        post(
            f"/invocation/{request_id}/error",
            {"errorType": type(error).__name__, "errorMessage": str(error), "stackTrace": traceback.format_exc().splitlines()},
        )
