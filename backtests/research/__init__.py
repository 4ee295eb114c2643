"""Research on strategies (SPEC §13): sweeps at scale, walk-forward, robustness."""
