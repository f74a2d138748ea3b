"""structlog, configured once per process: readable in a terminal, JSON elsewhere."""

from __future__ import annotations

import logging
import sys
import threading

import structlog

from mnemoflow.pipeline.api.config import LoggingSettings

_once = threading.Lock()
_configured: list[LoggingSettings] = []


def configure_logging(settings: LoggingSettings, *, quiet: bool = False) -> None:
    """Configure structlog for this process; later calls are no-ops. With no level set, info;
    `quiet` (a one-shot command in a terminal or a script): warning."""
    with _once:
        if _configured:
            return
        use_json = settings.format == "json" or (
            settings.format == "auto" and not sys.stderr.isatty()
        )
        renderer: structlog.typing.Processor = (
            structlog.processors.JSONRenderer()
            if use_json
            else structlog.dev.ConsoleRenderer(colors=False)
        )
        structlog.configure(
            processors=[
                structlog.contextvars.merge_contextvars,
                structlog.processors.add_log_level,
                structlog.processors.TimeStamper(fmt="iso", utc=True),
                renderer,
            ],
            wrapper_class=structlog.make_filtering_bound_logger(
                logging.getLevelNamesMapping()[
                    (settings.level or ("warning" if quiet else "info")).upper()
                ]
            ),
            logger_factory=structlog.PrintLoggerFactory(sys.stderr),
            cache_logger_on_first_use=True,
        )
        _configured.append(settings)
