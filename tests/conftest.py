"""Shared fixtures: real Dask clusters (worker processes), started once per test module."""

from __future__ import annotations

import pytest


@pytest.fixture(scope="module")
def cluster():
    """A LocalCluster with two worker processes, set up like lightnb's embedded cluster, shared by the
    module's apps (an app given a cluster it did not create leaves it running)."""
    from lightnb.runtime.cluster import start_local_cluster

    local = start_local_cluster(n_workers=2)
    yield local
    local.close()
