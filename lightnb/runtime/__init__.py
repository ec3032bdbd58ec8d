"""The I/O shell around the core: the app's loop thread, the executor interface, the Dask executor and cluster
handling, and the code that runs on a worker."""
