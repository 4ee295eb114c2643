"""How much one request may ask for: every bound on a run's work and on stored text, in one table.

A request over a bound is refused with a 400 that names the bound, in the contract's own error
shape, before anything runs; ``docs/OPERATIONS.md`` lists them. Imported by the pure core (the
strategy language, the pipeline), so it uses no Django. The run time limit is a setting
(``BACKFOLIO_RUN_TIME_LIMIT_SECONDS``, enforced by ``backfolio.deadline``): operators tune it.
"""

# --- a strategy definition (v1 signal strategies, Backfolio allocation strategies) -------------
MAX_CONDITION_DEPTH = 32  # and/or levels; every later step walks the tree recursively
MAX_CONDITIONS_PER_STRATEGY = 50  # comparisons (leaf conditions) in one definition
MAX_ALLOCATION_GROUPS = 20
MAX_SWITCHING_RULES = 50

# --- one run ----------------------------------------------------------------------------------
MAX_SYMBOLS_PER_RUN = 50  # v1 ``symbols``; Backfolio: every symbol the strategy names
MAX_SWEEP_ENTRIES = 50  # v1 sweep grid entries over the API (``manage.py run_sweep`` has none)
# Distinct signals a run computes (constants excluded); a v1 signal without a symbol is computed
# once per traded symbol and counts once for each.
MAX_SIGNALS_PER_RUN = 100
# Symbols read × bars loaded for each (the run's bars plus the indicators' warm-up history).
MAX_SYMBOL_BARS = 500_000
# Indicator work: for every signal computed, the bars it is computed on × its window (lookback),
# summed. Some TA-Lib indicators cost bars × window each (CCI); this bounds them all at about a
# second or two of one core, whatever the mix of windows.
MAX_INDICATOR_WORK = 2_000_000_000
# An indicator's window must also be shorter than the bars its symbol has through the end date.

# --- request bodies and lists -------------------------------------------------------------------
# JSON nesting of any body: deeper than any valid document (a condition tree 32 levels deep is
# about 70), and far from where Python's own recursion gives out in validation and storage.
MAX_JSON_DEPTH = 100
# Rows skipped by a list (v1 ``skip``, Backfolio ``offset``) and page numbers: every SQL OFFSET
# then fits 64 bits.
MAX_LIST_OFFSET = 1_000_000_000
MAX_LIST_PAGE = 10_000_000

# --- stored text --------------------------------------------------------------------------------
NAME_MAX_LENGTH = 200
DESCRIPTION_MAX_LENGTH = 10_000

# The largest contribution or withdrawal per period a run may ask (SPEC §8.1): beyond it a few
# periods of flows overflow what a float holds to the cent.
MAX_CASHFLOW_AMOUNT = 1e15
