"""The helpers of the reference's ``lightning.app.utilities`` that apps and their docs use, under the same
names (``from lightnb.utilities.app_helpers import pretty_state``)."""
