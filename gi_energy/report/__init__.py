"""What a person reads: comparisons and indicators, plots, terminal progress and
problem summaries."""
