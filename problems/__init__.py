"""The documents hetplace reads and writes: workflows and scenarios (inputs); plans, schedules and sweep rows
(outputs); and the longest-path pass over a workflow DAG."""
