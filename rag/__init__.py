"""newsrag: retrieval question answering over news articles, with cited answers."""

__version__ = "0.1.0"
