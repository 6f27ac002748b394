"""The sensor side: CSV/stdin rows, windows, the window detector, streaming, scoring, evaluation."""
