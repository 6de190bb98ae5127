"""Domain errors of the library; the HTTP layer maps each class to a status code."""


class RagError(Exception):
    """Base class: every error the library raises on purpose."""


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


class IndexNotReady(RagError):
    """The index is still being built (first start ingests the seeds)."""


class ProviderError(RagError):
    """An external model provider (LLM or embeddings) failed or answered garbage."""


class FetchRefused(InvalidDocument):
    """A URL that may not be fetched: not http(s), a host that does not resolve, or one whose address is
    private, loopback or link-local."""


class FetchFailed(RagError):
    """A URL could not be fetched: the network, the remote server, or what it sent (too large, not a page)."""
