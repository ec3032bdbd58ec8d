"""What every step of the export shares: the error it raises and the markers a script carries."""

from __future__ import annotations

SKIP_TAGS = frozenset({"skip", "lightnb-skip"})
PARAMETERS_TAG = "parameters"
PARAMETERS_MARKER = '# %% tags=["parameters"]'
EXPORT_MARK = "by `lightnb export`"


class ExportError(ValueError):
    """The notebook cannot become an app script; the message names the notebook, the cell and what to do."""
