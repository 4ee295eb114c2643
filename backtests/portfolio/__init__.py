"""The Backfolio portfolio backtest (contracts/backfolio-portfolio-backtest-v2.md, SPEC §8).

``requests`` parses and validates the posted JSON, ``risk`` applies risk management and position
sizing, ``runner`` runs the portfolio and assembles the response (all three pure: no Django);
``services`` and ``selectors`` save and read the runs as ``Backtest`` rows.
"""
