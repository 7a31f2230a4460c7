"""Mean negative log-likelihood per token and perplexity of a text file.

  python -m launch.score --config=configs/gemma3_270m.py --text_file=passage.txt

The text is tokenised with a leading BOS and no EOS; every token after the BOS is scored.
"""

import math
import os

from absl import app, flags
from ml_collections import config_flags

from elc.checkpoints.backbone import load_backbone
from elc.likelihood import token_nll
from elc.text_files import TextDecodeError, read_text

_CONFIG = config_flags.DEFINE_config_file("config", None, "Config file (configs/*.py).",
                                          lock_config=True)
_TEXT_FILE = flags.DEFINE_string("text_file", None, "UTF-8 text file to score.")
flags.mark_flags_as_required(["config", "text_file"])


def main(argv):
    if len(argv) > 1:
        raise app.UsageError(f"unexpected arguments: {argv[1:]}")
    path = _TEXT_FILE.value
    if not os.path.isfile(path):
        raise app.UsageError(f"--text_file {path} does not exist")
    try:
        text = read_text(path)
    except TextDecodeError as error:
        raise app.UsageError(f"--text_file {error}") from None
    config = _CONFIG.value
    backbone = load_backbone(config.backbone)
    if backbone.tokenizer is None:
        raise app.UsageError("this backbone has no tokenizer; set --config.backbone.tokenizer")
    ids = backbone.tokenizer.encode(text)
    if len(ids) < 2:
        raise app.UsageError(f"{path} holds no text to score")
    nll = token_nll(backbone.model, backbone.variables, ids, config.score.max_length)
    mean = float(nll.astype("float64").mean())
    print(f"tokens scored: {len(nll)}")
    print(f"mean NLL per token: {mean:.6f} nats")
    print(f"perplexity: {math.exp(mean):.4f}")


if __name__ == "__main__":
    app.run(main)
