"""Running tasks for many genomes: the evaluator and its worker processes, the SQLite
store that keeps every result, and the replay of a finished grid run."""
