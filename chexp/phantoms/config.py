"""Configuration of the phantom generator: finding names and :class:`PhantomConfig`."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from ..errors import PhantomConfigError, UnknownNameError

#: The findings a phantom can carry, in label-column order.
FINDINGS: tuple[str, ...] = ("Cardiomegaly", "Effusion", "Mass", "Pneumothorax", "Support Devices")

#: Index of each finding in :data:`FINDINGS`.
FINDING_INDEX: dict[str, int] = {name: k for k, name in enumerate(FINDINGS)}

#: Smallest and largest image side the generator supports.
MIN_SIZE, MAX_SIZE = 32, 1024

#: P(device | no finding) when ``device_cooccurrence`` gives only P(device | finding).
DEFAULT_P_DEVICE_WITHOUT = 0.05


def check_finding_name(name: object, what: str = "finding") -> str:
    """Return ``name`` if it is one of :data:`FINDINGS`, else raise :class:`UnknownNameError`."""
    if not isinstance(name, str) or name not in FINDING_INDEX:
        raise UnknownNameError(name, FINDINGS, what)
    return name


def check_finding_names(names: Iterable[str] | str | None, what: str = "finding") -> tuple[str, ...]:
    """Validate a collection of finding names (a single string counts as one name)."""
    if names is None:
        return ()
    if isinstance(names, str):
        names = (names,)
    return tuple(check_finding_name(n, what) for n in names)


def _probability(value: object, what: str) -> float:
    try:
        p = float(value)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        raise PhantomConfigError(f"{what} must be a number in [0, 1], got {value!r}") from None
    if not 0.0 <= p <= 1.0:
        raise PhantomConfigError(f"{what} must lie in [0, 1], got {p}")
    return p


@dataclass(frozen=True)
class PhantomConfig:
    """Settings of a phantom data set (frozen and hashable, so it can key a model cache).

    Args:
        size: image side S in pixels (32..1024; 64..512 is the tested range).
        prevalence: probability of each finding, either one number for all five or a mapping
            ``{finding: probability}`` (missing findings get 0.3). Stored as a 5-tuple in
            :data:`FINDINGS` order.
        device_cooccurrence: ``None`` (support devices independent of everything, with their own
            prevalence) or ``(finding, p_given_present)`` or
            ``(finding, p_given_present, p_given_absent)``: then
            P(device | finding) = p_given_present and P(device | no finding) = p_given_absent
            (default :data:`DEFAULT_P_DEVICE_WITHOUT` = 0.05), and the "Support Devices" prevalence
            is not used. This plants a shortcut for shortcut-learning studies.

    Raises:
        PhantomConfigError: a probability outside [0, 1] or a size outside [32, 1024].
        UnknownNameError: an unknown finding name (or "Support Devices" itself as co-occurrence
            target).
    """

    size: int = 128
    prevalence: float | tuple[float, ...] | Mapping[str, float] = 0.3
    device_cooccurrence: tuple | None = None

    def __post_init__(self) -> None:
        if not isinstance(self.size, int) or isinstance(self.size, bool):
            raise PhantomConfigError(f"size must be an int, got {self.size!r}")
        if not MIN_SIZE <= self.size <= MAX_SIZE:
            raise PhantomConfigError(f"size must lie in [{MIN_SIZE}, {MAX_SIZE}] pixels, got {self.size}")
        object.__setattr__(self, "prevalence", self._normalise_prevalence(self.prevalence))
        object.__setattr__(self, "device_cooccurrence", self._normalise_cooc(self.device_cooccurrence))

    @staticmethod
    def _normalise_prevalence(value: object) -> tuple[float, ...]:
        if isinstance(value, Mapping):
            out = [0.3] * len(FINDINGS)
            for name, p in value.items():
                out[FINDING_INDEX[check_finding_name(name)]] = _probability(p, f"prevalence of {name!r}")
            return tuple(out)
        if isinstance(value, (tuple, list)):
            if len(value) != len(FINDINGS):
                raise PhantomConfigError(
                    f"prevalence as a sequence needs {len(FINDINGS)} values (one per finding "
                    f"{', '.join(FINDINGS)}), got {len(value)}"
                )
            return tuple(_probability(p, f"prevalence of {n!r}") for n, p in zip(FINDINGS, value, strict=True))
        p = _probability(value, "prevalence")
        return (p,) * len(FINDINGS)

    @staticmethod
    def _normalise_cooc(value: object) -> tuple[str, float, float] | None:
        if value is None:
            return None
        if not isinstance(value, (tuple, list)) or len(value) not in (2, 3):
            raise PhantomConfigError(
                "device_cooccurrence must be None, (finding, p_given_present) or "
                f"(finding, p_given_present, p_given_absent), got {value!r}"
            )
        name = check_finding_name(value[0], "co-occurrence finding")
        if name == "Support Devices":
            raise UnknownNameError(name, FINDINGS[:-1], "co-occurrence finding")
        p1 = _probability(value[1], "P(device | finding)")
        p0 = _probability(value[2] if len(value) == 3 else DEFAULT_P_DEVICE_WITHOUT, "P(device | no finding)")
        return (name, p1, p0)
