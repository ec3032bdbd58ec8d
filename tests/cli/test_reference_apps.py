"""A Lightning app written for the reference (only its imports changed) run with `lightnb run` on the embedded
cluster: works started without the flow, a display name, a child made onto a placeholder, a cron schedule,
`log_level`, the app built under `if __name__ == "__main__":`."""

from __future__ import annotations

import json
import re
from pathlib import Path

from script_apps import lightnb

REFERENCE_APP = '''\
from lightnb import LightningApp, LightningFlow, LightningWork
from lightnb.structures import List


class Work(LightningWork):
    def __init__(self, start_with_flow=True):
        super().__init__(start_with_flow=start_with_flow)
        self.count = 0

    def run(self):
        self.count += 1


class Flow(LightningFlow):
    def __init__(self):
        super().__init__()
        self.w = Work()
        self.w1 = Work(start_with_flow=False)
        self.w.display_name = "My Custom Name"
        self.lazy = None
        self.ticks = List()

    def run(self):
        self.w1.start()
        self.w.run()
        self.w1.run()
        if self.lazy is None:
            self.lazy = Work()
        self.lazy.run()
        if self.schedule("* * * * * */1"):
            self.ticks.append(Work())
        for tick in self.ticks:
            tick.run()
        if len(self.ticks) >= 3 and all(t.has_succeeded for t in self.ticks) and self.lazy.has_succeeded:
            self.stop(f"{len(self.ticks)} ticks")


if __name__ == "__main__":
    app = LightningApp(Flow(), log_level="debug")
'''


def test_a_reference_app_runs_to_its_end(tmp_path: Path) -> None:
    script = tmp_path / "app.py"
    script.write_text(REFERENCE_APP)
    state = tmp_path / "state.json"
    done = lightnb("run", script, "--state-json", state, cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    ticks = re.search(r"lightnb: Flow stopped: (\d+) ticks", done.stdout)
    assert ticks and int(ticks.group(1)) >= 3, done.stdout  # one a second, the first at once
    final = json.loads(state.read_text())
    assert final["works"]["lazy"]["vars"]["count"] == 1
    assert final["works"]["w1"]["vars"]["count"] == 1
    assert [w["vars"]["count"] for w in final["structures"]["ticks"]["works"].values()][:3] == [1, 1, 1]
    assert "sending call" in done.stderr  # log_level="debug"
