"""Multi-Region strongly consistent global tables: one store process, regions that forward
to it, write conflicts, a region cut off.

See rig/README.md."""

from __future__ import annotations

import http
import io
import json
import os
import re
import time
import urllib.error
import urllib.parse
import urllib.request
import zlib
import threading
import uuid
from moto.dynamodb.models import DynamoDBBackend, dynamodb_backends
from moto.iam.models import get_account_id_from
from werkzeug.test import Client

from .dynamodb import _item_lock
from .replication import _key_of


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
