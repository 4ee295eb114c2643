"""Numba callbacks that vectorbt's ``from_signals`` calls once per bar.

Only the few runs that plain vectorbt arguments cannot express use them (see
``vectorbt_engine.signal_callback_reasons``): vectorbt's simulator that takes callbacks cannot be
cached on disk, so each process compiles it once (10–40 s). ``cache=True`` here caches only these
small callbacks. Imported lazily by the vectorbt adapter (importing numba is slow).
"""

import numpy as np
from numba import njit

NO_SIGNAL_EXIT = 0
TIME_EXIT = 1
OPPOSITE_SIGNAL_EXIT = 2


@njit(cache=True)
def decide_signals_nb(
    c, long_entries, long_exits, short_entries, short_exits, max_holding_bars, state, exit_codes
):
    """Time exit first, then the user's signals; stops were already handled by vectorbt.

    ``state[0]`` is the bar the current position was opened on; ``exit_codes[i]`` records why
    this function closed a position on bar i, so that stop exits can be told apart afterwards.
    """
    i = c.i
    position = c.position_now
    if position == 0:
        state[0] = -1
    elif max_holding_bars > 0 and i - state[0] >= max_holding_bars:
        exit_codes[i] = TIME_EXIT
        return False, position > 0, False, position < 0
    if position > 0:
        if short_entries[i]:
            exit_codes[i] = OPPOSITE_SIGNAL_EXIT
            state[0] = i
            return False, False, True, False
        if long_exits[i]:
            exit_codes[i] = OPPOSITE_SIGNAL_EXIT
            return False, True, False, False
        return False, False, False, False
    if position < 0:
        if long_entries[i]:
            exit_codes[i] = OPPOSITE_SIGNAL_EXIT
            state[0] = i
            return True, False, False, False
        if short_exits[i]:
            exit_codes[i] = OPPOSITE_SIGNAL_EXIT
            return False, False, False, True
        return False, False, False, False
    if long_entries[i] and short_entries[i]:
        return False, False, False, False
    if long_entries[i]:
        state[0] = i
        return True, False, False, False
    if short_entries[i]:
        state[0] = i
        return False, False, True, False
    return False, False, False, False


@njit(cache=True)
def combined_stop_nb(c, stop_loss, trailing_stop):
    """One vectorbt stop slot carries both the fixed stop loss and the trailing stop.

    The binding level is the tighter of entry·(1−sl) and peak·(1−ts) (mirrored for shorts);
    it is returned as a fraction of vectorbt's trailing reference price (the best close since
    entry, starting at the entry fill price). With either stop NaN the slot already holds the
    one stop that binds, and is left untouched so that its arithmetic is vectorbt's own.
    """
    if np.isnan(c.curr_stop) or c.position_now == 0:
        return c.curr_stop, c.curr_trail
    if np.isnan(stop_loss) or np.isnan(trailing_stop):
        return c.curr_stop, c.curr_trail
    reference = c.curr_price
    if c.position_now > 0:
        level = max(c.init_price * (1.0 - stop_loss), reference * (1.0 - trailing_stop))
        return 1.0 - level / reference, c.curr_trail
    level = min(c.init_price * (1.0 + stop_loss), reference * (1.0 + trailing_stop))
    return level / reference - 1.0, c.curr_trail
