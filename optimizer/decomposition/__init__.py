"""Dantzig–Wolfe decomposition of the min-TCO model by model family (`solve --method decomposition`).

partition.py splits the model into family blocks and linking rows; colgen.py generates columns (whole family
plans) and a Lagrangian lower bound; master.py is the integer master over the columns (any backend); driver.py
runs them and, when needed, finishes on the whole model with the bound as an objective cut.
"""
