"""Typed errors. Every one is a mistake or a failure a user can act on: the message says
what is wrong and what to do. The CLI prints any of them as one `error:` line; the server
maps each type to its HTTP status."""


class RearagError(Exception):
    """A user-facing error: the message says what is wrong and what to do."""


class InvalidInputError(RearagError):
    """Bad input: an empty question, an unknown option value, a malformed file."""


class ConfigError(InvalidInputError):
    """The configuration (TOML file, REARAG_* variables, flags) is invalid."""


class NotFoundError(RearagError):
    """Something named does not exist: a collection, a file, a model, a trained policy."""


class BackendError(RearagError):
    """A service or model rearag depends on failed: the Chroma server, a model load."""


class ThreadBusy(RearagError):
    """An earlier question on the same conversation thread is still being answered."""


class ModelNotServed(NotFoundError):
    """A server was asked for a collection (an API `model`) it does not serve."""


class TooManyDocuments(InvalidInputError):
    """More documents to rerank in one request than the server allows (serve.max_documents)."""


class UnsupportedField(InvalidInputError):
    """A request field rearag cannot honour; `param` names it, as OpenAI's errors do."""

    def __init__(self, param: str, message: str) -> None:
        super().__init__(message)
        self.param = param


class StorageError(RearagError):
    """The disk refused: it is full, or read-only. The message names the folder `where`; a
    server shows the message without it (`public`), as it shows no path of its own."""

    def __init__(self, message: str, where: object) -> None:
        super().__init__(message)
        self.where = str(where)

    def public(self) -> str:
        return str(self).replace(self.where, "the server's $REARAG_HOME")


class DiskFull(StorageError):
    """No space left where rearag writes (`$REARAG_HOME`, the conversations database)."""


class ReadOnlyStorage(StorageError):
    """A write was needed where the file system is read-only."""


class InvalidFilter(InvalidInputError):
    """A metadata filter (`where`) that cannot be read; `param` names it, as OpenAI's errors do."""

    param = "where"
