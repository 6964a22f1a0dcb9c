"""Deployment artefacts from a plan: serving-engine launch arguments, Kubernetes manifests, purchase orders.

Sits beside `reports`: it renders a solved plan for people and tools downstream and never solves.
"""
