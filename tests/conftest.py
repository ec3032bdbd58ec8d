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


@pytest.fixture(scope="module")
def remote(tmp_path_factory):
    """A `dask scheduler` with two `dask worker` processes started apart from lightnb (see remote_cluster)."""
    from remote_cluster import RemoteCluster

    started = RemoteCluster(tmp_path_factory.mktemp("remote"))
    yield started
    started.close()
