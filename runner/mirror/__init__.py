"""Bypass testing: mirror live traffic to a shadow endpoint, measure both, capture it for replay.

``python -m runner mirror --listen HOST:PORT --upstream ORIGIN --shadow ORIGIN`` (see runner.cli).
The production path (:mod:`runner.mirror.proxy`) returns the upstream's response unchanged; the
shadow path (:mod:`runner.mirror.shadow`) can drop or fail without the caller ever noticing;
captures (:mod:`runner.mirror.capture`) keep no credentials.
"""

from runner.mirror.capture import PRIVACY, CaptureWriter
from runner.mirror.proxy import MirrorProxy
from runner.mirror.report import mirror_records
from runner.mirror.service import MirrorConfig, serve_mirror
from runner.mirror.shadow import ShadowPool

__all__ = [
    "PRIVACY",
    "CaptureWriter",
    "MirrorConfig",
    "MirrorProxy",
    "ShadowPool",
    "mirror_records",
    "serve_mirror",
]
