"""The plan cache: where ``edgekit tune`` keeps confirmed plans and ``load(device="auto")`` finds them.

Plans are filed under ``$EDGEKIT_CACHE/plans/<model sha256>/<device>-<hash of device and host>.toml``.
A cache is untrusted on read like any plan file: every entry goes back through
:meth:`~edgekit.plan.Plan.read` and :func:`~edgekit.plan.check`, must name the device it is filed
under, and is ignored (with the reason) otherwise; links and folders other users may write are refused.

Example::

    path = cache_plan(plan)                                   # after edgekit tune confirmed it
    plan, why_not = find_plan(open_model("det.onnx"), "raspberry-pi-5")
"""

from __future__ import annotations

import hashlib
import json
import re
from pathlib import Path

from edgekit.cache import cache_dir, cache_root
from edgekit.errors import InvalidOptionError, PlanError
from edgekit.models.formats import ModelFile
from edgekit.plan import Plan, check, host_facts

__all__ = ["cache_plan", "find_plan", "plan_cache_path"]


def plan_cache_path(model_sha256: str, device: str | None, host: tuple[str, int, str] | None = None) -> Path:
    """Where the cache keeps the plan for a model (by hash) on ``device`` (None: no profile) and a host.

    ``host`` is (CPU model, cores, machine), default this host's. Nothing is created or checked here:
    :func:`cache_plan` and :func:`find_plan` go through :func:`edgekit.cache.cache_dir`, which refuses
    a cache folder that is not private to this user.
    """
    if not re.fullmatch(r"[0-9a-f]{64}", model_sha256):
        raise InvalidOptionError(f"expected a model sha256 of 64 lowercase hex digits, got {model_sha256!r}.")
    cpu, cores, machine = host or host_facts()
    key = hashlib.sha256(json.dumps([device, cpu, cores, machine]).encode()).hexdigest()[:24]
    slug = re.sub(r"[^A-Za-z0-9_.-]", "_", device)[:48] if device else "host"
    return cache_root() / "plans" / model_sha256 / f"{slug}-{key}.toml"


def cache_plan(plan: Plan) -> Path:
    """Keep ``plan`` in the plan cache (replacing the one for the same model, device and host); return its path."""
    cache_dir("plans", plan.model_sha256)  # made private, like every cache folder (or InvalidOptionError)
    path = plan_cache_path(plan.model_sha256, plan.device, (plan.host_cpu, plan.host_cores, plan.host_machine))
    return plan.write(path, force=True)


def find_plan(model: ModelFile, device: str | None) -> tuple[Plan | None, list[str]]:
    """The cached plan for ``model`` on ``device`` that applies here, and why others were passed over.

    Looks for the plan tuned for ``device``, then for one tuned on this host without a device
    profile. Each file is read through :meth:`Plan.read` and :func:`check`; one that fails either
    (or a symbolic link, or a cache folder others may write to) is ignored and its reason returned.
    ``(None, reasons)`` when none applies.
    """
    reasons: list[str] = []
    for dev in dict.fromkeys([device, None]):
        path = plan_cache_path(model.sha256(), dev)
        if not (path.exists() or path.is_symlink()):
            continue  # (a lookup creates nothing)
        try:
            cache_dir("plans", model.sha256())  # refuses folders another user owns or every user may write
        except InvalidOptionError as exc:
            reasons.append(f"the plan cache was ignored: {exc}")
            break
        if path.is_symlink():
            reasons.append(f"cached plan {path} ignored: it is a symbolic link, and edgekit writes plain files there")
            continue
        try:
            plan = Plan.read(path)
        except PlanError as exc:
            reasons.append(f"cached plan ignored: {exc}")
            continue
        why = check(plan, model, device=dev)
        if plan.device != dev:
            why.append(f"it names device {plan.device!r} and is filed under {dev!r}")
        if why:
            reasons.append(f"cached plan {path} ignored: " + "; ".join(why))
            continue
        return plan, reasons
    if not reasons:
        reasons.append(f"no plan in the cache for {model.path.name} (sha256 {model.sha256()[:12]}…)"
                       + (f" on device {device}" if device else "") + f"; make one with `edgekit tune "
                       f"{model.path.name}" + (f" --device {device}" if device else "") + "`")
    return None, reasons
