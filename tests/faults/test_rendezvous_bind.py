"""A training's sockets listen only where the ranks meet (loopback on one node), never on all
interfaces: the rendezvous store is unauthenticated and gloo's pair sockets carry gradients."""

import ipaddress
import os
import threading
import time

import psutil
import pytest

from streamal.cluster.plan import RankPlacement
from streamal.train.ddp import train
from tests.test_trainer import _spec

pytestmark = pytest.mark.faults


def _watch_listeners(stop: threading.Event, seen: list, alive_polls: list) -> None:
    """Record every LISTEN socket owned by a descendant of this process until ``stop``."""
    me = psutil.Process(os.getpid())
    while not stop.is_set():
        kids = {p.pid for p in me.children(recursive=True)}
        if kids:
            for c in psutil.net_connections(kind="inet"):
                if c.status == psutil.CONN_LISTEN and c.pid in kids:
                    seen.append((c.pid, c.laddr.ip, c.laddr.port))
            if any(psutil.pid_exists(pid) for pid in kids):
                alive_polls.append(time.time())
        stop.wait(0.05)


def test_ddp_ranks_listen_on_loopback_only(tmp_path):
    try:
        psutil.net_connections(kind="inet")
    except psutil.AccessDenied:
        pytest.skip("this system does not let a process list its sockets")
    spec = _spec(tmp_path, [RankPlacement(0, (0,), None), RankPlacement(1, (1,), None)], epochs=3)
    stop, seen, alive = threading.Event(), [], []
    watcher = threading.Thread(target=_watch_listeners, args=(stop, seen, alive), daemon=True)
    watcher.start()
    try:
        result = train(spec)
    finally:
        stop.set()
        watcher.join(timeout=10)
    assert len(result["history"]) == 3
    assert alive, "no check ran while the ranks were alive"
    assert seen, "no listening socket of a rank was ever seen (the check saw nothing)"
    rank_pids = {r["pid"] for r in result["ranks"]}
    assert {pid for pid, _, _ in seen} <= rank_pids
    wildcard = sorted({s for s in seen if ipaddress.ip_address(s[1]).is_unspecified})
    assert not wildcard, f"listening on every interface: {wildcard}"
    outside = sorted({s for s in seen if not ipaddress.ip_address(s[1]).is_loopback})
    assert not outside, f"listening beyond loopback on one node: {outside}"
