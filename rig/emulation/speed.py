"""moto's server, made faster where the rig's load showed it slow.

See rig/README.md."""

from __future__ import annotations

import moto.backends


# moto's server looks each request's Host up among its service packages by listing its own
# directory (a listdir and a stat per entry, twice for a Host such as 127.0.0.1:PORT), under
# its dispatcher's one lock: a third of the CPU of a GetItem. They never change here.
_MOTO_MODULES = frozenset(moto.backends.list_of_moto_modules())
moto.backends.list_of_moto_modules = lambda: _MOTO_MODULES
