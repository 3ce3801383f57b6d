"""The run directory: run.json, the CSV files, the trained-energy journal and the
atomic writes that keep them whole."""
