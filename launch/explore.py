"""The embedding explorer: a local web page to walk a trained run's embedding spaces and
read what its ELM says about any point.

  python -m launch.explore --config=configs/movielens_elm.py --workdir=workdir/movielens_elm
  make explore                                    # the same, after make run

It loads the run's tables and trained stages once, compiles generation, then serves a page
on 127.0.0.1 (--port) with a map of each space, answers about an entity, a point between
two entities, a point moved along a concept direction, and both stages side by side.
Any run of elc works: spaces and tasks come from its config (MovieLens, describe).
"""

import os
import socket
import time

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
_PORT = flags.DEFINE_integer("port", 7860, "Port on 127.0.0.1 (0: any free port).")
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
    started = time.time()

    def progress(message: str) -> None:
        logging.info("[%5.1fs] %s", time.time() - started, message)

    from elc.explorer.loading import load_explorer
    from elc.explorer.page import build_page
    config_file = config_flags.get_config_filename(flags.FLAGS["config"])
    train_command = f"python -m launch.train --config={config_file} --workdir={workdir}"
    explorer = load_explorer(config, workdir, project, _STAGES.value, train_command, progress)
    page = build_page(explorer)
    port = _PORT.value or _free_port()
    page.queue(default_concurrency_limit=1).launch(
        server_name="127.0.0.1", server_port=port, show_error=True, quiet=True,
        prevent_thread_lock=True)
    progress(f"serving the explorer at http://127.0.0.1:{port}/ (Ctrl-C stops it)")
    page.block_thread()


if __name__ == "__main__":
    app.run(main)
