"""Global Tables replication between the rig's regions, with lag and pause (moto has none).

See rig/README.md."""

from __future__ import annotations

import collections
import json
import time
import urllib.error
import urllib.parse
import urllib.request
import threading
from moto.dynamodb.models import DynamoDBBackend, dynamodb_backends

from .dynamodb import _item_lock


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
