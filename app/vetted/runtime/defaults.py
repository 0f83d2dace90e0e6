"""Engine settings from the machine: threads from physical cores, context from RAM."""

from __future__ import annotations

import os
from dataclasses import asdict, dataclass


def physical_cores() -> int:
    n = os.cpu_count() or 1
    try:
        cores = set()
        with open("/proc/cpuinfo") as f:
            phys = core = None
            for line in f:
                if line.startswith("physical id"):
                    phys = line.split(":")[1].strip()
                elif line.startswith("core id"):
                    core = line.split(":")[1].strip()
                    cores.add((phys, core))
        if cores:
            return max(1, min(n, len(cores)))
    except OSError:
        pass
    return max(1, n)


@dataclass(frozen=True)
class EngineSettings:
    n_ctx: int = 4096
    n_threads: int = 0  # 0: physical cores
    n_batch: int = 512
    seed: int = 42

    def resolved(self, model_ctx: int | None = None) -> "EngineSettings":
        threads = self.n_threads or physical_cores()
        ctx = min(self.n_ctx, model_ctx) if model_ctx else self.n_ctx
        return EngineSettings(ctx, threads, min(self.n_batch, ctx), self.seed)

    def as_dict(self) -> dict:
        return asdict(self)
