"""The private APIs prunescope relies on still exist in the locked versions (fast).

Each is looked up in one place with a fallback (see each module's docstring);
these tests fail when an upgrade removes one, so the fallback is never the
silent path.
"""

from __future__ import annotations

import concurrent.futures as cf
import inspect
import multiprocessing

from analysis.executor import private


def test_process_pool_keeps_its_process_table():
    with cf.ProcessPoolExecutor(1, mp_context=multiprocessing.get_context("spawn")) as pool:
        pool.submit(int, 1).result(timeout=120)
        procs = private.pool_processes(pool)
        assert procs and all(hasattr(p, "exitcode") for p in procs.values())


def test_ray_reads_the_private_switches_we_set():
    import ray._private.ray_constants as constants
    import ray._private.worker as worker

    assert hasattr(constants, "ENABLE_RAY_CLUSTER")
    assert constants.__name__ == private.RAY_CONSTANTS
    source = inspect.getsource(worker.init)
    (name,) = private.ray_loopback_node()
    assert f'kwargs.pop("{name}"' in source
    assert private.LOCAL_ONLY_ENV in inspect.getsource(constants)
