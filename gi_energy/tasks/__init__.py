"""How one configuration becomes numbers: the built-in training and inference of the
MLP and CNN (training.py) and the records every stage above reads (results.py)."""
