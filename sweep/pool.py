"""A process pool on Ray: the walk tuner's `--ray` evaluates its CMA-ES populations on Ray actors (this machine,
or every machine of a cluster) instead of local worker processes.

`RayPool(workers, init_worker, init_args, address)` is a context manager with `map(fn, items)`, like the
multiprocessing pool it replaces: each actor runs `init_worker(*init_args)` once (the tuner builds its env
there), then evaluates items in turn; results come back in item order.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

from rlcore.cliutil import UsageError
from sweep.runner import LOCAL_OBJECT_STORE, check_address


class RayPool:
    """`workers` Ray actors, each set up once by `init_worker(*init_args)`."""

    def __init__(self, workers: int, init_worker: Callable[..., None], init_args: tuple,
                 address: str | None = None) -> None:
        self.workers, self.init_worker, self.init_args, self.address = workers, init_worker, init_args, address
        self.pool = None
        self.started_ray = False

    def __enter__(self) -> RayPool:
        try:
            import ray
            from ray.util import ActorPool
        except ImportError:
            raise UsageError('--ray needs Ray: pip install -e ".[sweep]"') from None
        if self.address is not None:
            check_address(self.address)
        if not ray.is_initialized():
            local = {} if self.address is not None else {"object_store_memory": LOCAL_OBJECT_STORE}
            ray.init(address=self.address, include_dashboard=False, log_to_driver=False, configure_logging=False,
                     **local)
            self.started_ray = True

        @ray.remote(num_cpus=1)
        class Worker:
            def __init__(self, init_worker: Callable[..., None], init_args: tuple) -> None:
                init_worker(*init_args)

            def run(self, fn: Callable[[Any], Any], item: Any) -> Any:
                return fn(item)

        actors = [Worker.remote(self.init_worker, self.init_args) for _ in range(self.workers)]
        self.pool = ActorPool(actors)
        return self

    def map(self, fn: Callable[[Any], Any], items: Iterable[Any]) -> list[Any]:
        """fn(item) for every item, on the actors; in item order."""
        return list(self.pool.map(lambda actor, item: actor.run.remote(fn, item), list(items)))

    def __exit__(self, *exc_info) -> None:
        import ray

        self.pool = None
        if self.started_ray:
            ray.shutdown()
