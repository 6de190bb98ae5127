"""Domain errors of the library; the HTTP layer maps each class to a status code."""


class RagError(Exception):
    """Base class: every error the library raises on purpose.

    `written` names the articles a failed write had already stored (whole, and live) before it failed, and
    `removed` those it had already deleted: a caller is told exactly what went in, not only that it failed."""

    written: tuple[str, ...] = ()
    removed: tuple[str, ...] = ()


class ConfigError(RagError):
    """The settings ask for something that cannot be built (unknown provider, missing key)."""


class InvalidQuestion(RagError):
    """The question is empty, too long or otherwise unusable."""


class InvalidDocument(RagError):
    """An article or corpus file cannot be read or has no usable text."""


class DocumentNotFound(RagError):
    """No article with that id is in the index."""


class StoreUnavailable(RagError):
    """The vector store cannot be reached or failed; the caller may retry later."""


class InsufficientStorage(StoreUnavailable):
    """The disk the index lives on is (nearly) full: writes are refused until space is freed; reads go on."""


class IndexNotReady(RagError):
    """The index is still being built (first start ingests the seeds)."""


class ProviderError(RagError):
    """An external model provider (LLM or embeddings) failed or answered garbage."""


class FetchRefused(InvalidDocument):
    """A URL that may not be fetched: not http(s), a host that does not resolve, or one whose address is
    private, loopback or link-local."""


class FetchFailed(RagError):
    """A URL could not be fetched: the network, the remote server, or what it sent (too large, not a page)."""
