"""Rendering: plots and (later) HTML/Markdown reports. Reads cost-model and plan outputs; computes nothing new."""
