"""Data the tests need from the machine, and the loud failure when it is missing.

`.ci/run` installs these; on another machine a test that needs one fails (it does not
skip) and its message says how to install it, so a missing dependency never passes as a
quiet skip in the summary.
"""
import os

import pytest

from learnit_tf.kinds.image import emoji

EMOJI_INSTALL = "apt-get update && apt-get install -y libjs-emojify"


def emoji_missing_message(detail=""):
    return (f"the emoji artwork of the real image class is missing: the Debian package "
            f"{emoji.EMOJI_PACKAGE} is not installed (no {emoji.EMOJI_SOURCE_DIR}). Install it "
            f"with `{EMOJI_INSTALL}` (as root; .ci/run does this). {detail}").strip()


def require_emoji_package():
    """Fails the calling test, naming the install command, when libjs-emojify is missing."""
    if not os.path.isdir(emoji.EMOJI_SOURCE_DIR):
        pytest.fail(emoji_missing_message(), pytrace=False)
