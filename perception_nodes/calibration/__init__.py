"""`perception calibrate`: a cell's bin floor and workspace from its empty bin."""
