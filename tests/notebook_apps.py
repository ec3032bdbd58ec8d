"""Code the notebook-front tests run in their kernels: a cluster and a work that reports progress.

``PRELUDE`` imports lightnb and starts ``cluster`` (a LocalCluster with two worker processes, set up like the
embedded one); ``Steps(n, period=0.1, fail=False)`` takes ``n`` steps of ``period`` seconds, printing
``step i of n`` and setting ``progress`` after each, and raises ``ValueError("boom at the end")`` if asked.
"""

import textwrap

PRELUDE = textwrap.dedent('''
    import time
    from lightnb import LightningApp, LightningFlow, LightningWork
    from lightnb.runtime.cluster import start_local_cluster

    cluster = start_local_cluster(n_workers=2)

    class Steps(LightningWork):
        def __init__(self, n, period=0.1, fail=False):
            super().__init__(parallel=True, raise_exception=False)
            self.n = n
            self.period = period
            self.fail = fail
            self.progress = 0.0

        def run(self):
            for i in range(self.n):
                time.sleep(self.period)
                self.progress = (i + 1) / self.n
                print(f"step {i + 1} of {self.n}")
            if self.fail:
                raise ValueError("boom at the end")
''')
