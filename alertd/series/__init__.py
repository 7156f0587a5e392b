"""The in-memory series store: samples in, windows and instant values out."""
