"""The warning a tier gives, once, when it degrades (disk unwritable, Redis down, no secret)."""
from __future__ import annotations

import logging
import warnings

from ..errors import VexploreWarning

log = logging.getLogger(__name__)


class VexploreCacheWarning(VexploreWarning):
    """A cache tier stopped working and vexplore carries on with the other tiers."""


def degrade(message: str, *args: object) -> None:
    """Warn (once per call site's decision) that a tier degraded; the caller tracks 'once'."""
    text = message % args if args else message
    log.debug("vexplore cache degraded: %s", text)
    warnings.warn(text, VexploreCacheWarning, stacklevel=3)
