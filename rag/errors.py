"""Errors the library raises on purpose; each message says what to do."""

from __future__ import annotations


class RagError(Exception):
    """Base class of the errors shown to users as plain messages (no traceback)."""


class LoadError(RagError):
    """A file could not be read as a document (wrong type, empty, binary, corrupt...)."""


class IndexFormatError(RagError):
    """The index on disk is missing, corrupt, or was built with other settings."""


class ModelError(RagError):
    """A model file is missing, incomplete or fails its checksum."""


class ModelServerError(ModelError):
    """An OpenAI-compatible model server could not be used (unreachable, refused the request, failed)."""


class ModelServerUnavailable(ModelServerError):
    """Nothing answers at the model server's address (not started, wrong URL or port)."""


class ModelServerDisconnected(ModelServerError):
    """The model server closed the connection before the answer was complete (it stopped or crashed)."""


class ModelServerTimeout(ModelServerError):
    """The model server did not answer within ``Settings.openai_timeout_s`` seconds."""
