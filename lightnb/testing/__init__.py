"""Test helpers for apps, under the reference's names (``lightning.app.testing``), so users' own app tests
port by changing their imports::

    from lightnb.testing import LightningTestApp, application_testing, run_work_isolated
    from lightnb.testing.helpers import EmptyFlow, EmptyWork
"""

from .helpers import EmptyFlow, EmptyWork
from .testing import (
    ApplicationTestResult,
    LightningTestApp,
    application_testing,
    delete_cloud_lightning_apps,
    run_app_in_cloud,
    run_work_isolated,
    wait_for,
)

__all__ = ["ApplicationTestResult", "EmptyFlow", "EmptyWork", "LightningTestApp", "application_testing",
           "delete_cloud_lightning_apps", "run_app_in_cloud", "run_work_isolated", "wait_for"]
