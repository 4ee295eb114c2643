import pytest

from marketdata.sources import BundledSource
from marketdata.store import PriceStore


@pytest.fixture
def store() -> PriceStore:
    """A fresh store over the bundled data (its own cache, no sources from other tests)."""
    return PriceStore([("bundled", BundledSource())])
