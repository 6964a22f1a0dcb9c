"""Discrete-event simulation of a plan under traffic: per-workflow latency percentiles and per-pool queues.

Sits below `reports` (a report may show a simulation) and above `problems`: it reads a scenario and a plan and times
steps with the same cost models the optimizer uses, but never solves.
"""
