"""Run a benchmark against an earlier revision of lightnb and the working tree, side by side, in one run.

Run:  python benchmarks/compare_revisions.py REV [--rounds 2] -- benchmarks/core_engine.py --trials 3

The benchmark runs alternately as it is at REV (checked out in a temporary git worktree: its own script, its
own lightnb, its own test helpers — a kernel it starts imports that lightnb) and as it is in the working tree,
``--rounds`` times each, so that both see the same machine at the same moments. Every line holding ``p50`` /
``p99`` / ``%`` figures is printed for both, one under the other, round by round; the full outputs are kept
next to each other under ``--keep DIR`` if asked.
"""

from __future__ import annotations

import argparse
import os
import re
import subprocess
import sys
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
FIGURE = re.compile(r"(p50|p99|%|ratio|iteration|lag)")


def run(tree: Path, script: list[str]) -> str:
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [str(tree), os.environ.get("PYTHONPATH")]))}
    done = subprocess.run([sys.executable, *script], cwd=tree, env=env, capture_output=True, text=True)
    if done.returncode != 0:
        raise SystemExit(f"{script[0]} failed on {tree}:\n{done.stdout}\n{done.stderr}")
    return done.stdout


def figures(output: str) -> list[str]:
    return [line.rstrip() for line in output.splitlines() if line.startswith("#") or FIGURE.search(line)]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("revision", help="the earlier revision (a commit, tag or branch)")
    parser.add_argument("--rounds", type=int, default=2, help="runs of each side, alternating (default 2)")
    parser.add_argument("--keep", type=Path, help="write each run's full output into this folder")
    argv = sys.argv[1:]
    if "--" not in argv:
        parser.error("give the benchmark to run after --")
    split = argv.index("--")
    args, script = parser.parse_args(argv[:split]), argv[split + 1:]
    if not script:
        parser.error("give the benchmark to run after --")
    commit = subprocess.run(["git", "rev-parse", "--short", args.revision], cwd=REPO, check=True,
                            capture_output=True, text=True).stdout.strip()
    with tempfile.TemporaryDirectory(prefix="lightnb-base-") as folder:
        base = Path(folder) / "tree"
        subprocess.run(["git", "worktree", "add", "--detach", str(base), commit], cwd=REPO, check=True,
                       capture_output=True)
        try:
            sides = {f"before ({commit})": base, "after (working tree)": REPO}
            print(f"# {' '.join(script)}: {args.rounds} rounds, each side in turn (the order swaps every round)")
            for round_ in range(args.rounds):
                order = list(sides.items()) if round_ % 2 == 0 else list(reversed(sides.items()))
                outputs = {label: run(tree, script) for label, tree in order}
                print(f"\n## round {round_ + 1}")
                for label in sides:
                    print(f"### {label}")
                    print("\n".join(figures(outputs[label])))
                    if args.keep:
                        args.keep.mkdir(parents=True, exist_ok=True)
                        name = f"round{round_ + 1}-{label.split()[0]}.txt"
                        (args.keep / name).write_text(outputs[label], encoding="utf-8")
        finally:
            subprocess.run(["git", "worktree", "remove", "--force", str(base)], cwd=REPO, capture_output=True)


if __name__ == "__main__":
    main()
