"""A Ray that this process starts for itself listens on the loopback address only.

Left to itself, a Ray head started by ``ray.init()`` advertises the machine's network address,
and its control and worker services (GCS, raylet, object manager, agents) listen there or on
every interface: anyone who can reach the machine could then submit code to it, as Ray has no
authentication. Ray picks the loopback address as its node address where clusters are off
(``RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER=0``; the name is Ray's), and binds its services to the node
address; a one-machine Ray loses nothing by it. ``vigil serve --host`` still decides where the
HTTP endpoint listens.
"""

from __future__ import annotations

import os
import sys

CLUSTER_SWITCH = "RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER"


def keep_on_loopback() -> None:
    """Before a local ``ray.init()``: its node address, and so its services, on 127.0.0.1."""
    os.environ[CLUSTER_SWITCH] = "0"  # read when Ray is imported, here and in its processes
    constants = sys.modules.get("ray._private.ray_constants")
    if constants is not None and hasattr(constants, "ENABLE_RAY_CLUSTER"):
        # Ray imported already: the value it reads (set by name: a module found at run time)
        setattr(constants, "ENABLE_RAY_CLUSTER", False)
