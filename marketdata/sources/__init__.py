"""Price sources a ``PriceStore`` can register by name (see ``marketdata.base.PriceSource``)."""

from marketdata.base import PriceSource
from marketdata.sources.bundled import BUNDLED_DATA_DIRECTORY, BundledSource
from marketdata.sources.memory import InMemorySource

__all__ = ["BUNDLED_DATA_DIRECTORY", "BundledSource", "InMemorySource", "PriceSource"]
