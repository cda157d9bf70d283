"""DynamoDB item operations: serialised as DynamoDB applies them, and answered without
moto's slow re-serialisation.

See rig/README.md."""

from __future__ import annotations

import json
import threading
from moto.dynamodb.models import DynamoDBBackend
from moto.dynamodb.responses import DynamoResult


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


# moto writes every DynamoDB answer through botocore's model, attribute by attribute: a
# few milliseconds for one nested item (regionpilot's control state), and 45 % of a
# region's CPU in the race test. The answers of the item operations are DynamoDB's wire
# JSON already (moto's DynamoResult converted them), so they are written as they are;
# everything else (errors, table descriptions with timestamps) keeps moto's serializer.
_ITEM_OPERATIONS = frozenset({"GetItem", "BatchGetItem", "Query", "Scan", "PutItem",
                              "UpdateItem", "DeleteItem", "BatchWriteItem"})
_moto_dynamo_execute = DynamoResult.execute_result


def _dynamo_execute(self: DynamoResult, context):
    result = self.result
    if context.operation_model.name not in _ITEM_OPERATIONS or not isinstance(result, dict):
        return _moto_dynamo_execute(self, context)
    body = json.dumps({k: v for k, v in result.items() if v is not None})
    return 200, {"Content-Type": "application/x-amz-json-1.0"}, body


DynamoResult.execute_result = _dynamo_execute
