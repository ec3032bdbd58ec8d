"""``lightning.app.utilities.packaging`` under lightnb: ``CloudCompute`` (supported) and ``BuildConfig`` (not:
works run in the workers' environment)."""
