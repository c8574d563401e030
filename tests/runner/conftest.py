from __future__ import annotations

from collections.abc import Iterator

import pytest

try:
    import uvloop
except ImportError:  # pragma: no cover
    uvloop = None  # type: ignore[assignment]


def pytest_asyncio_loop_factories(config: pytest.Config, item: pytest.Item) -> dict[str, object] | None:
    """The engine runs on uvloop in production (Celery shards, CLI); its tests measure the same loop."""
    return {"uvloop": uvloop.new_event_loop} if uvloop is not None else None


@pytest.fixture(scope="module")
def sim() -> Iterator[object]:
    """One simulator process per module: TTFT 200 ms, ITL 20 ms, 20 output tokens."""
    from runner.simulator import SimulatorProcess

    with SimulatorProcess(ttft_ms=200, itl_ms=20, output_tokens=20) as proc:
        yield proc
