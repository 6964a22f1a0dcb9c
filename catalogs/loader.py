"""Load the bundled device and model catalogs (and user-supplied extra entries).

Bundled YAML ships inside the package (importlib.resources), so an installed wheel finds it without the repo.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from functools import lru_cache
from importlib import resources
from pathlib import Path

from hetplace.catalogs.calibration_schema import CalibrationFile
from hetplace.catalogs.engine_schema import Engine
from hetplace.catalogs.schema import Device, ModelArch
from hetplace.common.errors import InputError
from hetplace.common.io import load_mapping, parse_model

CATALOG_KINDS: dict[str, type[Device] | type[ModelArch]] = {"devices": Device, "models": ModelArch}


def bundled_dir(kind: str) -> Path:
    """Directory of the bundled YAML files of `kind` ('devices', 'models', 'engines' or 'calibrations')."""
    return Path(str(resources.files("hetplace.catalogs") / kind))


def load_entry(path: Path, kind: str) -> Device | ModelArch:
    """Parse one catalog YAML file of `kind`; errors name the file and field path."""
    if kind == "devices":
        return parse_model(Device, load_mapping(path), str(path))
    if kind == "models":
        return parse_model(ModelArch, load_mapping(path), str(path))
    raise ValueError(f"unknown catalog kind {kind!r}; expected one of {sorted(CATALOG_KINDS)}")


@dataclass
class Catalog:
    """Devices and models by id; the one place the rest of the code looks hardware and models up."""

    devices: dict[str, Device] = field(default_factory=dict)
    models: dict[str, ModelArch] = field(default_factory=dict)
    origin: dict[str, str] = field(default_factory=dict)  # "devices:<id>" -> file it came from

    def add(self, entry: Device | ModelArch, kind: str, source: str) -> None:
        table = self.devices if kind == "devices" else self.models
        key = f"{kind}:{entry.id}"
        if entry.id in table:
            raise InputError.single(
                source, "id", f"{kind[:-1]} id '{entry.id}' already defined in {self.origin.get(key, 'the catalog')}"
            )
        table[entry.id] = entry  # type: ignore[assignment]
        self.origin[key] = source

    def device(self, device_id: str) -> Device:
        return self.devices[device_id]

    def model(self, model_id: str) -> ModelArch:
        return self.models[model_id]

    def with_calibration(self, calibration: CalibrationFile) -> Catalog:
        """A copy whose devices carry the fitted efficiency factors of `calibration` where it has them."""
        devices = {
            dev_id: dev.model_copy(update={"efficiency": calibration.devices[dev_id].efficiency()})
            if dev_id in calibration.devices
            else dev
            for dev_id, dev in self.devices.items()
        }
        return Catalog(devices, dict(self.models), dict(self.origin))

    def extended(self, device_files: Iterable[Path] = (), model_files: Iterable[Path] = ()) -> Catalog:
        """A copy with extra entries from user files (e.g. a new accelerator in a what-if)."""
        out = Catalog(dict(self.devices), dict(self.models), dict(self.origin))
        for kind, files in (("devices", device_files), ("models", model_files)):
            for path in files:
                out.add(load_entry(Path(path), kind), kind, str(path))
        return out


def _load_bundled_kind(catalog: Catalog, kind: str) -> None:
    for path in sorted(bundled_dir(kind).glob("*.yaml")):
        entry = load_entry(path, kind)
        if entry.id != path.stem:
            raise InputError.single(str(path), "id", f"id '{entry.id}' must equal the file name '{path.stem}'")
        catalog.add(entry, kind, str(path))


@lru_cache(maxsize=1)
def _bundled() -> Catalog:
    catalog = Catalog()
    for kind in CATALOG_KINDS:
        _load_bundled_kind(catalog, kind)
    return catalog


def load_catalog() -> Catalog:
    """The bundled catalog (parsed once per process; callers get a shallow copy they may extend)."""
    base = _bundled()
    return Catalog(dict(base.devices), dict(base.models), dict(base.origin))


def load_calibration(path: Path, catalog: Catalog | None = None) -> CalibrationFile:
    """Parse a calibration file written by `hetplace calibrate`; its devices must exist in `catalog`."""
    calibration = parse_model(CalibrationFile, load_mapping(Path(path)), str(path))
    known = (catalog or load_catalog()).devices
    for dev_id in calibration.devices:
        if dev_id not in known:
            raise InputError.single(str(path), f"devices.{dev_id}", f"unknown device '{dev_id}'")
    engines = load_engines()
    for dev_id, per_engine in calibration.serving.items():
        if dev_id not in known:
            raise InputError.single(str(path), f"serving.{dev_id}", f"unknown device '{dev_id}'")
        for engine_id in per_engine:
            if engine_id not in engines:
                raise InputError.single(
                    str(path),
                    f"serving.{dev_id}.{engine_id}",
                    f"unknown engine '{engine_id}' (known: {', '.join(sorted(engines))})",
                )
    for engine_id in calibration.serving_engines:
        if engine_id not in engines:
            raise InputError.single(
                str(path),
                f"serving_engines.{engine_id}",
                f"unknown engine '{engine_id}' (known: {', '.join(sorted(engines))})",
            )
    return calibration


@lru_cache(maxsize=1)
def _bundled_engines() -> dict[str, Engine]:
    engines: dict[str, Engine] = {}
    for path in sorted(bundled_dir("engines").glob("*.yaml")):
        engine = parse_model(Engine, load_mapping(path), str(path))
        if engine.id != path.stem:
            raise InputError.single(str(path), "id", f"id '{engine.id}' must equal the file name '{path.stem}'")
        engines[engine.id] = engine
    return engines


def load_engines() -> dict[str, Engine]:
    """The bundled serving engines by id (catalogs/engines/*.yaml), parsed once per process."""
    return dict(_bundled_engines())


def known_engine_id(name: str, engines: Mapping[str, Engine]) -> str | None:
    """The catalog id an engine name or alias means ('trtllm' → 'tensorrt-llm'), or None for an engine the catalog
    does not know."""
    if name in engines:
        return name
    return next((e.id for e in engines.values() if name in e.aliases), None)


def resolve_engine_id(name: str, engines: Mapping[str, Engine], source: str, field: str = "engine") -> str:
    """The catalog id of an engine named by its id or one of its aliases ('trtllm' → 'tensorrt-llm'), so benchmark
    spellings work on the command line; an unknown name is an input error listing the known ones."""
    found = known_engine_id(name, engines)
    if found is not None:
        return found
    known = ", ".join(f"{e.id} ({', '.join(e.aliases)})" if e.aliases else e.id for e in engines.values())
    raise InputError.single(source, field, f"unknown engine '{name}' (known: {known})")


DEFAULT_CALIBRATION = "serving-public"
"""What `analyze` prices with unless told otherwise: the bundled GEMM + serving fit the default scenario uses (the
plain roofline is 1.8× optimistic on the bundled serving rows)."""
DEFAULT_ENGINE = "vllm"
"""`analyze`'s engine unless told otherwise: the most deployed open engine, and the default scenario's."""


def bundled_calibration_ids() -> list[str]:
    return sorted(p.stem for p in bundled_dir("calibrations").glob("*.yaml"))


def resolve_calibration(ref: str, base_dir: Path, source: str, catalog: Catalog) -> CalibrationFile:
    """A scenario's `calibration:` value: a bundled id, or a file relative to the scenario's directory."""
    if ref.endswith((".yaml", ".yml")):
        path = base_dir / ref
        if not path.is_file():
            raise InputError.single(source, "calibration", f"file not found: {path}")
        return load_calibration(path, catalog)
    if ref not in bundled_calibration_ids():
        raise InputError.single(
            source,
            "calibration",
            f"unknown bundled calibration '{ref}' "
            f"(bundled: {', '.join(bundled_calibration_ids())}; or give a .yaml path)",
        )
    return load_calibration(bundled_dir("calibrations") / f"{ref}.yaml", catalog)
