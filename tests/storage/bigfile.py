"""A work that puts or gets a large file through a drive and measures its own memory meanwhile (shared by
the local and the S3 tests)."""

from __future__ import annotations

import hashlib
import os

from lightnb import CloudCompute, Drive, LightningFlow, LightningWork

MiB = 2**20


def sha256(path: str) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as file:
        for block in iter(lambda: file.read(4 * MiB), b""):
            digest.update(block)
    return digest.hexdigest()


class BigFile(LightningWork):
    """``run("put")`` makes a file of ``size`` bytes and puts it; ``run("get")`` gets root.producer's copy.

    Records the file's digest, the peak of Python allocations (tracemalloc, every thread) and how much the
    process's peak resident memory grew while the transfer ran. Local gets copy rather than link here, so
    that the bytes really move."""

    def __init__(self, size: int, folder: str | None = None, machine: str | None = None):
        super().__init__(cloud_compute=CloudCompute(machine) if machine else None)
        self.drive = Drive("lit://big", root_folder=folder, allow_duplicates=True)
        self.size = size
        self.digest = None
        self.peak_traced = None
        self.rss_growth = None

    def run(self, action: str):
        import resource
        import tracemalloc

        folder = self.drive.root_folder or os.getcwd()
        path = os.path.join(folder, "big.bin")
        if action == "put":
            os.makedirs(folder, exist_ok=True)
            with open(path, "wb") as file:  # sparse, with random blocks: quick to make, not all zeros
                file.truncate(self.size)
                for offset in range(0, self.size, 8 * MiB):
                    file.seek(offset)
                    file.write(os.urandom(64 * 1024))
            self.digest = sha256(path)
        previous = os.environ.get("LIGHTNB_STORAGE_LINKS")
        os.environ["LIGHTNB_STORAGE_LINKS"] = "0"
        before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        tracemalloc.start()
        try:
            if action == "put":
                self.drive.put("big.bin")
            else:
                self.drive.get("big.bin", component_name="root.producer", overwrite=True)
        finally:
            _, peak = tracemalloc.get_traced_memory()
            tracemalloc.stop()
            if previous is None:
                del os.environ["LIGHTNB_STORAGE_LINKS"]
            else:
                os.environ["LIGHTNB_STORAGE_LINKS"] = previous
        self.rss_growth = (resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before) * 1024
        self.peak_traced = peak
        if action == "get":
            self.digest = sha256(path)


class BigFlow(LightningFlow):
    def __init__(self, producer: BigFile, consumer: BigFile):
        super().__init__()
        self.producer = producer
        self.consumer = consumer

    def run(self):
        self.producer.run("put")
        self.consumer.run("get")
        self.stop("done")
