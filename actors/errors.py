"""Errors of the actors (extractor, embedder, linker, consolidator, decay, query).

MnemoError                     (eventlog.errors)
└── ActorError                 an actor could not process a batch
"""

from __future__ import annotations

from mnemoflow.eventlog.errors import MnemoError


class ActorError(MnemoError):
    """An actor could not process a batch."""
