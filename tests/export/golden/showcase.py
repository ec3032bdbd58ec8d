# App script exported from showcase.ipynb by `lightnb export`.
# Run it with `lightnb run showcase.py` (a live view; `--cluster tcp://HOST:8786` or `--cluster cluster.yaml`
# runs the same app on another Dask cluster), or with `python showcase.py`.


# %% [markdown]
# # Showcase
# A notebook with everything `lightnb export` deals with.


# %%
# %matplotlib inline  (lightnb export: IPython magic, not run in a script)
# !pip install tqdm  (lightnb export: shell command, not run in a script; install the packages where it runs)
# files = !ls  (lightnb export: shell command, not run in a script)


# %% tags=["parameters"]
# The script's parameters: `lightnb run showcase.py --param NAME=VALUE` overrides them.
steps = 3
label = 'showcase'


# %%
import os
import time

from lightnb import LightningApp, LightningFlow, LightningWork


class Counter(LightningWork):
    def __init__(self):
        super().__init__()
        self.count = 0
        self.pid = 0
        self.greeting = ""

    def run(self, steps):
        self.pid = os.getpid()
        self.greeting = os.environ.get("LIGHTNB_TEST_GREETING", "")
        for _ in range(steps):
            self.count += 1
            print(f"counted {self.count}", flush=True)


class Root(LightningFlow):
    def __init__(self):
        super().__init__()
        self.counter = Counter()
        self.total = 0
        self.label = label

    def run(self):
        self.counter.run(steps)
        if self.counter.has_succeeded:
            self.total = self.counter.count
            self.stop(f"counted to {self.total}")


# %%
# lightnb export: cell magic, not run in a script:
# %%bash
# echo not in the script


# %%
# %%time  (lightnb export: the cell's code runs as is)
warmup = sum(range(10))


# %%
if warmup:
    pass  # %time extra = 1  (lightnb export: IPython magic, not run in a script)
    more = (warmup
            % 7)


# %%
app = LightningApp(Root())
app.root.label = label.upper()


# %%
# %lightnb cluster tcp://10.0.0.5:8786  (lightnb export: give it at run time: --cluster tcp://10.0.0.5:8786)
ready = True


# %%
# lightnb export: left out, as it used the running app or its widgets in the notebook
# (the script defines the app; `lightnb run` runs it).
# result = app.root.total
# print(result)
# doubled = result * 2
import math
square = math.sqrt(16)


# %%
# lightnb export: left out, as it used the running app or its widgets in the notebook
# (the script defines the app; `lightnb run` runs it).
# try:
#     app.wait()
# except Exception as error:
#     print(error)


# %%
# lightnb export: left out, as it used the running app or its widgets in the notebook
# (the script defines the app; `lightnb run` runs it).
# print(doubled)
print(square)


# %%
if __name__ == "__main__":
    # `lightnb run showcase.py` starts the app itself (it loads this file under another name).
    app.run()
