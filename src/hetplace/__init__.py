"""hetplace: plan AI-agent inference fleets on heterogeneous hardware at the lowest total cost of ownership.

The code lives in the repository's top-level folders (`optimizer/`, `costmodels/`, …, `cli.py`), laid out as the
design card asks. In the wheel they are installed as `hetplace.optimizer`, `hetplace.costmodels`, … (see
`[tool.hatch.build.targets.wheel.sources]`); in a checkout and in an editable install this folder holds symbolic
links to them, so tools that read files (mypy, import-linter, IDEs) see the same package the wheel ships.
"""
