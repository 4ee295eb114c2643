"""The v1 contract's shared base (error shape, paging, base views, documented error responses),
used by both apps' v1 views: the strategies app builds on it without importing the backtests app."""
