"""One emulated AWS region for the regionpilot rig: moto on 127.0.0.1, with what moto lacks
added to its own backends. The manual (what is modelled, the variables, the control port)
is rig/README.md; one module per emulated service in rig/emulation/."""

from __future__ import annotations

import argparse
import signal
import sys
import threading
from moto.moto_server.werkzeug_app import DomainDispatcherApplication, MotoRequestHandler, create_backend_app
from werkzeug.serving import make_server

# Every service module patches moto when imported.
from emulation import autoscaling, dynamodb, ecs, replication, run_command, speed  # noqa: F401
from emulation import beanstalk  # noqa: F401
from emulation import mrsc
from emulation.replication import Outbound, _outbound, _replicated_tables
from emulation.faults import FaultInjector
from emulation.lambda_invoke import LambdaHooks
from emulation.mrsc import MRSC_REGIONS, MRSC_STORE, MRSC_TABLES, MrscRouter, MrscStore
from emulation.control import _control_server


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--region", required=True)
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--control-port", type=int, default=0, help="rig control (replication) port")
    parser.add_argument("--peers", default="", help="region=control-url pairs to replicate to")
    parser.add_argument("--replicate", default="", help="comma-separated replicated table names")
    parser.add_argument("--lag", type=float, default=0.2, help="initial replication lag, seconds")
    parser.add_argument("--mrsc-store", action="store_true",
                        help="serve as the one store of the RIG_MRSC_TABLES, not as a region")
    args = parser.parse_args()

    _replicated_tables.update(t for t in args.replicate.split(",") if t)
    mrsc_member = bool(MRSC_TABLES) and args.region in MRSC_REGIONS and not args.mrsc_store
    if MRSC_TABLES and not MRSC_REGIONS:
        raise SystemExit("RIG_MRSC_TABLES needs RIG_MRSC_REGIONS (the regions holding a replica)")
    if mrsc_member and not MRSC_STORE:
        raise SystemExit("RIG_MRSC_TABLES needs RIG_MRSC_STORE (the store's URL) in an MRSC region")
    if mrsc_member and MRSC_TABLES & _replicated_tables:
        raise SystemExit(f"{sorted(MRSC_TABLES & _replicated_tables)}: a table is either "
                         "replicated (--replicate) or MRSC (RIG_MRSC_TABLES), not both")
    for pair in filter(None, args.peers.split(",")):
        peer, url = pair.split("=", 1)
        _outbound[peer] = Outbound(peer, url, args.lag)
    if args.control_port:
        _control_server(args.region, args.control_port)

    moto_app = DomainDispatcherApplication(create_backend_app)
    if args.mrsc_store:
        if not MRSC_TABLES:
            raise SystemExit("--mrsc-store needs RIG_MRSC_TABLES and RIG_MRSC_REGIONS")
        mrsc._store_front = True
        app = MrscStore(moto_app)
    elif mrsc_member:
        mrsc._router = MrscRouter(moto_app, args.region)
        app = FaultInjector(mrsc._router)
    else:
        app = FaultInjector(moto_app)
    # Hook functions the tests and the drill script (moto runs a function only in Docker),
    # answered outside the rig's lock: a hook that hangs must not hold the region.
    app = LambdaHooks(app, args.region)
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
