from marketdata.store import SymbolCoverage, get_store


def symbol_list() -> list[SymbolCoverage]:
    return get_store().symbols()
