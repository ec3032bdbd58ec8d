"""Where work calls execute: the executor protocol, the Dask executor and cluster handling, and the code
that runs on the worker."""
