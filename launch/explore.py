"""The embedding explorer: a local web page to walk a trained run's embedding spaces and
read what its ELM says about any point.

  python -m launch.explore --config=configs/movielens_elm.py --workdir=workdir/movielens_elm
  make explore                                    # the same, after make run

It loads the run's tables and serves a page on 127.0.0.1 (--port) at once, while the
trained stages load and generation compiles in the background (the page shows the
progress). The page has a map of each space, answers about an entity, a point between
two entities, a point moved along a concept direction, and both stages side by side.
Any run of elc works: spaces and tasks come from its config (MovieLens, describe).
"""

import os
import socket

# Before gradio is imported: no usage statistics or version checks over the network.
os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")

from absl import app, flags, logging  # noqa: E402
from ml_collections import config_flags  # noqa: E402

from launch.projects import config_project  # noqa: E402
from launch.quiet_logs import quiet_third_party_logs  # noqa: E402

_CONFIG = config_flags.DEFINE_config_file("config", None, "Config file of the run.",
                                          lock_config=True)
_WORKDIR = flags.DEFINE_string("workdir", None, "The trained run's workdir.")
_STAGES = flags.DEFINE_list("stages", [], "Stages to load (default: every stage of the run; "
                            "the page answers with the last unless told otherwise).")
_PORT = flags.DEFINE_integer("port", 7860, "Port on 127.0.0.1 (0: any free port).",
                             lower_bound=0, upper_bound=65535)
flags.mark_flags_as_required(["config", "workdir"])


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def main(argv):
    if len(argv) > 1:
        raise app.UsageError(f"unexpected arguments: {argv[1:]}")
    quiet_third_party_logs()
    config, workdir = _CONFIG.value, _WORKDIR.value
    try:
        project = config_project(config, "launch.explore")
    except ValueError as error:
        raise app.UsageError(str(error)) from None
    stages = list(config.train.stages)
    unknown = [s for s in _STAGES.value if s not in stages]
    if unknown:
        raise app.UsageError(f"--stages: {unknown} not among the run's stages {stages}")
    from elc.explorer.loading import load_catalog, load_model_in_background
    from elc.explorer.page import build_page
    try:  # unprepared data, a missing table: named, not a traceback
        explorer = load_catalog(config, project,
                                [s for s in stages if s in _STAGES.value] or stages)
    except (FileNotFoundError, ValueError) as error:
        raise app.UsageError(f"cannot read the run's data: {error}") from None
    config_file = config_flags.get_config_filename(flags.FLAGS["config"])
    train_command = f"python -m launch.train --config={config_file} --workdir={workdir}"
    port = _PORT.value or _free_port()
    page = build_page(explorer)
    page.queue(default_concurrency_limit=1).launch(
        server_name="127.0.0.1", server_port=port, show_error=True, quiet=True,
        prevent_thread_lock=True)
    logging.info("serving the explorer at http://127.0.0.1:%d/ (Ctrl-C stops it); the model "
                 "loads meanwhile, its progress shown on the page", port)
    load_model_in_background(explorer, config, workdir, train_command)
    page.block_thread()


if __name__ == "__main__":
    app.run(main)
